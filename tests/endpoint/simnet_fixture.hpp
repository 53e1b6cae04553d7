// SPDX-License-Identifier: MIT OR Apache-2.0
// simnet_fixture.hpp: the real stack on the simulated packet network, for tests. SimWorld owns a
// runtime (virtual time, one seed), a simnet::Network, public hosts, hosts behind NAT routers, and
// real Endpoints bound on them; run() steps virtual time until a test coroutine finishes.
// Seeds: P2P_SIM_SEED replays one seed; every failure message carries `replay()`.
// Layer: tests (endpoint). Single-threaded on the runtime.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include "moosicbox/p2p/endpoint/endpoint.hpp"
#include "moosicbox/p2p/env/sim_entropy.hpp"
#include "moosicbox/p2p/env/sim_env.hpp"
#include "moosicbox/p2p/simnet/network.hpp"

namespace moosicbox::p2p::testing {

/// sim_seed returns P2P_SIM_SEED when set, else `fallback`.
inline std::uint64_t sim_seed(std::uint64_t fallback) {
  if (const char* s = std::getenv("P2P_SIM_SEED")) return std::strtoull(s, nullptr, 10);
  return fallback;
}

/// sim_seed_count returns P2P_SIM_SEEDS when set (a sweep's length), else `fallback`.
inline std::size_t sim_seed_count(std::size_t fallback) {
  if (std::getenv("P2P_SIM_SEED") != nullptr) return 1;
  if (const char* s = std::getenv("P2P_SIM_SEEDS")) return std::strtoull(s, nullptr, 10);
  return fallback;
}

/// SimWorld is a simulated network with real endpoints on it.
class SimWorld {
 public:
  explicit SimWorld(std::uint64_t seed) : rt_(seed), calendar_(rt_), net_(std::make_unique<simnet::Network>(rt_)) {}
  SimWorld(const SimWorld&) = delete;
  SimWorld& operator=(const SimWorld&) = delete;
  ~SimWorld() {
    close_all();
    // Coroutines still parked refer to sockets of the network: end them while it exists.
    rt_.shutdown();
    endpoints_.clear();
    net_.reset();
  }

  [[nodiscard]] std::uint64_t seed() const noexcept { return rt_.seed(); }
  [[nodiscard]] env::SimRuntime& runtime() noexcept { return rt_; }
  [[nodiscard]] simnet::Network& net() noexcept { return *net_; }
  [[nodiscard]] asio::any_io_executor executor() { return rt_.executor(); }
  /// replay is the line every failure prints.
  [[nodiscard]] std::string replay() const {
    return fmt::format("seed {} (replay: P2P_SIM_SEED={} ctest -R <test>)", rt_.seed(), rt_.seed());
  }

  /// public_host adds a host on the internet at `ip`.
  simnet::Host& public_host(const std::string& name, std::string_view ip, simnet::LinkParams link = {}) {
    auto h = net_->add_host(name, net_->internet(), {SocketAddr::parse_ip(ip, 0).value()}, link);
    if (!h) throw std::runtime_error("add_host " + name + ": " + h.error().message());
    return **h;
  }
  /// natted_host adds a router at public `ip` with `nat` and one host behind it at `lan_ip`.
  simnet::Host& natted_host(const std::string& name, std::string_view ip, simnet::NatConfig nat,
                            std::string_view lan_ip = "192.168.1.2", simnet::LinkParams link = {}) {
    auto r = net_->add_router(name + "-nat", net_->internet(), SocketAddr::parse_ip(ip, 0).value(), nat, link);
    if (!r) throw std::runtime_error("add_router " + name + ": " + r.error().message());
    auto h = net_->add_host(name, (*r)->lan(), {SocketAddr::parse_ip(lan_ip, 0).value()}, simnet::LinkParams{});
    if (!h) throw std::runtime_error("add_host " + name + ": " + h.error().message());
    return **h;
  }

  /// config returns a configuration for a simulated endpoint named `name` (IPv4 wildcard).
  static EndpointConfig config(std::string_view name) {
    EndpointConfig cfg(test_secret_key(name));
    cfg.bind_addrs = {SocketAddr::v4_any(0)};
    cfg.connect_timeout = std::chrono::seconds(10);
    cfg.close_timeout = std::chrono::seconds(2);
    cfg.idle_timeout = std::chrono::seconds(30);
    return cfg;
  }
  /// endpoint binds an endpoint on `host`, owned by the world.
  Endpoint endpoint(simnet::Host& host, EndpointConfig cfg) {
    auto ep = Endpoint::bind(host, std::move(cfg));
    if (!ep) throw std::runtime_error("bind on " + host.name() + ": " + ep.error().message());
    endpoints_.push_back(*ep);
    return std::move(*ep);
  }
  Endpoint endpoint(simnet::Host& host) { return endpoint(host, config(host.name())); }

  /// run runs `task` until it finishes or `limit` of virtual time passes; nullopt then. Rethrows.
  template <class T>
  std::optional<T> run(asio::awaitable<T> task, Duration limit = std::chrono::minutes(5)) {
    // Shared: a task that outlives this call (the limit passed) completes into it later.
    struct Slot {
      std::optional<T> out;
      std::exception_ptr error;
      bool done = false;
    };
    auto slot = std::make_shared<Slot>();
    asio::co_spawn(
        rt_.executor(),
        [](asio::awaitable<T> t, std::shared_ptr<Slot> s) -> asio::awaitable<void> {
          s->out.emplace(co_await std::move(t));
        }(std::move(task), slot),
        [slot](std::exception_ptr e) {
          slot->error = e;
          slot->done = true;
        });
    rt_.run_while([&] { return !slot->done; }, rt_.now() + limit);
    if (slot->error) std::rethrow_exception(slot->error);
    if (!slot->done) return std::nullopt;
    return std::move(slot->out);
  }

  /// close_all closes every endpoint gracefully (bounded in virtual time).
  void close_all() {
    if (endpoints_.empty()) return;
    auto eps = std::move(endpoints_);
    endpoints_.clear();
    (void)run(
        [](std::vector<Endpoint> v) -> asio::awaitable<int> {
          for (auto& e : v) co_await e.close();
          co_return 0;
        }(std::move(eps)),
        std::chrono::seconds(30));
  }

 private:
  env::SimRuntime rt_;
  env::VirtualCalendarScope calendar_;  // TLS timestamps (session tickets) in virtual time
  std::unique_ptr<simnet::Network> net_;
  std::vector<Endpoint> endpoints_;
};

/// nat_config builds a NAT configuration.
inline simnet::NatConfig nat_config(simnet::NatMapping m, simnet::NatFiltering f,
                                    simnet::NatPorts p = simnet::NatPorts::preserve) {
  simnet::NatConfig c;
  c.mapping = m;
  c.filtering = f;
  c.ports = p;
  return c;
}

}  // namespace moosicbox::p2p::testing
