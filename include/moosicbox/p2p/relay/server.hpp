// SPDX-License-Identifier: MIT OR Apache-2.0
// server.hpp: RelayServer, the relay a node falls back to when no direct path exists. Clients hold
// one WebSocket each (HTTP/1.1 GET /relay upgraded, subprotocol moosicbox-p2p-relay-v1), prove they
// own their node id by signing a challenge, and send datagrams addressed by node id; the server
// forwards them as opaque bytes (end-to-end encrypted QUIC packets it can neither read nor forge).
// It also serves /healthz, /generate_204 (captive-portal probe) and /metrics (Prometheus text).
// The wire format is in docs/protocol.md, operation in docs/operations.md. The same server also runs
// on a simulated host (RelayServerConfig::sim_host) in virtual time, for simulation tests.
// Layer: relay. A RelayServer and its sessions run on the executor given to create(): no locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "moosicbox/p2p/core/asio.hpp"
#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/time.hpp"
#include "moosicbox/p2p/env/socket_addr.hpp"

namespace moosicbox::p2p::simnet {
class Host;
}  // namespace moosicbox::p2p::simnet

namespace moosicbox::p2p::relay {

/// SocketAddr is the environment's socket address type.
using SocketAddr = env::SocketAddr;

/// RelayServerLimits bounds what clients can make the server hold or do. Every queue is bounded:
/// what does not fit is dropped and counted, never buffered without limit.
struct RelayServerLimits {
  /// frame_size_max is the largest WebSocket message accepted or sent (a frame of the protocol).
  std::size_t frame_size_max = 64 * 1024;
  /// client_bytes_per_second is the sustained rate of datagram bytes one client may send (token
  /// bucket); datagrams beyond it are dropped and counted (reason rate_limited). 0: unlimited.
  std::uint64_t client_bytes_per_second = 0;
  /// client_burst_bytes is the token bucket's depth.
  std::uint64_t client_burst_bytes = 4 * 1024 * 1024;
  /// client_queue_bytes_max bounds the bytes queued towards one client; datagrams beyond it are
  /// dropped and counted (reason queue_full).
  std::size_t client_queue_bytes_max = 1024 * 1024;
  /// clients_max bounds connected clients; more are refused with HTTP 503.
  std::size_t clients_max = 100'000;
  /// clients_per_ip_max bounds clients (and handshakes in progress) per source IP; more are refused
  /// with HTTP 429.
  std::size_t clients_per_ip_max = 64;
  /// handshake_timeout bounds the time from TCP accept to an authenticated client.
  Duration handshake_timeout = std::chrono::seconds(10);
  /// idle_timeout closes a client that sent nothing (not even a ping) for this long.
  Duration idle_timeout = std::chrono::seconds(60);
  /// http_request_bytes_max bounds an HTTP request head.
  std::size_t http_request_bytes_max = 8 * 1024;
};

/// RelayServerConfig configures a RelayServer.
struct RelayServerConfig {
  /// bind_addrs lists the TCP addresses to listen on (port 0 picks a free port).
  std::vector<SocketAddr> bind_addrs = {SocketAddr::v4({127, 0, 0, 1}, 0)};
  /// stun_bind_addrs lists the UDP addresses of the STUN responder (RFC 8489 Binding requests,
  /// answered with the sender's address: how nodes learn their public address; port 0 picks a free
  /// port). Empty (the default): no STUN. Clients learn the ports from a StunInfo frame after the
  /// welcome and from the X-Moosicbox-P2P-Stun header of /generate_204, and send to the relay URL's
  /// IP, so bind the same IPs as bind_addrs (conventionally port 3478).
  std::vector<SocketAddr> stun_bind_addrs;
  /// tls_cert_file and tls_key_file (PEM) turn on TLS (https / wss); both or neither. Without them
  /// the server speaks plain HTTP (behind a TLS-terminating proxy, or for tests).
  std::optional<std::string> tls_cert_file;
  /// tls_key_file is the private key of tls_cert_file (PEM).
  std::optional<std::string> tls_key_file;
  /// trust_forwarded_for takes the client's address from the X-Forwarded-For header (set it only
  /// behind a proxy that sets the header): per-IP limits and the observed address then use it.
  bool trust_forwarded_for = false;
  /// limits bounds clients.
  RelayServerLimits limits;
  /// restart_reconnect_in and restart_try_for go in the `restarting` frame a graceful restart
  /// sends: clients reconnect after about reconnect_in and keep trying for try_for.
  Duration restart_reconnect_in = std::chrono::milliseconds(500);
  /// restart_try_for: see restart_reconnect_in.
  Duration restart_try_for = std::chrono::seconds(30);
  /// sim_host, when set, runs the server on that simulated host (which must outlive it): it listens
  /// on bind_addrs of the host (its addresses, or a wildcard) with simnet streams, in virtual time,
  /// with the host's seeded random stream; every deadline is a virtual-time event. Plain HTTP only.
  simnet::Host* sim_host = nullptr;
};

/// RelayServerStats is a snapshot of the server's counters (the /metrics page shows the same).
struct RelayServerStats {
  std::uint64_t clients = 0;              ///< authenticated clients connected now
  std::uint64_t handshakes = 0;           ///< connections not yet authenticated
  std::uint64_t accepted_total = 0;       ///< clients that completed the handshake
  std::uint64_t handshake_failures = 0;   ///< handshakes refused (bad signature, timeout, protocol)
  std::uint64_t refused_per_ip = 0;       ///< connections refused by clients_per_ip_max
  std::uint64_t refused_capacity = 0;     ///< connections refused by clients_max
  std::uint64_t frames_received = 0;      ///< protocol frames received from clients
  std::uint64_t datagrams_forwarded = 0;  ///< datagrams queued to their destination
  std::uint64_t bytes_forwarded = 0;      ///< datagram bytes queued to their destination
  std::uint64_t drops_no_peer = 0;        ///< datagrams to a node id that is not connected
  std::uint64_t drops_rate_limited = 0;   ///< datagrams over the sender's rate
  std::uint64_t drops_queue_full = 0;     ///< datagrams over the destination's queue
  std::uint64_t drops_malformed = 0;      ///< frames that did not parse (the client is closed)
  std::uint64_t peer_gone_sent = 0;       ///< peer-gone frames sent
  std::uint64_t http_requests = 0;        ///< plain HTTP requests served (/healthz, /metrics, ...)
  std::uint64_t frames_unknown = 0;       ///< frames of an unknown type (ignored)
  std::uint64_t stun_requests = 0;        ///< STUN Binding requests answered
  std::uint64_t stun_malformed = 0;       ///< datagrams to the STUN port that were not a valid request (dropped)

