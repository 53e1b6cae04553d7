// SPDX-License-Identifier: MIT OR Apache-2.0
// state.hpp: the endpoint's internal state: EndpointState (sockets, connection-id routing, deadlines,
// the send path, listeners) and ConnState (one QUIC connection with its message framing, stream
// waiters and accept queues). Public handles (Endpoint, Connection, streams) point into these.
// Layer: endpoint (internal). Everything here belongs to the endpoint's executor: no locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/fifo.hpp"
#include "endpoint/endpoint_env.hpp"
#include "endpoint/magicsock/direct_paths.hpp"
#include "endpoint/magicsock/relay_paths.hpp"
#include "endpoint/notifier.hpp"
#include "endpoint/session_cache.hpp"
#include "moosicbox/p2p/endpoint/endpoint.hpp"
#include "quic/connection.hpp"

namespace moosicbox::p2p::detail {

struct EndpointState;

/// kAppErrorProtocol is the application close code for a peer that broke the message framing.
inline constexpr std::uint64_t kAppErrorProtocol = 0x1;
/// kAppErrorBusy is the application close code when no listener takes a connection.
inline constexpr std::uint64_t kAppErrorBusy = 0x2;
/// kStreamCodeDropped is the stream code used when a handle is dropped without finishing.
inline constexpr std::uint64_t kStreamCodeDropped = 0x0;

/// StreamWaiters are the wakeups of one stream a handle waits on.
struct StreamWaiters {
  explicit StreamWaiters(const asio::any_io_executor& ex) : readable(ex), writable(ex) {}
  Notifier readable;
  Notifier writable;
};

/// ConnState is one connection of the endpoint.
struct ConnState : std::enable_shared_from_this<ConnState> {
  ConnState(std::shared_ptr<EndpointState> endpoint, std::uint64_t serial_no, std::unique_ptr<quic::Connection> q,
            std::size_t socket_index, bool is_client);

  std::shared_ptr<EndpointState> ep;
  std::uint64_t serial;
  std::unique_ptr<quic::Connection> quic;
  std::size_t socket;
  bool client;
  std::string alpn;
  std::optional<NodeId> remote;
  std::optional<SocketAddr> reply_source;  // local IP the peer addressed (wildcard sockets)
  // Relay path: the peer's virtual address (pinned in RelayPaths while registered), and for a
  // server connection the node id the relay named as the sender, checked against the TLS identity.
  std::optional<SocketAddr> relay_vaddr;
  std::optional<NodeId> relay_claimed;
  bool relay_peer_gone = false;  // client: the relay reported the peer not connected to it

  bool established = false;
  bool early = false;                 // usable before its handshake completed (0-RTT), until established
  bool delivered = false;             // server: handed to a listener
  bool handshake_counted = false;     // counted in EndpointState::handshakes_live
  bool awaiting_ack = false;          // counted in EndpointState::conns_awaiting_ack
  bool handshaking = false;           // counted in EndpointState::handshaking
  std::size_t transfer_datagram = 0;  // a datagram this large from the peer is part of a transfer
  bool dirty = false;                 // queued for a flush
  bool registered = false;            // in the endpoint's maps
  bool user_closed = false;           // close() was called or the last handle dropped
  bool close_started = false;         // graceful_close runs
  TimePoint established_at{};
  TimePoint deadline_key = kTimePointMax;
  std::vector<quic::ConnectionId> routed;  // ids routing to this connection

  Notifier on_state;     // established, closed
  Notifier on_progress;  // any packet processed (graceful close waits for acknowledgements)
  Notifier on_message;   // the message stream has data
  Notifier on_msg_writable;
  Notifier on_accept;   // a stream the peer opened is queued
  Notifier on_streams;  // the peer allows more streams
  Notifier on_datagram;
  Notifier on_path;  // the path changed (relay moved), or the connection ended
  std::unordered_map<quic::StreamId, std::unique_ptr<StreamWaiters>> stream_waiters;

