// SPDX-License-Identifier: MIT OR Apache-2.0
// world_test.cpp: sim::World: seeds (P2P_SIM_SEED, including malformed values), creation from the
// environment, the spec's helpers, node lookup and removal, run() bounds, the trace, and tearing a
// world down while coroutines still wait in it.
#include <gtest/gtest.h>

#include <cstdlib>

#include "moosicbox/p2p/core/spawn.hpp"
#include "moosicbox/p2p/sim/sim.hpp"
#include "sim/sim_test_support.hpp"

namespace moosicbox::p2p::sim {
namespace {

using namespace testing;
using namespace std::chrono_literals;

// ScopedEnv sets an environment variable for one test and restores it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    // NOLINTNEXTLINE(concurrency-mt-unsafe): tests run single-threaded.
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(SimSeed, ReadsADecimalSeedFromTheEnvironment) {
  ScopedEnv env("P2P_SIM_SEED", "18446744073709551615");
  auto seed = seed_from_env();
  ASSERT_TRUE(seed);
  EXPECT_EQ(*seed, std::optional<std::uint64_t>(18446744073709551615ULL));
  EXPECT_EQ(resolve_seed(std::nullopt).value(), 18446744073709551615ULL);
  EXPECT_EQ(resolve_seed(5).value(), 5U);  // an explicit seed wins
}

TEST(SimSeed, RejectsMalformedSeeds) {
  for (const char* bad : {"", "abc", "-1", "12x", " 12", "18446744073709551616", "0x10", "1.5"}) {
    ScopedEnv env("P2P_SIM_SEED", bad);
    auto seed = seed_from_env();
    ASSERT_FALSE(seed) << "'" << bad << "'";
    EXPECT_EQ(seed.error().code(), P2PErrc::invalid_configuration);
    EXPECT_NE(seed.error().message().find("P2P_SIM_SEED"), std::string::npos);
    auto world = World::create();
    ASSERT_FALSE(world);
    EXPECT_EQ(world.error().code(), P2PErrc::invalid_configuration);
  }
}

TEST(SimSeed, UnsetMeansNone) {
  ScopedEnv env("P2P_SIM_SEED", nullptr);
  auto seed = seed_from_env();
  ASSERT_TRUE(seed);
  EXPECT_FALSE(seed->has_value());
}

TEST(SimWorld, CreateTakesTheSeedAndTheSimulatorVariables) {
  ScopedEnv seed("P2P_SIM_SEED", "77");
  ScopedEnv latency("SIMULATOR_DEFAULT_LATENCY_MS", "12");
  auto world = World::create();
  ASSERT_TRUE(world);
  EXPECT_EQ((*world)->seed(), 77U);
  EXPECT_EQ((*world)->config().latency, 12ms);
  ScopedEnv bad("SIMULATOR_DEFAULT_PACKET_LOSS", "2");
  auto rejected = World::create();
  ASSERT_FALSE(rejected);
  EXPECT_EQ(rejected.error().code(), P2PErrc::invalid_configuration);
  WorldOptions options;
  options.limits.max_streams = 0;
  options.seed = 1;
  options.config = NetworkConfig{};
  EXPECT_FALSE(World::create(options));
}

TEST(SimWorld, NodesHaveStableIdsAndUniqueNames) {
  World w(1);
  auto alice = w.add_node("alice");
  ASSERT_TRUE(alice);
  EXPECT_EQ(alice->local_node_id(), test_node_id("alice"));
  EXPECT_EQ(w.add_node("alice").error().code(), P2PErrc::invalid_configuration);
  EXPECT_EQ(w.add_node("").error().code(), P2PErrc::invalid_configuration);
  // Seeded identities differ between seeds and repeat within one.
  World w2(2);
  World w2again(2);
  auto s1 = w2.add_node("x", NodeOptions{.identity = Identity::from_seed});
  auto s2 = w2again.add_node("x", NodeOptions{.identity = Identity::from_seed});
  auto other = w.add_node("x", NodeOptions{.identity = Identity::from_seed});
  ASSERT_TRUE(s1 && s2 && other);
  EXPECT_EQ(s1->local_node_id(), s2->local_node_id());
  EXPECT_NE(s1->local_node_id(), other->local_node_id());
  EXPECT_EQ(w.node(test_node_id("alice"))->name(), "alice");
  EXPECT_EQ(w.node_by_name("alice")->local_node_id(), test_node_id("alice"));
  EXPECT_FALSE(w.node(test_node_id("nobody")));
  EXPECT_EQ(w.node_count(), 2U);
}

TEST(SimWorld, InjectHelpersChangeOneDirectionOfALink) {
  World w(1);
  auto a = *w.add_node("a");
  auto b = *w.add_node("b");
  ASSERT_TRUE(w.link(a.local_node_id(), b.local_node_id()));
  EXPECT_EQ(w.graph().get_link(a.local_node_id(), b.local_node_id())->latency, w.config().latency);
  ASSERT_TRUE(w.inject_latency(a.local_node_id(), b.local_node_id(), 7ms));
  ASSERT_TRUE(w.inject_packet_loss(a.local_node_id(), b.local_node_id(), 0.25));
  const auto* ab = w.graph().get_link(a.local_node_id(), b.local_node_id());
  const auto* ba = w.graph().get_link(b.local_node_id(), a.local_node_id());
  EXPECT_EQ(ab->latency, 7ms);
  EXPECT_EQ(ab->packet_loss, 0.25);
  EXPECT_EQ(ba->latency, w.config().latency);
  EXPECT_EQ(w.inject_packet_loss(a.local_node_id(), b.local_node_id(), 1.5).error().code(),
            P2PErrc::invalid_configuration);
  EXPECT_EQ(w.inject_latency(a.local_node_id(), test_node_id("z"), 1ms).error().code(), P2PErrc::node_not_found);
  auto c = *w.add_node("c");
  EXPECT_EQ(w.inject_latency(a.local_node_id(), c.local_node_id(), 1ms).error().code(), P2PErrc::invalid_configuration);
}

TEST(SimWorld, SetupHelpersBuildTheSpecsNetworks) {
  World w(1);
  auto peers = w.setup_connected_peers(4);
  ASSERT_TRUE(peers);
  ASSERT_EQ(peers->size(), 4U);
  EXPECT_EQ(w.graph().link_count(), 12U);
  auto net = w.setup_partitioned_network(2, 3);
  ASSERT_TRUE(net);
  EXPECT_EQ(net->group_a.size(), 2U);
  EXPECT_EQ(net->group_b.size(), 3U);
  EXPECT_TRUE(w.graph().is_partitioned(net->group_a[0].local_node_id(), net->group_b[2].local_node_id()));
  EXPECT_FALSE(w.graph().find_path(net->group_a[0].local_node_id(), net->group_b[0].local_node_id()));
  EXPECT_EQ(w.setup_partitioned_network(0, 1).error().code(), P2PErrc::invalid_configuration);
}

TEST(SimWorld, RemovedNodesAreGoneForGood) {
  World w(1);
  auto a = *w.add_node("a");
  auto b = *w.add_node("b");
  ASSERT_TRUE(w.link(a.local_node_id(), b.local_node_id()));
  ASSERT_TRUE(w.remove_node(b.local_node_id()));
  EXPECT_FALSE(b.is_up());
  EXPECT_FALSE(w.node(b.local_node_id()));
  EXPECT_FALSE(w.lookup("b"));
  auto r = w.run(a.connect(b.local_node_id()));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->error().code(), P2PErrc::node_not_found);
  auto l = w.run(b.listen());
  ASSERT_TRUE(l);
  EXPECT_EQ(l->error().code(), P2PErrc::connection_failed);
  EXPECT_EQ(w.remove_node(b.local_node_id()).error().code(), P2PErrc::node_not_found);
  EXPECT_EQ(w.restart(a.local_node_id()).error().code(), P2PErrc::invalid_configuration);
}

TEST(SimWorld, RunReportsATaskThatDidNotFinishInTime) {
  World w(1);
  auto a = *w.add_node("a");
  auto l = w.run(a.listen())->value();
  // Nobody dials and nothing else is scheduled: run() returns at once instead of spinning.
  auto accepted = w.run(l.accept(), 5s);
  EXPECT_FALSE(accepted.has_value());
  EXPECT_EQ(w.now(), TimePoint(0s));
  // With other activity the limit is what stops it.
  auto b = *w.add_node("b");
  auto busy = [](SimulatorP2P n) -> asio::awaitable<void> {
    auto t = n.env().make_timer();
    for (int i = 0; i < 1000; ++i) (void)co_await t.wait_until(n.env().now() + 1s);
  };
  spawn_logged(w.runtime().executor(), busy(b), "busy");
  auto still = w.run(l.accept(), 5s);
  EXPECT_FALSE(still.has_value());
  EXPECT_EQ(w.now(), TimePoint(5s));
}

TEST(SimWorld, RunRethrowsTheTasksException) {
  World w(1);
  EXPECT_THROW((void)w.run([]() -> asio::awaitable<void> {
    throw std::runtime_error("boom");
    co_return;
  }()),
               std::runtime_error);
}

TEST(SimWorld, TraceHashFollowsWhatHappens) {
  World a(3);
  World b(3);
  EXPECT_EQ(a.trace_hash(), b.trace_hash());
  (void)a.add_node("x");
  EXPECT_NE(a.trace_hash(), b.trace_hash());
  (void)b.add_node("x");
  EXPECT_EQ(a.trace_hash(), b.trace_hash());
  std::vector<std::string> lines;
  a.set_trace_sink([&](TimePoint, std::string_view line) { lines.emplace_back(line); });
  a.trace("custom event");
  EXPECT_EQ(lines, (std::vector<std::string>{"custom event"}));
}

TEST(SimWorld, DestroyingAWorldEndsTheCoroutinesStillWaitingInIt) {
  // Every kind of wait is left pending: accept, recv, send on a full window, a stream read, a
  // timer. Destroying the world must free them all (the sanitizer build checks for leaks).
  SimLimits limits;
  limits.message_window = 1;
  auto w = std::make_unique<World>(1, NetworkConfig{}, limits);
  int started = 0;
  {
    // The test's own handles go before the world; the coroutines keep their copies.
    auto a = *w->add_node("a");
    auto b = *w->add_node("b");
    ASSERT_TRUE(w->link(a.local_node_id(), b.local_node_id()));
    auto l = w->run(b.listen())->value();
    auto c = w->run(a.connect(b.local_node_id()))->value();
    auto s = w->run(l.accept())->value();
    auto park = [&](asio::awaitable<void> task) {
      spawn_logged(w->runtime().executor(), std::move(task), "parked");
      ++started;
    };
    park([](SimulatorListener x) -> asio::awaitable<void> { (void)co_await x.accept(); }(l));
    park([](SimulatorConnection x) -> asio::awaitable<void> { (void)co_await x.recv(); }(s));
    park([](SimulatorConnection x) -> asio::awaitable<void> {
      for (int i = 0; i < 100; ++i) (void)co_await x.send(Bytes(100'000));
    }(c));
    park([](SimulatorConnection x) -> asio::awaitable<void> {
      auto st = co_await x.open_bi();
      std::array<std::byte, 16> buf{};
      if (st) (void)co_await st->read(buf);
    }(c));
    park([](SimulatorP2P n) -> asio::awaitable<void> {
      auto t = n.env().make_timer();
      (void)co_await t.wait_until(n.env().now() + 1h);
    }(a));
    w->run_for(1s);
  }
  EXPECT_EQ(started, 5);
  EXPECT_GT(w->runtime().pending_events(), 0U);
  w.reset();
  SUCCEED();
}

}  // namespace
}  // namespace moosicbox::p2p::sim
