// SPDX-License-Identifier: MIT OR Apache-2.0
// sim_env.hpp: the simulated environment. SimRuntime owns virtual time, a deterministic event queue
// and a single-threaded io_context that it steps (never run()): it runs everything ready at the
// current instant, then jumps time to the next event. SimEnv is one node's view of it (its own seeded
// random stream); SimEnv::Timer waits in virtual time.
// Layer: env. Single-threaded: a SimRuntime and everything on it belong to the thread that steps it.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/system/error_code.hpp>

#include "moosicbox/p2p/env/concepts.hpp"
#include "moosicbox/p2p/env/rng.hpp"

namespace moosicbox::p2p::env {

/// SimRuntime is the clock and scheduler of one simulation.
class SimRuntime {
 public:
  /// EventId names a scheduled event so it can be cancelled.
  using EventId = std::uint64_t;
  /// Callback is the work of an event. It runs outside any coroutine; to resume one it posts.
  using Callback = std::move_only_function<void()>;
  /// kStepCountMax bounds every run loop: a simulation that does not settle is a bug, not a hang.
  static constexpr std::uint64_t kStepCountMax = 1'000'000'000;
  /// Handler resumes a suspended operation: success, asio::error::operation_aborted (cancelled) or
  /// asio::error::timed_out (a deadline passed).
  using Handler = asio::any_completion_handler<void(boost::system::error_code)>;
  /// ParkId names a parked handler so it can be resumed.
  using ParkId = std::uint64_t;

  /// RunResult says how a run ended.
  enum class RunResult {
    idle,           ///< nothing left to do: no ready work, no scheduled event
    time_limit,     ///< the next event lies after the limit; time now equals the limit
    step_limit,     ///< the step bound was reached (a livelock in the simulated system)
    condition_met,  ///< the caller's predicate became true
  };

  /// SimRuntime starts at time zero with `seed` as the root of every random stream.
  explicit SimRuntime(std::uint64_t seed);
  SimRuntime(const SimRuntime&) = delete;
  SimRuntime& operator=(const SimRuntime&) = delete;
  ~SimRuntime();
  /// shutdown ends the simulation before destruction: every parked and posted coroutine is
  /// destroyed (running its destructors) while what they refer to (a simulated network declared
  /// after the runtime, say) still exists. Afterwards nothing may run, schedule or use the
  /// io_context; destruction follows. Idempotent.
  void shutdown();

  /// now returns the virtual time.
  [[nodiscard]] TimePoint now() const noexcept { return now_; }
  /// seed returns the root seed.
  [[nodiscard]] std::uint64_t seed() const noexcept { return seed_; }
  /// io_context is the context every simulated coroutine runs on. Do not run() it.
  [[nodiscard]] asio::io_context& io_context() noexcept { return *io_; }
  /// executor returns the io_context's executor.
  [[nodiscard]] asio::any_io_executor executor() { return io_->get_executor(); }
  /// rng is the runtime's own stream (derived from the root seed as "runtime").
  [[nodiscard]] Rng& rng() noexcept { return rng_; }

  /// schedule_at runs `fn` at virtual time `at` (clamped to now). Events at the same instant run in
  /// the order they were scheduled.
  EventId schedule_at(TimePoint at, Callback fn);
  /// schedule_after runs `fn` after `delay` of virtual time.
  EventId schedule_after(Duration delay, Callback fn) { return schedule_at(now_ + delay, std::move(fn)); }
  /// cancel drops a scheduled event; returns false when it already ran or was cancelled.
  bool cancel(EventId id) noexcept;

  /// run_until runs until `limit` (time then equals `limit` when it is finite, even if the simulation
  /// went idle earlier). Bounded by `steps`.
  RunResult run_until(TimePoint limit, std::uint64_t steps = kStepCountMax);
  /// run_for runs for `d` of virtual time.
  RunResult run_for(Duration d, std::uint64_t steps = kStepCountMax) { return run_until(now_ + d, steps); }
  /// run_until_idle runs until nothing is left to do. Bounded by `steps`.
  RunResult run_until_idle(std::uint64_t steps = kStepCountMax) { return run_until(kTimePointMax, steps); }
  /// run_while runs while `keep_going()` is true, until `limit`. Returns condition_met when it became
  /// false. Bounded by `steps`.
  RunResult run_while(const std::function<bool()>& keep_going, TimePoint limit = kTimePointMax,
                      std::uint64_t steps = kStepCountMax);

  /// park keeps the handler of a suspended operation until resume(). The runtime owns it meanwhile:
  /// destroying the runtime destroys every parked handler, and with it the coroutine that waits, so a
  /// coroutine suspended at the end of a simulation is freed rather than leaked in a reference cycle.
  ParkId park(Handler handler);
  /// resume completes the parked operation `id` with `ec` through the io_context (never inline, so the
  /// caller's state stays consistent). Returns false when `id` was already resumed. With
  /// `from_cancellation` the handler's cancellation slot is left alone (it is running the call).
  /// During the runtime's destruction the handler is destroyed instead of run.
  bool resume(ParkId id, boost::system::error_code ec = {}, bool from_cancellation = false);
  /// is_parked reports whether `id` still waits.
  [[nodiscard]] bool is_parked(ParkId id) const noexcept;
  /// suspend parks the calling coroutine: `on_park` receives its id (called before suspending), and
  /// the coroutine continues with the error code given to resume(). Cancelling the awaiting operation
  /// (for example as the losing side of `a || b`) resumes it with operation_aborted.
  asio::awaitable<boost::system::error_code> suspend(std::move_only_function<void(ParkId)> on_park);
  /// shutting_down is true while the runtime is being destroyed: nothing may be scheduled or resumed.
  [[nodiscard]] bool shutting_down() const noexcept { return shutting_down_; }

