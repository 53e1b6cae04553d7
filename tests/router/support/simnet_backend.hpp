// SPDX-License-Identifier: MIT OR Apache-2.0
// simnet_backend.hpp: the router driver suite's backend trait on the real QUIC backend on the
// simulated packet network: the server is a public host, every client a host behind a NAT router of
// its own (the kinds alternate: endpoint-independent, address-dependent, symmetric with random
// ports), 2 ms links; real Endpoints, virtual time.
// Layer: tests. Single-threaded on the world's runtime.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "endpoint/simnet_fixture.hpp"
#include "moosicbox/p2p/router/wire.hpp"
#include "router/support/harness.hpp"

namespace moosicbox::p2p::testing {

/// SimnetBackend runs the router over QUIC on the simulated network in virtual time.
class SimnetBackend {
 public:
  static constexpr std::string_view kName = "simnet";
  static constexpr bool kVirtualTime = true;
  using Env = env::SimEnv;
  using Listener = p2p::Listener;
  using Connection = p2p::Connection;

  explicit SimnetBackend(std::uint64_t seed) : world_(seed) {
    server_host_ = &world_.public_host("server", "203.0.113.1", link());
    auto cfg = SimWorld::config("server");
    cfg.close_timeout = std::chrono::seconds(1);
    server_.emplace(world_.endpoint(*server_host_, std::move(cfg)));
  }
  SimnetBackend(const SimnetBackend&) = delete;
  SimnetBackend& operator=(const SimnetBackend&) = delete;
  ~SimnetBackend() {
    clients_.clear();
    server_.reset();
  }

  [[nodiscard]] std::uint64_t seed() const noexcept { return world_.seed(); }
  [[nodiscard]] Env server_env() const { return server_host_->env(); }
  [[nodiscard]] Env client_env() const { return server_host_->env(); }
  [[nodiscard]] asio::any_io_executor executor() { return world_.executor(); }
  [[nodiscard]] static NodeId server_id() { return test_node_id("server"); }
  [[nodiscard]] static NodeId client_id(std::string_view name) { return test_node_id(name); }
  asio::awaitable<P2PResult<Listener>> listen() { co_return server_->listen(router::kAlpn); }
  asio::awaitable<P2PResult<Connection>> connect(std::string_view name) {
    auto it = clients_.find(std::string(name));
    if (it == clients_.end()) {
      const std::size_t i = clients_.size();
      static constexpr simnet::NatMapping kKinds[] = {simnet::NatMapping::endpoint_independent,
                                                      simnet::NatMapping::address_dependent,
                                                      simnet::NatMapping::address_and_port_dependent};
      auto nat = nat_config(kKinds[i % 3], simnet::NatFiltering::address_and_port,
                            i % 3 == 2 ? simnet::NatPorts::random : simnet::NatPorts::preserve);
      auto& host =
          world_.natted_host(std::string(name), fmt::format("198.51.100.{}", i + 1), nat, "192.168.1.2", link());
      auto cfg = SimWorld::config(name);
      cfg.close_timeout = std::chrono::seconds(1);
      it = clients_.emplace(std::string(name), world_.endpoint(host, std::move(cfg))).first;
    }
    return dial(it->second, server_->addr());
  }
  bool run_until(const std::function<bool()>& done, Duration limit = std::chrono::minutes(10)) {
    world_.runtime().run_while([&] { return !done(); }, world_.runtime().now() + limit);
    return done();
  }
  void run_for(Duration d) { world_.runtime().run_for(d); }

 private:
  static simnet::LinkParams link() {
    simnet::LinkParams l;
    l.latency = std::chrono::milliseconds(1);
    return l;
  }
  static asio::awaitable<P2PResult<Connection>> dial(Endpoint ep, NodeAddr server) {
    co_return co_await ep.connect(server, router::kAlpn);
  }

  SimWorld world_;
  simnet::Host* server_host_ = nullptr;
  std::optional<Endpoint> server_;
  std::map<std::string, Endpoint> clients_;
};

}  // namespace moosicbox::p2p::testing
