// SPDX-License-Identifier: MIT OR Apache-2.0
// types.hpp: the vocabulary of the sans-IO QUIC engine: connection ids, network paths, transmits,
// events, transport settings and the random source the engine draws from. None of these types
// mention ngtcp2 or GnuTLS, so drivers (endpoint/) include this header without them.
// Layer: quic. Plain value types; no threading rule.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/ip/udp.hpp>

#include "moosicbox/p2p/core/asio.hpp"
#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/random.hpp"
#include "moosicbox/p2p/core/stats.hpp"
#include "moosicbox/p2p/core/time.hpp"

namespace moosicbox::p2p::quic {

/// StreamId is a QUIC stream id (RFC 9000 §2.1): bit 0 is the initiator, bit 1 the direction.
using StreamId = std::int64_t;

/// is_bidi reports whether `id` names a bidirectional stream.
[[nodiscard]] constexpr bool is_bidi(StreamId id) noexcept { return (id & 0x2) == 0; }
/// is_client_initiated reports whether the client opened stream `id`.
[[nodiscard]] constexpr bool is_client_initiated(StreamId id) noexcept { return (id & 0x1) == 0; }

/// ConnectionId is a QUIC connection id: up to 20 bytes.
class ConnectionId {
 public:
  /// kSizeMax is the longest connection id QUIC v1 allows.
  static constexpr std::size_t kSizeMax = 20;

  ConnectionId() = default;
  /// ConnectionId copies `bytes`; they must not exceed kSizeMax.
  explicit ConnectionId(std::span<const std::uint8_t> bytes) noexcept;

  /// bytes returns the id's bytes.
  [[nodiscard]] std::span<const std::uint8_t> bytes() const noexcept { return {data_.data(), size_}; }
  /// size returns the id's length in bytes.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// to_hex renders the id for logs.
  [[nodiscard]] std::string to_hex() const;

  friend bool operator==(const ConnectionId& a, const ConnectionId& b) noexcept {
    return a.size_ == b.size_ && std::equal(a.data_.begin(), a.data_.begin() + a.size_, b.data_.begin());
  }

