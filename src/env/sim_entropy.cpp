// SPDX-License-Identifier: MIT OR Apache-2.0
// sim_entropy.cpp: seeded getrandom(2) for deterministic simulation (see sim_entropy.hpp).
// Layer: env. The seeded state is thread-local; without a scope, getrandom is the system call.
//
// The definitions of getrandom, clock_gettime, gettimeofday and time below interpose the C
// library's for the whole program (the dynamic linker binds the TLS library's calls to the
// executable's definitions). They live in the same object as the scopes, so only programs that use
// them carry them (the shared library always does), and on threads without a scope they are the C
// library's own functions (clock_gettime keeps its vDSO fast path: the original is looked up once
// with dlsym).
#include "moosicbox/p2p/env/sim_entropy.hpp"

#include <dlfcn.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <ctime>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <exception>
#include <thread>

#include "moosicbox/p2p/core/random.hpp"
#include "moosicbox/p2p/env/rng.hpp"
#include "moosicbox/p2p/env/sim_env.hpp"

namespace moosicbox::p2p::env {

struct SeededEntropyScope::State {
  Rng rng;
  State* previous;
};

namespace {
thread_local SeededEntropyScope::State* t_state = nullptr;  // NOLINT: the per-thread scope
thread_local const SimRuntime* t_calendar = nullptr;        // NOLINT: the per-thread virtual calendar
}  // namespace

VirtualCalendarScope::VirtualCalendarScope(const SimRuntime& rt) noexcept : previous_(t_calendar) { t_calendar = &rt; }

VirtualCalendarScope::~VirtualCalendarScope() { t_calendar = previous_; }

SeededEntropyScope::SeededEntropyScope(std::uint64_t seed) noexcept : previous_(t_state) {
  t_state = new State{Rng(derive_seed(seed, "getrandom")), previous_};  // NOLINT: freed by the destructor
}

SeededEntropyScope::~SeededEntropyScope() {
  State* s = t_state;
  t_state = previous_;
  delete s;  // NOLINT: owned since the constructor
}

bool SeededEntropyScope::active() noexcept { return t_state != nullptr; }

void run_isolated(std::uint64_t seed, const std::function<void()>& fn) {
  // Process-wide lazy initialisations draw entropy once (libsodium's, for one): done here, outside
  // the seeded thread, they cannot shift the seeded stream of the first run only.
  std::array<std::byte, 1> warm{};
  os_random_bytes(warm);
  std::exception_ptr error;
  std::thread worker([&] {
    const SeededEntropyScope scope(seed);
    try {
      fn();
    } catch (...) {
      error = std::current_exception();
    }
  });
  worker.join();
  if (error) std::rethrow_exception(error);
}

namespace detail {
// seeded_getrandom fills `buf` from the thread's scope; returns false without one.
bool seeded_getrandom(void* buf, std::size_t n) noexcept {
  SeededEntropyScope::State* s = t_state;
  if (s == nullptr) return false;
  s->rng.fill_random(std::span<std::byte>(static_cast<std::byte*>(buf), n));
  return true;
}
// virtual_calendar fills `ts` with the thread's virtual calendar time; false without a scope.
bool virtual_calendar(timespec* ts) noexcept {
  const SimRuntime* rt = t_calendar;
  if (rt == nullptr) return false;
  const std::int64_t ns = rt->now().time_since_epoch().count();
  ts->tv_sec = static_cast<time_t>(VirtualCalendarScope::kVirtualEpoch + ns / 1'000'000'000);
  ts->tv_nsec = static_cast<long>(ns % 1'000'000'000);
  return true;
}

using ClockGettime = int (*)(clockid_t, timespec*);
ClockGettime real_clock_gettime() noexcept {
  static const auto fn = reinterpret_cast<ClockGettime>(::dlsym(RTLD_NEXT, "clock_gettime"));  // NOLINT
  return fn;
}
}  // namespace detail

}  // namespace moosicbox::p2p::env

extern "C" ssize_t getrandom(void* buf, std::size_t n, unsigned int flags) {  // NOLINT: interposes libc
  if (moosicbox::p2p::env::detail::seeded_getrandom(buf, n)) return static_cast<ssize_t>(n);
  return static_cast<ssize_t>(::syscall(SYS_getrandom, buf, n, flags));
}

extern "C" int clock_gettime(clockid_t clock, timespec* ts) noexcept {  // NOLINT: interposes libc
  namespace d = moosicbox::p2p::env::detail;
  if ((clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE) && d::virtual_calendar(ts)) return 0;
  if (const auto real = d::real_clock_gettime()) return real(clock, ts);
  return static_cast<int>(::syscall(SYS_clock_gettime, clock, ts));
}

extern "C" int gettimeofday(timeval* tv, void* tz) noexcept {  // NOLINT: interposes libc
  timespec ts{};
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return -1;
  tv->tv_sec = ts.tv_sec;
  tv->tv_usec = static_cast<suseconds_t>(ts.tv_nsec / 1000);
  (void)tz;
  return 0;
}

extern "C" time_t time(time_t* out) noexcept {  // NOLINT: interposes libc
  timespec ts{};
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return static_cast<time_t>(-1);
  if (out != nullptr) *out = ts.tv_sec;
  return ts.tv_sec;
}