  /// operator== compares every counter.
  friend bool operator==(const RelayServerStats&, const RelayServerStats&) = default;
};

/// RelayServer is a running relay. Dropping it stops it (without the restart announcement).
class RelayServer {
 public:
  /// create binds every address of `config` and starts serving on `ex` (with config.sim_host, the
  /// executor of the host's runtime).
  /// Errors: invalid_configuration (bad limits, one of the TLS files missing or unreadable, a bad
  /// certificate or key; under simulation TLS files or another executor), network_error (an address
  /// cannot be bound).
  [[nodiscard]] static P2PResult<RelayServer> create(asio::any_io_executor ex, RelayServerConfig config);
  /// create starts the server on simulated host `host` (config.sim_host = &host, on the executor of
  /// the host's runtime). Errors: as above.
  [[nodiscard]] static P2PResult<RelayServer> create(simnet::Host& host, RelayServerConfig config);

  /// Move-only.
  ///@{
  RelayServer(RelayServer&&) noexcept;
  RelayServer& operator=(RelayServer&&) noexcept;
  RelayServer(const RelayServer&) = delete;
  RelayServer& operator=(const RelayServer&) = delete;
  ///@}
  ~RelayServer();

  /// local_addrs returns the bound addresses (ports resolved).
  [[nodiscard]] std::vector<SocketAddr> local_addrs() const;
  /// local_stun_addrs returns the bound STUN addresses (ports resolved; empty without STUN).
  [[nodiscard]] std::vector<SocketAddr> local_stun_addrs() const;
  /// url returns the URL clients use for the first bound address: "http://127.0.0.1:PORT" or
  /// "https://...". Behind a proxy, clients use the proxy's URL instead.
  [[nodiscard]] std::string url() const;
  /// stats returns the counters.
  [[nodiscard]] RelayServerStats stats() const;
  /// metrics_text returns the /metrics page (Prometheus text exposition format 0.0.4).
  [[nodiscard]] std::string metrics_text() const;
  /// set_health sends a `health` frame (status ok or degraded, a message of at most 255 bytes) to
  /// every client now, and to every client that connects later while the status is degraded.
  void set_health(bool degraded, std::string message);
  /// shutdown stops accepting, sends `restarting` to every client when `restarting` is true (else
  /// closes them with WebSocket close code 1001), and completes when every session has ended.
  /// Idempotent. Never fails.
  asio::awaitable<void> shutdown(bool restarting);

  /// State is the server's internal state (opaque).
  struct State;

 private:
  explicit RelayServer(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace moosicbox::p2p::relay
