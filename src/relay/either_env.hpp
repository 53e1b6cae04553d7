// SPDX-License-Identifier: MIT OR Apache-2.0
// either_env.hpp: EitherEnv, the real environment or one simulated host's, chosen at run time for
// code that is not on a per-datagram path (the relay server's bookkeeping, the path layer's relay
// half); and SimDeadline, a virtual-time deadline that runs a callback (closing a stream) when it
// passes, the simulated counterpart of Beast's stream expiry.
// Layer: relay (internal). Single-threaded: both belong to the executor of their environment.
#pragma once

#include <functional>
#include <optional>
#include <utility>
#include <variant>

#include "moosicbox/p2p/env/asio_env.hpp"
#include "moosicbox/p2p/env/sim_env.hpp"

namespace moosicbox::p2p::relay::detail {

/// EitherEnv is env::AsioEnv or a simulated host's env::SimEnv (which it does not own).
class EitherEnv {
 public:
  /// Timer is a timer of the chosen environment.
  class Timer {
   public:
    explicit Timer(env::AsioEnv::Timer t) : t_(std::move(t)) {}
    explicit Timer(env::SimEnv::Timer t) : t_(std::move(t)) {}
    /// wait_until waits until `at`. Errors: cancelled.
    asio::awaitable<P2PResult<void>> wait_until(TimePoint at) {
      return std::visit([at](auto& t) { return t.wait_until(at); }, t_);
    }
    /// cancel ends the pending wait with P2PErrc::cancelled.
    void cancel() noexcept {
      std::visit([](auto& t) { t.cancel(); }, t_);
    }

   private:
    std::variant<env::AsioEnv::Timer, env::SimEnv::Timer> t_;
  };

  /// EitherEnv is the real environment on `ex`.
  explicit EitherEnv(asio::any_io_executor ex) : real_(std::move(ex)) {}
  /// EitherEnv is the simulated environment `sim` (which must outlive it).
  explicit EitherEnv(env::SimEnv& sim) : real_(sim.executor()), sim_(&sim) {}

  /// now returns the environment's time.
  [[nodiscard]] TimePoint now() const noexcept { return sim_ != nullptr ? sim_->now() : real_.now(); }
  /// executor returns the environment's executor.
  [[nodiscard]] asio::any_io_executor executor() const { return real_.executor(); }
  /// make_timer returns a timer of the environment.
  [[nodiscard]] Timer make_timer() const {
    return sim_ != nullptr ? Timer(sim_->make_timer()) : Timer(real_.make_timer());
  }
  /// fill_random fills `out` from the environment's random source (seeded under simulation).
  void fill_random(std::span<std::byte> out) noexcept {
    if (sim_ != nullptr) {
      sim_->fill_random(out);
    } else {
      real_.fill_random(out);
    }
  }
  /// sim returns the simulated environment, null when real.
  [[nodiscard]] env::SimEnv* sim() const noexcept { return sim_; }

 private:
  env::AsioEnv real_;
  env::SimEnv* sim_ = nullptr;
};

static_assert(env::Environment<EitherEnv>);

/// SimDeadline runs a callback when virtual time reaches a deadline, unless disarmed first (or
/// destroyed). Not movable: the scheduled event refers to it.
class SimDeadline {
 public:
  explicit SimDeadline(env::SimRuntime& rt) : rt_(&rt) {}
  SimDeadline(const SimDeadline&) = delete;
  SimDeadline& operator=(const SimDeadline&) = delete;
  ~SimDeadline() { disarm(); }

  /// arm schedules `on_expiry` at `at` (replacing an armed deadline); fired() turns true then.
  void arm(TimePoint at, std::move_only_function<void()> on_expiry) {
    disarm();
    fired_ = false;
    id_ = rt_->schedule_at(at, [this, fn = std::move(on_expiry)]() mutable {
      id_.reset();
      fired_ = true;
      fn();
    });
  }
  /// disarm drops the armed deadline, if any.
  void disarm() noexcept {
    if (id_ && !rt_->shutting_down()) rt_->cancel(*id_);
    id_.reset();
  }
  /// armed reports whether a deadline waits.
  [[nodiscard]] bool armed() const noexcept { return id_.has_value(); }
  /// fired reports whether the last armed deadline passed.
  [[nodiscard]] bool fired() const noexcept { return fired_; }

 private:
  env::SimRuntime* rt_;
  std::optional<env::SimRuntime::EventId> id_;
  bool fired_ = false;
};

}  // namespace moosicbox::p2p::relay::detail
