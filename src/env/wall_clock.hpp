// SPDX-License-Identifier: MIT OR Apache-2.0
// wall_clock.hpp: the one place outside the environments that may read the wall clock, for values
// that must keep rising across restarts of a process (the disco nonce counter), never for timing.
// Layer: env.
#pragma once

#include <chrono>
#include <cstdint>

namespace moosicbox::p2p::env {

/// unix_time_micros returns microseconds since the Unix epoch (0 for a clock before it).
inline std::uint64_t unix_time_micros() noexcept {
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  return us > 0 ? static_cast<std::uint64_t>(us) : 0;
}

}  // namespace moosicbox::p2p::env
