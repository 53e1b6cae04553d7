// SPDX-License-Identifier: MIT OR Apache-2.0
// stun.cpp: the STUN Binding subset (RFC 8489): request and success response encoders, their
// parsers and the FINGERPRINT check (CRC-32 of the message before it, xor 0x5354554e). Every read is
// checked against the message's length first, so a hostile datagram cannot make a parser read out
// of bounds; nothing allocates except the encoders' output.
// Layer: relay (internal). Pure functions.
#include "relay/stun.hpp"

#include <fmt/format.h>

namespace moosicbox::p2p::stun {

namespace {

constexpr std::uint16_t kBindingRequest = 0x0001;
constexpr std::uint16_t kBindingSuccess = 0x0101;
constexpr std::uint16_t kBindingError = 0x0111;

constexpr std::uint16_t kAttrMappedAddress = 0x0001;
constexpr std::uint16_t kAttrSourceAddress = 0x0004;           // RFC 3489, deprecated: ignored
constexpr std::uint16_t kAttrChangedAddress = 0x0005;          // RFC 3489, deprecated: ignored
constexpr std::uint16_t kAttrMessageIntegrity = 0x0008;        // not verified (no credentials): ignored
constexpr std::uint16_t kAttrMessageIntegritySha256 = 0x001C;  // likewise
constexpr std::uint16_t kAttrXorMappedAddress = 0x0020;
constexpr std::uint16_t kAttrFingerprint = 0x8028;

constexpr std::uint32_t kFingerprintXor = 0x5354554e;
constexpr std::size_t kAttrHeaderSize = 4;
constexpr std::size_t kFingerprintAttrSize = kAttrHeaderSize + 4;

// CRC-32/ISO-HDLC (reflected polynomial 0xEDB88320), the CRC the FINGERPRINT attribute uses.
constexpr std::array<std::uint32_t, 256> make_crc_table() noexcept {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1U) != 0 ? 0xEDB88320U ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kCrcTable = make_crc_table();

std::uint32_t crc32(ByteView data) noexcept {
  std::uint32_t c = 0xFFFFFFFFU;
  for (auto b : data) c = kCrcTable[(c ^ std::to_integer<std::uint32_t>(b)) & 0xFFU] ^ (c >> 8);
  return c ^ 0xFFFFFFFFU;
}

std::uint8_t u8_at(ByteView b, std::size_t i) noexcept { return std::to_integer<std::uint8_t>(b[i]); }
std::uint16_t u16_at(ByteView b, std::size_t i) noexcept {
  return static_cast<std::uint16_t>((u8_at(b, i) << 8) | u8_at(b, i + 1));
}
std::uint32_t u32_at(ByteView b, std::size_t i) noexcept {
  return (std::uint32_t{u8_at(b, i)} << 24) | (std::uint32_t{u8_at(b, i + 1)} << 16) |
         (std::uint32_t{u8_at(b, i + 2)} << 8) | std::uint32_t{u8_at(b, i + 3)};
}

void put_u16(Bytes& out, std::uint16_t v) {
  out.push_back(std::byte(static_cast<std::uint8_t>(v >> 8)));
  out.push_back(std::byte(static_cast<std::uint8_t>(v)));
}
void put_u32(Bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(std::byte(static_cast<std::uint8_t>(v >> shift)));
}
void set_u16(Bytes& out, std::size_t at, std::uint16_t v) {
  out[at] = std::byte(static_cast<std::uint8_t>(v >> 8));
  out[at + 1] = std::byte(static_cast<std::uint8_t>(v));
}

std::unexpected<P2PError> malformed(std::string what) { return fail(P2PError::protocol("stun: " + what)); }

// begin writes the header with a zero length (finish sets it).
Bytes begin(std::uint16_t type, const TxId& tx) {
  Bytes out;
  out.reserve(64);
  put_u16(out, type);
  put_u16(out, 0);
  put_u32(out, kMagicCookie);
  out.insert(out.end(), tx.begin(), tx.end());
  return out;
}

// finish appends FINGERPRINT and sets the header's length.
Bytes finish(Bytes out) {
  set_u16(out, 2, static_cast<std::uint16_t>(out.size() + kFingerprintAttrSize - kHeaderSize));
  const std::uint32_t crc = crc32(out) ^ kFingerprintXor;
  put_u16(out, kAttrFingerprint);
  put_u16(out, 4);
  put_u32(out, crc);
  return out;
}

// Attribute is one attribute as found in a message.
struct Attribute {
  std::uint16_t type = 0;
  ByteView value;
};

// Message is a checked header and its attribute area.
struct Message {
  std::uint16_t type = 0;
  TxId tx{};
  ByteView attrs;
};

P2PResult<Message> parse_header(ByteView p) {
  if (p.size() < kHeaderSize) return malformed(fmt::format("truncated: {} bytes, the header needs 20", p.size()));
  if (p.size() > kMessageSizeMax) {
    return malformed(fmt::format("oversize: {} bytes exceeds max {}", p.size(), kMessageSizeMax));
  }
  const std::uint16_t type = u16_at(p, 0);
  if ((type & 0xC000U) != 0) return malformed(fmt::format("not STUN: type 0x{:04x} has the top bits set", type));
  if (u32_at(p, 4) != kMagicCookie) return malformed(fmt::format("bad magic cookie 0x{:08x}", u32_at(p, 4)));
  const std::size_t length = u16_at(p, 2);
  if (length % 4 != 0) return malformed(fmt::format("length {} is not a multiple of 4", length));
  if (length != p.size() - kHeaderSize) {
    return malformed(
        fmt::format("length {} does not match the {} bytes after the header", length, p.size() - kHeaderSize));
  }
  Message m;
  m.type = type;
  for (std::size_t i = 0; i < m.tx.size(); ++i) m.tx[i] = p[8 + i];
  m.attrs = p.subspan(kHeaderSize);
  return m;
}

// for_each_attribute walks the attributes of `packet` (a checked message), checks FINGERPRINT
// (which must be last) and calls `fn` with every other one; `fn` returns an error to stop.
template <class Fn>
P2PResult<void> for_each_attribute(ByteView packet, Fn&& fn) {
  std::size_t off = kHeaderSize;
  bool fingerprinted = false;
  while (off < packet.size()) {
    if (fingerprinted) return malformed("an attribute follows FINGERPRINT");
    if (packet.size() - off < kAttrHeaderSize) {
      return malformed(fmt::format("truncated attribute header at offset {}", off));
    }
    const std::uint16_t type = u16_at(packet, off);
    const std::size_t len = u16_at(packet, off + 2);
    const std::size_t padded = (len + 3) & ~std::size_t{3};
    if (padded > packet.size() - off - kAttrHeaderSize) {
      return malformed(fmt::format("attribute 0x{:04x} of {} bytes at offset {} overruns the {}-byte message", type,
                                   len, off, packet.size()));
    }
    const ByteView value = packet.subspan(off + kAttrHeaderSize, len);
    if (type == kAttrFingerprint) {
      if (len != 4) return malformed(fmt::format("FINGERPRINT of {} bytes (expected 4)", len));
      const std::uint32_t want = crc32(packet.first(off)) ^ kFingerprintXor;
      if (u32_at(value, 0) != want) return malformed("bad FINGERPRINT");
      fingerprinted = true;
    } else if (auto r = fn(Attribute{type, value}); !r) {
      return r;
    }
    off += kAttrHeaderSize + padded;
  }
  return {};
}

bool comprehension_required(std::uint16_t type) noexcept { return type < 0x8000; }

P2PResult<SocketAddr> parse_address(const Attribute& a, const TxId& tx, bool xored) {
  const char* name = xored ? "XOR-MAPPED-ADDRESS" : "MAPPED-ADDRESS";
  if (a.value.size() < 4) return malformed(fmt::format("truncated {}: {} bytes", name, a.value.size()));
  const std::uint8_t family = u8_at(a.value, 1);
  std::uint16_t port = u16_at(a.value, 2);
  if (xored) port ^= static_cast<std::uint16_t>(kMagicCookie >> 16);
  std::array<std::uint8_t, 16> key{};
  for (std::size_t i = 0; i < 4; ++i) key[i] = static_cast<std::uint8_t>(kMagicCookie >> (24 - 8 * i));
  for (std::size_t i = 0; i < tx.size(); ++i) key[4 + i] = std::to_integer<std::uint8_t>(tx[i]);
  if (family == 0x01) {
    if (a.value.size() != 8) return malformed(fmt::format("{} (IPv4) of {} bytes (expected 8)", name, a.value.size()));
    std::array<std::uint8_t, 4> ip{};
    for (std::size_t i = 0; i < 4; ++i) ip[i] = static_cast<std::uint8_t>(u8_at(a.value, 4 + i) ^ (xored ? key[i] : 0));
    return SocketAddr::v4(ip, port);
  }
  if (family == 0x02) {
    if (a.value.size() != 20) {
      return malformed(fmt::format("{} (IPv6) of {} bytes (expected 20)", name, a.value.size()));
    }
    std::array<std::uint8_t, 16> ip{};
    for (std::size_t i = 0; i < 16; ++i) {
      ip[i] = static_cast<std::uint8_t>(u8_at(a.value, 4 + i) ^ (xored ? key[i] : 0));
    }
    return SocketAddr::v6(ip, port);
  }
  return malformed(fmt::format("{}: address family 0x{:02x} (expected 0x01 or 0x02)", name, family));
}

}  // namespace

bool looks_like_stun(ByteView packet) noexcept {
  if (packet.size() < kHeaderSize) return false;
  if ((u8_at(packet, 0) & 0xC0U) != 0) return false;
  if (u32_at(packet, 4) != kMagicCookie) return false;
  const std::size_t length = u16_at(packet, 2);
  return length % 4 == 0 && length == packet.size() - kHeaderSize;
}

Bytes binding_request(const TxId& tx) { return finish(begin(kBindingRequest, tx)); }

P2PResult<TxId> parse_binding_request(ByteView packet) {
  auto m = parse_header(packet);
  if (!m) return std::unexpected(m.error());
  if (m->type != kBindingRequest) {
    return malformed(fmt::format("message type 0x{:04x} is not a Binding request", m->type));
  }
  auto r = for_each_attribute(packet, [](const Attribute& a) -> P2PResult<void> {
    if (comprehension_required(a.type)) {
      return malformed(fmt::format("unknown comprehension-required attribute 0x{:04x} in a request", a.type));
    }
    return {};
  });
  if (!r) return std::unexpected(r.error());
  return m->tx;
}

Bytes binding_response(const TxId& tx, const SocketAddr& observed) {
  const SocketAddr a = observed.canonical();
  Bytes out = begin(kBindingSuccess, tx);
  put_u16(out, kAttrXorMappedAddress);
  put_u16(out, a.is_v4() ? 8 : 20);
  out.push_back(std::byte{0});
  out.push_back(std::byte{static_cast<std::uint8_t>(a.is_v4() ? 0x01 : 0x02)});
  put_u16(out, static_cast<std::uint16_t>(a.port() ^ (kMagicCookie >> 16)));
  std::array<std::uint8_t, 16> key{};
  for (std::size_t i = 0; i < 4; ++i) key[i] = static_cast<std::uint8_t>(kMagicCookie >> (24 - 8 * i));
  for (std::size_t i = 0; i < tx.size(); ++i) key[4 + i] = std::to_integer<std::uint8_t>(tx[i]);
  const auto ip = a.ip_bytes();
  for (std::size_t i = 0; i < ip.size(); ++i) out.push_back(std::byte{static_cast<std::uint8_t>(ip[i] ^ key[i])});
  return finish(std::move(out));
}

P2PResult<BindingResponse> parse_binding_response(ByteView packet) {
  auto m = parse_header(packet);
  if (!m) return std::unexpected(m.error());
  if (m->type == kBindingError) return malformed("a Binding error response");
  if (m->type != kBindingSuccess) {
    return malformed(fmt::format("message type 0x{:04x} is not a Binding success response", m->type));
  }
  std::optional<SocketAddr> xor_mapped;
  std::optional<SocketAddr> mapped;
  const TxId tx = m->tx;
  auto r = for_each_attribute(packet, [&](const Attribute& a) -> P2PResult<void> {
    if (a.type == kAttrXorMappedAddress || a.type == kAttrMappedAddress) {
      const bool xored = a.type == kAttrXorMappedAddress;
      auto addr = parse_address(a, tx, xored);
      if (!addr) return std::unexpected(addr.error());
      (xored ? xor_mapped : mapped) = *addr;
      return {};
    }
    if (a.type == kAttrSourceAddress || a.type == kAttrChangedAddress || a.type == kAttrMessageIntegrity ||
        a.type == kAttrMessageIntegritySha256) {
      return {};
    }
    if (comprehension_required(a.type)) {
      return malformed(fmt::format("unknown comprehension-required attribute 0x{:04x} in a response", a.type));
    }
    return {};
  });
  if (!r) return std::unexpected(r.error());
  if (!xor_mapped && !mapped) return malformed("the response has no (XOR-)MAPPED-ADDRESS");
  return BindingResponse{tx, xor_mapped ? *xor_mapped : *mapped};
}

}  // namespace moosicbox::p2p::stun
