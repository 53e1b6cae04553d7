// sim_env.cpp: virtual time, the deterministic event queue, the seeded generator and virtual timers.
// Layer: env. Single-threaded: everything here runs on the thread that steps the SimRuntime.
#include "p2p/env/sim_env.hpp"

#include <algorithm>
#include <cstring>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "p2p/core/assert.hpp"

namespace p2p::env {

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
  P2P_ASSERT(n > 0);
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

SimRuntime::SimRuntime(std::uint64_t seed) : seed_(seed), rng_(derive_seed(seed, "runtime")) {}

SimRuntime::~SimRuntime() {
  // Destroy pending callbacks (and the coroutine frames they own) before the io_context goes.
  heap_.clear();
  slots_.clear();
}

SimRuntime::EventId SimRuntime::schedule_at(TimePoint at, Callback fn) {
  P2P_ASSERT(fn);
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
  io_.restart();
  return io_.poll() > 0;
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
    P2P_ASSERT(top.at >= now_.time_since_epoch().count());
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

using WaitHandler = asio::any_completion_handler<void(boost::system::error_code)>;

struct SimEnv::Timer::State : std::enable_shared_from_this<SimEnv::Timer::State> {
  struct Wait {
    std::uint64_t id;
    SimRuntime::EventId event;
    WaitHandler handler;
  };

  explicit State(SimRuntime& r) : rt(&r) {}

  void start(TimePoint at, WaitHandler handler) {
    const std::uint64_t id = next_id++;
    auto slot = asio::get_associated_cancellation_slot(handler);
    if (slot.is_connected()) {
      slot.assign([weak = weak_from_this(), id](asio::cancellation_type) {
        if (auto self = weak.lock()) self->complete(id, asio::error::operation_aborted);
      });
    }
    const auto event = rt->schedule_at(at, [weak = weak_from_this(), id] {
      if (auto self = weak.lock()) self->complete(id, {});
    });
    waits.push_back(Wait{id, event, std::move(handler)});
  }

  void complete(std::uint64_t id, boost::system::error_code ec) {
    const auto it = std::ranges::find(waits, id, &Wait::id);
    if (it == waits.end()) return;
    WaitHandler handler = std::move(it->handler);
    if (ec) rt->cancel(it->event);
    waits.erase(it);
    asio::get_associated_cancellation_slot(handler).clear();
    // Every simulated coroutine runs on the runtime's single io_context, so completing through it
    // keeps the handler's ordering guarantees.
    asio::post(rt->io_context(), [h = std::move(handler), ec]() mutable { std::move(h)(ec); });
  }

  void cancel_all() {
    while (!waits.empty()) complete(waits.front().id, asio::error::operation_aborted);
  }

  template <class Token>
  static auto async_wait(std::shared_ptr<State> st, TimePoint at, Token&& token) {
    return asio::async_initiate<Token, void(boost::system::error_code)>(
        [](auto handler, std::shared_ptr<State> s, TimePoint when) { s->start(when, WaitHandler(std::move(handler))); },
        token, std::move(st), at);
  }

  SimRuntime* rt;
  std::uint64_t next_id = 0;
  std::vector<Wait> waits;
};

SimEnv::Timer::Timer(SimRuntime& rt) : state_(std::make_shared<State>(rt)) {}

SimEnv::Timer::~Timer() {
  if (state_) state_->cancel_all();
}

void SimEnv::Timer::cancel() noexcept {
  if (state_) state_->cancel_all();
}

asio::awaitable<P2PResult<void>> SimEnv::Timer::wait_until(TimePoint at) {
  P2P_ASSERT(state_);
  auto [ec] = co_await State::async_wait(state_, at, asio::as_tuple(asio::use_awaitable));
  if (ec) co_return fail(P2PError::cancelled("timer wait"));
  co_return P2PResult<void>{};
}

SimEnv::SimEnv(SimRuntime& rt, std::string_view name) : rt_(&rt), rng_(derive_seed(rt.seed(), name)) {}

}  // namespace p2p::env
