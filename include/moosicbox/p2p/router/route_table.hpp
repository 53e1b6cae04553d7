// SPDX-License-Identifier: MIT OR Apache-2.0
// route_table.hpp: the sans-IO path matcher. Patterns are "/tracks/:id" (a parameter matches one
// non-empty segment), "/files/*path" (a wildcard matches the non-empty rest) and literal segments.
// A request path resolves to the most specific route: at each segment a literal beats a parameter,
// which beats a wildcard, with backtracking. The path is matched first and the method second, which
// gives 404 (no route for the path), 405 with the allowed methods, HEAD answered by GET, and OPTIONS.
// Layer: router. A RouteTable is a plain value (copyable); matching is const and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/router/types.hpp"

namespace moosicbox::p2p::router {

/// PathParams holds the values the parameters and wildcard of the matched pattern captured,
/// percent-decoded, in pattern order.
class PathParams {
 public:
  /// Param is one name (without ':' or '*') and its decoded value.
  using Param = std::pair<std::string, std::string>;

  /// get returns the value captured by `name`.
  [[nodiscard]] std::optional<std::string_view> get(std::string_view name) const noexcept;
  /// add appends a captured value.
  void add(std::string name, std::string value) { params_.emplace_back(std::move(name), std::move(value)); }
  /// size returns the number of captured values.
  [[nodiscard]] std::size_t size() const noexcept { return params_.size(); }
  /// empty is true when nothing was captured.
  [[nodiscard]] bool empty() const noexcept { return params_.empty(); }
  /// begin and end iterate over the captured values in pattern order.
  ///@{
  [[nodiscard]] auto begin() const noexcept { return params_.begin(); }
  [[nodiscard]] auto end() const noexcept { return params_.end(); }
  ///@}

  /// operator== is true for the same names and values in the same order.
  friend bool operator==(const PathParams&, const PathParams&) = default;

 private:
  std::vector<Param> params_;
};

/// RoutePattern is a parsed pattern.
class RoutePattern {
 public:
  /// SegmentKind is what one pattern segment matches.
  enum class SegmentKind : std::uint8_t { literal, param, wildcard };
  /// Segment is one pattern segment: a literal text, or the name of a parameter or wildcard.
  struct Segment {
    SegmentKind kind;  ///< what the segment matches
    std::string text;  ///< the literal text, or the parameter's or wildcard's name (without ':' or '*')
    /// operator== compares the kind and the text.
    friend bool operator==(const Segment&, const Segment&) = default;
  };

  /// parse reads a pattern such as "/tracks/:id/stream" or "/files/*path" ("/" is the root).
  /// Errors: invalid_configuration when the pattern does not start with '/', has an empty segment or
  /// a trailing '/', a parameter or wildcard without a name, a name used twice, a wildcard that is
  /// not the last segment, a "." or ".." segment, or a literal that is not valid UTF-8.
  [[nodiscard]] static P2PResult<RoutePattern> parse(std::string_view pattern);

  /// segments returns the parsed segments.
  [[nodiscard]] const std::vector<Segment>& segments() const noexcept { return segments_; }
  /// text returns the pattern as written.
  [[nodiscard]] const std::string& text() const noexcept { return text_; }
  /// shape returns the pattern with parameter and wildcard names erased ("/tracks/:/stream"): two
  /// patterns with the same shape match exactly the same paths.
  [[nodiscard]] std::string shape() const;

 private:
  std::string text_;
  std::vector<Segment> segments_;
};

/// PathError says why a request path cannot be matched at all (the answer is 400, not 404).
enum class PathError : std::uint8_t {
  none,
  malformed,     ///< does not start with '/', or a bad percent escape
  invalid_utf8,  ///< a decoded segment is not valid UTF-8
  forbidden,     ///< a "." or ".." segment, or a decoded segment containing '/' or NUL
};

/// decode_path splits a raw request path into percent-decoded segments ("/" gives none).
/// Returns the PathError on failure.
[[nodiscard]] std::expected<std::vector<std::string>, PathError> decode_path(std::string_view raw_path);

/// RouteId names a registered route; the router maps it to the route's handler.
using RouteId = std::uint32_t;

/// MatchKind is the outcome of a lookup.
enum class MatchKind : std::uint8_t {
  found,               ///< a route answers: route, params (and head_from_get for a HEAD served by GET)
  not_found,           ///< no pattern matches the path: 404
  method_not_allowed,  ///< the path matches, the method does not: 405 with allowed
  options,             ///< OPTIONS on a path with no OPTIONS route: answer with allowed
  bad_path,            ///< the path itself is invalid: 400 (path_error says why)
};

/// Match is the result of RouteTable::match.
struct Match {
  MatchKind kind = MatchKind::not_found;   ///< the outcome; it says which other fields are valid
  RouteId route = 0;                       ///< valid when kind == found
  PathParams params;                       ///< valid when kind == found
  bool head_from_get = false;              ///< a HEAD request answered by the GET route
  std::vector<Method> allowed;             ///< for 405 and OPTIONS: the methods the path answers, in code order
  PathError path_error = PathError::none;  ///< why the path is invalid, when kind == bad_path
  std::string pattern;                     ///< the matched pattern's text (when the path matched)
};

/// format_allow renders methods as an Allow header value ("GET, HEAD, OPTIONS").
[[nodiscard]] std::string format_allow(const std::vector<Method>& methods);

/// RouteTable maps (method, pattern) to route ids.
class RouteTable {
 public:
  /// add registers `pattern` for `method` as route `id`.
  /// Errors: invalid_configuration when the pattern does not parse (see RoutePattern::parse), when
  /// the same method is already registered for a pattern of the same shape (the message names the
  /// existing pattern), or for HEAD and OPTIONS patterns too (allowed: they override the automatic
  /// answers).
  [[nodiscard]] P2PResult<void> add(Method method, std::string_view pattern, RouteId id);

  /// match resolves a raw (percent-encoded) request path for `method`.
  [[nodiscard]] Match match(Method method, std::string_view raw_path) const;

  /// route_count returns how many (method, pattern) pairs are registered.
  [[nodiscard]] std::size_t route_count() const noexcept { return route_count_; }

 private:
  static constexpr std::uint32_t kNone = UINT32_MAX;
  struct Entry {
    Method method;
    RouteId id;
    std::string pattern;             // as written, for messages and logs
    std::vector<std::string> names;  // parameter and wildcard names, in order
  };
  struct Node {
    std::vector<std::pair<std::string, std::uint32_t>> literals;  // sorted by text
    std::uint32_t param = kNone;
    std::uint32_t wildcard = kNone;  // a wildcard node is always a leaf
    std::vector<Entry> entries;      // the routes whose pattern ends here
  };
  bool find(std::uint32_t node, const std::vector<std::string>& segs, std::size_t at, std::vector<std::string>& values,
            std::uint32_t& found) const;

  std::vector<Node> nodes_{Node{}};
  std::size_t route_count_ = 0;
};

}  // namespace moosicbox::p2p::router
