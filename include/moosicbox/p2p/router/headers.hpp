// SPDX-License-Identifier: MIT OR Apache-2.0
// headers.hpp: Headers, an ordered multimap of request or response header fields with
// case-insensitive names (stored lower case, as they travel on the wire), and the field syntax rules.
// Layer: router. Plain value type; not thread-safe.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moosicbox::p2p::router {

/// is_valid_header_name is true for a non-empty RFC 9110 token (letters, digits, !#$%&'*+-.^_`|~).
[[nodiscard]] bool is_valid_header_name(std::string_view name) noexcept;
/// is_valid_header_value is true when `value` has no NUL, CR or LF and no leading or trailing
/// space or tab.
[[nodiscard]] bool is_valid_header_value(std::string_view value) noexcept;

/// Headers holds header fields in insertion order. Names compare case-insensitively: they are stored
/// lower case. A name may appear several times. Validity is checked when a head is encoded or decoded,
/// not on insertion.
class Headers {
 public:
  /// Field is one header field: a lower-case name and its value.
  using Field = std::pair<std::string, std::string>;

  Headers() = default;
  /// Headers adds each field of `fields` in order (names are lower-cased).
  Headers(std::initializer_list<std::pair<std::string_view, std::string_view>> fields);

  /// add appends a field, keeping fields of the same name.
  void add(std::string_view name, std::string_view value);
  /// set replaces every field named `name` with one field.
  void set(std::string_view name, std::string_view value);
  /// remove drops every field named `name`; returns how many were dropped.
  std::size_t remove(std::string_view name);

  /// get returns the value of the first field named `name`.
  [[nodiscard]] std::optional<std::string_view> get(std::string_view name) const noexcept;
  /// get_all returns the values of every field named `name`, in order.
  [[nodiscard]] std::vector<std::string_view> get_all(std::string_view name) const;
  /// contains is true when a field named `name` exists.
  [[nodiscard]] bool contains(std::string_view name) const noexcept { return get(name).has_value(); }

  /// size returns the number of fields.
  [[nodiscard]] std::size_t size() const noexcept { return fields_.size(); }
  /// empty is true when there is no field.
  [[nodiscard]] bool empty() const noexcept { return fields_.empty(); }
  /// begin and end iterate over the fields in order.
  ///@{
  [[nodiscard]] auto begin() const noexcept { return fields_.begin(); }
  [[nodiscard]] auto end() const noexcept { return fields_.end(); }
  ///@}

  /// operator== is true for the same fields in the same order.
  friend bool operator==(const Headers&, const Headers&) = default;

 private:
  std::vector<Field> fields_;
};

/// ascii_lower returns `text` with A-Z mapped to a-z.
[[nodiscard]] std::string ascii_lower(std::string_view text);
/// iequals compares two strings ignoring ASCII case.
[[nodiscard]] bool iequals(std::string_view a, std::string_view b) noexcept;

}  // namespace moosicbox::p2p::router
