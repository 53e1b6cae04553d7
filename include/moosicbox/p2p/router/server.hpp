// SPDX-License-Identifier: MIT OR Apache-2.0
// server.hpp: serving a P2PRouter over connections. Server::serve(listener) accepts connections
// from any P2PListener whose connections carry streams (P2PStreamConnection); each connection's
// streams are accepted concurrently, one request per stream, with a per-peer and a global limit on
// requests in flight (backpressure: the next stream is not accepted until a slot frees), request
// timeouts on the environment's clock, and a graceful shutdown that lets requests in flight finish.
// The same Server runs on the simulator and on the QUIC backend; only the types differ.
// Layer: router. A Server and everything it serves run on the environment's executor.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <variant>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "moosicbox/p2p/concepts.hpp"
#include "moosicbox/p2p/core/node_id.hpp"
#include "moosicbox/p2p/env/concepts.hpp"
#include "moosicbox/p2p/router/router.hpp"
#include "moosicbox/p2p/router/stream.hpp"
#include "moosicbox/p2p/router/wire.hpp"
#include "moosicbox/p2p/streams.hpp"

namespace moosicbox::p2p::router {

/// RequestOutcome is how a served request ended.
enum class RequestOutcome : std::uint8_t {
  completed,          ///< the response was sent in full
  refused,            ///< the head was refused (400, 408, 413, 431, 501) and answered
  aborted_by_peer,    ///< the client reset or stopped the stream, or the connection went away
  aborted_by_server,  ///< the body source failed mid-body: the stream was reset
  timed_out,          ///< a timeout expired (answered with 408 or 503 when the head was not yet sent)
  shut_down,          ///< the server shut down before the request finished
};

/// request_outcome_name returns the outcome's name ("completed", ...).
[[nodiscard]] std::string_view request_outcome_name(RequestOutcome o) noexcept;

/// RequestRecord describes one finished request, for logging and metrics hooks.
struct RequestRecord {
  NodeId remote;                                       ///< the peer
  Method method = Method::GET;                         ///< the method (GET when the head never arrived)
  std::string path;                                    ///< the raw path ("" when the head never arrived)
  StatusCode status = StatusCode::ok;                  ///< the status sent (or that would have been sent)
  RequestOutcome outcome = RequestOutcome::completed;  ///< how the request ended
  std::uint64_t bytes_received = 0;                    ///< stream bytes read (head and body)
  std::uint64_t bytes_sent = 0;                        ///< stream bytes written (head and body)
  Duration duration{};                                 ///< from the stream's acceptance to the end
};

/// ServerStats counts a server's work.
struct ServerStats {
  std::uint64_t connections_accepted = 0;  ///< connections the server took on since it started
  std::uint64_t connections_active = 0;    ///< connections being served now
  std::uint64_t requests_started = 0;      ///< requests (streams) started since the server started
  std::uint64_t requests_active = 0;       ///< requests started and not yet finished
  std::uint64_t requests_completed = 0;    ///< outcome completed
  std::uint64_t requests_refused = 0;      ///< outcome refused
  std::uint64_t requests_aborted = 0;      ///< outcomes aborted_by_peer, aborted_by_server, shut_down
  std::uint64_t requests_timed_out = 0;    ///< outcome timed_out
  std::uint64_t peak_requests_active = 0;  ///< the most requests_active has been
  /// requests_deferred_0rtt counts requests other than GET and HEAD that came in 0-RTT early data
  /// and waited for the handshake before their handler ran.
  std::uint64_t requests_deferred_0rtt = 0;
};

/// ServeOptions configures a server.
struct ServeOptions {
  /// head_limits bounds request heads (431 above).
  HeadLimits head_limits;
  /// body_bytes_max is the request body limit of routes without their own (413 above).
  std::uint64_t body_bytes_max = std::uint64_t{8} << 20;
  /// peer_requests_max bounds the requests of one peer in flight, over all its connections.
  std::size_t peer_requests_max = 64;
  /// requests_max bounds the requests in flight over all peers.
  std::size_t requests_max = 1024;
  /// head_timeout bounds the wait for a request head (408 after it).
  Duration head_timeout = std::chrono::seconds(10);
  /// handler_timeout bounds the wait for the handler's response, extended by idle_timeout while the
  /// handler keeps reading the request body (503 after it).
  Duration handler_timeout = std::chrono::seconds(30);
  /// idle_timeout bounds a body transfer that makes no progress (the stream is reset after it).
  Duration idle_timeout = std::chrono::seconds(30);
  /// shutdown_grace is how long shutdown waits for requests in flight before aborting them.
  Duration shutdown_grace = std::chrono::seconds(10);
  /// on_request, when set, is called once per finished request (logging, metrics).
  std::function<void(const RequestRecord&)> on_request;
};

/// StreamListener is a P2PListener whose connections carry streams: what a Server serves.
template <class L>
concept StreamListener = P2PListener<L> && P2PStreamConnection<typename L::Connection>;

namespace detail {

struct ConnectionState;

/// log_connection_end is the completion of a connection loop spawned by Server::serve.
void log_connection_end(std::exception_ptr e, P2PResult<void> result);

/// ServerCore is the non-template part of a server: limits, timeouts, shutdown and the request
/// protocol, on an erased environment and erased streams. Its state lives in server.cpp.
class ServerCore : public std::enable_shared_from_this<ServerCore> {
 public:
  struct Impl;
  /// create makes a core and starts its timeout watchdog on the environment's executor.
  [[nodiscard]] static std::shared_ptr<ServerCore> create(std::shared_ptr<AnyEnv> env,
                                                          std::shared_ptr<const P2PRouter> router,
                                                          ServeOptions options);
  explicit ServerCore(std::unique_ptr<Impl> impl);
  ServerCore(const ServerCore&) = delete;
  ServerCore& operator=(const ServerCore&) = delete;
  ~ServerCore();

