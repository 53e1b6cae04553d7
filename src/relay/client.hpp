// SPDX-License-Identifier: MIT OR Apache-2.0
// client.hpp: relay::Client, one node's WebSocket session to one relay server: it authenticates
// with the node key, sends datagrams addressed by node id (coalescing consecutive datagrams to the
// same node into one frame), hands received datagrams to a callback, keeps the session alive with
// pings (measuring the RTT), and reconnects with jittered exponential backoff after a failure or a
// `restarting` announcement. Used by the endpoint's path layer; docs/protocol.md has the wire format.
// The same client runs on real sockets (AsioEnv time, TCP, optional TLS) or on a simulated host
// (ClientConfig::sim_host: virtual time, simnet streams, plain ws:// only).
// Layer: relay (internal). A Client runs on the executor given to create(); callbacks are invoked
// there, never re-entrantly from send(). No locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "moosicbox/p2p/core/asio.hpp"
#include "moosicbox/p2p/core/bytes.hpp"
#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/node_id.hpp"
#include "moosicbox/p2p/core/secret_key.hpp"
#include "moosicbox/p2p/core/time.hpp"
#include "moosicbox/p2p/env/socket_addr.hpp"

namespace moosicbox::p2p::simnet {
class Host;
}  // namespace moosicbox::p2p::simnet

namespace moosicbox::p2p::relay {

/// SocketAddr is the environment's socket address type.
using SocketAddr = env::SocketAddr;

/// ClientConfig configures a Client.
struct ClientConfig {
  explicit ClientConfig(SecretKey k, std::string relay_url) : key(std::move(k)), url(std::move(relay_url)) {}
  /// key is the node's identity (the client signs the server's challenge with it).
  SecretKey key;
  /// url is the relay's base URL: "http://host[:port]" or "https://host[:port]" (a path, if any,
  /// is ignored: the client always requests /relay).
  std::string url;
  /// connect_timeout bounds TCP connect + TLS + HTTP upgrade + authentication.
  Duration connect_timeout = std::chrono::seconds(10);
  /// ping_interval: a ping after this much quiet keeps the session (and NAT bindings) alive and
  /// measures the RTT.
  Duration ping_interval = std::chrono::seconds(15);
  /// pong_timeout: a ping unanswered for this long ends the session (it reconnects).
  Duration pong_timeout = std::chrono::seconds(10);
  /// backoff_initial and backoff_max bound the jittered exponential reconnect delay.
  Duration backoff_initial = std::chrono::milliseconds(100);
  /// backoff_max: see backoff_initial.
  Duration backoff_max = std::chrono::seconds(10);
  /// send_queue_bytes_max bounds datagram bytes queued while a write is in progress or while
  /// (re)connecting; send() drops what does not fit.
  std::size_t send_queue_bytes_max = 2 * 1024 * 1024;
  /// tls_ca_file, when set, is the PEM bundle that verifies an https relay's certificate instead of
  /// the system's trust store (tests, private relays).
  std::optional<std::string> tls_ca_file;
  /// sim_host, when set, runs the client on that simulated host (which must outlive it): virtual
  /// time and timers, the host's seeded random stream, simnet streams. The URL's host is then an IP
  /// literal or a name the simulated network resolves, and only http (ws) relays are reached.
  simnet::Host* sim_host = nullptr;
};

/// ClientState is where a Client is in its life.
enum class ClientState : std::uint8_t {
  connecting,  ///< TCP / TLS / upgrade / authentication in progress
  connected,   ///< authenticated: datagrams flow
  waiting,     ///< between attempts (backoff or a `restarting` announcement)
  closed,      ///< close() was called
};

/// PeerGoneReason says why the relay reported a peer gone.
enum class PeerGoneReason : std::uint8_t {
  not_connected = 0,  ///< the destination has no session on this relay
  disconnected = 1,   ///< the destination's session just ended
};

/// ClientStats counts a client's traffic.
struct ClientStats {
  std::uint64_t datagrams_sent = 0;      ///< datagrams written to the relay
  std::uint64_t bytes_sent = 0;          ///< datagram bytes written
  std::uint64_t frames_sent = 0;         ///< send frames written (datagrams coalesce)
  std::uint64_t datagrams_received = 0;  ///< datagrams received
  std::uint64_t bytes_received = 0;      ///< datagram bytes received
  std::uint64_t drops_queue_full = 0;    ///< send() refused: send_queue_bytes_max reached
  std::uint64_t connects = 0;            ///< sessions established
  std::uint64_t connect_failures = 0;    ///< attempts that failed
};

/// Client is one session to one relay, re-established after failures until close().
class Client : public std::enable_shared_from_this<Client> {
 public:
  /// ReceiveFn gets every datagram that arrived for this node: the sender's node id (as the relay
  /// authenticated it) and the bytes (valid during the call only).
  using ReceiveFn = std::function<void(const NodeId& from, ByteView datagram)>;
  /// PeerGoneFn gets the relay's peer-gone reports.
  using PeerGoneFn = std::function<void(const NodeId& peer, PeerGoneReason reason)>;
  /// StateFn gets every state change, with the error that caused a move to `waiting`.
  using StateFn = std::function<void(ClientState state, const std::optional<P2PError>& why)>;
  /// StunFn gets the relay's STUN responder addresses (stun_addrs()) when its StunInfo frame
  /// arrives (once per session; never for a relay without STUN).
  using StunFn = std::function<void(const std::vector<env::SocketAddr>& stun)>;

  /// create validates the configuration (URL scheme, host, port; TLS CA file readable). With
  /// config.sim_host, `ex` must be the executor of the host's runtime and the URL plain http.
  /// Errors: invalid_configuration.
  [[nodiscard]] static P2PResult<std::shared_ptr<Client>> create(asio::any_io_executor ex, ClientConfig config);

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  virtual ~Client();

