// SPDX-License-Identifier: MIT OR Apache-2.0
// connection.hpp: quic::Connection, the sans-IO QUIC state of one connection (ngtcp2 + GnuTLS). It never
// reads a clock, touches a socket or draws system randomness: the driver feeds it datagrams and the
// current time, pulls datagrams to send with poll_transmit(), arms one timer from next_deadline(), and
// pulls what happened with poll_event(). ngtcp2 forbids re-entering it from its callbacks, so the
// callbacks only record state and queue events.
//
// Identity: TLS 1.3 with the node keys as raw Ed25519 public keys, mutual. A client checks that the
// server's key is the node id it dialed; a server learns the client's node id from its key. A side
// is connected (EventKind::connected) once its handshake completes: the peer's key is verified and
// 1-RTT keys are there, one round trip after a client's first packet. A server that then refuses the
// client's key closes the connection (the client sees that close); is_handshake_confirmed() tells
// when the server has accepted it.
//
// Layer: quic. Not thread-safe: one connection belongs to one strand. Stable address (created on the
// heap by its factories), because ngtcp2 and GnuTLS keep pointers to it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "moosicbox/p2p/core/bytes.hpp"
#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/node_id.hpp"
#include "quic/packet.hpp"
#include "quic/tls.hpp"
#include "quic/types.hpp"

namespace moosicbox::p2p::quic {

/// ClientConfig describes an outgoing connection.
struct ClientConfig {
  /// identity is this node's TLS identity.
  std::shared_ptr<const TlsIdentity> identity;
  /// server_id is the node the client dials: the server must present this key. Required.
  std::optional<NodeId> server_id;
  /// alpn is the application protocol to speak (non-empty, at most 255 bytes).
  std::string alpn;
  /// path is the local and remote address of the first path.
  Path path;
  /// transport holds the transport settings.
  TransportConfig transport;
  /// static_secret derives the stateless reset tokens of the ids this side issues.
  StaticSecret static_secret{};
  /// random draws connection ids, tokens and path challenges.
  RandomFn random;
  /// version is the QUIC version offered first (tests use an unknown one to exercise negotiation).
  std::uint32_t version = kVersion1;
  /// resume is a ticket from an earlier connection to the same server and ALPN: the handshake
  /// resumes that session and streams may be opened and written at once, as 0-RTT data. If the
  /// server refuses the early data, the streams are resent after the handshake (same ids).
  std::optional<SessionTicket> resume;
};

/// ServerConfig describes how a server accepts a connection.
struct ServerConfig {
  /// identity is this node's TLS identity.
  std::shared_ptr<const TlsIdentity> identity;
  /// alpns lists the application protocols served; a client offering none of them is refused.
  std::vector<std::string> alpns;
  /// transport holds the transport settings.
  TransportConfig transport;
  /// static_secret derives the stateless reset tokens of the ids this side issues.
  StaticSecret static_secret{};
  /// random draws connection ids, tokens and path challenges.
  RandomFn random;
  /// tickets, when set, makes the server issue one session ticket per connection and accept 0-RTT
  /// from clients resuming with one.
  std::shared_ptr<TicketIssuer> tickets;
};

/// Connection is one QUIC connection, client or server.
class Connection {
 public:
  /// connect starts a client connection; its first poll_transmit() returns the Initial packet.
  /// Errors: invalid_configuration (empty or oversized ALPN, missing server id, identity or random
  /// source),
  /// network_error (the TLS session or QUIC state cannot be created).
  [[nodiscard]] static P2PResult<std::unique_ptr<Connection>> connect(ClientConfig config, TimePoint now);

  /// accept starts a server connection for the client Initial `initial` received on `path`; then feed
  /// the same datagram to on_datagram(). `retry` carries what a valid Retry token proved, when the
  /// endpoint validates addresses with Retry.
  /// Errors: invalid_configuration (missing identity or random source), network_error (the TLS
  /// session or QUIC state cannot be created).
  [[nodiscard]] static P2PResult<std::unique_ptr<Connection>> accept(ServerConfig config, const Path& path,
                                                                     const InitialPacket& initial,
                                                                     const std::optional<RetryValidation>& retry,
                                                                     TimePoint now);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // --- Driving -------------------------------------------------------------------------------

