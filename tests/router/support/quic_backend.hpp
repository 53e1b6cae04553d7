// SPDX-License-Identifier: MIT OR Apache-2.0
// quic_backend.hpp: the router driver suite's backend traits on the real QUIC backend: loopback
// endpoints (127.0.0.1, kernel-chosen ports), one per identity, on one io_context with AsioEnv.
// QuicBackend connects them directly; RelayBackend only through a relay server on loopback (direct
// paths off), so every packet crosses the relay.
// Real time: the suite's waits are scaled down (tick() is 100 ms) and every run is bounded.
// Layer: tests (integration). Single-threaded on the io_context.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>

#include "moosicbox/p2p/endpoint/endpoint.hpp"
#include "moosicbox/p2p/env/asio_env.hpp"
#include "moosicbox/p2p/relay/server.hpp"
#include "moosicbox/p2p/router/wire.hpp"
#include "router/support/harness.hpp"

namespace moosicbox::p2p::testing {

/// QuicBackendOf runs the router over QUIC on loopback, through a relay when `kRelayed`.
template <bool kRelayed>
class QuicBackendOf {
 public:
  static constexpr std::string_view kName = kRelayed ? "relay" : "quic";
  static constexpr bool kVirtualTime = false;
  using Env = env::AsioEnv;
  using Listener = p2p::Listener;
  using Connection = p2p::Connection;

  explicit QuicBackendOf(std::uint64_t seed) : seed_(seed), env_(io_.get_executor()) {
    if constexpr (kRelayed) {
      relay::RelayServerConfig rc;
      rc.bind_addrs = {SocketAddr::v4_loopback(0)};
      auto r = relay::RelayServer::create(io_.get_executor(), std::move(rc));
      EXPECT_TRUE(r.has_value()) << r.error().message();
      relay_url_ = r->url();
      relay_.emplace(std::move(*r));
    }
    auto ep = Endpoint::bind(io_.get_executor(), config("server"));
    EXPECT_TRUE(ep.has_value()) << ep.error().message();
    server_.emplace(std::move(*ep));
  }
  QuicBackendOf(const QuicBackendOf&) = delete;
  QuicBackendOf& operator=(const QuicBackendOf&) = delete;
  ~QuicBackendOf() {
    // Close every endpoint gracefully (bounded), so no socket or coroutine outlives the test.
    int open = 0;
    auto close_one = [&](Endpoint ep) {
      ++open;
      start(io_.get_executor(), [ep, &open]() mutable -> asio::awaitable<void> {
        co_await ep.close();
        --open;
      });
    };
    for (auto& [name, ep] : clients_) close_one(ep);
    if (server_) close_one(*server_);
    clients_.clear();
    server_.reset();
    run_until([&] { return open == 0; }, std::chrono::seconds(10));
    if (relay_) {
      bool stopped = false;
      start(io_.get_executor(), [this, &stopped]() -> asio::awaitable<void> {
        co_await relay_->shutdown(false);
        stopped = true;
      });
      run_until([&] { return stopped; }, std::chrono::seconds(10));
    }
  }

  [[nodiscard]] std::uint64_t seed() const noexcept { return seed_; }
  [[nodiscard]] Env server_env() const { return env_; }
  [[nodiscard]] Env client_env() const { return env_; }
  [[nodiscard]] asio::any_io_executor executor() { return io_.get_executor(); }
  [[nodiscard]] static NodeId server_id() { return test_node_id("server"); }
  [[nodiscard]] static NodeId client_id(std::string_view name) { return test_node_id(name); }
  asio::awaitable<P2PResult<Listener>> listen() { co_return server_->listen(router::kAlpn); }
  asio::awaitable<P2PResult<Connection>> connect(std::string_view name) {
    auto it = clients_.find(std::string(name));
    if (it == clients_.end()) {
      auto ep = Endpoint::bind(io_.get_executor(), config(name));
      if (!ep) return failed(ep.error());
      it = clients_.emplace(std::string(name), std::move(*ep)).first;
    }
    return dial(it->second, *server_);
  }
  /// run_until runs the io_context until `done()` or `limit` of real time (on the environment's
  /// clock) passed; returns done().
  bool run_until(const std::function<bool()>& done, Duration limit = std::chrono::seconds(60)) {
    const TimePoint end = env_.now() + limit;
    while (!done() && env_.now() < end) {
      if (io_.stopped()) io_.restart();
      io_.run_one_for(std::chrono::milliseconds(20));
    }
    return done();
  }

 private:
  EndpointConfig config(std::string_view name) const {
    EndpointConfig cfg(test_secret_key(name));
    if constexpr (kRelayed) {
      cfg.relay_urls = {relay_url_};
      cfg.direct_paths = false;
    }
    cfg.bind_addrs = {SocketAddr::v4_loopback(0)};
    cfg.initial_rtt = std::chrono::milliseconds(1);
    cfg.close_timeout = std::chrono::seconds(1);
    return cfg;
  }
  static asio::awaitable<P2PResult<Connection>> dial(Endpoint ep, Endpoint server) {
    if constexpr (kRelayed) {
      // The relay answers "peer gone" for a node whose session is not up yet.
      auto home = co_await server.wait_home_relay(std::chrono::seconds(10));
      if (!home) co_return fail(home.error());
    }
    co_return co_await ep.connect(server.addr(), router::kAlpn);
  }
  static asio::awaitable<P2PResult<Connection>> failed(P2PError e) { co_return fail(std::move(e)); }

  std::uint64_t seed_;
  asio::io_context io_{1};
  env::AsioEnv env_;
  std::optional<relay::RelayServer> relay_;
  std::string relay_url_;
  std::optional<Endpoint> server_;
  std::map<std::string, Endpoint> clients_;
};

/// QuicBackend connects directly; RelayBackend through a relay.
using QuicBackend = QuicBackendOf<false>;
/// RelayBackend: see QuicBackend.
using RelayBackend = QuicBackendOf<true>;

}  // namespace moosicbox::p2p::testing
