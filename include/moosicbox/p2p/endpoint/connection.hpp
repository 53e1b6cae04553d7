// SPDX-License-Identifier: MIT OR Apache-2.0
// connection.hpp: Connection, an authenticated QUIC connection to one peer of an Endpoint, and its
// streams. The message API (send / recv) carries length-prefixed messages on one long-lived
// unidirectional stream per direction: ordered, exactly once, with the size limit enforced on both
// ends. Streams (bidirectional and unidirectional) and unreliable datagrams are there for protocols
// that need more; the router runs one bidirectional stream per request.
// Layer: endpoint. Handles are cheap to copy (Connection) or move (streams); every operation must run
// on the endpoint's executor (its strand): the endpoint takes no locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "moosicbox/p2p/core/asio.hpp"
#include "moosicbox/p2p/core/bytes.hpp"
#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/node_id.hpp"
#include "moosicbox/p2p/core/stats.hpp"
#include "moosicbox/p2p/endpoint/node_addr.hpp"
#include "moosicbox/p2p/streams.hpp"

namespace moosicbox::p2p {

/// PathKind is how a connection's packets travel now.
enum class PathKind : std::uint8_t {
  direct,  ///< UDP straight to the peer's address
  relay,   ///< through a relay server (TCP + WebSocket), end-to-end encrypted
};

/// PathInfo describes the path a connection uses now.
struct PathInfo {
  PathKind kind = PathKind::direct;  ///< direct or relay
  /// remote_addr is the peer's UDP address on a direct path; on a relay path, the connection's
  /// virtual address (in 100::/64, which no real path uses: QUIC sees one stable address per peer).
  SocketAddr remote_addr;
  std::optional<std::string> relay_url;  ///< the relay carrying a relay path
  Duration rtt{};                        ///< the connection's smoothed round-trip time on it

  /// operator== compares every field.
  friend bool operator==(const PathInfo&, const PathInfo&) = default;
};

/// path_kind_name returns "direct" or "relay".
[[nodiscard]] constexpr const char* path_kind_name(PathKind k) noexcept {
  return k == PathKind::relay ? "relay" : "direct";
}

/// ZeroRtt is what became of a connection's early (0-RTT) data.
enum class ZeroRtt : std::uint8_t {
  none,      ///< no early data: a full handshake, or resumption without early data
  pending,   ///< client: sent in 0-RTT, the server's answer comes with the handshake
  accepted,  ///< the server took the early data
  rejected,  ///< the server refused it; the client resent it after the handshake
};

namespace detail {
struct ConnState;
struct StreamRef;
struct Access;
}  // namespace detail

/// SendStream is the sending half of a unidirectional stream this side opened. Move-only; destroying
/// it before finish() resets the stream (the peer's reads fail with stream_reset).
class SendStream {
 public:
  /// Move-only: moving transfers the stream, and the moved-from handle may only be destroyed or
  /// assigned to. Assigning over a handle first drops its stream, as destroying it would.
  ///@{
  SendStream(SendStream&&) noexcept;
  SendStream& operator=(SendStream&&) noexcept;
  ///@}
  ~SendStream();

  /// write queues all of `data`, waiting while the stream's send buffer is full (memory stays
  /// bounded; the peer's flow control paces it). Errors: stream_reset (the peer stopped reading),
  /// connection_closed / timeout / authentication_failed (the connection ended: its close error),
  /// protocol_error (written after finish() or reset()), cancelled.
  asio::awaitable<P2PResult<void>> write(ByteView data);
  /// finish ends the stream after the queued bytes. Errors: as write.
  asio::awaitable<P2PResult<void>> finish();
  /// reset abandons the stream with `code`: unsent bytes are dropped, the peer's reads fail.
  void reset(std::uint64_t code);
  /// set_priority sets the stream's send priority (default 0): streams of higher priority send
  /// first; equal priorities share the connection round robin. Use it to keep small, latency-bound
  /// exchanges ahead of bulk transfers on the same connection.
  void set_priority(std::int32_t priority);
  /// priority returns the stream's send priority.
  [[nodiscard]] std::int32_t priority() const noexcept;
  /// id returns the QUIC stream id.
  [[nodiscard]] std::uint64_t id() const noexcept;

 private:
  friend struct detail::Access;
  explicit SendStream(std::unique_ptr<detail::StreamRef> ref) noexcept;
  std::unique_ptr<detail::StreamRef> ref_;
};

/// RecvStream is the receiving half of a unidirectional stream the peer opened. Move-only;
/// destroying it before the end tells the peer to stop sending.
class RecvStream {
 public:
  /// Move-only: moving transfers the stream, and the moved-from handle may only be destroyed or
  /// assigned to. Assigning over a handle first drops its stream, as destroying it would.
  ///@{
  RecvStream(RecvStream&&) noexcept;
  RecvStream& operator=(RecvStream&&) noexcept;
  ///@}
  ~RecvStream();

