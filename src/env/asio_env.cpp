// SPDX-License-Identifier: MIT OR Apache-2.0
// asio_env.cpp: the real environment. The one place (with sim_env.cpp) allowed to read a clock.
// Layer: env. Timers are used from their executor only.
#include "moosicbox/p2p/env/asio_env.hpp"

#include <time.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace moosicbox::p2p::env {

TimePoint AsioEnv::now() const noexcept {
  ::timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return TimePoint(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
}

asio::awaitable<P2PResult<void>> AsioEnv::Timer::wait_until(TimePoint at) {
  // libstdc++'s steady_clock is CLOCK_MONOTONIC, so both share an epoch.
  timer_.expires_at(std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(at.time_since_epoch())));
  auto [ec] = co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  if (ec) co_return fail(P2PError::cancelled("timer wait"));
  co_return P2PResult<void>{};
}

void AsioEnv::Timer::cancel() noexcept { timer_.cancel(); }

}  // namespace moosicbox::p2p::env
