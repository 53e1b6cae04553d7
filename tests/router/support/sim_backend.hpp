// SPDX-License-Identifier: MIT OR Apache-2.0
// sim_backend.hpp: the router driver suite's backend trait on SimulatorP2P: a server node and one
// node per client name, each linked to the server, in one deterministic World.
// Layer: tests. Single-threaded on the World's runtime.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "moosicbox/p2p/sim/sim.hpp"
#include "router/support/harness.hpp"

namespace moosicbox::p2p::testing {

/// SimBackend runs the router on the simulator backend in virtual time.
class SimBackend {
 public:
  static constexpr std::string_view kName = "sim";
  static constexpr bool kVirtualTime = true;
  using Env = env::SimEnv;
  using Listener = sim::SimulatorListener;
  using Connection = sim::SimulatorConnection;

  explicit SimBackend(std::uint64_t seed, NetworkConfig net = config()) : world_(seed, net) {
    auto node = world_.add_node("server");
    EXPECT_TRUE(node.has_value());
    server_.emplace(std::move(*node));
  }

  [[nodiscard]] std::uint64_t seed() const noexcept { return world_.seed(); }
  [[nodiscard]] Env server_env() const { return server_->env(); }
  [[nodiscard]] Env client_env() const { return server_->env(); }
  [[nodiscard]] asio::any_io_executor executor() { return world_.runtime().executor(); }
  [[nodiscard]] static NodeId server_id() { return test_node_id("server"); }
  [[nodiscard]] static NodeId client_id(std::string_view name) { return test_node_id(name); }
  asio::awaitable<P2PResult<Listener>> listen() { return server_->listen(); }
  asio::awaitable<P2PResult<Connection>> connect(std::string_view name) {
    return connect_as(client(name), server_->local_node_id());
  }
  bool run_until(const std::function<bool()>& done, Duration limit = std::chrono::minutes(10)) {
    world_.run_while([&] { return !done(); }, world_.now() + limit);
    return done();
  }
  void run_for(Duration d) { world_.run_for(d); }
  [[nodiscard]] sim::World& world() noexcept { return world_; }

  /// config is the suite's network: 2 ms links without loss.
  static NetworkConfig config() {
    NetworkConfig c;
    c.latency = std::chrono::milliseconds(2);
    c.packet_loss = 0.0;
    return c;
  }

 private:
  static asio::awaitable<P2PResult<Connection>> connect_as(sim::SimulatorP2P node, NodeId server) {
    co_return co_await node.connect(server);
  }
  sim::SimulatorP2P client(std::string_view name) {
    const std::string key(name);
    if (auto it = clients_.find(key); it != clients_.end()) return it->second;
    auto node = world_.add_node(name);
    EXPECT_TRUE(node.has_value()) << node.error().message();
    EXPECT_TRUE(world_.link(node->local_node_id(), server_->local_node_id()).has_value());
    clients_.emplace(key, *node);
    return *node;
  }

  sim::World world_;
  std::optional<sim::SimulatorP2P> server_;
  std::map<std::string, sim::SimulatorP2P> clients_;
};

}  // namespace moosicbox::p2p::testing
