// SPDX-License-Identifier: MIT OR Apache-2.0
// uri.hpp: the text rules of request targets: splitting "path?query", percent-encoding, UTF-8
// validation, and QueryParams, the decoded query string.
// Layer: router. Pure functions and a plain value type; thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "moosicbox/p2p/core/error.hpp"

namespace moosicbox::p2p::router {

/// Target is a request target split at its first '?'.
struct Target {
  std::string path;   ///< the raw (still percent-encoded) path, starting with '/'
  std::string query;  ///< the raw query string, without the '?' (empty when absent)

  /// operator== compares the path and the query.
  friend bool operator==(const Target&, const Target&) = default;
};

/// split_target splits "path?query". Errors: protocol_error when the path is empty, does not start
/// with '/', or contains a fragment ('#'), a space or a control character.
[[nodiscard]] P2PResult<Target> split_target(std::string_view target);

/// is_valid_utf8 is true when `text` is well-formed UTF-8 (no overlong forms, no surrogates, no
/// code point above U+10FFFF).
[[nodiscard]] bool is_valid_utf8(std::string_view text) noexcept;

/// percent_decode decodes %XX escapes (and '+' as a space when `plus_as_space`). Returns nullopt
/// when an escape is malformed.
[[nodiscard]] std::optional<std::string> percent_decode(std::string_view text, bool plus_as_space = false);

/// percent_encode escapes every byte outside the RFC 3986 unreserved set (letters, digits, -._~), so
/// the result is safe as one path segment or one query key or value.
[[nodiscard]] std::string percent_encode(std::string_view text);

/// QueryParams is a decoded query string: key=value pairs in order; a key may repeat.
class QueryParams {
 public:
  /// Param is one decoded key and value ("a" alone gives value "").
  using Param = std::pair<std::string, std::string>;

  /// parse decodes "a=1&b=two+words&c" ('+' is a space, %XX escapes). Empty pairs are skipped.
  /// Errors: protocol_error for a malformed escape or a decoded key or value that is not UTF-8.
  [[nodiscard]] static P2PResult<QueryParams> parse(std::string_view raw);

  /// get returns the value of the first parameter named `key`.
  [[nodiscard]] std::optional<std::string_view> get(std::string_view key) const noexcept;
  /// get_all returns the values of every parameter named `key`, in order.
  [[nodiscard]] std::vector<std::string_view> get_all(std::string_view key) const;
  /// add appends a parameter.
  void add(std::string_view key, std::string_view value) { params_.emplace_back(key, value); }
  /// encode writes the parameters back as a query string (percent-encoded).
  [[nodiscard]] std::string encode() const;

  /// size returns the number of parameters.
  [[nodiscard]] std::size_t size() const noexcept { return params_.size(); }
  /// empty is true when there is no parameter.
  [[nodiscard]] bool empty() const noexcept { return params_.empty(); }
  /// begin and end iterate over the parameters in order.
  ///@{
  [[nodiscard]] auto begin() const noexcept { return params_.begin(); }
  [[nodiscard]] auto end() const noexcept { return params_.end(); }
  ///@}

  /// operator== is true for the same keys and values in the same order.
  friend bool operator==(const QueryParams&, const QueryParams&) = default;

 private:
  std::vector<Param> params_;
};

}  // namespace moosicbox::p2p::router
