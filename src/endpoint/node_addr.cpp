// SPDX-License-Identifier: MIT OR Apache-2.0
// node_addr.cpp: NodeAddr invariants, its ticket codec (z-base-32 of a length- and CRC-framed
// payload; the format is specified in node_addr.hpp) and the readable "<node_id>@<addr>,..." form.
// Layer: endpoint. Stateless functions over values; thread-safe.
#include "moosicbox/p2p/endpoint/node_addr.hpp"

#include <algorithm>
#include <array>
#include <vector>

#include "core/zbase32.hpp"
#include "moosicbox/p2p/core/assert.hpp"

namespace moosicbox::p2p {
namespace {

constexpr std::size_t kLengthFieldBytes = 2;
constexpr std::size_t kChecksumBytes = 4;
constexpr std::size_t kEnvelopeBytes = kLengthFieldBytes + kChecksumBytes;
constexpr std::uint8_t kFamilyTagV4 = 4;
constexpr std::uint8_t kFamilyTagV6 = 6;
// The readable form holds a node id and at most 16 addresses of at most 64 characters each.
constexpr std::size_t kReadableLengthMax = 64 + 1 + NodeAddr::kDirectAddressCountMax * (64 + 1);

constexpr std::array<std::uint32_t, 256> make_crc_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1U) != 0 ? 0xEDB88320U ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr auto kCrcTable = make_crc_table();

// crc32 is CRC-32/ISO-HDLC (reflected polynomial 0xEDB88320, initial and final XOR 0xFFFFFFFF).
std::uint32_t crc32(std::uint32_t crc, std::span<const std::uint8_t> data) noexcept {
  crc = ~crc;
  for (const auto b : data) crc = kCrcTable[(crc ^ b) & 0xffU] ^ (crc >> 8);
  return ~crc;
}

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// printable renders one untrusted character for an error message.
std::string printable(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return fmt::format("'{}'", c);
  return fmt::format("byte 0x{:02x}", u);
}

// quoted renders an untrusted string for an error message, escaped and cut.
std::string quoted(std::string_view text) {
  constexpr std::size_t kShownMax = 24;
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < kShownMax; ++i) {
    const auto u = static_cast<unsigned char>(text[i]);
    if (u >= 0x20 && u < 0x7f && u != '"' && u != '\\') {
      out.push_back(text[i]);
    } else {
      out += fmt::format("\\x{:02x}", u);
    }
  }
  if (text.size() > kShownMax) out += "...";
  return out + "\"";
}

std::unexpected<P2PError> ticket_error(std::string why) {
  return fail(P2PError::invalid_node_id(fmt::format("ticket: {}", why)));
}

bool starts_with_prefix(std::string_view text) noexcept {
  if (text.size() < NodeAddr::kTicketPrefix.size()) return false;
  for (std::size_t i = 0; i < NodeAddr::kTicketPrefix.size(); ++i) {
    const char c = text[i];
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (lower != NodeAddr::kTicketPrefix[i]) return false;
  }
  return true;
}

// direct_address_problem says why `a` (already canonical, without scope) cannot be a direct address.
std::optional<std::string> direct_address_problem(const SocketAddr& a) {
  if (a.is_unspecified()) return "unspecified address";
  if (a.is_multicast()) return "multicast address";
  if (a.port() == 0) return "port 0";
  return std::nullopt;
}

// Reader walks the checksummed body; every read is bounds-checked, so a crafted ticket can at
// worst fail to parse.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> data) noexcept : data_(data) {}
  [[nodiscard]] std::size_t remaining() const noexcept { return data_.size() - pos_; }
  [[nodiscard]] std::optional<std::span<const std::uint8_t>> take(std::size_t n) noexcept {
    if (remaining() < n) return std::nullopt;
    const auto out = data_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  [[nodiscard]] std::optional<std::uint8_t> u8() noexcept {
    auto b = take(1);
    if (!b) return std::nullopt;
    return (*b)[0];
  }
  [[nodiscard]] std::optional<std::uint16_t> u16() noexcept {
    auto b = take(2);
    if (!b) return std::nullopt;
    return static_cast<std::uint16_t>(((*b)[0] << 8) | (*b)[1]);
  }

 private:
  std::span<const std::uint8_t> data_;
  std::size_t pos_ = 0;
};

void put_u16(std::vector<std::uint8_t>& out, std::size_t v) {
  MOOSICBOX_P2P_ASSERT(v <= 0xffff);
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v & 0xff));
}

