// SPDX-License-Identifier: MIT OR Apache-2.0
// endpoint.hpp: Endpoint, the real backend: QUIC over UDP sockets (IPv4 and IPv6), many connections
// per socket demultiplexed by connection id, dialed by NodeId (TLS 1.3 with the node keys), with
// application protocols chosen by ALPN. Listener hands out the incoming connections of one ALPN.
// Layer: endpoint. An Endpoint runs on one executor (a single-threaded io_context or a strand);
// every handle (Endpoint, Listener, Connection, streams) must be used from that executor only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "moosicbox/p2p/core/asio.hpp"
#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/node_id.hpp"
#include "moosicbox/p2p/core/secret_key.hpp"
#include "moosicbox/p2p/core/time.hpp"
#include "moosicbox/p2p/endpoint/connection.hpp"
#include "moosicbox/p2p/endpoint/node_addr.hpp"

namespace moosicbox::p2p {

namespace simnet {
class Host;
}  // namespace simnet

namespace detail {
struct EndpointState;
struct ListenerState;
}  // namespace detail

/// EndpointLimits bounds what peers can make an endpoint hold.
struct EndpointLimits {
  /// concurrent_handshakes bounds incoming handshakes in progress; more are refused at once
  /// (CONNECTION_REFUSED) without keeping state.
  std::size_t concurrent_handshakes = 64;
  /// connections bounds live connections, incoming and outgoing.
  std::size_t connections = 4096;
  /// streams_per_connection bounds the streams of each kind (bidirectional, unidirectional) a peer may
  /// have open at once on one connection.
  std::uint64_t streams_per_connection = 100;
  /// buffered_bytes_per_connection bounds the received bytes one connection buffers for the
  /// application (its flow-control window; each stream gets at most half of it).
  std::uint64_t buffered_bytes_per_connection = 16 * 1024 * 1024;
  /// send_buffer_per_stream bounds the bytes one stream keeps for sending before writes wait.
  std::size_t send_buffer_per_stream = 1024 * 1024;
  /// accept_queue bounds the established connections waiting in one listener's accept(); beyond it
  /// new connections are closed with "busy".
  std::size_t accept_queue = 128;
  /// max_message_size is the largest message send() accepts and recv() delivers, in bytes.
  std::size_t max_message_size = std::size_t{1} << 20;
  /// session_tickets bounds the resumption tickets kept as a client (the newest per peer and
  /// protocol; about 400 bytes each). 0 keeps none.
  std::size_t session_tickets = 256;
  /// zero_rtt_replay_entries bounds the server's record of 0-RTT ClientHellos seen in the last
  /// 10 s (anti-replay; about 100 bytes each). While it is full, resuming clients get no early data.
  std::size_t zero_rtt_replay_entries = 16'384;
};

/// EndpointConfig describes an endpoint.
struct EndpointConfig {
  /// EndpointConfig starts from the node key and the defaults.
  explicit EndpointConfig(SecretKey key) : secret_key(std::move(key)) {}

