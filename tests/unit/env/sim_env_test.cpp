// SPDX-License-Identifier: MIT OR Apache-2.0
// sim_env_test.cpp: virtual time, the event queue, seeded randomness and virtual timers.
#include "moosicbox/p2p/env/sim_env.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace moosicbox::p2p::env {
namespace {

using namespace std::chrono_literals;
using namespace boost::asio::experimental::awaitable_operators;

TimePoint at(Duration d) { return TimePoint(d); }

// spawn runs a test coroutine; a failure inside it is reported through `done`.
template <class F>
void spawn(SimRuntime& rt, F&& f) {
  asio::co_spawn(rt.executor(), std::forward<F>(f), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
}

TEST(SimRuntime, EventsRunInTimeThenSchedulingOrder) {
  SimRuntime rt(1);
  std::vector<int> order;
  rt.schedule_at(at(20ms), [&] { order.push_back(3); });
  rt.schedule_at(at(10ms), [&] { order.push_back(1); });
  rt.schedule_at(at(10ms), [&] { order.push_back(2); });
  EXPECT_EQ(rt.run_until_idle(), SimRuntime::RunResult::idle);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(rt.now(), at(20ms));
}

TEST(SimRuntime, CancelledEventsDoNotRun) {
  SimRuntime rt(1);
  int ran = 0;
  const auto id = rt.schedule_after(5ms, [&] { ++ran; });
  rt.schedule_after(6ms, [&] { ++ran; });
  EXPECT_TRUE(rt.cancel(id));
  EXPECT_FALSE(rt.cancel(id));
  EXPECT_EQ(rt.pending_events(), 1U);
  rt.run_until_idle();
  EXPECT_EQ(ran, 1);
  EXPECT_FALSE(rt.cancel(id));
}

TEST(SimRuntime, RunUntilStopsAtTheLimitAndAdvancesTime) {
  SimRuntime rt(1);
  bool ran = false;
  rt.schedule_at(at(2s), [&] { ran = true; });
  EXPECT_EQ(rt.run_until(at(1s)), SimRuntime::RunResult::time_limit);
  EXPECT_FALSE(ran);
  EXPECT_EQ(rt.now(), at(1s));
  EXPECT_EQ(rt.run_for(1s), SimRuntime::RunResult::idle);
  EXPECT_TRUE(ran);
}

TEST(SimRuntime, StepLimitBoundsARunawaySimulation) {
  SimRuntime rt(1);
  std::function<void()> again = [&] { rt.schedule_after(1ms, again); };
  rt.schedule_after(1ms, again);
  EXPECT_EQ(rt.run_until_idle(1000), SimRuntime::RunResult::step_limit);
}

TEST(SimTimer, AnHourOfTimersFiresInOrderAtTheirDeadlines) {
  SimRuntime rt(7);
  SimEnv env(rt, "node");
  constexpr int kTimers = 100;
  std::int64_t fired = 0;
  TimePoint last{};
  bool in_order = true;
  for (int i = 0; i < kTimers; ++i) {
    spawn(rt, [&, i]() -> asio::awaitable<void> {
      auto timer = env.make_timer();
      // Timers tick every second, offset by i ms so their order is total and known.
      for (auto t = at(1s + std::chrono::milliseconds(i)); t <= at(1h); t += 1s) {
        auto ok = co_await timer.wait_until(t);
        if (!ok || env.now() != t || t < last) in_order = false;
        last = t;
        ++fired;
      }
    });
  }
  EXPECT_EQ(rt.run_until_idle(), SimRuntime::RunResult::idle);
  EXPECT_TRUE(in_order);
  // Timer 0 ticks at 1s..3600s (3600 times); the others start i ms later and tick 3599 times.
  EXPECT_EQ(fired, std::int64_t{kTimers} * 3599 + 1);
  EXPECT_GE(rt.now(), at(1h - 1s));
}

TEST(SimTimer, LosingSideOfARaceIsCancelledAndTimeStopsAtTheWinner) {
  SimRuntime rt(1);
  SimEnv env(rt, "n");
  int winner = -1;
  spawn(rt, [&]() -> asio::awaitable<void> {
    auto fast = env.make_timer();
    auto slow = env.make_timer();
    auto r = co_await (fast.wait_until(at(10ms)) || slow.wait_until(at(1h)));
    winner = static_cast<int>(r.index());
  });
  EXPECT_EQ(rt.run_until_idle(), SimRuntime::RunResult::idle);
  EXPECT_EQ(winner, 0);
  EXPECT_EQ(rt.now(), at(10ms));  // the hour-long wait was cancelled, not waited out
}

TEST(SimTimer, CancelEndsThePendingWaitWithCancelled) {
  SimRuntime rt(1);
  SimEnv env(rt, "n");
  auto timer = std::make_unique<SimEnv::Timer>(rt);
  std::optional<P2PResult<void>> result;
  spawn(rt, [&]() -> asio::awaitable<void> { result = co_await timer->wait_until(at(1s)); });
  rt.schedule_at(at(100ms), [&] { timer->cancel(); });
  rt.run_until_idle();
  ASSERT_TRUE(result.has_value());
  ASSERT_FALSE(result->has_value());
  EXPECT_EQ(result->error().code(), P2PErrc::cancelled);
  EXPECT_EQ(rt.now(), at(100ms));
}

TEST(SimTimer, PastDeadlineCompletesAtOnce) {
  SimRuntime rt(1);
  SimEnv env(rt, "n");
  rt.run_for(5s);
  bool done = false;
  spawn(rt, [&]() -> asio::awaitable<void> {
    auto t = env.make_timer();
    done = (co_await t.wait_until(at(1s))).has_value();
  });
  rt.run_until_idle();
  EXPECT_TRUE(done);
  EXPECT_EQ(rt.now(), at(5s));
}

std::uint64_t run_scenario(std::uint64_t seed) {
  SimRuntime rt(seed);
  SimEnv env(rt, "node");
  for (int i = 0; i < 20; ++i) {
    spawn(rt, [&, i]() -> asio::awaitable<void> {
      auto timer = env.make_timer();
      for (int k = 0; k < 50; ++k) {
        const auto jitter = std::chrono::microseconds(env.rng().uniform(10'000));
        (void)co_await timer.wait_until(env.now() + jitter);
        rt.trace(fmt::format("task {} step {}", i, k));
      }
    });
  }
  rt.run_until_idle();
  return rt.trace_hash();
}

TEST(SimRuntime, SameSeedGivesSameTraceDifferentSeedDiffers) {
  EXPECT_EQ(run_scenario(99), run_scenario(99));
  EXPECT_NE(run_scenario(99), run_scenario(100));
}

TEST(Rng, IsAPureFunctionOfTheSeed) {
  Rng a(5);
  Rng b(5);
  Rng c(6);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const auto x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    differs = differs || x != c.next_u64();
  }
  EXPECT_TRUE(differs);
  EXPECT_EQ(derive_seed(1, "alice"), derive_seed(1, "alice"));
  EXPECT_NE(derive_seed(1, "alice"), derive_seed(1, "bob"));
  EXPECT_NE(derive_seed(1, "alice"), derive_seed(2, "alice"));
}

TEST(Rng, UniformAndChanceStayInRange) {
  Rng r(3);
  int hits = 0;
  for (int i = 0; i < 10'000; ++i) {
    EXPECT_LT(r.uniform(7), 7U);
    const double d = r.next_double();
    EXPECT_GE(d, 0.0);
    EXPECT_LT(d, 1.0);
    hits += r.chance(0.5) ? 1 : 0;
  }
  EXPECT_GT(hits, 4500);
  EXPECT_LT(hits, 5500);
  EXPECT_FALSE(r.chance(0.0));
  EXPECT_TRUE(r.chance(1.0));
}

TEST(SimEnv, NodesGetIndependentSeededStreams) {
  SimRuntime rt(11);
  SimEnv a(rt, "a");
  SimEnv a2(rt, "a");
  SimEnv b(rt, "b");
  std::array<std::byte, 16> x{};
  std::array<std::byte, 16> y{};
  std::array<std::byte, 16> z{};
  a.fill_random(x);
  a2.fill_random(y);
  b.fill_random(z);
  EXPECT_EQ(x, y);
  EXPECT_NE(x, z);
}

}  // namespace
}  // namespace moosicbox::p2p::env