 private:
  std::array<std::uint8_t, kSizeMax> data_{};
  std::uint8_t size_ = 0;
};

/// kLocalCidSize is the length of every connection id this engine issues. Short-header packets do
/// not carry the id's length, so a demultiplexer relies on one fixed size.
inline constexpr std::size_t kLocalCidSize = 8;

/// Address is a UDP address (IPv4 or IPv6). A later relay path is represented by a synthetic address,
/// so the engine never needs to know what kind of path it runs on.
using Address = asio::ip::udp::endpoint;

/// Path is the pair of addresses a datagram travelled between.
struct Path {
  Address local;
  Address remote;
  friend bool operator==(const Path&, const Path&) = default;
};

/// Transmit describes datagrams poll_transmit wrote into the caller's buffer: `size` bytes to send
/// from `path.local` to `path.remote`. When `segment_size` is smaller than `size`, the buffer holds
/// several datagrams of `segment_size` bytes each (the last may be shorter): send them with UDP GSO,
/// or one by one.
struct Transmit {
  Path path;
  std::size_t size = 0;
  std::size_t segment_size = 0;
  /// datagram_count returns how many datagrams the buffer holds.
  [[nodiscard]] std::size_t datagram_count() const noexcept {
    return segment_size == 0 ? 0 : (size + segment_size - 1) / segment_size;
  }
};

/// RandomFn fills a buffer with random bytes (connection ids, reset tokens, path challenges). The
/// engine never draws randomness any other way, except inside GnuTLS (nonces, key shares).
using RandomFn = std::function<void(std::span<std::byte>)>;

/// make_random_fn adapts a RandomSource that outlives every connection using the result.
template <RandomSource R>
[[nodiscard]] RandomFn make_random_fn(R& source) {
  return [&source](std::span<std::byte> out) { source.fill_random(out); };
}

/// CongestionControl selects the congestion controller.
enum class CongestionControl { cubic, bbr, reno };

/// TransportConfig holds the transport settings of one connection. The receive windows bound the
/// memory a peer can make this side buffer: at most `stream_receive_window_max` per stream and
/// `connection_receive_window_max` per connection, and only the initial windows while the application
/// does not read (windows grow only as the application consumes data).
struct TransportConfig {
  /// idle_timeout closes a connection that received nothing for this long (0: never).
  Duration idle_timeout = std::chrono::seconds(30);
  /// keep_alive_interval sends a PING after this much idleness, so a quiet connection stays open
  /// through NATs and the idle timeout (0: off).
  Duration keep_alive_interval{};
  /// handshake_timeout abandons a handshake that has not completed after this long.
  Duration handshake_timeout = std::chrono::seconds(10);
  /// initial_rtt is the round-trip estimate before the first sample. QUIC's default (333 ms) assumes
  /// the internet; a lower value makes loss recovery during and right after the handshake faster.
  Duration initial_rtt = std::chrono::milliseconds(100);
  /// max_ack_delay is how long this side may delay acknowledgements (a transport parameter; ngtcp2
  /// uses at most an eighth of the RTT). 0 acknowledges at the next packet this side sends, so an
  /// answer carries the ACK of its request, and a driver that flushes once per batch of received
  /// datagrams still sends one ACK per batch.
  Duration max_ack_delay = std::chrono::milliseconds(25);
  /// stream_receive_window is the initial flow-control window of each stream, in bytes.
  std::uint64_t stream_receive_window = 256 * 1024;
  /// stream_receive_window_max caps the auto-tuned window of one stream.
  std::uint64_t stream_receive_window_max = 8 * 1024 * 1024;
  /// connection_receive_window is the initial flow-control window of the whole connection.
  std::uint64_t connection_receive_window = 1024 * 1024;
  /// connection_receive_window_max caps the auto-tuned connection window.
  std::uint64_t connection_receive_window_max = 16 * 1024 * 1024;
  /// stream_send_buffer_max bounds the bytes one stream keeps for sending (unsent plus unacknowledged).
  std::size_t stream_send_buffer_max = 1024 * 1024;
  /// max_streams_bidi is how many bidirectional streams the peer may have open at once.
  std::uint64_t max_streams_bidi = 100;
  /// max_streams_uni is how many unidirectional streams the peer may have open at once.
  std::uint64_t max_streams_uni = 100;
  /// datagrams enables QUIC DATAGRAM frames (RFC 9221).
  bool datagrams = true;
  /// datagram_queue_max bounds the datagrams queued for sending and for the application to read;
  /// past it the oldest is dropped (datagrams are unreliable by contract).
  std::size_t datagram_queue_max = 256;
  /// max_udp_payload_size is the largest UDP payload this side sends once the path MTU is probed.
  std::size_t max_udp_payload_size = 1452;
  /// fixed_udp_payload_size sends max_udp_payload_size datagrams from the first packet on, without
  /// path MTU discovery: only for paths known to carry them (loopback, whose MTU is 64 KiB).
  bool fixed_udp_payload_size = false;
  /// congestion_control selects the controller.
  CongestionControl congestion_control = CongestionControl::cubic;
  /// stop_sending_codes makes a writer's stream_reset error carry the code of the peer's
  /// STOP_SENDING, and counts declared packet losses (PathStats::packets_lost). ngtcp2 (1.11 as
  /// 0.12) reports neither but through its qlog trace, which costs a trace buffer per connection
  /// and some CPU per packet (docs/performance.md has the figure); without it the error says the
  /// peer stopped reading, without the code.
  bool stop_sending_codes = true;
  /// debug_log sends the engine's packet log to the library logger at trace level.
  bool debug_log = false;
};

/// CloseOrigin says why a connection ended.
enum class CloseOrigin {
  local,                ///< this side called close() or hit an error and sent CONNECTION_CLOSE
  remote,               ///< the peer sent CONNECTION_CLOSE
  idle_timeout,         ///< nothing was received for the idle timeout
  handshake_timeout,    ///< the handshake did not complete in time
  stateless_reset,      ///< the peer lost the connection's state and sent a stateless reset
  version_negotiation,  ///< the server supports none of our QUIC versions
};

/// CloseInfo describes the end of a connection: who ended it, the QUIC error code and reason phrase
/// on the wire, and the P2PError the application sees.
struct CloseInfo {
  CloseOrigin origin = CloseOrigin::local;
  /// application is true for an application error code (CONNECTION_CLOSE type 0x1d).
  bool application = false;
  /// code is the application or transport error code.
  std::uint64_t code = 0;
  /// reason is the reason phrase (at most 1024 bytes from a peer).
  std::string reason;
  /// error is what the application's pending and later operations fail with.
  P2PError error = P2PError::connection_closed("local close");
};

/// EventKind names what happened inside a connection since the last poll_event().
enum class EventKind {
  handshake_completed,  ///< TLS finished on this side; the peer's key is verified
  connected,            ///< the handshake completed: the peer authenticated, streams usable
  stream_opened,        ///< the peer opened stream `stream_id`
  stream_readable,      ///< stream `stream_id` has data, its end, or a reset to read
  stream_writable,      ///< stream `stream_id` can take more data, or writing it now fails
  stream_closed,        ///< stream `stream_id` is finished in both directions and acknowledged
  streams_available,    ///< the peer allowed more streams; open_bi/open_uni may now succeed
  datagram_readable,    ///< a datagram is waiting in recv_datagram()
  cid_issued,           ///< `cid` now routes to this connection
  cid_retired,          ///< `cid` no longer routes to this connection
  closed,               ///< the connection ended; close_info() says why
  early_data,           ///< server: 0-RTT was accepted and the peer identified from its ticket;
                        ///< the peer's early streams arrive before `connected`
  early_data_rejected,  ///< client: the server refused 0-RTT; early streams are resent in 1-RTT
  session_ticket,       ///< client: a resumption ticket arrived (take_session_ticket())
};

/// EarlyData is a connection's 0-RTT state.
enum class EarlyData : std::uint8_t {
  none,       ///< no 0-RTT (no ticket, or the server does not issue tickets)
  attempted,  ///< client: resuming with a ticket, streams may carry early data; the server's answer
              ///< comes with the handshake
  accepted,   ///< the server took the early data
  rejected,   ///< the server refused it (client: the early streams were resent in 1-RTT)
};

/// SessionTicket is what a client keeps from one connection to resume the next with 0-RTT: the
/// server's TLS session ticket and the transport parameters that bound early data. Opaque.
struct SessionTicket {
  std::vector<std::byte> tls;               ///< the TLS session (GnuTLS session data)
  std::vector<std::byte> transport_params;  ///< the server's 0-RTT transport parameters
};

/// Event is one item of poll_event().
struct Event {
  EventKind kind;
  StreamId stream_id = -1;
  ConnectionId cid{};
};

/// StreamRead is the result of one read: bytes copied and whether the stream's end was reached.
struct StreamRead {
  std::size_t size = 0;
  bool fin = false;
};

/// PathStats is the transport's view of the path: the public TransportStats.
using PathStats = TransportStats;

}  // namespace moosicbox::p2p::quic

template <>
struct std::hash<moosicbox::p2p::quic::ConnectionId> {
  std::size_t operator()(const moosicbox::p2p::quic::ConnectionId& cid) const noexcept {
    // Our ids are random; foreign ids are only looked up, never trusted for distribution, so FNV-1a
    // over the bytes is enough.
    std::size_t h = 1469598103934665603ULL;
    for (const auto b : cid.bytes()) h = (h ^ b) * 1099511628211ULL;
    return h;
  }
};
