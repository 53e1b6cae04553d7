// SPDX-License-Identifier: MIT OR Apache-2.0
// asio_env.hpp: AsioEnv, the real environment: CLOCK_MONOTONIC time, asio steady timers, the OS
// CSPRNG, on one executor.
// Layer: env. An AsioEnv and its timers belong to their executor (use them from its strand only).
#pragma once

#include <boost/asio/steady_timer.hpp>

#include "moosicbox/p2p/env/concepts.hpp"

namespace moosicbox::p2p::env {

/// OsRandom draws from the operating system's CSPRNG.
struct OsRandom {
  /// fill_random fills `out` with random bytes.
  void fill_random(std::span<std::byte> out) noexcept { os_random_bytes(out); }
};

/// AsioEnv is the production environment.
class AsioEnv {
 public:
  /// Timer is a real timer on the environment's executor.
  class Timer {
   public:
    /// Timer is an idle timer on `ex` (make_timer() builds one on the environment's executor).
    explicit Timer(asio::any_io_executor ex) : timer_(std::move(ex)) {}
    /// wait_until waits until `at` on the monotonic clock. Errors: cancelled.
    asio::awaitable<P2PResult<void>> wait_until(TimePoint at);
    /// cancel ends the pending wait with P2PErrc::cancelled.
    void cancel() noexcept;

   private:
    asio::steady_timer timer_;
  };

  /// AsioEnv runs on `ex`.
  explicit AsioEnv(asio::any_io_executor ex) : ex_(std::move(ex)) {}

  /// now reads CLOCK_MONOTONIC.
  [[nodiscard]] TimePoint now() const noexcept;
  /// executor returns the executor of every coroutine and timer of this environment.
  [[nodiscard]] asio::any_io_executor executor() const { return ex_; }
  /// make_timer returns a new timer on the executor.
  [[nodiscard]] Timer make_timer() const { return Timer(ex_); }
  /// fill_random fills `out` from the OS CSPRNG.
  void fill_random(std::span<std::byte> out) noexcept { os_random_bytes(out); }

 private:
  asio::any_io_executor ex_;
};

static_assert(RandomSource<OsRandom>);
static_assert(Environment<AsioEnv>);

}  // namespace moosicbox::p2p::env