  /// pending_events returns how many events are scheduled and not cancelled.
  [[nodiscard]] std::size_t pending_events() const noexcept { return live_events_; }
  /// events_run returns how many events have run since creation.
  [[nodiscard]] std::uint64_t events_run() const noexcept { return events_run_; }

  /// trace mixes a line into the trace hash (with the current time). Two runs with the same seed and
  /// the same program produce the same hash; a difference means the simulation is not deterministic.
  void trace(std::string_view what) noexcept;
  /// trace_words mixes binary words (with the current time) into the trace hash without formatting
  /// or calling the sink: for high-rate events such as message deliveries.
  void trace_words(std::span<const std::uint64_t> words) noexcept;
  /// trace_hash returns the running hash of every trace line so far.
  [[nodiscard]] std::uint64_t trace_hash() const noexcept { return trace_hash_; }
  /// trace_count returns how many lines were traced.
  [[nodiscard]] std::uint64_t trace_count() const noexcept { return trace_count_; }
  /// set_trace_sink receives every trace line as it is added (for printing); empty to stop.
  void set_trace_sink(std::function<void(TimePoint, std::string_view)> sink) { trace_sink_ = std::move(sink); }

 private:
  struct Slot {
    Callback fn;
    std::uint32_t generation = 0;
  };
  struct Entry {
    std::int64_t at;
    std::uint64_t seq;
    std::uint32_t slot;
    std::uint32_t generation;
  };
  // Boost 1.81's any_completion_handler move assignment wraps the source instead of moving it (it
  // copies through the converting constructor, recursing without end), so a handler is only ever
  // move-constructed: it lives in an optional, and Parked is relocated by noexcept construction.
  struct Parked {
    Parked() = default;
    Parked(Parked&&) noexcept = default;
    Parked& operator=(Parked&&) = delete;
    Parked(const Parked&) = delete;
    Parked& operator=(const Parked&) = delete;
    ~Parked() = default;
    std::optional<Handler> handler;
    std::uint32_t generation = 0;
    bool used = false;
  };
  bool poll_ready();
  bool fire_next(TimePoint limit);

  // The io_context sits behind a pointer so the destructor can destroy it (and the coroutines it
  // holds) while the event queue and the parked handlers still exist.
  std::unique_ptr<asio::io_context> io_;
  TimePoint now_{};
  std::uint64_t seed_;
  Rng rng_;
  std::vector<Entry> heap_;
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_slots_;
  std::uint64_t next_seq_ = 0;
  std::size_t live_events_ = 0;
  std::vector<Parked> parked_;
  std::vector<std::uint32_t> free_parked_;
  bool shutting_down_ = false;
  std::uint64_t events_run_ = 0;
  std::uint64_t trace_hash_ = 0xcbf29ce484222325ULL;
  std::uint64_t trace_count_ = 0;
  std::function<void(TimePoint, std::string_view)> trace_sink_;
};

/// SimEnv is one simulated node's environment: shared virtual time, its own random stream.
class SimEnv {
 public:
  /// Timer waits in virtual time. Destroying it cancels its pending waits.
  class Timer {
   public:
    /// Timer is an idle timer on `rt`'s virtual clock (make_timer() builds one).
    explicit Timer(SimRuntime& rt);
    /// Move-only: pending waits move with the timer, and the moved-from timer may only be destroyed
    /// or assigned to. Assigning over a timer first cancels its own pending waits.
    ///@{
    Timer(Timer&&) noexcept = default;
    Timer& operator=(Timer&&) noexcept;
    ///@}
    ~Timer();
    /// wait_until completes when virtual time reaches `at`. Errors: cancelled (cancel(), the timer's
    /// destruction, or cancellation of the awaiting operation).
    asio::awaitable<P2PResult<void>> wait_until(TimePoint at);
    /// cancel ends every pending wait with P2PErrc::cancelled.
    void cancel() noexcept;

   private:
    struct State;
    std::shared_ptr<State> state_;
  };

  /// SimEnv draws randomness from the stream derive_seed(rt.seed(), name).
  SimEnv(SimRuntime& rt, std::string_view name);

  /// now returns the virtual time.
  [[nodiscard]] TimePoint now() const noexcept { return rt_->now(); }
  /// executor returns the simulation's executor.
  [[nodiscard]] asio::any_io_executor executor() const { return rt_->executor(); }
  /// make_timer returns a virtual-time timer.
  [[nodiscard]] Timer make_timer() const { return Timer(*rt_); }
  /// fill_random fills `out` from this node's seeded stream.
  void fill_random(std::span<std::byte> out) noexcept { rng_.fill_random(out); }
  /// rng returns this node's seeded stream.
  [[nodiscard]] Rng& rng() noexcept { return rng_; }
  /// runtime returns the shared runtime.
  [[nodiscard]] SimRuntime& runtime() const noexcept { return *rt_; }

 private:
  SimRuntime* rt_;
  Rng rng_;
};

static_assert(Environment<SimEnv>);

}  // namespace moosicbox::p2p::env
