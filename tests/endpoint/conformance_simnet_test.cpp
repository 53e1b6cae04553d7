// SPDX-License-Identifier: MIT OR Apache-2.0
// conformance_simnet_test.cpp: the generic conformance suite on the real QUIC backend (QuicP2P over
// Endpoint) on the simulated packet network, in virtual time: every system is a host of its own on
// the simulated internet (10 ms links, 0.5 % loss, 2 ms jitter) and all of them know each other's
// addresses.
// Layer: tests (sim). Failures print the seed (P2P_SIM_SEED replays it).
#include "conformance/conformance_suite.hpp"

#include <memory>
#include <vector>

#include "endpoint/simnet_fixture.hpp"
#include "moosicbox/p2p/endpoint/quic_p2p.hpp"

namespace moosicbox::p2p::testing {

/// SimnetHarness runs every system on its own simulated host.
class SimnetHarness {
 public:
  using System = QuicP2P;

  SimnetHarness() : world_(sim_seed(21)) {}
  SimnetHarness(const SimnetHarness&) = delete;
  SimnetHarness& operator=(const SimnetHarness&) = delete;
  ~SimnetHarness() {
    (void)run([](std::vector<std::unique_ptr<System>>* systems) -> asio::awaitable<int> {
      for (auto& s : *systems) co_await s->endpoint().close();
      co_return 0;
    }(&systems_));
    systems_.clear();
  }

  System& make_system(std::string_view name) {
    simnet::LinkParams link;
    link.latency = std::chrono::milliseconds(10);
    link.jitter = std::chrono::milliseconds(2);
    link.loss = 0.005;
    const std::string ip = fmt::format("198.51.100.{}", systems_.size() + 1);
    auto& host = world_.public_host(std::string(name), ip, link);
    auto cfg = SimWorld::config(name);
    auto s = QuicP2P::create(world_.endpoint(host, std::move(cfg)));
    EXPECT_TRUE(s) << s.error().message();
    for (auto& other : systems_) {
      other->add_node_addr(s->addr());
      s->add_node_addr(other->addr());
    }
    systems_.push_back(std::make_unique<System>(std::move(*s)));
    return *systems_.back();
  }
  /// listen_addr: any address of the system's host.
  std::string listen_addr() const { return ""; }
  std::size_t max_message_size() const { return EndpointLimits{}.max_message_size; }
  template <class T>
  std::optional<T> run(asio::awaitable<T> task) {
    return world_.run(std::move(task), std::chrono::minutes(10));
  }
  std::string context() const { return "QUIC backend on the simulated network, " + world_.replay(); }

 private:
  SimWorld world_;
  std::vector<std::unique_ptr<System>> systems_;
};

}  // namespace moosicbox::p2p::testing

namespace moosicbox::p2p::conformance {
using SimnetHarnesses = ::testing::Types<testing::SimnetHarness>;
INSTANTIATE_TYPED_TEST_SUITE_P(Simnet, P2PConformance, SimnetHarnesses);
INSTANTIATE_TYPED_TEST_SUITE_P(Simnet, P2PStreamConformance, SimnetHarnesses);
}  // namespace moosicbox::p2p::conformance