  // Message framing: a QUIC varint length, then the payload, on one unidirectional stream per
  // direction (the first one each side opens).
  std::optional<quic::StreamId> msg_out;
  std::optional<quic::StreamId> msg_in;
  bool msg_sending = false;
  Bytes msg_buf;  // bytes read from the message stream, not yet parsed: [msg_buf_pos, end)
  std::size_t msg_buf_pos = 0;
  std::optional<std::size_t> msg_length;  // the length of the message being assembled
  Bytes msg_body;                         // a message larger than what msg_buf held, assembled in place
  bool msg_in_finished = false;
  std::optional<P2PError> msg_error;  // the peer broke the framing

  Fifo<quic::StreamId> accept_bi;
  Fifo<quic::StreamId> accept_uni;

  ConnectionStats counters;

  /// error returns the connection's close error, if it ended.
  [[nodiscard]] std::optional<P2PError> error() const;
  /// waiters returns (creating) the waiters of stream `id`.
  StreamWaiters& waiters(quic::StreamId id);
  /// wake_all wakes every waiter (the connection changed state).
  void wake_all();
};

/// ListenerState is the accept queue of one ALPN.
struct ListenerState {
  ListenerState(std::shared_ptr<EndpointState> endpoint, std::string protocol);
  std::weak_ptr<EndpointState> ep;
  std::string alpn;
  std::deque<std::shared_ptr<ConnState>> queue;
  Notifier on_accept;
  bool closed = false;
};

/// SocketState is one bound UDP socket and its send path.
struct SocketState {
  explicit SocketState(PathSocket s);
  PathSocket sock;
  SocketAddr local;
  quic::Address local_quic;
  bool wildcard = false;
  std::size_t datagrams_per_transmit = 1;
  std::size_t slot_size = 0;
  std::unique_ptr<std::byte[]> arena;  // slots of slot_size bytes, one per pending transmit
  std::vector<env::Transmit> pending;  // written, not yet accepted by the kernel
  bool blocked = false;                // the kernel's send buffer is full
  bool receive_sleeping = false;       // the receive loop waits for the socket to become readable
  std::vector<std::uint64_t> waiting;  // connections to flush once writable
};

/// EndpointState is the endpoint.
struct EndpointState : std::enable_shared_from_this<EndpointState> {
  EndpointState(EndpointEnv environment, EndpointConfig cfg);

  asio::any_io_executor ex;
  EndpointEnv env;  // real, or a simulated host (Endpoint::bind(simnet::Host&, ...))
  EndpointConfig config;
  NodeId id;
  std::shared_ptr<const quic::TlsIdentity> tls;
  std::shared_ptr<quic::TicketIssuer> tickets;  // server side of 0-RTT (EndpointConfig::zero_rtt)
  SessionCache sessions;                        // client side: tickets by peer and protocol
  quic::StaticSecret secret{};
  quic::TransportConfig transport;
  std::vector<std::unique_ptr<SocketState>> sockets;
  // The relay half of the path layer (EndpointConfig::relay_urls); null without relays. Connections
  // on a relay path have `socket` kRelaySocket and a virtual remote address.
  std::unique_ptr<magicsock::RelayPaths> relay;
  static constexpr std::size_t kRelaySocket = static_cast<std::size_t>(-1);
  quic::Address relay_local_quic;
  std::unique_ptr<std::byte[]> relay_scratch;  // one transmit of a relayed connection
  bool relay_batch_posted = false;
  std::vector<std::uint64_t> relay_waiting;  // relayed connections to flush once a session drained
  std::optional<NodeId> relay_sender;        // the relay-named sender of the datagram being handled
  // The direct half of the path layer: finds direct paths for peers on relay paths (null when
  // direct_paths is off). Its timers are one entry of `deadlines` with serial 0.
  std::unique_ptr<magicsock::DirectPaths> paths;
  TimePoint paths_deadline = kTimePointMax;