  /// read waits for data and copies up to buffer.size() bytes; 0 means the end of the stream (and
  /// only that, for a non-empty buffer). Errors: stream_reset (carries the peer's code), the
  /// connection's close error, cancelled.
  asio::awaitable<P2PResult<std::size_t>> read(std::span<std::byte> buffer);
  /// read_to_end reads until the end of the stream. Errors: message_too_large when more than
  /// `size_max` bytes arrive (the stream is then stopped), and as read.
  asio::awaitable<P2PResult<Bytes>> read_to_end(std::size_t size_max);
  /// stop tells the peer to stop sending (its writes fail with stream_reset carrying `code`) and
  /// drops what arrives.
  void stop(std::uint64_t code);
  /// id returns the QUIC stream id.
  [[nodiscard]] std::uint64_t id() const noexcept;

 private:
  friend struct detail::Access;
  explicit RecvStream(std::unique_ptr<detail::StreamRef> ref) noexcept;
  std::unique_ptr<detail::StreamRef> ref_;
};

/// BiStream is a bidirectional stream: a send half and a receive half, closed independently.
/// Satisfies P2PBiStream. Destroying it resets an unfinished send half and stops an unread receive
/// half.
class BiStream {
 public:
  /// Move-only: moving transfers the stream, and the moved-from handle may only be destroyed or
  /// assigned to. Assigning over a handle first drops its stream, as destroying it would.
  ///@{
  BiStream(BiStream&&) noexcept;
  BiStream& operator=(BiStream&&) noexcept;
  ///@}
  ~BiStream();

  /// write queues all of `data`. Errors: as SendStream::write.
  asio::awaitable<P2PResult<void>> write(ByteView data);
  /// finish ends the send half. Errors: as SendStream::write.
  asio::awaitable<P2PResult<void>> finish();
  /// reset abandons the send half with `code`.
  void reset(std::uint64_t code);
  /// set_priority sets the send half's priority (default 0); see SendStream::set_priority.
  void set_priority(std::int32_t priority);
  /// priority returns the send half's priority.
  [[nodiscard]] std::int32_t priority() const noexcept;
  /// read reads from the receive half; 0 means its end. Errors: as RecvStream::read.
  asio::awaitable<P2PResult<std::size_t>> read(std::span<std::byte> buffer);
  /// read_to_end reads the receive half to its end. Errors: as RecvStream::read_to_end.
  asio::awaitable<P2PResult<Bytes>> read_to_end(std::size_t size_max);
  /// stop stops the receive half with `code`.
  void stop(std::uint64_t code);
  /// id returns the QUIC stream id.
  [[nodiscard]] std::uint64_t id() const noexcept;
  /// is_early reports whether some of the stream's received bytes came as 0-RTT early data, which
  /// an attacker may replay (see Connection::accept_bi_early).
  [[nodiscard]] bool is_early() const noexcept;
  /// handshake waits until the stream's connection completed its handshake (see
  /// Connection::handshake). Errors: the connection's close error, cancelled.
  asio::awaitable<P2PResult<void>> handshake();

 private:
  friend struct detail::Access;
  explicit BiStream(std::unique_ptr<detail::StreamRef> ref) noexcept;
  std::unique_ptr<detail::StreamRef> ref_;
};

/// Connection is a handle to an authenticated QUIC connection. Copies share the connection; when
/// the last copy is destroyed the connection closes gracefully (in the background). Satisfies
/// P2PConnection and P2PStreamConnection.
class Connection {
 public:
  /// NodeId is the peer identity type.
  using NodeId = p2p::NodeId;
  /// BiStream is the stream type of P2PStreamConnection.
  using BiStream = p2p::BiStream;

  /// Copies share the connection; a moved-from handle may only be destroyed or assigned to.
  ///@{
  Connection(const Connection&) = default;
  Connection& operator=(const Connection&) = default;
  Connection(Connection&&) noexcept = default;
  Connection& operator=(Connection&&) noexcept = default;
  ///@}
  ~Connection() = default;