  /// secret_key is the node's identity.
  SecretKey secret_key;
  /// bind_addrs lists the UDP addresses to bind, one socket each; port 0 picks a free port. The
  /// default is one dual-stack socket on every interface.
  std::vector<SocketAddr> bind_addrs = {SocketAddr::v6_any(0)};
  /// alpns lists application protocols served from the start: their connections queue (up to
  /// limits.accept_queue) until listen(alpn) hands out the listener. listen() adds more protocols.
  std::vector<std::string> alpns;
  /// limits bounds what peers can make the endpoint hold.
  EndpointLimits limits;
  /// connect_timeout bounds connect() (handshake included).
  Duration connect_timeout = std::chrono::seconds(30);
  /// idle_timeout closes a connection that received nothing for this long (the peer vanished).
  Duration idle_timeout = std::chrono::seconds(30);
  /// keep_alive_interval sends a PING after this much quiet, keeping connections and NAT bindings
  /// alive (0: off).
  Duration keep_alive_interval = std::chrono::seconds(10);
  /// close_timeout bounds a graceful close: it gives up waiting for the peer to acknowledge what was
  /// sent when no progress was made for this long.
  Duration close_timeout = std::chrono::seconds(5);
  /// initial_rtt is the round-trip estimate before the first measurement.
  Duration initial_rtt = std::chrono::milliseconds(100);
  /// require_retry makes servers validate client addresses with a Retry round trip first.
  bool require_retry = false;
  /// loopback_udp_payload_size is the datagram size used with peers on a loopback address (same
  /// host), whose path carries 64 KiB datagrams: larger datagrams cost less per byte. 0 uses the
  /// internet's size (1452 bytes, discovered from 1200) there too.
  std::size_t loopback_udp_payload_size = 16 * 1024;
  /// busy_poll is how long the endpoint keeps polling its sockets, instead of sleeping in the
  /// event loop, when a connection awaits a small answer: after a request that fits a small
  /// datagram left, and after a small datagram arrived (a request/response exchange). An answer
  /// that arrives within that time is read at once instead of after a thread wake-up, which costs
  /// tens of microseconds on virtual machines: most of a round trip on a fast path (request/response
  /// on loopback goes from about 13,000 to 55,000 per second). Only an otherwise idle thread polls,
  /// yielding to everything else on the executor between looks; transfers never trigger it (their
  /// receivers batch better asleep). It costs at most this much CPU per exchange and nothing on an
  /// idle endpoint. 0 turns it off.
  Duration busy_poll = std::chrono::microseconds(50);
  /// busy_poll_handshake is how long the endpoint keeps polling while a handshake is in progress,
  /// counted from its start or the last datagram. The peer's next flight follows its key exchange
  /// and signature work (a few hundred microseconds), longer than busy_poll. It costs at most a few
  /// milliseconds of CPU per handshake. 0 turns it off.
  Duration busy_poll_handshake = std::chrono::milliseconds(1);
  /// socket_buffer_bytes sets each socket's kernel send and receive buffers (SO_SNDBUF, SO_RCVBUF;
  /// the kernel caps them at net.core.{w,r}mem_max). Large buffers absorb bursts at high rates. 0 keeps
  /// the system default.
  int socket_buffer_bytes = 4 * 1024 * 1024;
  /// stop_sending_codes makes a stream writer's stream_reset error carry the code the peer gave to
  /// RecvStream::stop / BiStream::stop, and makes Connection::transport_stats count declared packet
  /// losses. Both come from ngtcp2's trace, which costs a buffer per connection and some CPU per
  /// packet (docs/performance.md); without it the error only says the peer stopped reading.
  bool stop_sending_codes = true;
  /// stateless_reset lets the endpoint answer packets of unknown connections with a stateless reset
  /// (rate-limited), so a peer of a lost connection learns at once.
  bool stateless_reset = true;
  /// zero_rtt enables session resumption and 0-RTT. As a server the endpoint issues one session
  /// ticket per connection (valid 6 hours and only for this endpoint instance) and takes early data
  /// from clients resuming with one, each ClientHello once. As a client it keeps the newest ticket
  /// per peer and protocol: connect() resumes (a handshake without signatures) and connect_early()
  /// sends in 0-RTT. Early data can be replayed by an attacker: see Connection::accept_bi_early and
  /// docs/protocol.md.
  bool zero_rtt = true;
  /// relay_urls lists the relays this node can be reached through ("http://host[:port]" or
  /// "https://host[:port]"). The endpoint measures their latency, takes the nearest as its home relay,
  /// holds one session to it (reconnecting with jittered backoff) and names it in addr(), so peers
  /// behind any NAT or firewall reach this node through it. Empty: this node has no home relay (it
  /// still dials peers through the relays their NodeAddr names).
  std::vector<std::string> relay_urls;
  /// relay_ca_file, when set, is the PEM bundle that verifies https relays instead of the system's
  /// trust store (private relays, tests).
  std::optional<std::string> relay_ca_file;
  /// direct_paths false keeps the endpoint off direct paths: addr() carries no direct address and
  /// connect() dials only through relays (networks that block UDP; tests of the relay path).
  bool direct_paths = true;
  /// relay_head_start: when a peer has direct addresses and a relay, connect() dials the direct
  /// addresses first and, if no handshake completed after this long, also through the relay, taking
  /// whichever completes first (a peer behind a firewall is then reached without waiting for the
  /// direct attempts to time out).
  Duration relay_head_start = std::chrono::milliseconds(250);
};

/// EndpointStats counts what an endpoint did since it was bound.
struct EndpointStats {
  std::uint64_t connections_accepted = 0;   ///< incoming connections established
  std::uint64_t connections_dialed = 0;     ///< outgoing connections established
  std::uint64_t handshakes_refused = 0;     ///< incoming Initials refused (limits, closing)
  std::uint64_t datagrams_received = 0;     ///< UDP datagrams received
  std::uint64_t datagrams_unroutable = 0;   ///< datagrams dropped: unknown connection, garbage
  std::uint64_t stateless_resets_sent = 0;  ///< stateless resets sent
  /// version_negotiations_sent counts Version Negotiation packets sent in answer to client Initials
  /// of an unsupported QUIC version.
  std::uint64_t version_negotiations_sent = 0;
  /// retries_sent counts Retry packets sent to validate a client's address (require_retry).
  std::uint64_t retries_sent = 0;
  std::size_t connections_live = 0;            ///< connections currently held
  std::size_t handshakes_live = 0;             ///< incoming handshakes in progress
  std::uint64_t resumed = 0;                   ///< connections (either role) that resumed a session
  std::uint64_t zero_rtt_accepted = 0;         ///< connections (either role) whose early data was taken
  std::uint64_t zero_rtt_rejected = 0;         ///< client: early data refused by the server (then resent)
  std::uint64_t zero_rtt_replays_refused = 0;  ///< server: a ClientHello seen before got no early data
  std::uint64_t relay_datagrams_sent = 0;      ///< datagrams sent through relays
  std::uint64_t relay_datagrams_received = 0;  ///< datagrams received through relays
  std::uint64_t relay_datagrams_dropped = 0;   ///< datagrams for relays dropped (no session, queue full)
  /// relay_identity_mismatches counts connections closed because the node id a relay named as the
  /// sender was not the one the TLS handshake authenticated (a lying relay).
  std::uint64_t relay_identity_mismatches = 0;
  std::uint64_t disco_sent = 0;      ///< path-discovery packets sent (UDP and through relays)
  std::uint64_t disco_received = 0;  ///< path-discovery packets received
  std::uint64_t disco_refused = 0;   ///< path-discovery packets dropped: malformed, forged or replayed
  /// direct_paths_validated counts direct paths a pong validated (first time, or after a loss).
  std::uint64_t direct_paths_validated = 0;
  /// direct_switches counts moves of a relayed peer's packets to a direct path (or a better one).
  std::uint64_t direct_switches = 0;
  /// direct_fallbacks counts direct paths lost (probes unanswered): the peer went back to its relay.
  std::uint64_t direct_fallbacks = 0;
};

/// Listener hands out the incoming connections of one application protocol. Copies share the
/// listener; when the last copy is destroyed it stops listening. Satisfies P2PListener.
class Listener {
 public:
  /// Connection is the connection type it hands out.
  using Connection = p2p::Connection;