P2PResult<NodeAddr> parse_body_v1(std::span<const std::uint8_t> body) {
  Reader r(body);
  const auto id_bytes = r.take(NodeId::kSize);
  if (!id_bytes) return ticket_error("truncated body: no room for the node id");
  auto id = NodeId::from_bytes(*id_bytes);
  if (!id) return ticket_error(fmt::format("invalid node id: {}", id.error().context()));
  NodeAddr addr(*id);

  const auto relay_len = r.u8();
  if (!relay_len) return ticket_error("truncated body: no relay URL length");
  if (*relay_len > 0) {
    const auto relay = r.take(*relay_len);
    if (!relay) return ticket_error(fmt::format("truncated body: relay URL of {} bytes does not fit", *relay_len));
    const std::string_view url(reinterpret_cast<const char*>(relay->data()), relay->size());
    if (auto ok = addr.set_relay_url(url); !ok) {
      return ticket_error(fmt::format("bad relay URL: {}", ok.error().context()));
    }
  }

  const auto count = r.u8();
  if (!count) return ticket_error("truncated body: no address count");
  if (*count > NodeAddr::kDirectAddressCountMax) {
    return ticket_error(fmt::format("too many addresses: {}, max {}", *count, NodeAddr::kDirectAddressCountMax));
  }
  for (std::size_t i = 1; i <= *count; ++i) {
    const auto tag = r.u8();
    if (!tag) return ticket_error(fmt::format("truncated body in address {}", i));
    SocketAddr a;
    if (*tag == kFamilyTagV4) {
      const auto ip = r.take(4);
      const auto port = r.u16();
      if (!ip || !port) return ticket_error(fmt::format("truncated body in address {}", i));
      a = SocketAddr::v4({(*ip)[0], (*ip)[1], (*ip)[2], (*ip)[3]}, *port);
    } else if (*tag == kFamilyTagV6) {
      const auto ip = r.take(16);
      const auto port = r.u16();
      if (!ip || !port) return ticket_error(fmt::format("truncated body in address {}", i));
      std::array<std::uint8_t, 16> bytes{};
      std::copy(ip->begin(), ip->end(), bytes.begin());
      a = SocketAddr::v6(bytes, *port);
      if (a.is_v4_mapped()) return ticket_error(fmt::format("bad address {} ({}): IPv4 written as IPv6", i, a));
    } else {
      return ticket_error(fmt::format("bad address {}: unknown family tag {}", i, *tag));
    }
    if (auto why = direct_address_problem(a)) return ticket_error(fmt::format("bad address {} ({}): {}", i, a, *why));
    if (addr.direct_addresses().contains(a)) return ticket_error(fmt::format("bad address {}: duplicate {}", i, a));
    auto added = addr.add_direct_address(a);
    MOOSICBOX_P2P_ASSERT(added.has_value());  // checked above: valid, new, and count <= max
  }
  if (r.remaining() != 0) {
    return ticket_error(fmt::format("unexpected {} bytes after the addresses", r.remaining()));
  }
  return addr;
}

}  // namespace

P2PResult<NodeAddr> NodeAddr::create(const NodeId& id, std::optional<std::string_view> relay_url,
                                     std::span<const SocketAddr> direct_addresses) {
  NodeAddr out(id);
  if (relay_url) {
    if (auto r = out.set_relay_url(*relay_url); !r) return fail(r.error());
  }
  for (const auto& a : direct_addresses) {
    if (auto r = out.add_direct_address(a); !r) return fail(r.error());
  }
  return out;
}