  /// on_datagram processes one received UDP datagram. Bad datagrams are dropped; a datagram that
  /// breaks the protocol closes the connection (EventKind::closed). Never fails to the caller.
  void on_datagram(TimePoint now, const Path& path, ByteView datagram);
  /// poll_transmit writes the next datagrams to send into `buffer` (at least 1452 bytes; a multiple of
  /// it lets several full-size datagrams be batched, at most `datagrams_max`). Call until nullopt
  /// after every on_datagram, on_deadline and application write.
  [[nodiscard]] std::optional<Transmit> poll_transmit(TimePoint now, std::span<std::byte> buffer,
                                                      std::size_t datagrams_max = 1);
  /// next_deadline returns when on_deadline must be called next (kTimePointMax: never).
  [[nodiscard]] TimePoint next_deadline() const noexcept;
  /// on_deadline runs timers that are due at `now` (loss detection, acks, pacing, idle and handshake
  /// timeouts, the end of the closing period).
  void on_deadline(TimePoint now);
  /// poll_event returns the next event, in order.
  [[nodiscard]] std::optional<Event> poll_event();

  // --- State ---------------------------------------------------------------------------------

  /// is_server reports whether this side accepted the connection.
  [[nodiscard]] bool is_server() const noexcept;
  /// is_established reports whether the handshake completed (the peer's key verified, streams
  /// usable) and the connection has not ended.
  [[nodiscard]] bool is_established() const noexcept;
  /// is_handshake_confirmed reports whether the handshake is confirmed (RFC 9001 §4.1.2): a client
  /// received HANDSHAKE_DONE (the server accepted its key); a server, at completion.
  [[nodiscard]] bool is_handshake_confirmed() const noexcept;
  /// is_closed reports whether the connection ended for the application (close_info() is set).
  [[nodiscard]] bool is_closed() const noexcept;
  /// is_drained reports whether the connection's closing or draining period is over: the driver may
  /// destroy it and forget its connection ids.
  [[nodiscard]] bool is_drained() const noexcept;
  /// bytes_in_flight returns how many bytes of ack-eliciting packets await acknowledgement.
  [[nodiscard]] std::uint64_t bytes_in_flight() const noexcept;
  /// peer_id returns the peer's node id: the dialed id on a client, the verified key on a server once
  /// the client's certificate was checked.
  [[nodiscard]] const std::optional<NodeId>& peer_id() const noexcept;
  /// alpn returns the negotiated application protocol (empty before the handshake completed).
  [[nodiscard]] const std::string& alpn() const noexcept;
  /// early_data returns the connection's 0-RTT state.
  [[nodiscard]] EarlyData early_data() const noexcept;
  /// is_resumed reports whether the handshake resumed a session from a ticket.
  [[nodiscard]] bool is_resumed() const noexcept;
  /// is_handshake_completed reports whether TLS completed on this side (a client may not yet be
  /// confirmed; see is_established).
  [[nodiscard]] bool is_handshake_completed() const noexcept;
  /// take_session_ticket returns the newest session ticket the server sent (client; after
  /// EventKind::session_ticket), once.
  [[nodiscard]] std::optional<SessionTicket> take_session_ticket();
  /// close_info returns why the connection ended, or nullptr while it lives.
  [[nodiscard]] const CloseInfo* close_info() const noexcept;
  /// local_cids returns every connection id that routes to this connection now, including the id a
  /// client chose for its first Initial (a server keeps it until the connection is destroyed).
  [[nodiscard]] std::vector<ConnectionId> local_cids() const;
  /// path returns the current path.
  [[nodiscard]] Path path() const;
  /// stats returns the transport's counters and RTT estimates.
  [[nodiscard]] PathStats stats() const;

  // --- Streams -------------------------------------------------------------------------------