  /// wait_shutdown completes when shutdown() is called (at once after it).
  asio::awaitable<void> wait_shutdown();
  /// shutdown stops accepting; requests in flight go on (see drain).
  void shutdown();
  /// shutting_down is true after shutdown().
  [[nodiscard]] bool shutting_down() const noexcept;
  /// drain waits until every request and connection loop has ended: requests get shutdown_grace,
  /// then are aborted.
  asio::awaitable<void> drain();
  /// stop ends the watchdog; called when the Server goes away.
  void stop();
  /// stats returns the counters.
  [[nodiscard]] ServerStats stats() const noexcept;
  /// executor returns the environment's executor.
  [[nodiscard]] asio::any_io_executor executor() const;

  /// open_connection registers a connection of `peer`.
  [[nodiscard]] std::shared_ptr<ConnectionState> open_connection(const NodeId& peer);
  /// connection_slot returns the slot through which shutdown cancels the connection's loop.
  [[nodiscard]] asio::cancellation_slot connection_slot(const std::shared_ptr<ConnectionState>& conn);
  /// close_connection unregisters it.
  void close_connection(const std::shared_ptr<ConnectionState>& conn);
  /// admit waits for a request slot of the peer and of the server. Errors: cancelled (shutdown).
  asio::awaitable<P2PResult<void>> admit(std::shared_ptr<ConnectionState> conn);
  /// start serves `stream` as one request; admit() must have succeeded.
  void start(const std::shared_ptr<ConnectionState>& conn, std::unique_ptr<AnyBiStream> stream);
  /// wait_idle waits until the connection's requests have all ended.
  asio::awaitable<void> wait_idle(std::shared_ptr<ConnectionState> conn);

 private:
  std::unique_ptr<Impl> impl_;
};

/// ConnectionTicket unregisters a connection from its server when the connection's loop ends.
class ConnectionTicket {
 public:
  ConnectionTicket(std::shared_ptr<ServerCore> core, std::shared_ptr<ConnectionState> conn)
      : core_(std::move(core)), conn_(std::move(conn)) {}
  ConnectionTicket(const ConnectionTicket&) = delete;
  ConnectionTicket& operator=(const ConnectionTicket&) = delete;
  ~ConnectionTicket() { core_->close_connection(conn_); }

