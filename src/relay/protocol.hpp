// SPDX-License-Identifier: MIT OR Apache-2.0
// protocol.hpp: the relay wire protocol v1 (docs/protocol.md, "Relay protocol (v1)"): frame types,
// the frame variant, encoders that append to a caller's buffer, a decoder that validates a whole
// WebSocket message, and the handshake's signed message. Pure functions, no I/O.
// Layer: relay (internal). Stateless; thread-safe.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "moosicbox/p2p/core/bytes.hpp"
#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/node_id.hpp"
#include "moosicbox/p2p/core/secret_key.hpp"
#include "moosicbox/p2p/env/socket_addr.hpp"

namespace moosicbox::p2p::relay::proto {

/// SocketAddr is the environment's socket address type.
using SocketAddr = env::SocketAddr;

/// kVersion is the protocol version this code speaks (sent in ServerChallenge).
inline constexpr std::uint8_t kVersion = 1;
/// kSubprotocol is the WebSocket subprotocol of version 1.
inline constexpr std::string_view kSubprotocol = "moosicbox-p2p-relay-v1";
/// kRelayPath is the HTTP path clients upgrade.
inline constexpr std::string_view kRelayPath = "/relay";
/// kChallengeSize is the length of the server's challenge.
inline constexpr std::size_t kChallengeSize = 32;
/// kAuthContext starts the signed handshake message (the trailing NUL included).
inline constexpr std::string_view kAuthContext{"moosicbox-p2p relay auth v1\0", 28};
/// kHealthMessageSizeMax bounds a Health frame's message.
inline constexpr std::size_t kHealthMessageSizeMax = 255;
/// kStunPortsMax bounds the ports of a StunInfo frame.
inline constexpr std::size_t kStunPortsMax = 4;
/// kStunHeader is the /generate_204 response header listing the STUN ports ("3478,3479").
inline constexpr std::string_view kStunHeader = "X-Moosicbox-P2P-Stun";
/// kPacketHeaderSize is the type byte and the node id that start SendPacket and RecvPacket.
inline constexpr std::size_t kPacketHeaderSize = 1 + NodeId::kSize;
/// kDatagramSizeMax is the largest datagram a u16 length carries.
inline constexpr std::size_t kDatagramSizeMax = 65'535;
/// kChallengeHeader / kResponseHeader are the captive-portal probe headers of /generate_204.
inline constexpr std::string_view kChallengeHeader = "X-Moosicbox-P2P-Challenge";
/// kResponseHeader: see kChallengeHeader.
inline constexpr std::string_view kResponseHeader = "X-Moosicbox-P2P-Response";

/// FrameType is the first byte of every frame.
enum class FrameType : std::uint8_t {
  server_challenge = 0x01,  ///< server -> client: version, challenge
  client_auth = 0x02,       ///< client -> server: node id, signature
  server_welcome = 0x03,    ///< server -> client: observed address, ping interval, frame size max
  send_packet = 0x10,       ///< client -> server: destination, datagrams
  recv_packet = 0x11,       ///< server -> client: source, datagrams
  ping = 0x20,              ///< either way: 8 bytes
  pong = 0x21,              ///< either way: the ping's 8 bytes
  peer_gone = 0x30,         ///< server -> client: node id, reason
  health = 0x31,            ///< server -> client: status, message
  restarting = 0x32,        ///< server -> client: reconnect in, try for
  stun_info = 0x33,         ///< server -> client: the ports of the relay's STUN responder
};

/// RawId is a node id as 32 wire bytes, not validated as a curve point (forwarding never needs to).
using RawId = std::array<std::uint8_t, NodeId::kSize>;
/// PingData is the 8 opaque bytes of a ping.
using PingData = std::array<std::uint8_t, 8>;
/// Challenge is the server's random challenge.
using Challenge = std::array<std::uint8_t, kChallengeSize>;

/// raw_id returns the wire bytes of `id`.
[[nodiscard]] inline RawId raw_id(const NodeId& id) noexcept { return id.as_bytes(); }

/// RawIdHash hashes a RawId by its first 8 bytes (keys are uniformly distributed).
struct RawIdHash {
  /// operator() returns the hash.
  std::size_t operator()(const RawId& id) const noexcept {
    std::size_t h = 0;
    for (std::size_t i = 0; i < sizeof(h); ++i) h = (h << 8) | id[i];
    return h;
  }
};

/// ServerChallenge opens the handshake.
struct ServerChallenge {
  std::uint8_t version = kVersion;  ///< the server's protocol version
  Challenge challenge{};            ///< fresh random bytes, single use
  /// operator== compares every field.
  friend bool operator==(const ServerChallenge&, const ServerChallenge&) = default;
};

/// ClientAuth answers the challenge.
struct ClientAuth {
  RawId node_id{};        ///< the claimed node id
  Signature signature{};  ///< ed25519 signature of auth_message()
  /// operator== compares every field.
  friend bool operator==(const ClientAuth&, const ClientAuth&) = default;
};

/// ServerWelcome ends a successful handshake.
struct ServerWelcome {
  SocketAddr observed;                 ///< the client's address as the server saw it
  std::uint32_t ping_interval_ms = 0;  ///< suggested ping interval
  std::uint32_t frame_size_max = 0;    ///< the server's frame size limit
  /// operator== compares every field.
  friend bool operator==(const ServerWelcome&, const ServerWelcome&) = default;
};

/// Packets is SendPacket (peer = destination) or RecvPacket (peer = source). `datagrams` views the
/// validated sequence of (u16 length, bytes) records in the decoded message.
struct Packets {
  RawId peer{};        ///< destination (SendPacket) or source (RecvPacket)
  ByteView datagrams;  ///< one or more length-prefixed datagrams, validated by decode()
  /// operator== compares the peer and the datagram bytes.
  friend bool operator==(const Packets& a, const Packets& b) noexcept {
    return a.peer == b.peer && std::ranges::equal(a.datagrams, b.datagrams);
  }
};

/// SendPacket carries datagrams from a client to `peer`.
struct SendPacket : Packets {};
/// RecvPacket carries datagrams from `peer` to a client.
struct RecvPacket : Packets {};

/// Ping asks for a Pong with the same data.
struct Ping {
  PingData data{};  ///< echoed by the Pong
  /// operator== compares the data.
  friend bool operator==(const Ping&, const Ping&) = default;
};
/// Pong answers a Ping.
struct Pong {
  PingData data{};  ///< the Ping's data
  /// operator== compares the data.
  friend bool operator==(const Pong&, const Pong&) = default;
};

/// PeerGone reports that a destination is not (or no longer) connected.
struct PeerGone {
  RawId node_id{};          ///< the peer
  std::uint8_t reason = 0;  ///< 0 not connected, 1 disconnected
  /// operator== compares every field.
  friend bool operator==(const PeerGone&, const PeerGone&) = default;
};

/// Health reports the server's health.
struct Health {
  std::uint8_t status = 0;  ///< 0 ok, 1 degraded
  std::string message;      ///< UTF-8, at most kHealthMessageSizeMax bytes
  /// operator== compares every field.
  friend bool operator==(const Health&, const Health&) = default;
};

/// Restarting announces a graceful restart.
struct Restarting {
  std::uint32_t reconnect_in_ms = 0;  ///< reconnect after about this long
  std::uint32_t try_for_ms = 0;       ///< and keep trying for this long
  /// operator== compares every field.
  friend bool operator==(const Restarting&, const Restarting&) = default;
};

/// StunInfo announces the UDP ports of the relay's STUN responder (on the IP of the relay URL's
/// host); sent right after ServerWelcome when the relay answers STUN.
struct StunInfo {
  std::vector<std::uint16_t> ports;  ///< 1..kStunPortsMax ports, none zero
  /// operator== compares the ports.
  friend bool operator==(const StunInfo&, const StunInfo&) = default;
};

/// Frame is one decoded frame.
using Frame = std::variant<ServerChallenge, ClientAuth, ServerWelcome, SendPacket, RecvPacket, Ping, Pong, PeerGone,
                           Health, Restarting, StunInfo>;

/// decode parses one WebSocket message as one frame; `frame_size_max` bounds its size. Packet frames
/// view `message` (keep it alive while using them).
/// Errors: protocol_error naming what is wrong (empty, oversize, truncated, wrong fixed length,
/// zero-length or overrunning datagram, no datagram, bad address family, health message too long,
/// a StunInfo without ports, with more than kStunPortsMax or a count that disagrees, or port 0);
/// an unknown type gives a protocol_error for which is_unknown_type() is true.
[[nodiscard]] P2PResult<Frame> decode(ByteView message, std::size_t frame_size_max);

/// is_unknown_type is true for the error decode() returns for a frame type this version does not
/// know (receivers ignore such frames, for forward compatibility).
[[nodiscard]] bool is_unknown_type(const P2PError& e) noexcept;

/// encode appends `frame` to `out` (packet frames copy their validated datagram records).
void encode(Bytes& out, const Frame& frame);

/// begin_packets appends the header of a SendPacket or RecvPacket frame.
void begin_packets(Bytes& out, FrameType type, const RawId& peer);
/// append_datagram appends one datagram record (u16 big-endian length + bytes); 1..65535 bytes.
void append_datagram(Bytes& out, ByteView datagram);
/// datagram_record_size is the size append_datagram adds for `n` bytes.
[[nodiscard]] constexpr std::size_t datagram_record_size(std::size_t n) noexcept { return 2 + n; }

/// format_stun_header renders ports for the kStunHeader header: "3478,3479".
[[nodiscard]] std::string format_stun_header(std::span<const std::uint16_t> ports);
/// parse_stun_header reads a kStunHeader value: comma-separated decimal ports (spaces around them
/// allowed). It never fails: an empty or malformed value gives no ports, and at most
/// kStunPortsMax are read.
[[nodiscard]] std::vector<std::uint16_t> parse_stun_header(std::string_view value);

/// DatagramIterator walks a validated Packets::datagrams view without a callback.
class DatagramIterator {
 public:
  /// DatagramIterator starts at the first record of `records`.
  explicit DatagramIterator(ByteView records) noexcept : rest_(records) {}
  /// next returns the next datagram, or an empty view at the end.
  ByteView next() noexcept {
    if (rest_.size() < 2) return {};
    const std::size_t n = (std::to_integer<std::size_t>(rest_[0]) << 8) | std::to_integer<std::size_t>(rest_[1]);
    const auto d = rest_.subspan(2, n);
    rest_ = rest_.subspan(2 + n);
    return d;
  }

 private:
  ByteView rest_;
};

/// auth_message builds the signed handshake message: kAuthContext || u8 len(host) || host || challenge.
/// Errors: invalid_configuration when `host` is empty or longer than 255 bytes.
[[nodiscard]] P2PResult<Bytes> auth_message(std::string_view host, const Challenge& challenge);

/// make_auth signs the challenge for `host` with `key`. Errors: as auth_message.
[[nodiscard]] P2PResult<ClientAuth> make_auth(const SecretKey& key, std::string_view host, const Challenge& challenge);

/// verify_auth checks `auth` against the challenge the server sent and the Host header it received,
/// and returns the authenticated node id.
/// Errors: authentication_failed ("bad signature", "invalid node id", "bad host").
[[nodiscard]] P2PResult<NodeId> verify_auth(const ClientAuth& auth, std::string_view host, const Challenge& challenge);

}  // namespace moosicbox::p2p::relay::proto
