// SPDX-License-Identifier: MIT OR Apache-2.0
// time.hpp: the project's time vocabulary. TimePoint belongs to a clock tag that has no now(), so
// library code cannot read a clock by accident: time always comes from the environment (env/).
// Layer: core. Plain value types.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace moosicbox::p2p {

/// Duration is the library's duration type: signed 64-bit nanoseconds.
using Duration = std::chrono::nanoseconds;

/// TimeTag is the clock tag of TimePoint. It deliberately has no now(): the current time comes only
/// from an environment's clock (real or simulated).
struct TimeTag {
  /// rep, period, duration, time_point and is_steady are the std::chrono clock traits: signed 64-bit
  /// nanoseconds on a monotonic clock.
  ///@{
  using rep = std::int64_t;
  using period = std::nano;
  using duration = Duration;
  using time_point = std::chrono::time_point<TimeTag, Duration>;
  static constexpr bool is_steady = true;
  ///@}
};

/// TimePoint is a monotonic instant since an arbitrary epoch of the environment's clock.
using TimePoint = TimeTag::time_point;

/// kTimePointMax is the "never" deadline.
inline constexpr TimePoint kTimePointMax = TimePoint::max();

/// format_duration renders `d` for people: "30s", "1.5s", "250ms", "12us", "80ns".
[[nodiscard]] std::string format_duration(Duration d);

}  // namespace moosicbox::p2p
