// SPDX-License-Identifier: MIT OR Apache-2.0
// sim_env.cpp: virtual time, the deterministic event queue, the seeded generator and virtual timers.
// Layer: env. Single-threaded: everything here runs on the thread that steps the SimRuntime.
#include "moosicbox/p2p/env/sim_env.hpp"

#include <algorithm>
#include <cstring>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "moosicbox/p2p/core/assert.hpp"

namespace moosicbox::p2p::env {

// ---- seeds and the generator -------------------------------------------------------------------

namespace {
std::uint64_t splitmix64(std::uint64_t& x) noexcept {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
}  // namespace

std::uint64_t derive_seed(std::uint64_t root, std::string_view name) noexcept {
  // FNV-1a of the name, then mixed with the root: a pure function, independent of call order.
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : name) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  std::uint64_t x = root ^ rotl(h, 17);
  return splitmix64(x);
}

Rng::Rng(std::uint64_t seed) noexcept {
  for (auto& word : s_) word = splitmix64(seed);
}

std::uint64_t Rng::next_u64() noexcept {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

std::uint64_t Rng::uniform(std::uint64_t n) noexcept {
  MOOSICBOX_P2P_ASSERT(n > 0);
  // Lemire's multiply-shift with rejection: unbiased and without division in the common case.
  while (true) {
    __extension__ using U128 = unsigned __int128;
    const U128 m = static_cast<U128>(next_u64()) * n;
    const auto low = static_cast<std::uint64_t>(m);
    if (low >= n || low >= (0 - n) % n) return static_cast<std::uint64_t>(m >> 64);
  }
}

double Rng::next_double() noexcept { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

bool Rng::chance(double p) noexcept {
  if (p <= 0.0) return false;
  if (p >= 1.0) return true;
  return next_double() < p;
}

void Rng::fill_random(std::span<std::byte> out) noexcept {
  std::size_t i = 0;
  while (i < out.size()) {
    const std::uint64_t word = next_u64();
    const std::size_t n = std::min(out.size() - i, sizeof(word));
    std::memcpy(out.data() + i, &word, n);
    i += n;
  }
}

// ---- the runtime ---------------------------------------------------------------------------------

namespace {
// Min-heap order on (time, sequence): ties run in scheduling order, which keeps runs deterministic.
struct Later {
  template <class E>
  bool operator()(const E& a, const E& b) const noexcept {
    return a.at != b.at ? a.at > b.at : a.seq > b.seq;
  }
};
}  // namespace

SimRuntime::SimRuntime(std::uint64_t seed)
    : io_(std::make_unique<asio::io_context>(1)), seed_(seed), rng_(derive_seed(seed, "runtime")) {}

SimRuntime::~SimRuntime() { shutdown(); }

void SimRuntime::shutdown() {
  if (shutting_down_) return;
  // Destroying a coroutine runs destructors that call back into the runtime (timers cancel, handles
  // close). From here on those calls are no-ops, and every container is moved out before its
  // elements are destroyed, so a re-entrant call never touches a container in mid-destruction.
  shutting_down_ = true;
  {
    auto parked = std::move(parked_);
    parked_.clear();
    free_parked_.clear();
    parked.clear();  // ends the coroutines suspended on a parked handler
  }
  {
    auto slots = std::move(slots_);
    slots_.clear();
    heap_.clear();
    slots.clear();
  }
  io_.reset();  // destroys handlers posted but not yet run, and the coroutines they own
  parked_.clear();
  slots_.clear();
  heap_.clear();
}

SimRuntime::EventId SimRuntime::schedule_at(TimePoint at, Callback fn) {
  MOOSICBOX_P2P_ASSERT(fn);
  if (shutting_down_) return 0;  // never runs; an id of slot 0 with generation 0 is cancelled harmlessly
  if (at < now_) at = now_;
  std::uint32_t slot = 0;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  auto& s = slots_[slot];
  s.fn = std::move(fn);
  heap_.push_back(Entry{at.time_since_epoch().count(), next_seq_++, slot, s.generation});
  std::push_heap(heap_.begin(), heap_.end(), Later{});
  ++live_events_;
  return (static_cast<EventId>(slot) << 32) | s.generation;
}

bool SimRuntime::cancel(EventId id) noexcept {
  if (shutting_down_) return false;
  const auto slot = static_cast<std::uint32_t>(id >> 32);
  const auto generation = static_cast<std::uint32_t>(id);
  if (slot >= slots_.size()) return false;
  auto& s = slots_[slot];
  if (s.generation != generation || !s.fn) return false;
  // The heap entry stays and is skipped when it surfaces (its generation no longer matches).
  s.fn = nullptr;
  ++s.generation;
  free_slots_.push_back(slot);
  --live_events_;
  return true;
}

bool SimRuntime::poll_ready() {
  io_->restart();
  return io_->poll() > 0;
}

bool SimRuntime::fire_next(TimePoint limit) {
  while (!heap_.empty()) {
    const Entry top = heap_.front();
    auto& s = slots_[top.slot];
    if (s.generation != top.generation || !s.fn) {  // cancelled
      std::pop_heap(heap_.begin(), heap_.end(), Later{});
      heap_.pop_back();
      continue;
    }
    if (top.at > limit.time_since_epoch().count()) return false;
    std::pop_heap(heap_.begin(), heap_.end(), Later{});
    heap_.pop_back();
    Callback fn = std::move(s.fn);
    s.fn = nullptr;
    ++s.generation;
    free_slots_.push_back(top.slot);
    --live_events_;
    MOOSICBOX_P2P_ASSERT(top.at >= now_.time_since_epoch().count());
    now_ = TimePoint(Duration(top.at));
    ++events_run_;
    fn();
    return true;
  }
  return false;
}

SimRuntime::RunResult SimRuntime::run_until(TimePoint limit, std::uint64_t steps) {
  // Time always reaches a finite limit: run_for(d) means "let d pass", busy or not.
  auto reach_limit = [&] {
    if (limit != kTimePointMax && now_ < limit) now_ = limit;
  };
  for (std::uint64_t step = 0; step < steps; ++step) {
    poll_ready();
    if (live_events_ == 0) {
      reach_limit();
      return RunResult::idle;
    }
    if (!fire_next(limit)) {
      reach_limit();
      return live_events_ == 0 ? RunResult::idle : RunResult::time_limit;
    }
  }
  return RunResult::step_limit;
}

SimRuntime::RunResult SimRuntime::run_while(const std::function<bool()>& keep_going, TimePoint limit,
                                            std::uint64_t steps) {
  for (std::uint64_t step = 0; step < steps; ++step) {
    poll_ready();
    if (!keep_going()) return RunResult::condition_met;
    if (live_events_ == 0) return RunResult::idle;
    if (!fire_next(limit)) {
      if (live_events_ == 0) return RunResult::idle;
      if (limit != kTimePointMax && now_ < limit) now_ = limit;
      return RunResult::time_limit;
    }
  }
  return RunResult::step_limit;
}

void SimRuntime::trace_words(std::span<const std::uint64_t> words) noexcept {
  // Word-wise multiply-xorshift: cheap enough for one call per delivered message.
  auto mix = [this](std::uint64_t w) {
    trace_hash_ ^= w;
    trace_hash_ *= 0x9e3779b97f4a7c15ULL;
    trace_hash_ ^= trace_hash_ >> 29;
  };
  mix(static_cast<std::uint64_t>(now_.time_since_epoch().count()));
  for (const auto w : words) mix(w);
  ++trace_count_;
}

// ---- parked handlers ---------------------------------------------------------------------------------

SimRuntime::ParkId SimRuntime::park(Handler handler) {
  MOOSICBOX_P2P_ASSERT(!shutting_down_);
  std::uint32_t slot = 0;
  if (!free_parked_.empty()) {
    slot = free_parked_.back();
    free_parked_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(parked_.size());
    parked_.emplace_back();
  }
  auto& p = parked_[slot];
  p.handler.emplace(std::move(handler));
  p.used = true;
  return (static_cast<ParkId>(slot) << 32) | p.generation;
}

bool SimRuntime::is_parked(ParkId id) const noexcept {
  const auto slot = static_cast<std::uint32_t>(id >> 32);
  return slot < parked_.size() && parked_[slot].used && parked_[slot].generation == static_cast<std::uint32_t>(id);
}

bool SimRuntime::resume(ParkId id, boost::system::error_code ec, bool from_cancellation) {
  if (shutting_down_ || !is_parked(id)) return false;
  const auto slot = static_cast<std::uint32_t>(id >> 32);
  auto& p = parked_[slot];
  Handler handler(std::move(*p.handler));
  p.handler.reset();
  p.used = false;
  ++p.generation;
  free_parked_.push_back(slot);
  // A cancellation handler is running from the slot itself; clearing it there would destroy it.
  if (!from_cancellation) asio::get_associated_cancellation_slot(handler).clear();
  asio::post(*io_, [h = std::move(handler), ec]() mutable { std::move(h)(ec); });
  return true;
}

namespace {
struct SuspendInit {
  SimRuntime* rt;
  template <class H>
  void operator()(H&& handler, std::move_only_function<void(SimRuntime::ParkId)>* on_park) const {
    // Wrap first: any_completion_handler installs its own cancellation state in the handler's slot,
    // so our cancellation handler belongs in the slot of the wrapper, not of the original.
    SimRuntime::Handler wrapped(std::forward<H>(handler));
    auto slot = asio::get_associated_cancellation_slot(wrapped);
    const auto id = rt->park(std::move(wrapped));
    if (slot.is_connected()) {
      slot.assign([r = rt, id](asio::cancellation_type) { r->resume(id, asio::error::operation_aborted, true); });
    }
    (*on_park)(id);
  }
};

template <class Token>
auto async_suspend(SimRuntime* rt, std::move_only_function<void(SimRuntime::ParkId)>* on_park, Token&& token) {
  return asio::async_initiate<Token, void(boost::system::error_code)>(SuspendInit{rt}, token, on_park);
}
}  // namespace

asio::awaitable<boost::system::error_code> SimRuntime::suspend(std::move_only_function<void(ParkId)> on_park) {
  MOOSICBOX_P2P_ASSERT(on_park);
  auto [ec] = co_await async_suspend(this, &on_park, asio::as_tuple(asio::use_awaitable));
  co_return ec;
}

void SimRuntime::trace(std::string_view what) noexcept {
  auto mix = [this](const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < n; ++i) {
      trace_hash_ ^= p[i];
      trace_hash_ *= 0x100000001b3ULL;
    }
  };
  const std::int64_t t = now_.time_since_epoch().count();
  mix(&t, sizeof(t));
  mix(what.data(), what.size());
  mix("\n", 1);
  ++trace_count_;
  if (trace_sink_) trace_sink_(now_, what);
}

// ---- virtual timers --------------------------------------------------------------------------------

// A timer's pending waits: each is a parked coroutine plus the event that resumes it at its deadline.
// The runtime owns the parked handlers, so a timer inside a coroutine frame forms no ownership cycle.
struct SimEnv::Timer::State {
  struct Wait {
    SimRuntime::ParkId park;
    SimRuntime::EventId event;
  };

  explicit State(SimRuntime& r) : rt(&r) {}

  void cancel_all() {
    auto pending = std::move(waits);
    waits.clear();
    for (const auto& w : pending) {
      rt->cancel(w.event);
      rt->resume(w.park, asio::error::operation_aborted);
    }
  }

  void forget(SimRuntime::ParkId park) {
    const auto it = std::ranges::find(waits, park, &Wait::park);
    if (it == waits.end()) return;
    rt->cancel(it->event);
    waits.erase(it);
  }

  SimRuntime* rt;
  std::vector<Wait> waits;
};

SimEnv::Timer::Timer(SimRuntime& rt) : state_(std::make_shared<State>(rt)) {}

SimEnv::Timer& SimEnv::Timer::operator=(Timer&& other) noexcept {
  if (this != &other) {
    cancel();
    state_ = std::move(other.state_);
  }
  return *this;
}

SimEnv::Timer::~Timer() {
  if (state_) state_->cancel_all();
}

void SimEnv::Timer::cancel() noexcept {
  if (state_) state_->cancel_all();
}

asio::awaitable<P2PResult<void>> SimEnv::Timer::wait_until(TimePoint at) {
  MOOSICBOX_P2P_ASSERT(state_);
  // The frame keeps the state alive: the timer may be destroyed while this wait is pending.
  const std::shared_ptr<State> st = state_;
  SimRuntime::ParkId parked = 0;
  const auto ec = co_await st->rt->suspend([&](SimRuntime::ParkId id) {
    parked = id;
    const auto event = st->rt->schedule_at(at, [rt = st->rt, id] { rt->resume(id); });
    st->waits.push_back(State::Wait{id, event});
  });
  st->forget(parked);
  if (ec) co_return fail(P2PError::cancelled("timer wait"));
  co_return P2PResult<void>{};
}

SimEnv::SimEnv(SimRuntime& rt, std::string_view name) : rt_(&rt), rng_(derive_seed(rt.seed(), name)) {}

}  // namespace moosicbox::p2p::env