  /// accept waits for the next established incoming connection, in arrival order.
  /// Errors: connection_closed (the listener or its endpoint closed), cancelled.
  asio::awaitable<P2PResult<Connection>> accept();
  /// local_addr returns the endpoint's address as a ticket (NodeAddr::to_ticket).
  [[nodiscard]] std::string local_addr() const;
  /// alpn returns the application protocol it listens for.
  [[nodiscard]] const std::string& alpn() const;
  /// close stops listening for every copy; pending and later accept() calls fail with
  /// connection_closed, and connections waiting to be accepted are closed.
  void close();

 private:
  friend struct detail::Access;
  struct Handle;
  explicit Listener(std::shared_ptr<Handle> handle) noexcept : handle_(std::move(handle)) {}
  std::shared_ptr<Handle> handle_;
};

/// Endpoint is a node's QUIC endpoint. A cheap handle: copies share the endpoint; the last one
/// closes it (connections still open are closed at once).
class Endpoint {
 public:
  /// bind opens the UDP sockets of `config` and starts the endpoint on `ex`.
  /// Errors: invalid_configuration (no bind address, a bad ALPN, a bad limit, a key GnuTLS rejects),
  /// network_error (a socket cannot be bound, e.g. "bind 127.0.0.1:9: Permission denied").
  [[nodiscard]] static P2PResult<Endpoint> bind(asio::any_io_executor ex, EndpointConfig config);
  /// bind starts the endpoint on simulated host `host` (include moosicbox/p2p/simnet/network.hpp):
  /// its UDP sockets are the host's, its clock and timers the simulation's virtual time, its
  /// randomness the host's seeded stream, its relay sessions simulated streams. Busy polling is off.
  /// Same errors as the real bind.
  [[nodiscard]] static P2PResult<Endpoint> bind(simnet::Host& host, EndpointConfig config);

