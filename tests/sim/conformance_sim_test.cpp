// SPDX-License-Identifier: MIT OR Apache-2.0
// conformance_sim_test.cpp: the generic conformance suite on the simulator, over a quiet network and
// over a lossy, jittery, bandwidth-limited one (the suite's guarantees must hold on both).
#include "conformance/conformance_suite.hpp"

#include <memory>
#include <vector>

#include "moosicbox/p2p/sim/sim.hpp"
#include "sim/sim_test_support.hpp"

namespace moosicbox::p2p::sim::testing {

// SimHarness puts every system in one world, linked to every other; Lossy selects the network.
template <bool Lossy>
class SimHarness {
 public:
  using System = SimulatorP2P;

  SimHarness() : seed_(test_seed(Lossy ? 4242 : 42)), world_(seed_, config()) {}

  System& make_system(std::string_view name) {
    auto node = world_.add_node(name);
    EXPECT_TRUE(node) << node.error().message();
    for (const auto& other : systems_) {
      EXPECT_TRUE(world_.link(node->local_node_id(), other->local_node_id(), link()));
    }
    systems_.push_back(std::make_unique<System>(*node));
    return *systems_.back();
  }
  std::string listen_addr() const { return "sim"; }
  std::size_t max_message_size() const { return world_.config().max_message_size; }
  template <class T>
  std::optional<T> run(asio::awaitable<T> task) {
    return world_.run(std::move(task), std::chrono::hours(1));
  }
  std::string context() const { return reproduce_line(seed_); }

 private:
  static NetworkConfig config() {
    NetworkConfig c;
    c.packet_loss = Lossy ? 0.05 : 0.0;
    c.latency = ms(20);
    return c;
  }
  static LinkInfo link() {
    LinkInfo l;
    l.latency = ms(20);
    if (Lossy) {
      l.packet_loss = 0.05;
      l.jitter = ms(5);
      l.bandwidth = 20'000'000;
    }
    return l;
  }
  std::uint64_t seed_;
  World world_;
  std::vector<std::unique_ptr<System>> systems_;
};

}  // namespace moosicbox::p2p::sim::testing

namespace moosicbox::p2p::conformance {
using QuietSim = sim::testing::SimHarness<false>;
using LossySim = sim::testing::SimHarness<true>;
using SimHarnesses = ::testing::Types<QuietSim, LossySim>;
INSTANTIATE_TYPED_TEST_SUITE_P(Sim, P2PConformance, SimHarnesses);
INSTANTIATE_TYPED_TEST_SUITE_P(Sim, P2PStreamConformance, SimHarnesses);
}  // namespace moosicbox::p2p::conformance
