// SPDX-License-Identifier: MIT OR Apache-2.0
// headers.cpp: Headers and the RFC 9110 field syntax checks.
// Layer: router. Plain value type; not thread-safe.
#include "moosicbox/p2p/router/headers.hpp"

#include <algorithm>

namespace moosicbox::p2p::router {

namespace {
constexpr char to_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

constexpr bool is_tchar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}
}  // namespace

bool is_valid_header_name(std::string_view name) noexcept {
  return !name.empty() && std::ranges::all_of(name, is_tchar);
}

bool is_valid_header_value(std::string_view value) noexcept {
  // Field values may carry any octet but NUL, CR and LF (obs-text included); leading and trailing
  // whitespace is not part of a value, so a value that has it was built wrong.
  if (std::ranges::any_of(value, [](char c) { return c == '\0' || c == '\r' || c == '\n'; })) return false;
  if (!value.empty()) {
    const auto ws = [](char c) { return c == ' ' || c == '\t'; };
    if (ws(value.front()) || ws(value.back())) return false;
  }
  return true;
}

std::string ascii_lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = to_lower(c);
  return out;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return to_lower(x) == to_lower(y); });
}

Headers::Headers(std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  fields_.reserve(fields.size());
  for (const auto& [name, value] : fields) add(name, value);
}

void Headers::add(std::string_view name, std::string_view value) { fields_.emplace_back(ascii_lower(name), value); }

void Headers::set(std::string_view name, std::string_view value) {
  remove(name);
  add(name, value);
}

std::size_t Headers::remove(std::string_view name) {
  return std::erase_if(fields_, [&](const Field& f) { return iequals(f.first, name); });
}

std::optional<std::string_view> Headers::get(std::string_view name) const noexcept {
  for (const auto& f : fields_) {
    if (iequals(f.first, name)) return std::string_view(f.second);
  }
  return std::nullopt;
}

std::vector<std::string_view> Headers::get_all(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& f : fields_) {
    if (iequals(f.first, name)) out.emplace_back(f.second);
  }
  return out;
}

}  // namespace moosicbox::p2p::router