  /// node_id returns this node's identity.
  [[nodiscard]] const NodeId& node_id() const noexcept;
  /// addr returns this node's NodeAddr: its id, its home relay once picked, and its direct
  /// addresses (bound addresses; for a socket bound to a wildcard address, the addresses of the
  /// host's interfaces that are up; none when EndpointConfig::direct_paths is false).
  [[nodiscard]] NodeAddr addr() const;
  /// home_relay returns the URL of the home relay once picked (see EndpointConfig::relay_urls).
  [[nodiscard]] std::optional<std::string> home_relay() const;
  /// wait_home_relay waits (at most `timeout`) until the session to the home relay is up, and
  /// returns its URL: addr() then names a relay that forwards to this node. Errors:
  /// invalid_configuration (no relay configured), connection_failed (not connected within
  /// `timeout`; the message carries the last connect error), connection_closed, cancelled.
  asio::awaitable<P2PResult<std::string>> wait_home_relay(Duration timeout);
  /// local_addrs returns the bound socket addresses (with the ports the kernel picked).
  [[nodiscard]] std::vector<SocketAddr> local_addrs() const;

  /// connect dials `peer` (trying its direct addresses in order) for application protocol `alpn`,
  /// and returns once the handshake completed, one round trip after the first packet: the peer
  /// proved it holds `peer.node_id()` (a server that refuses this endpoint's key then closes the
  /// connection).
  /// Errors: node_not_found (no direct address this endpoint can reach), authentication_failed (the
  /// peer's key is not peer.node_id()), connection_failed (refused, ALPN not served, no common QUIC
  /// version), timeout (connect_timeout), invalid_configuration (bad ALPN), connection_closed (the
  /// endpoint is closed), cancelled.
  asio::awaitable<P2PResult<Connection>> connect(NodeAddr peer, std::string_view alpn);
  /// connect_early is connect for a request that may go before the handshake ends. With a session
  /// ticket for (`peer`, `alpn`) from an earlier connection (EndpointConfig::zero_rtt), it returns
  /// at once (Connection::is_early()): streams and messages opened now travel as 0-RTT data with the
  /// handshake, so the first answer comes one round trip after the call. Only the first direct
  /// address is dialled then, and a failure shows on the first operation rather than here. If the
  /// server refuses the early data, it is resent after the handshake: nothing is lost. Without a
  /// ticket it is connect(). Early data can be replayed by an attacker: send in it only what the
  /// server may see twice (the router's server defers all but GET and HEAD). Errors: as connect.
  asio::awaitable<P2PResult<Connection>> connect_early(NodeAddr peer, std::string_view alpn);
  /// listen starts accepting connections for `alpn`.
  /// Errors: invalid_configuration (empty or longer than 255 bytes), connection_failed (already
  /// listening for it), connection_closed (the endpoint is closed).
  [[nodiscard]] P2PResult<Listener> listen(std::string_view alpn);

  /// close closes every connection gracefully (bounded by close_timeout), then the sockets.
  /// Idempotent.
  asio::awaitable<void> close();
  /// is_closed reports whether close() ran or started.
  [[nodiscard]] bool is_closed() const noexcept;
  /// stats returns the endpoint's counters.
  [[nodiscard]] EndpointStats stats() const;

 private:
  friend struct detail::Access;
  struct Handle;
  explicit Endpoint(std::shared_ptr<Handle> handle) noexcept : handle_(std::move(handle)) {}
  std::shared_ptr<Handle> handle_;
};

static_assert(P2PListener<Listener>);

}  // namespace moosicbox::p2p