P2PResult<void> NodeAddr::validate_relay_url(std::string_view url) {
  if (url.empty()) return fail(P2PError::invalid_configuration("relay URL is empty"));
  if (url.size() > kRelayUrlLengthMax) {
    return fail(P2PError::invalid_configuration(
        fmt::format("relay URL is {} bytes long, max {}", url.size(), kRelayUrlLengthMax)));
  }
  for (std::size_t i = 0; i < url.size(); ++i) {
    const auto u = static_cast<unsigned char>(url[i]);
    if (u <= 0x20 || u >= 0x7f) {
      return fail(P2PError::invalid_configuration(
          fmt::format("relay URL has {} at position {} (printable ASCII without spaces only)", printable(url[i]), i)));
    }
  }
  std::string_view rest;
  if (url.starts_with("https://")) {
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else {
    return fail(P2PError::invalid_configuration(
        fmt::format("relay URL {} must start with \"http://\" or \"https://\"", quoted(url))));
  }
  if (rest.empty() || rest.front() == '/' || rest.front() == '?' || rest.front() == '#') {
    return fail(P2PError::invalid_configuration(fmt::format("relay URL {} has no host", quoted(url))));
  }
  return {};
}

P2PResult<void> NodeAddr::set_relay_url(std::string_view url) {
  if (auto r = validate_relay_url(url); !r) return r;
  relay_url_ = std::string(url);
  return {};
}

P2PResult<void> NodeAddr::add_direct_address(const SocketAddr& addr) {
  const SocketAddr a = addr.canonical().without_scope();
  if (auto why = direct_address_problem(a)) {
    return fail(P2PError::invalid_configuration(fmt::format("direct address {}: {}", addr, *why)));
  }
  if (direct_.contains(a)) return {};
  if (direct_.size() >= kDirectAddressCountMax) {
    return fail(P2PError::invalid_configuration(
        fmt::format("direct address {}: a node has at most {} direct addresses", addr, kDirectAddressCountMax)));
  }
  direct_.insert(a);
  return {};
}

bool NodeAddr::remove_direct_address(const SocketAddr& addr) noexcept {
  return direct_.erase(addr.canonical().without_scope()) > 0;
}

std::string NodeAddr::to_ticket() const {
  MOOSICBOX_P2P_ASSERT(direct_.size() <= kDirectAddressCountMax);
  std::vector<std::uint8_t> payload;
  payload.reserve(64 + (relay_url_ ? relay_url_->size() : 0) + direct_.size() * 19);
  put_u16(payload, 0);  // length, filled in below
  const auto& id = node_id_.as_bytes();
  payload.insert(payload.end(), id.begin(), id.end());
  if (relay_url_) {
    MOOSICBOX_P2P_ASSERT(relay_url_->size() <= kRelayUrlLengthMax);
    payload.push_back(static_cast<std::uint8_t>(relay_url_->size()));
    payload.insert(payload.end(), relay_url_->begin(), relay_url_->end());
  } else {
    payload.push_back(0);
  }
  payload.push_back(static_cast<std::uint8_t>(direct_.size()));
  for (const auto& a : direct_) {
    payload.push_back(a.is_v4() ? kFamilyTagV4 : kFamilyTagV6);
    const auto ip = a.ip_bytes();
    payload.insert(payload.end(), ip.begin(), ip.end());
    put_u16(payload, a.port());
  }
  const std::size_t total = payload.size() + kChecksumBytes;
  payload[0] = static_cast<std::uint8_t>(total >> 8);
  payload[1] = static_cast<std::uint8_t>(total & 0xff);
  const std::array<std::uint8_t, 1> version{static_cast<std::uint8_t>(kTicketVersion)};
  const std::uint32_t crc = crc32(crc32(0, version), payload);
  for (int shift = 24; shift >= 0; shift -= 8) payload.push_back(static_cast<std::uint8_t>(crc >> shift));
  MOOSICBOX_P2P_ASSERT(payload.size() == total);

  std::string out(kTicketPrefix);
  out += static_cast<char>('0' + kTicketVersion);
  out += detail::zbase32_encode(payload);
  MOOSICBOX_P2P_ASSERT(out.size() <= kTicketLengthMax);
  return out;
}

std::string NodeAddr::to_string() const {
  std::string out = node_id_.to_string();
  char sep = '@';
  for (const auto& a : direct_) {
    out += sep;
    out += a.to_string();
    sep = ',';
  }
  if (relay_url_) out += fmt::format(" relay {}", *relay_url_);
  return out;
}

P2PResult<NodeAddr> NodeAddr::from_ticket(std::string_view text) {
  text = trim(text);
  if (text.empty()) return ticket_error("empty");
  if (text.size() > kTicketLengthMax) {
    return ticket_error(fmt::format("too long: {} characters, max {}", text.size(), kTicketLengthMax));
  }
  if (!starts_with_prefix(text)) {
    return ticket_error(fmt::format("wrong prefix: a ticket starts with \"{}\", this starts with {}", kTicketPrefix,
                                    quoted(text.substr(0, kTicketPrefix.size()))));
  }
  const std::size_t version_pos = kTicketPrefix.size();
  if (text.size() <= version_pos || text[version_pos] < '0' || text[version_pos] > '9') {
    return ticket_error(fmt::format("missing version digit after \"{}\"", kTicketPrefix));
  }
  const auto version = static_cast<unsigned>(text[version_pos] - '0');
  const std::string_view data = text.substr(version_pos + 1);

  // Decode z-base-32, most significant bit first.
  const auto decoded = detail::zbase32_decode(data);
  if (decoded.bad_position >= 0) {
    const auto i = static_cast<std::size_t>(decoded.bad_position);
    return ticket_error(fmt::format("bad character {} at position {}", printable(data[i]), version_pos + 1 + i));
  }
  const std::vector<std::uint8_t>& payload = decoded.bytes;
  const int bits = decoded.leftover_bits;
  // An encoder never leaves 5 or more bits over (that character would carry no data bit), and it
  // pads with zero bits; anything else is a damaged or hand-edited ticket.
  if (bits >= 5) {
    return ticket_error(
        fmt::format("truncated or has a stray character ({} characters do not make whole bytes)", data.size()));
  }

  if (payload.size() < kLengthFieldBytes) {
    return ticket_error(fmt::format("truncated: {} bytes, not even a length", payload.size()));
  }
  const std::size_t declared = (std::size_t{payload[0]} << 8) | payload[1];
  if (declared < kEnvelopeBytes) return ticket_error(fmt::format("corrupt length field {} (mistyped?)", declared));
  if (payload.size() < declared) {
    return ticket_error(
        fmt::format("truncated: has {} of {} bytes (was it cut short when copied?)", payload.size(), declared));
  }
  if (payload.size() > declared) {
    return ticket_error(
        fmt::format("unexpected data after the end: {} bytes, the ticket says {}", payload.size(), declared));
  }
  // Checked after the lengths: a ticket cut short usually ends in stray bits too, and "truncated"
  // is the better diagnosis.
  if (decoded.leftover != 0) return ticket_error("checksum mismatch (the last character has stray bits; mistyped?)");
  const auto signed_part = std::span<const std::uint8_t>(payload).first(declared - kChecksumBytes);
  std::uint32_t stated = 0;
  for (std::size_t i = declared - kChecksumBytes; i < declared; ++i) stated = (stated << 8) | payload[i];
  const std::array<std::uint8_t, 1> version_byte{static_cast<std::uint8_t>(version)};
  if (crc32(crc32(0, version_byte), signed_part) != stated) {
    return ticket_error("checksum mismatch (mistyped or damaged)");
  }
  if (version != kTicketVersion) {
    return ticket_error(fmt::format("unknown version {} (this build reads version {})", version, kTicketVersion));
  }
  return parse_body_v1(signed_part.subspan(kLengthFieldBytes));
}

P2PResult<NodeAddr> NodeAddr::parse(std::string_view text) {
  text = trim(text);
  if (starts_with_prefix(text)) return from_ticket(text);
  if (text.empty()) return fail(P2PError::invalid_node_id("empty (expected a ticket or a node id)"));
  if (text.size() > kReadableLengthMax) {
    return fail(P2PError::invalid_node_id(
        fmt::format("too long: {} characters, max {} for \"<node_id>@<addr>,...\"", text.size(), kReadableLengthMax)));
  }
  const auto at = text.find('@');
  auto id = NodeId::parse(text.substr(0, at));
  if (!id) {
    return fail(P2PError::invalid_node_id(
        fmt::format("not a ticket (\"{}...\") nor a node id: {}", kTicketPrefix, id.error().context())));
  }
  NodeAddr out(*id);
  if (at == std::string_view::npos) return out;

  std::string_view rest = text.substr(at + 1);
  if (trim(rest).empty()) return fail(P2PError::invalid_node_id("no address after '@'"));
  std::size_t index = 0;
  while (true) {
    ++index;
    const auto comma = rest.find(',');
    const auto piece = trim(rest.substr(0, comma));
    if (piece.empty()) return fail(P2PError::invalid_node_id(fmt::format("empty address {}", index)));
    if (index > kDirectAddressCountMax) {
      return fail(P2PError::invalid_node_id(fmt::format("too many addresses: more than {}", kDirectAddressCountMax)));
    }
    auto a = SocketAddr::parse(piece);
    if (!a) return fail(P2PError::invalid_node_id(fmt::format("bad address {}: {}", index, a.error().context())));
    const auto canonical = a->canonical().without_scope();
    if (auto why = direct_address_problem(canonical)) {
      return fail(P2PError::invalid_node_id(fmt::format("bad address {} ({}): {}", index, *a, *why)));
    }
    if (out.direct_.contains(canonical)) {
      return fail(P2PError::invalid_node_id(fmt::format("duplicate address {}: {}", index, *a)));
    }
    auto added = out.add_direct_address(canonical);
    MOOSICBOX_P2P_ASSERT(added.has_value());  // valid and new, and index <= max
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return out;
}

}  // namespace moosicbox::p2p