  std::unordered_map<quic::ConnectionId, std::shared_ptr<ConnState>> routes;
  std::unordered_map<std::uint64_t, std::shared_ptr<ConnState>> conns;
  std::map<std::string, std::weak_ptr<ListenerState>> listeners;
  std::vector<std::shared_ptr<ListenerState>> config_listeners;  // from EndpointConfig::alpns, until listen()
  std::uint64_t next_serial = 1;
  std::size_t handshakes_live = 0;
  // Busy polling (EndpointConfig::busy_poll) is for exchanges bound by latency: it runs while a
  // handshake is in progress, and after a request left or a small datagram arrived while some
  // connection awaits a small answer. Polling while a transfer arrives would shrink its receive
  // batches, and every batch is acknowledged: the sender would spend its time on acknowledgements.
  TimePoint last_receive{};            // when the last datagram arrived
  TimePoint last_ask{};                // when a connection last began to await an answer
  TimePoint last_handshake_start{};    // when a handshake was last dialled or accepted
  std::size_t handshaking = 0;         // connections of either role whose handshake is in progress
  std::size_t conns_awaiting_ack = 0;  // connections with a little ack-eliciting data in flight
  TimePoint last_large_batch{};        // when a datagram of a transfer last arrived
  std::uint64_t activity = 0;          // counts the application's sends (an idle thread sees no change)
  // Transfers are recognised by their full datagrams (see ConnState::transfer_datagram; at least
  // kSmallDatagram) or coalesced runs of them. For kTransferQuiet after one arrived, nothing polls:
  // a receiver that sleeps between batches lets data pile up into large batches, each acknowledged
  // once, where a polling one would acknowledge nearly every datagram and keep the sender busy with
  // acknowledgements.
  // kSmallDatagram is the smallest full-size QUIC datagram: a request that fits in it wakes sleeping
  // receive loops to poll for the answer.
  static constexpr std::size_t kSmallDatagram = 1200;
  static constexpr Duration kTransferQuiet = std::chrono::milliseconds(10);
  // A connection with at most this much in flight awaits an answer (see set_awaiting_ack).
  static constexpr std::uint64_t kAnswerFlightMax = 16 * 1024;

  std::set<std::pair<TimePoint, std::uint64_t>> deadlines;
  EndpointEnv::Timer timer;
  TimePoint armed = kTimePointMax;

  std::vector<std::uint64_t> dirty;
  bool flush_posted = false;
  std::vector<std::shared_ptr<ConnState>> touched;  // during one receive batch

  bool closing = false;  // close() started
  bool stopped = false;  // loops must end
  Notifier on_progress;  // something happened (endpoint close waits on it)
  std::size_t loops_running = 0;

  TimePoint reset_window{};
  std::uint32_t resets_in_window = 0;
  EndpointStats counters;

