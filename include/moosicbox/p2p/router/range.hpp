// SPDX-License-Identifier: MIT OR Apache-2.0
// range.hpp: Range requests (RFC 9110 section 14) for one byte range: "bytes=0-99" (closed),
// "bytes=100-" (open-ended) and "bytes=-500" (suffix). A request for several ranges is answered
// with the whole representation (the RFC lets a server ignore Range); a range that cannot be
// satisfied gives 416 with "Content-Range: bytes */size".
// Layer: router. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace moosicbox::p2p::router {

/// ByteRange is an inclusive range [first, last] of a representation.
struct ByteRange {
  std::uint64_t first = 0;  ///< offset of the first byte
  std::uint64_t last = 0;   ///< offset of the last byte (inclusive, so last >= first)

  /// length returns last - first + 1.
  [[nodiscard]] std::uint64_t length() const noexcept { return last - first + 1; }
  /// operator== compares both ends.
  friend bool operator==(const ByteRange&, const ByteRange&) = default;
};

/// RangeOutcome is what a server does with a request's Range header.
enum class RangeOutcome : std::uint8_t {
  full,           ///< no usable Range header (absent, not bytes, malformed, several ranges): 200, whole body
  partial,        ///< one satisfiable range: 206 with the range
  unsatisfiable,  ///< no range overlaps the representation: 416
};

/// RangeDecision is the result of evaluate_range.
struct RangeDecision {
  RangeOutcome outcome = RangeOutcome::full;  ///< how to answer: 200, 206 or 416
  ByteRange range;                            ///< valid when outcome == partial (clamped to the representation)
  /// operator== compares the outcome and the range.
  friend bool operator==(const RangeDecision&, const RangeDecision&) = default;
};

/// evaluate_range decides how to answer a Range header for a representation of `size` bytes.
/// A syntactically invalid header is ignored (RFC 9110 14.2), as are units other than "bytes".
[[nodiscard]] RangeDecision evaluate_range(std::optional<std::string_view> header, std::uint64_t size) noexcept;

/// content_range_value renders "bytes first-last/size" for a 206 answer.
[[nodiscard]] std::string content_range_value(ByteRange range, std::uint64_t size);
/// unsatisfied_range_value renders "bytes */size" for a 416 answer.
[[nodiscard]] std::string unsatisfied_range_value(std::uint64_t size);

}  // namespace moosicbox::p2p::router