  /// open_bi opens a bidirectional stream; nullopt while the peer's stream limit is reached (wait for
  /// EventKind::streams_available). Errors: the close error once the connection ended;
  /// connection_failed before the handshake completed, unless the client is resuming (0-RTT).
  [[nodiscard]] P2PResult<std::optional<StreamId>> open_bi();
  /// open_uni opens a unidirectional stream. Errors and waiting: as open_bi.
  [[nodiscard]] P2PResult<std::optional<StreamId>> open_uni();
  /// stream_write queues up to data.size() bytes (fewer when the stream's send buffer is full; wait
  /// for EventKind::stream_writable) and, with `fin`, ends the stream once everything queued is sent.
  /// Returns the bytes accepted. `fin` takes effect only if all of `data` was accepted.
  /// Errors: stream_reset (the peer sent STOP_SENDING; carries its code), protocol_error (the stream
  /// cannot be written: unknown, receive-only, finished or reset), the close error once ended.
  [[nodiscard]] P2PResult<std::size_t> stream_write(StreamId id, ByteView data, bool fin = false);
  /// A stream the peer resets before any of its bytes arrived still surfaces (stream_opened, then
  /// reads fail with stream_reset), up to the stream limit of such streams waiting at once.
  ///
  /// stream_read copies received bytes into `out`; size 0 and !fin means nothing is ready yet (wait
  /// for EventKind::stream_readable). Reading returns flow-control credit to the peer.
  /// Errors: stream_reset (the peer reset the stream; carries its code), protocol_error (unknown or
  /// send-only stream), the close error once ended and every received byte was read.
  [[nodiscard]] P2PResult<StreamRead> stream_read(StreamId id, std::span<std::byte> out);
  /// stream_is_early reports whether some of a stream's received bytes came in 0-RTT packets: an
  /// attacker may replay those to another connection, so act on them only if doing it twice is
  /// harmless, or once the handshake completed (a replayed connection never completes).
  [[nodiscard]] bool stream_is_early(StreamId id) const noexcept;
  /// stream_readable_size returns how many received bytes wait to be read.
  [[nodiscard]] std::size_t stream_readable_size(StreamId id) const noexcept;
  /// stream_send_buffered returns the bytes of a stream not yet acknowledged by the peer.
  [[nodiscard]] std::size_t stream_send_buffered(StreamId id) const noexcept;
  /// stream_set_priority sets the send priority of a stream (default 0): among streams with data to
  /// send, those of higher priority are sent first; streams of equal priority share the path round
  /// robin, a packet each. Unknown streams are ignored.
  void stream_set_priority(StreamId id, std::int32_t priority);
  /// stream_priority returns a stream's send priority (0 for unknown streams).
  [[nodiscard]] std::int32_t stream_priority(StreamId id) const noexcept;
  /// stream_reset abandons sending: unsent data is dropped and the peer's reads fail with `code`.
  void stream_reset(StreamId id, std::uint64_t code);
  /// stream_stop asks the peer to stop sending (its writes fail with `code`) and drops what arrives.
  void stream_stop(StreamId id, std::uint64_t code);
  /// stream_release says the application is done with a stream: a direction still open is reset or
  /// stopped with `code`, and the stream's state is freed once QUIC is done with it.
  void stream_release(StreamId id, std::uint64_t code);
  /// unacked_bytes returns the stream bytes written but not yet acknowledged, over all streams.
  [[nodiscard]] std::uint64_t unacked_bytes() const noexcept;

  // --- Datagrams -----------------------------------------------------------------------------

  /// max_datagram_size returns the largest datagram send_datagram() accepts now (0 when the peer
  /// does not accept datagrams or the handshake has not completed).
  [[nodiscard]] std::size_t max_datagram_size() const noexcept;
  /// send_datagram queues an unreliable datagram; when the queue is full the oldest is dropped.
  /// Errors: message_too_large (over max_datagram_size()), protocol_error (the peer does not accept
  /// datagrams), the close error once ended.
  [[nodiscard]] P2PResult<void> send_datagram(ByteView data);
  /// recv_datagram returns the oldest received datagram, or nullopt.
  [[nodiscard]] std::optional<Bytes> recv_datagram();

  // --- Closing -------------------------------------------------------------------------------

  /// close ends the connection with an application error code and reason the peer sees: the next
  /// poll_transmit() returns the CONNECTION_CLOSE. Idempotent.
  void close(std::uint64_t app_code, std::string_view reason);

  struct Impl;

 private:
  explicit Connection(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

/// error_from_transport_close describes a CONNECTION_CLOSE a peer sent with a transport (or TLS) error
/// code, as the P2PError the application sees. `reason` is the peer's reason phrase.
[[nodiscard]] P2PError error_from_transport_close(std::uint64_t code, std::string_view reason);

}  // namespace moosicbox::p2p::quic
