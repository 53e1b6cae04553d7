// SPDX-License-Identifier: MIT OR Apache-2.0
// sim_entropy.hpp: seeded entropy for deterministic simulation. The real TLS stack (GnuTLS) and
// libsodium draw their randomness from getrandom(2), below any seam of ours; GnuTLS keeps one
// generator per thread, seeded on the thread's first use. SeededEntropyScope makes getrandom on the
// calling thread return a stream derived from a seed, and run_isolated runs a function on a fresh
// thread under such a scope, so every TLS key share, nonce and session ticket of a simulation is a
// function of the simulation's seed and two runs with the same seed produce the same packets.
// Layer: env. The scope is per thread; other threads keep the operating system's entropy.
#pragma once

#include <cstdint>
#include <functional>

namespace moosicbox::p2p::env {

class SimRuntime;

/// SeededEntropyScope routes getrandom(2) calls made on this thread to a generator seeded with
/// `seed` until it is destroyed. Not for production: keys drawn meanwhile are predictable.
/// Scopes nest (the innermost wins).
class SeededEntropyScope {
 public:
  /// SeededEntropyScope starts seeding this thread's getrandom(2) from `seed`.
  explicit SeededEntropyScope(std::uint64_t seed) noexcept;
  SeededEntropyScope(const SeededEntropyScope&) = delete;
  SeededEntropyScope& operator=(const SeededEntropyScope&) = delete;
  ~SeededEntropyScope();

  /// active reports whether the calling thread draws seeded entropy.
  [[nodiscard]] static bool active() noexcept;

  /// State is the seeded generator of one scope (opaque).
  struct State;

 private:
  State* previous_;
};

/// VirtualCalendarScope makes the calendar clock of this thread (CLOCK_REALTIME, time(),
/// gettimeofday()) read `rt`'s virtual time, counted from kVirtualEpoch, until it is destroyed:
/// libraries that timestamp what they send (GnuTLS puts its clock in session tickets) then send the
/// same bytes on every run. The monotonic clock, which the library's own real environment reads, is
/// left alone. Scopes nest (the innermost wins).
class VirtualCalendarScope {
 public:
  /// kVirtualEpoch is the calendar time of virtual time zero: 2026-01-01T00:00:00Z, in seconds.
  static constexpr std::int64_t kVirtualEpoch = 1'767'225'600;
  /// VirtualCalendarScope starts reading this thread's calendar clock from `rt`.
  explicit VirtualCalendarScope(const SimRuntime& rt) noexcept;
  VirtualCalendarScope(const VirtualCalendarScope&) = delete;
  VirtualCalendarScope& operator=(const VirtualCalendarScope&) = delete;
  ~VirtualCalendarScope();

 private:
  const SimRuntime* previous_;
};

/// run_isolated runs `fn` to completion on a new thread whose getrandom(2) is seeded by `seed`
/// (see SeededEntropyScope), and rethrows what it threw. The thread is fresh, so the TLS library's
/// per-thread generator starts from the seed: call it once per simulated run.
void run_isolated(std::uint64_t seed, const std::function<void()>& fn);

}  // namespace moosicbox::p2p::env