  /// send queues one message (at most the endpoint's max_message_size bytes), waiting while the
  /// message stream's send buffer is full. Messages arrive in order, exactly once.
  /// Errors: message_too_large (the connection stays usable), connection_closed (closed by either
  /// side), timeout (idle timeout: the peer vanished), authentication_failed, cancelled.
  asio::awaitable<P2PResult<void>> send(ByteView data);
  /// recv waits for the next message. After the peer closed gracefully it returns every message sent
  /// before the close, then connection_closed. Errors: connection_closed, timeout, protocol_error (the
  /// peer broke the framing or sent an oversized message: the connection is closed), cancelled.
  asio::awaitable<P2PResult<Bytes>> recv();
  /// remote_node_id returns the peer's authenticated identity.
  [[nodiscard]] NodeId remote_node_id() const;
  /// remote_addr returns the peer's current UDP address (a virtual address on a relay path: see
  /// path()).
  [[nodiscard]] SocketAddr remote_addr() const;
  /// path returns the path the connection uses now: relay or direct, the remote address, the relay,
  /// the RTT.
  [[nodiscard]] PathInfo path() const;
  /// path_changed waits until the connection's path (kind, address or relay) differs from `known`
  /// and returns the new one. Errors: the connection's close error, cancelled.
  asio::awaitable<P2PResult<PathInfo>> path_changed(PathInfo known);
  /// alpn returns the application protocol of the connection.
  [[nodiscard]] const std::string& alpn() const;
  /// is_connected is true until either side closes or the connection fails.
  [[nodiscard]] bool is_connected() const;
  /// is_early is true while the connection is usable but its handshake has not completed: a
  /// client's connect_early() resuming in 0-RTT, a server's connection accepted in 0-RTT.
  [[nodiscard]] bool is_early() const;
  /// zero_rtt returns what became of the connection's early data.
  [[nodiscard]] ZeroRtt zero_rtt() const;
  /// handshake waits until the handshake completed (at once if it has): the peer is authenticated
  /// and nothing from now on can be a replay. Errors: the connection's close error, cancelled.
  asio::awaitable<P2PResult<void>> handshake();
  /// close closes gracefully: it waits (bounded by the endpoint's close_timeout) until the peer has
  /// acknowledged everything sent, then closes with application code 0. Idempotent. Never fails.
  asio::awaitable<P2PResult<void>> close();
  /// close closes gracefully with `reason`, which the peer sees in its close error.
  asio::awaitable<P2PResult<void>> close(std::string_view reason);
  /// close_error returns why the connection ended, or nullopt while it is open.
  [[nodiscard]] std::optional<P2PError> close_error() const;
  /// stats returns message counters, the connection's age and the smoothed round-trip time.
  [[nodiscard]] ConnectionStats stats() const;
  /// transport_stats returns the transport's counters: datagrams, bytes, declared losses, RTT,
  /// congestion window and the path's datagram size; they stay readable after the connection ended.
  [[nodiscard]] TransportStats transport_stats() const;

  /// open_bi opens a bidirectional stream, waiting while the peer's stream limit is reached.
  /// Errors: the connection's close error, cancelled.
  asio::awaitable<P2PResult<BiStream>> open_bi();
  /// accept_bi waits for the next bidirectional stream the peer opened. On a connection accepted
  /// in 0-RTT it waits for the handshake to complete first, so nothing it returns can be a replay.
  /// Errors: the connection's close error, cancelled.
  asio::awaitable<P2PResult<BiStream>> accept_bi();
  /// accept_bi_early is accept_bi without that wait: on a connection accepted in 0-RTT, streams the
  /// client opened in its early data come at once. An attacker can replay early data to a new
  /// connection (one that never completes its handshake): act on a stream with
  /// BiStream::is_early() only if doing it twice is harmless, or await handshake() first.
  asio::awaitable<P2PResult<BiStream>> accept_bi_early();
  /// open_uni opens a unidirectional stream. Errors: as open_bi.
  asio::awaitable<P2PResult<SendStream>> open_uni();
  /// accept_uni waits for the next unidirectional stream the peer opened (the message stream
  /// excepted). Errors: as accept_bi.
  asio::awaitable<P2PResult<RecvStream>> accept_uni();

  /// max_datagram_size returns the largest datagram send_datagram accepts (0: not supported).
  [[nodiscard]] std::size_t max_datagram_size() const;
  /// send_datagram sends an unreliable, unordered datagram (QUIC DATAGRAM frame); queued datagrams
  /// beyond the endpoint's bound drop the oldest. Errors: message_too_large, protocol_error (the peer
  /// takes no datagrams), the connection's close error.
  P2PResult<void> send_datagram(ByteView data);
  /// recv_datagram waits for the next datagram. Errors: the connection's close error, cancelled.
  asio::awaitable<P2PResult<Bytes>> recv_datagram();

 private:
  friend struct detail::Access;
  struct Handle;
  explicit Connection(std::shared_ptr<Handle> handle) noexcept : handle_(std::move(handle)) {}
  std::shared_ptr<Handle> handle_;
};

static_assert(P2PBiStream<BiStream>);
static_assert(P2PSendStream<SendStream>);
static_assert(P2PRecvStream<RecvStream>);
static_assert(P2PConnection<Connection>);
static_assert(P2PStreamConnection<Connection>);

}  // namespace moosicbox::p2p
