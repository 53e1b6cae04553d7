// SPDX-License-Identifier: MIT OR Apache-2.0
// range.cpp: the Range header evaluation of RFC 9110 section 14 for one byte range.
// Layer: router. Pure functions; thread-safe.
#include "moosicbox/p2p/router/range.hpp"

#include <limits>
#include <vector>

#include <fmt/format.h>

#include "moosicbox/p2p/router/headers.hpp"

namespace moosicbox::p2p::router {

namespace {
std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// parse_digits reads 1*DIGIT, saturating at UINT64_MAX: clients send "0-99999999999999999999" to mean
// "to the end", and a saturated position still compares correctly with the size.
std::optional<std::uint64_t> parse_digits(std::string_view s) noexcept {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  for (const char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto d = static_cast<std::uint64_t>(c - '0');
    v = v > (kMax - d) / 10 ? kMax : v * 10 + d;
  }
  return v;
}

struct Spec {
  bool suffix = false;
  std::uint64_t first = 0;
  std::optional<std::uint64_t> last;  // absent: open-ended
  std::uint64_t suffix_length = 0;
};

std::optional<Spec> parse_spec(std::string_view s) noexcept {
  const auto dash = s.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  Spec spec;
  if (dash == 0) {
    const auto n = parse_digits(s.substr(1));
    if (!n) return std::nullopt;
    spec.suffix = true;
    spec.suffix_length = *n;
    return spec;
  }
  const auto first = parse_digits(s.substr(0, dash));
  if (!first) return std::nullopt;
  spec.first = *first;
  if (dash + 1 < s.size()) {
    const auto last = parse_digits(s.substr(dash + 1));
    if (!last || *last < *first) return std::nullopt;  // RFC 9110 14.1.1: last-pos < first-pos is invalid
    spec.last = *last;
  }
  return spec;
}

// resolve returns the range `spec` selects in a representation of `size` bytes, or nullopt when it
// selects nothing.
std::optional<ByteRange> resolve(const Spec& spec, std::uint64_t size) noexcept {
  if (spec.suffix) {
    if (spec.suffix_length == 0 || size == 0) return std::nullopt;
    const std::uint64_t len = spec.suffix_length < size ? spec.suffix_length : size;
    return ByteRange{size - len, size - 1};
  }
  if (spec.first >= size) return std::nullopt;
  const std::uint64_t last = spec.last && *spec.last < size ? *spec.last : size - 1;
  return ByteRange{spec.first, last};
}
}  // namespace

RangeDecision evaluate_range(std::optional<std::string_view> header, std::uint64_t size) noexcept {
  if (!header) return {};
  const auto value = trim_ows(*header);
  const auto eq = value.find('=');
  if (eq == std::string_view::npos || !iequals(value.substr(0, eq), "bytes")) return {};
  std::vector<Spec> specs;
  std::string_view rest = value.substr(eq + 1);
  while (true) {
    const auto comma = rest.find(',');
    const auto item = trim_ows(rest.substr(0, comma));
    if (!item.empty()) {  // a list may carry empty elements (RFC 9110 5.6.1)
      auto spec = parse_spec(item);
      if (!spec) return {};
      specs.push_back(*spec);
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  if (specs.empty()) return {};

  std::optional<ByteRange> chosen;
  bool any = false;
  for (const auto& spec : specs) {
    if (auto r = resolve(spec, size)) {
      if (!any) chosen = r;
      any = true;
    }
  }
  if (!any) {
    // An empty representation cannot satisfy a suffix range either, yet the suffix asks for "what
    // there is": answer with the (empty) whole rather than an error.
    if (size == 0 && specs.size() == 1 && specs[0].suffix && specs[0].suffix_length > 0) return {};
    return RangeDecision{RangeOutcome::unsatisfiable, {}};
  }
  if (specs.size() > 1) return {};  // several ranges would need multipart/byteranges: send the whole
  return RangeDecision{RangeOutcome::partial, *chosen};
}

std::string content_range_value(ByteRange range, std::uint64_t size) {
  return fmt::format("bytes {}-{}/{}", range.first, range.last, size);
}

std::string unsatisfied_range_value(std::uint64_t size) { return fmt::format("bytes */{}", size); }

}  // namespace moosicbox::p2p::router
