// concepts.hpp: the environment seam. Library code reads time, waits and draws randomness only
// through an Environment, so the same code runs on real sockets and time (AsioEnv) or in a
// deterministic simulation with virtual time (SimEnv).
// Layer: env. Concepts only.
#pragma once

#include <concepts>

#include "p2p/core/asio.hpp"
#include "p2p/core/error.hpp"
#include "p2p/core/random.hpp"
#include "p2p/core/time.hpp"

namespace p2p::env {

/// Clock gives the current time of an environment.
template <class T>
concept Clock = requires(const T& c) {
  { c.now() }
  noexcept->std::same_as<TimePoint>;
};

/// Timer waits until an instant. wait_until completes with success at (or after) the deadline, or
/// with P2PErrc::cancelled when cancel() is called or the awaiting operation is cancelled (for
/// example by the losing side of `co_await (a || b)`).
template <class T>
concept Timer = requires(T& t, TimePoint at) {
  { t.wait_until(at) } -> std::same_as<asio::awaitable<P2PResult<void>>>;
  { t.cancel() }
  noexcept;
};

/// Environment is everything a driver needs from the outside world: a clock, timers, randomness and
/// the executor its coroutines run on. (Datagram sockets join it with the real backend.)
template <class T>
concept Environment = Clock<T> && RandomSource<T> && Timer<typename T::Timer> && requires(T& e) {
  { e.executor() } -> std::convertible_to<asio::any_io_executor>;
  { e.make_timer() } -> std::same_as<typename T::Timer>;
};

}  // namespace p2p::env