 private:
  std::shared_ptr<ServerCore> core_;
  std::shared_ptr<ConnectionState> conn_;
};

/// run_connection accepts the streams of one connection until it closes or the server shuts down,
/// then waits for its requests. It runs with the connection's cancellation slot bound (shutdown
/// cancels its pending accept_bi), and holds the core by value, so it may outlive the Server object.
template <P2PStreamConnection C>
asio::awaitable<P2PResult<void>> run_connection(std::shared_ptr<ServerCore> core,
                                                std::shared_ptr<ConnectionState> state, C conn) {
  // Shutdown arrives as a cancellation: it must end the pending accept, not throw at the next wait.
  co_await asio::this_coro::throw_if_cancelled(false);
  ConnectionTicket ticket(core, state);
  while (!core->shutting_down()) {
    // Streams opened in 0-RTT are taken at once where the backend offers them; the request driver
    // defers all but GET and HEAD on them until the handshake completed (replay protection).
    auto stream = co_await [&] {
      if constexpr (requires { conn.accept_bi_early(); }) {
        return conn.accept_bi_early();
      } else {
        return conn.accept_bi();
      }
    }();
    if (!stream) break;  // the connection closed or failed, or shutdown cancelled the accept
    // Hold the stream until a slot frees: no further stream is accepted meanwhile, so the
    // transport's stream limit pushes back on the peer.
    auto erased = erase_stream(std::move(*stream));
    if (auto slot = co_await core->admit(state); !slot) {
      erased->reset(reset_code(ResetCode::shutdown));
      erased->stop(reset_code(ResetCode::shutdown));
      break;
    }
    core->start(state, std::move(erased));
  }
  co_await core->wait_idle(state);
  if (core->shutting_down()) (void)co_await conn.close();
  co_return P2PResult<void>{};
}

}  // namespace detail

/// Server serves one router on the executor of environment E.
template <env::Environment E>
class Server {
 public:
  /// Server serves `router` with `options`.
  Server(E env, std::shared_ptr<P2PRouter> router, ServeOptions options = {})
      : core_(make_core(env, std::move(router), std::move(options))) {}
  /// Server takes ownership of `router`.
  Server(E env, P2PRouter router, ServeOptions options = {})
      : Server(std::move(env), std::make_shared<P2PRouter>(std::move(router)), std::move(options)) {}
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  /// ~Server stops the server's background work; call shutdown() and let serve() return first.
  ~Server() { core_->stop(); }

  /// serve accepts connections from `listener` and serves each until shutdown(), then waits for the
  /// requests in flight (see ServeOptions::shutdown_grace) and returns. The listener must outlive
  /// the call. Errors: those of listener.accept() other than a cancelled accept during shutdown
  /// (the requests in flight are drained first).
  template <StreamListener L>
  asio::awaitable<P2PResult<void>> serve(L& listener) {
    P2PResult<void> result;
    while (!core_->shutting_down()) {
      // The accept races the shutdown: awaitable_operators' ||, spelled out (no using-directive in
      // a public header).
      auto next =
          co_await asio::experimental::awaitable_operators::operator||(listener.accept(), core_->wait_shutdown());
      if (next.index() == 1) break;
      auto& conn = std::get<0>(next);
      if (!conn) {
        if (!core_->shutting_down()) result = fail(std::move(conn.error()));
        break;
      }
      auto state = core_->open_connection(NodeId(conn->remote_node_id()));
      asio::co_spawn(core_->executor(), detail::run_connection(core_, state, std::move(*conn)),
                     asio::bind_cancellation_slot(core_->connection_slot(state), detail::log_connection_end));
    }
    core_->shutdown();
    co_await core_->drain();
    co_return result;
  }

  /// serve_connection serves the requests of one connection until it closes or shutdown(); it
  /// returns after the connection's requests have ended, closing the connection on shutdown.
  /// Use it to serve connections accepted elsewhere (e.g. dispatched by ALPN).
  template <P2PStreamConnection C>
  asio::awaitable<P2PResult<void>> serve_connection(C conn) {
    // Registered only once awaited, so a serve_connection() never awaited leaves no trace.
    auto core = core_;
    auto state = core->open_connection(NodeId(conn.remote_node_id()));
    co_return co_await asio::co_spawn(core->executor(), detail::run_connection(core, state, std::move(conn)),
                                      asio::bind_cancellation_slot(core->connection_slot(state), asio::use_awaitable));
  }

  /// shutdown stops accepting connections and streams; serve() then drains and returns.
  void shutdown() { core_->shutdown(); }
  /// stats returns the server's counters.
  [[nodiscard]] ServerStats stats() const noexcept { return core_->stats(); }

 private:
  static std::shared_ptr<detail::ServerCore> make_core(const E& env, std::shared_ptr<P2PRouter> router,
                                                       ServeOptions options) {
    router->set_default_body_limit(options.body_bytes_max);
    return detail::ServerCore::create(detail::erase_env(env), std::move(router), std::move(options));
  }
  std::shared_ptr<detail::ServerCore> core_;
};

/// serve serves `router` on `listener` until the listener fails (there is no handle to shut it
/// down: use Server for that). Errors: those of listener.accept().
template <env::Environment E, StreamListener L>
asio::awaitable<P2PResult<void>> serve(E env, L& listener, P2PRouter router, ServeOptions options = {}) {
  Server<E> server(std::move(env), std::move(router), std::move(options));
  co_return co_await server.serve(listener);
}

}  // namespace moosicbox::p2p::router