  // --- driver (endpoint.cpp) ---
  void start();
  void on_datagram(std::size_t socket, ByteView data, const env::RecvMeta& meta, TimePoint now);
  void accept_new(std::size_t socket, ByteView data, const env::RecvMeta& meta, TimePoint now);
  void send_raw(std::size_t socket, const SocketAddr& to, ByteView data, const std::optional<SocketAddr>& source);
  /// on_relay_datagram feeds a datagram that came through a relay (see RelayPaths).
  void on_relay_datagram(const SocketAddr& vaddr, const NodeId& from, ByteView data);
  /// finish_batch hands the connections a batch of datagrams touched their events and flushes them.
  void finish_batch();
  void flush_relay(ConnState& c);
  /// flush_udp writes a connection's packets on socket `s`, to `to` when set (a relayed connection
  /// on a direct path) instead of the engine's path.
  void flush_udp(ConnState& c, SocketState& s, const SocketAddr* to, const std::optional<SocketAddr>& source);
  /// wake_paths makes the timer loop run the path layer at `when` (or earlier).
  void wake_paths(TimePoint when);
  /// run_paths runs the path layer's due work and re-arms it.
  void run_paths(TimePoint now);
  /// socket_for returns the socket that can reach `to` (its family), if any.
  [[nodiscard]] std::optional<std::size_t> socket_for(const SocketAddr& to) const;
  /// on_direct_route_changed wakes path waiters of the connections of the peer at `vaddr`.
  void on_direct_route_changed(const SocketAddr& vaddr);
  [[nodiscard]] quic::Address local_quic(std::size_t socket) const;
  [[nodiscard]] bool wildcard(std::size_t socket) const;
  std::shared_ptr<ConnState> register_conn(std::unique_ptr<quic::Connection> q, std::size_t socket, bool client,
                                           const SocketAddr& peer);
  /// process drains a connection's events, flushes it, re-arms its deadline and reaps it if drained.
  void process(const std::shared_ptr<ConnState>& c);
  void handle_events(const std::shared_ptr<ConnState>& c);
  void flush(ConnState& c);
  bool send_pending(SocketState& s);
  void update_deadline(ConnState& c);
  void reap(const std::shared_ptr<ConnState>& c);
  /// schedule_flush processes `c` soon (after the current handler), coalescing repeated requests.
  void schedule_flush(ConnState& c);
  void flush_dirty();
  void flush_waiting(SocketState& s);
  void on_deadlines(TimePoint now);
  [[nodiscard]] bool keep_polling(TimePoint now) const;
  [[nodiscard]] std::size_t transfer_datagram_for(const SocketAddr& peer) const;
  void handshake_over(ConnState& c);
  /// deliver hands a server connection to its listener (or closes it: no listener, queue full).
  void deliver(const std::shared_ptr<ConnState>& c);
  /// open_message_stream opens the connection's outgoing message stream (it sends nothing yet).
  static void open_message_stream(ConnState& c);
  void set_awaiting_ack(ConnState& c, std::uint64_t in_flight);
  void stop();
  /// abandon breaks the ownership cycles when the driver loops died with their io_context.
  void abandon();
  std::vector<std::string> served_alpns() const;
  /// transport_for returns the transport settings for a peer at `peer` (larger datagrams on loopback).
  quic::TransportConfig transport_for(const SocketAddr& peer) const;
  quic::RandomFn random_fn();
};

/// interface_candidates returns the interface addresses of the endpoint's sockets (with their ports).
std::vector<SocketAddr> interface_candidates(const EndpointState& ep);
/// endpoint_addr returns the endpoint's NodeAddr (see Endpoint::addr).
NodeAddr endpoint_addr(const EndpointState& ep);

/// to_quic_addr converts an address to the engine's form.
quic::Address to_quic_addr(const SocketAddr& a);
/// from_quic_addr converts the engine's address form back (IPv4-mapped IPv6 becomes IPv4).
SocketAddr from_quic_addr(const quic::Address& a);

/// StreamRef is what a stream handle holds: the connection and the stream id.
struct StreamRef {
  StreamRef(std::shared_ptr<ConnState> c, quic::StreamId stream);
  StreamRef(const StreamRef&) = delete;
  StreamRef& operator=(const StreamRef&) = delete;
  ~StreamRef();

  std::shared_ptr<ConnState> conn;
  quic::StreamId id;
  bool finished = false;  // FIN queued
  bool reset = false;
  bool read_end = false;  // FIN read
  bool stopped = false;

  asio::awaitable<P2PResult<void>> write(ByteView data, bool fin);
  asio::awaitable<P2PResult<std::size_t>> read(std::span<std::byte> buffer);
  asio::awaitable<P2PResult<Bytes>> read_to_end(std::size_t size_max);
  void do_reset(std::uint64_t code);
  void do_stop(std::uint64_t code);
  void set_priority(std::int32_t priority);
  [[nodiscard]] std::int32_t priority() const noexcept;
};

/// write_all writes `data` (and `fin`) on stream `id` of `c`, waiting on `writable` while the send
/// buffer is full. Errors: the engine's stream and close errors, cancelled.
asio::awaitable<P2PResult<void>> write_all(ConnState& c, quic::StreamId id, ByteView data, bool fin,
                                           Notifier& writable);

/// graceful_close finishes the message stream, waits (bounded) for acknowledgements, then closes.
asio::awaitable<void> graceful_close(std::shared_ptr<ConnState> c, std::string reason);

}  // namespace moosicbox::p2p::detail
