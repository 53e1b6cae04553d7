// SPDX-License-Identifier: MIT OR Apache-2.0
// protocol.cpp: the relay frame codec and the handshake's signed message (docs/protocol.md, "Relay
// protocol (v1)"). decode() checks every length against the message before reading, so a hostile
// peer cannot make it read out of bounds; it never allocates for packet frames.
// Layer: relay (internal). Pure functions.
#include "relay/protocol.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "moosicbox/p2p/core/assert.hpp"

namespace moosicbox::p2p::relay::proto {

namespace {

constexpr std::string_view kUnknownTypePrefix = "relay frame: unknown type";

std::uint8_t u8_at(ByteView b, std::size_t i) noexcept { return std::to_integer<std::uint8_t>(b[i]); }

std::uint16_t u16_at(ByteView b, std::size_t i) noexcept {
  return static_cast<std::uint16_t>((u8_at(b, i) << 8) | u8_at(b, i + 1));
}

std::uint32_t u32_at(ByteView b, std::size_t i) noexcept {
  return (std::uint32_t{u8_at(b, i)} << 24) | (std::uint32_t{u8_at(b, i + 1)} << 16) |
         (std::uint32_t{u8_at(b, i + 2)} << 8) | std::uint32_t{u8_at(b, i + 3)};
}

template <std::size_t N>
std::array<std::uint8_t, N> array_at(ByteView b, std::size_t i) noexcept {
  std::array<std::uint8_t, N> out{};
  std::memcpy(out.data(), b.data() + i, N);
  return out;
}

void put_u8(Bytes& out, std::uint8_t v) { out.push_back(std::byte{v}); }
void put_u16(Bytes& out, std::uint16_t v) {
  out.push_back(std::byte(static_cast<std::uint8_t>(v >> 8)));
  out.push_back(std::byte(static_cast<std::uint8_t>(v)));
}
void put_u32(Bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(std::byte(static_cast<std::uint8_t>(v >> shift)));
}
template <std::size_t N>
void put_array(Bytes& out, const std::array<std::uint8_t, N>& a) {
  const auto* p = reinterpret_cast<const std::byte*>(a.data());
  out.insert(out.end(), p, p + N);
}

std::string_view type_name(FrameType t) noexcept {
  switch (t) {
    case FrameType::server_challenge:
      return "ServerChallenge";
    case FrameType::client_auth:
      return "ClientAuth";
    case FrameType::server_welcome:
      return "ServerWelcome";
    case FrameType::send_packet:
      return "SendPacket";
    case FrameType::recv_packet:
      return "RecvPacket";
    case FrameType::ping:
      return "Ping";
    case FrameType::pong:
      return "Pong";
    case FrameType::peer_gone:
      return "PeerGone";
    case FrameType::health:
      return "Health";
    case FrameType::restarting:
      return "Restarting";
    case FrameType::stun_info:
      return "StunInfo";
  }
  return "?";
}

std::unexpected<P2PError> malformed(std::string what) { return fail(P2PError::protocol("relay frame: " + what)); }

// fixed_size checks a frame whose body has one valid length.
P2PResult<void> fixed_size(FrameType t, ByteView m, std::size_t body) {
  if (m.size() - 1 == body) return {};
  return malformed(fmt::format("{} {}: body of {} bytes, expected {}", m.size() - 1 < body ? "truncated" : "oversize",
                               type_name(t), m.size() - 1, body));
}

P2PResult<Packets> decode_packets(FrameType t, ByteView m) {
  if (m.size() < kPacketHeaderSize) {
    return malformed(
        fmt::format("truncated {}: {} bytes, the header needs {}", type_name(t), m.size(), kPacketHeaderSize));
  }
  if (m.size() == kPacketHeaderSize) return malformed(fmt::format("empty {}: no datagram", type_name(t)));
  std::size_t off = kPacketHeaderSize;
  while (off < m.size()) {
    if (m.size() - off < 2) {
      return malformed(fmt::format("truncated {}: datagram length at offset {} cut by the end of the {}-byte frame",
                                   type_name(t), off, m.size()));
    }
    const std::size_t n = u16_at(m, off);
    if (n == 0) return malformed(fmt::format("{}: zero-length datagram at offset {}", type_name(t), off));
    if (n > m.size() - off - 2) {
      return malformed(fmt::format("truncated {}: datagram of {} bytes at offset {} overruns the {}-byte frame",
                                   type_name(t), n, off, m.size()));
    }
    off += 2 + n;
  }
  return Packets{array_at<NodeId::kSize>(m, 1), m.subspan(kPacketHeaderSize)};
}

P2PResult<ServerWelcome> decode_welcome(ByteView m) {
  if (m.size() < 2) return malformed("truncated ServerWelcome: no address family");
  const auto family = u8_at(m, 1);
  std::size_t ip_size = 0;
  if (family == 4) {
    ip_size = 4;
  } else if (family == 6) {
    ip_size = 16;
  } else {
    return malformed(fmt::format("ServerWelcome: address family {} (expected 4 or 6)", family));
  }
  const std::size_t body = 1 + ip_size + 2 + 4 + 4;
  if (auto r = fixed_size(FrameType::server_welcome, m, body); !r) return std::unexpected(r.error());
  ServerWelcome w;
  const std::uint16_t port = u16_at(m, 2 + ip_size);
  if (family == 4) {
    w.observed = SocketAddr::v4(array_at<4>(m, 2), port);
  } else {
    w.observed = SocketAddr::v6(array_at<16>(m, 2), port);
  }
  w.ping_interval_ms = u32_at(m, 4 + ip_size);
  w.frame_size_max = u32_at(m, 8 + ip_size);
  return w;
}

}  // namespace

bool is_unknown_type(const P2PError& e) noexcept {
  return e.code() == P2PErrc::protocol_error && e.context().starts_with(kUnknownTypePrefix);
}

P2PResult<Frame> decode(ByteView m, std::size_t frame_size_max) {
  if (m.empty()) return malformed("empty message");
  if (m.size() > frame_size_max) {
    return malformed(fmt::format("oversize: {} bytes exceeds max {}", m.size(), frame_size_max));
  }
  const auto t = static_cast<FrameType>(u8_at(m, 0));
  switch (t) {
    case FrameType::server_challenge: {
      if (auto r = fixed_size(t, m, 1 + kChallengeSize); !r) return std::unexpected(r.error());
      return ServerChallenge{u8_at(m, 1), array_at<kChallengeSize>(m, 2)};
    }
    case FrameType::client_auth: {
      if (auto r = fixed_size(t, m, NodeId::kSize + 64); !r) return std::unexpected(r.error());
      return ClientAuth{array_at<NodeId::kSize>(m, 1), array_at<64>(m, 1 + NodeId::kSize)};
    }
    case FrameType::server_welcome: {
      auto w = decode_welcome(m);
      if (!w) return std::unexpected(w.error());
      return *w;
    }
    case FrameType::send_packet: {
      auto p = decode_packets(t, m);
      if (!p) return std::unexpected(p.error());
      return SendPacket{*p};
    }
    case FrameType::recv_packet: {
      auto p = decode_packets(t, m);
      if (!p) return std::unexpected(p.error());
      return RecvPacket{*p};
    }
    case FrameType::ping: {
      if (auto r = fixed_size(t, m, 8); !r) return std::unexpected(r.error());
      return Ping{array_at<8>(m, 1)};
    }
    case FrameType::pong: {
      if (auto r = fixed_size(t, m, 8); !r) return std::unexpected(r.error());
      return Pong{array_at<8>(m, 1)};
    }
    case FrameType::peer_gone: {
      if (auto r = fixed_size(t, m, NodeId::kSize + 1); !r) return std::unexpected(r.error());
      const auto reason = u8_at(m, 1 + NodeId::kSize);
      if (reason > 1) return malformed(fmt::format("PeerGone: reason {} (expected 0 or 1)", reason));
      return PeerGone{array_at<NodeId::kSize>(m, 1), reason};
    }
    case FrameType::health: {
      if (m.size() < 2) return malformed("truncated Health: no status");
      if (m.size() - 2 > kHealthMessageSizeMax) {
        return malformed(
            fmt::format("Health: message of {} bytes exceeds max {}", m.size() - 2, kHealthMessageSizeMax));
      }
      return Health{u8_at(m, 1), to_string(m.subspan(2))};
    }
    case FrameType::restarting: {
      if (auto r = fixed_size(t, m, 8); !r) return std::unexpected(r.error());
      return Restarting{u32_at(m, 1), u32_at(m, 5)};
    }
    case FrameType::stun_info: {
      if (m.size() < 2) return malformed("truncated StunInfo: no count");
      const std::size_t count = u8_at(m, 1);
      if (count == 0 || count > kStunPortsMax) {
        return malformed(fmt::format("StunInfo: {} ports (expected 1..{})", count, kStunPortsMax));
      }
      if (auto r = fixed_size(t, m, 1 + 2 * count); !r) return std::unexpected(r.error());
      StunInfo info;
      for (std::size_t i = 0; i < count; ++i) {
        const std::uint16_t port = u16_at(m, 2 + 2 * i);
        if (port == 0) return malformed("StunInfo: port 0");
        info.ports.push_back(port);
      }
      return info;
    }
  }
  return fail(P2PError::protocol(fmt::format("{} 0x{:02x} ({} bytes)", kUnknownTypePrefix, u8_at(m, 0), m.size())));
}

void begin_packets(Bytes& out, FrameType type, const RawId& peer) {
  put_u8(out, static_cast<std::uint8_t>(type));
  put_array(out, peer);
}

void append_datagram(Bytes& out, ByteView datagram) {
  MOOSICBOX_P2P_ASSERT(!datagram.empty() && datagram.size() <= kDatagramSizeMax);
  put_u16(out, static_cast<std::uint16_t>(datagram.size()));
  out.insert(out.end(), datagram.begin(), datagram.end());
}

void encode(Bytes& out, const Frame& frame) {
  struct Visitor {
    Bytes& out;
    void operator()(const ServerChallenge& f) const {
      put_u8(out, static_cast<std::uint8_t>(FrameType::server_challenge));
      put_u8(out, f.version);
      put_array(out, f.challenge);
    }
    void operator()(const ClientAuth& f) const {
      put_u8(out, static_cast<std::uint8_t>(FrameType::client_auth));
      put_array(out, f.node_id);
      put_array(out, f.signature);
    }
    void operator()(const ServerWelcome& f) const {
      put_u8(out, static_cast<std::uint8_t>(FrameType::server_welcome));
      put_u8(out, f.observed.is_v4() ? 4 : 6);
      const auto ip = f.observed.ip_bytes();
      out.insert(out.end(), reinterpret_cast<const std::byte*>(ip.data()),
                 reinterpret_cast<const std::byte*>(ip.data()) + ip.size());
      put_u16(out, f.observed.port());
      put_u32(out, f.ping_interval_ms);
      put_u32(out, f.frame_size_max);
    }
    void operator()(const SendPacket& f) const {
      begin_packets(out, FrameType::send_packet, f.peer);
      out.insert(out.end(), f.datagrams.begin(), f.datagrams.end());
    }
    void operator()(const RecvPacket& f) const {
      begin_packets(out, FrameType::recv_packet, f.peer);
      out.insert(out.end(), f.datagrams.begin(), f.datagrams.end());
    }
    void operator()(const Ping& f) const {
      put_u8(out, static_cast<std::uint8_t>(FrameType::ping));
      put_array(out, f.data);
    }
    void operator()(const Pong& f) const {
      put_u8(out, static_cast<std::uint8_t>(FrameType::pong));
      put_array(out, f.data);
    }
    void operator()(const PeerGone& f) const {
      put_u8(out, static_cast<std::uint8_t>(FrameType::peer_gone));
      put_array(out, f.node_id);
      put_u8(out, f.reason);
    }
    void operator()(const Health& f) const {
      put_u8(out, static_cast<std::uint8_t>(FrameType::health));
      put_u8(out, f.status);
      const auto text = as_bytes(std::string_view(f.message).substr(0, kHealthMessageSizeMax));
      out.insert(out.end(), text.begin(), text.end());
    }
    void operator()(const Restarting& f) const {
      put_u8(out, static_cast<std::uint8_t>(FrameType::restarting));
      put_u32(out, f.reconnect_in_ms);
      put_u32(out, f.try_for_ms);
    }
    void operator()(const StunInfo& f) const {
      MOOSICBOX_P2P_ASSERT(!f.ports.empty() && f.ports.size() <= kStunPortsMax);
      put_u8(out, static_cast<std::uint8_t>(FrameType::stun_info));
      put_u8(out, static_cast<std::uint8_t>(f.ports.size()));
      for (auto p : f.ports) put_u16(out, p);
    }
  };
  std::visit(Visitor{out}, frame);
}

std::string format_stun_header(std::span<const std::uint16_t> ports) {
  std::string out;
  for (auto p : ports) {
    if (!out.empty()) out += ',';
    out += std::to_string(p);
  }
  return out;
}

std::vector<std::uint16_t> parse_stun_header(std::string_view value) {
  std::vector<std::uint16_t> ports;
  while (!value.empty()) {
    const auto comma = value.find(',');
    auto item = value.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty() || item.size() > 5) return {};
    std::uint32_t port = 0;
    for (char c : item) {
      if (c < '0' || c > '9') return {};
      port = port * 10 + static_cast<std::uint32_t>(c - '0');
    }
    if (port == 0 || port > 65535) return {};
    if (ports.size() == kStunPortsMax) break;
    ports.push_back(static_cast<std::uint16_t>(port));
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return ports;
}

P2PResult<Bytes> auth_message(std::string_view host, const Challenge& challenge) {
  if (host.empty() || host.size() > 255) {
    return fail(P2PError::invalid_configuration(fmt::format("relay auth: host of {} bytes (1..255)", host.size())));
  }
  Bytes m;
  m.reserve(kAuthContext.size() + 1 + host.size() + challenge.size());
  const auto ctx = as_bytes(kAuthContext);
  m.insert(m.end(), ctx.begin(), ctx.end());
  put_u8(m, static_cast<std::uint8_t>(host.size()));
  const auto h = as_bytes(host);
  m.insert(m.end(), h.begin(), h.end());
  put_array(m, challenge);
  return m;
}

P2PResult<ClientAuth> make_auth(const SecretKey& key, std::string_view host, const Challenge& challenge) {
  auto m = auth_message(host, challenge);
  if (!m) return std::unexpected(m.error());
  return ClientAuth{raw_id(key.public_key()), key.sign(*m)};
}

P2PResult<NodeId> verify_auth(const ClientAuth& auth, std::string_view host, const Challenge& challenge) {
  auto id = NodeId::from_bytes(std::span<const std::uint8_t>(auth.node_id));
  if (!id) return fail(P2PError::authentication_failed("invalid node id"));
  auto m = auth_message(host, challenge);
  if (!m) return fail(P2PError::authentication_failed("bad host"));
  if (!verify(*id, *m, auth.signature)) return fail(P2PError::authentication_failed("bad signature"));
  return *id;
}

}  // namespace moosicbox::p2p::relay::proto