  /// on_receive, on_peer_gone and on_state set the callbacks (before start()).
  void on_receive(ReceiveFn fn);
  /// on_peer_gone: see on_receive.
  void on_peer_gone(PeerGoneFn fn);
  /// on_state: see on_receive.
  void on_state(StateFn fn);
  /// on_stun: see on_receive.
  void on_stun(StunFn fn);
  /// on_drain sets the callback that runs once the send queue, after writable() returned false,
  /// fell to a quarter of send_queue_bytes_max: a sender that paces itself by writable() resumes
  /// there instead of losing datagrams to a full queue.
  void on_drain(std::function<void()> fn);
  /// writable reports whether the send queue is below half of send_queue_bytes_max. When it is
  /// not, the on_drain callback runs once it has drained.
  [[nodiscard]] bool writable();
  /// start begins connecting (and reconnecting after failures) until close().
  void start();
  /// send queues one datagram (at most kDatagramSizeMax bytes) for node `to`. Datagrams queued
  /// while connecting leave once connected. Returns false (and counts a drop) when the queue is
  /// full, the datagram is too large or the client is closed.
  bool send(const NodeId& to, ByteView datagram);
  /// ping sends one ping now and waits for its pong. Errors: timeout (pong_timeout),
  /// connection_closed (the session ended meanwhile or is not connected), cancelled.
  asio::awaitable<P2PResult<Duration>> ping();
  /// wait_connected waits until the client is connected (at once if it is). Errors: timeout (at
  /// `deadline`: carries the last connect error's message), connection_closed (closed), cancelled.
  asio::awaitable<P2PResult<void>> wait_connected(TimePoint deadline);
  /// close ends the session and stops reconnecting. Idempotent.
  void close();

  /// url returns the configured URL.
  [[nodiscard]] const std::string& url() const noexcept;
  /// state returns the current state.
  [[nodiscard]] ClientState state() const noexcept;
  /// rtt returns the last measured ping round trip, if any.
  [[nodiscard]] std::optional<Duration> rtt() const noexcept;
  /// observed_addr returns this node's address as the relay saw it (from the server's welcome).
  [[nodiscard]] std::optional<env::SocketAddr> observed_addr() const noexcept;
  /// stun_ports returns the UDP ports of the relay's STUN responder (on the IP of the URL's host)
  /// from its StunInfo frame: empty until received, and for a relay without STUN.
  [[nodiscard]] std::vector<std::uint16_t> stun_ports() const;
  /// stun_addrs returns the relay's STUN responders: stun_ports() on the IP this session connected
  /// to (empty until both are known).
  [[nodiscard]] std::vector<env::SocketAddr> stun_addrs() const;
  /// last_error returns the last connect or session error, if any.
  [[nodiscard]] std::optional<P2PError> last_error() const;
  /// stats returns the counters.
  [[nodiscard]] ClientStats stats() const noexcept;
  /// queued_bytes returns the datagram bytes queued and not yet written (at most
  /// send_queue_bytes_max): a sender can pace itself on it instead of meeting refusals.
  [[nodiscard]] std::size_t queued_bytes() const noexcept;

  /// kDatagramSizeMax is the largest datagram the protocol carries.
  static constexpr std::size_t kDatagramSizeMax = 65'535;

 protected:
  Client() = default;
};

/// probe_latency measures one HTTP round trip to the relay's /generate_204 over a fresh connection
/// (TCP connect and TLS excluded): how the endpoint picks its home relay.
/// Errors: invalid_configuration (bad URL), network_error (cannot connect, bad answer), timeout.
asio::awaitable<P2PResult<Duration>> probe_latency(asio::any_io_executor ex, std::string url, Duration timeout,
                                                   std::optional<std::string> tls_ca_file = std::nullopt);

/// probe_latency is the same probe from the simulated host `host` (in virtual time, over a simnet
/// stream; the URL is plain http with an IP literal or a name the network resolves).
/// Errors: invalid_configuration (bad URL, https, a name the network does not know), network_error
/// (cannot connect, bad answer), timeout.
asio::awaitable<P2PResult<Duration>> probe_latency(simnet::Host& host, std::string url, Duration timeout);

/// RelayProbe is what one GET /generate_204 (with a random X-Moosicbox-P2P-Challenge) showed.
struct RelayProbe {
  /// latency is the HTTP round trip (TCP connect and TLS excluded).
  Duration latency{};
  /// status is the HTTP status of the answer.
  unsigned status = 0;
  /// challenge_echoed is true for a 204 whose X-Moosicbox-P2P-Response header is the challenge: a
  /// real relay answered (no captive portal in between).
  bool challenge_echoed = false;
  /// stun_ports are the ports of the X-Moosicbox-P2P-Stun header (empty without one).
  std::vector<std::uint16_t> stun_ports;
};

/// probe_relay sends one GET /generate_204 over a fresh connection and reports the answer, whatever
/// it is (a captive portal's 200 is a result, not an error).
/// Errors: invalid_configuration (bad URL), network_error (cannot connect, not HTTP), timeout.
asio::awaitable<P2PResult<RelayProbe>> probe_relay(asio::any_io_executor ex, std::string url, Duration timeout,
                                                   std::optional<std::string> tls_ca_file = std::nullopt);

/// probe_relay is the same probe from the simulated host `host` (virtual time, a simnet stream).
/// Errors: as probe_latency on a simulated host.
asio::awaitable<P2PResult<RelayProbe>> probe_relay(simnet::Host& host, std::string url, Duration timeout);

}  // namespace moosicbox::p2p::relay
