// SPDX-License-Identifier: MIT OR Apache-2.0
// sim_test_support.hpp: shared helpers of the simulator's tests: the seed of a test (P2P_SIM_SEED
// when set, otherwise a fixed default so runs are reproducible) and the "reproduce with" trace.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "moosicbox/p2p/sim/sim.hpp"

namespace moosicbox::p2p::sim::testing {

/// test_seed returns P2P_SIM_SEED when it is set, otherwise `fallback`.
inline std::uint64_t test_seed(std::uint64_t fallback) {
  auto env = seed_from_env();
  if (env && *env) return **env;
  return fallback;
}

/// reproduce_line is what every simulation test prints on failure.
inline std::string reproduce_line(std::uint64_t seed) { return fmt::format("reproduce with P2P_SIM_SEED={}", seed); }

/// ms is a shorthand for durations in tests.
constexpr Duration ms(std::int64_t n) { return std::chrono::milliseconds(n); }

/// at returns the virtual instant `d` after the start.
constexpr TimePoint at(Duration d) { return TimePoint(d); }

/// quiet_link is a link with `latency` and nothing else (no loss, jitter or bandwidth limit).
inline LinkInfo quiet_link(Duration latency) {
  LinkInfo l;
  l.latency = latency;
  return l;
}

}  // namespace moosicbox::p2p::sim::testing

/// P2P_SIM_SCOPE(seed) makes every failure below print how to reproduce it.
#define P2P_SIM_SCOPE(seed) SCOPED_TRACE(::moosicbox::p2p::sim::testing::reproduce_line(seed))
