// SPDX-License-Identifier: MIT OR Apache-2.0
// quic_backend.hpp: the router driver suite's backend trait on the real QUIC backend: loopback
// endpoints (127.0.0.1, kernel-chosen ports), one per identity, on one io_context with AsioEnv.
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
#include "moosicbox/p2p/router/wire.hpp"
#include "router/support/harness.hpp"

namespace moosicbox::p2p::testing {

/// QuicBackend runs the router over QUIC on loopback.
class QuicBackend {
 public:
  static constexpr std::string_view kName = "quic";
  static constexpr bool kVirtualTime = false;
  using Env = env::AsioEnv;
  using Listener = p2p::Listener;
  using Connection = p2p::Connection;

  explicit QuicBackend(std::uint64_t seed) : seed_(seed), env_(io_.get_executor()) {
    auto ep = Endpoint::bind(io_.get_executor(), config("server"));
    EXPECT_TRUE(ep.has_value()) << ep.error().message();
    server_.emplace(std::move(*ep));
  }
  QuicBackend(const QuicBackend&) = delete;
  QuicBackend& operator=(const QuicBackend&) = delete;
  ~QuicBackend() {
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
    return dial(it->second, server_->addr());
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
  static EndpointConfig config(std::string_view name) {
    EndpointConfig cfg(test_secret_key(name));
    cfg.bind_addrs = {SocketAddr::v4_loopback(0)};
    cfg.initial_rtt = std::chrono::milliseconds(1);
    cfg.close_timeout = std::chrono::seconds(1);
    return cfg;
  }
  static asio::awaitable<P2PResult<Connection>> dial(Endpoint ep, NodeAddr server) {
    co_return co_await ep.connect(std::move(server), router::kAlpn);
  }
  static asio::awaitable<P2PResult<Connection>> failed(P2PError e) { co_return fail(std::move(e)); }

  std::uint64_t seed_;
  asio::io_context io_{1};
  env::AsioEnv env_;
  std::optional<Endpoint> server_;
  std::map<std::string, Endpoint> clients_;
};

}  // namespace moosicbox::p2p::testing
