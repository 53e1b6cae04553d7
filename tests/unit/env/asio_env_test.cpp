// SPDX-License-Identifier: MIT OR Apache-2.0
// asio_env_test.cpp: the real environment's clock and timers, without sleeping: deadlines already
// past complete at once, and cancellation ends a far wait.
#include "moosicbox/p2p/env/asio_env.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

namespace moosicbox::p2p::env {
namespace {

using namespace std::chrono_literals;

TEST(AsioEnv, ClockIsMonotonic) {
  asio::io_context io;
  AsioEnv env(io.get_executor());
  const auto a = env.now();
  const auto b = env.now();
  EXPECT_LE(a, b);
  EXPECT_GT(a.time_since_epoch().count(), 0);
}

TEST(AsioEnv, PastDeadlineCompletesImmediately) {
  asio::io_context io;
  AsioEnv env(io.get_executor());
  std::optional<P2PResult<void>> r;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto t = env.make_timer();
        r = co_await t.wait_until(env.now() - 1s);
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  io.run();
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->has_value());
}

TEST(AsioEnv, CancelEndsAFarWait) {
  asio::io_context io;
  AsioEnv env(io.get_executor());
  auto timer = env.make_timer();
  std::optional<P2PResult<void>> r;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { r = co_await timer.wait_until(env.now() + 1h); },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  asio::post(io, [&] { timer.cancel(); });
  io.run();
  ASSERT_TRUE(r.has_value());
  ASSERT_FALSE(r->has_value());
  EXPECT_EQ(r->error().code(), P2PErrc::cancelled);
}

TEST(OsRandom, FillsBuffers) {
  OsRandom rng;
  std::array<std::byte, 32> a{};
  std::array<std::byte, 32> b{};
  rng.fill_random(a);
  rng.fill_random(b);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace moosicbox::p2p::env
