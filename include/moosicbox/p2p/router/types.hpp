// SPDX-License-Identifier: MIT OR Apache-2.0
// types.hpp: the HTTP-like vocabulary of the router: request methods, status codes and their texts.
// Method names are the HTTP tokens (GET, POST, ...): `delete` is a C++ keyword, and code written
// against the router reads like the HTTP it mirrors.
// Layer: router. Plain value types and pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include <fmt/format.h>

namespace moosicbox::p2p::router {

/// Method is the request method. Its value is the method's code on the wire (docs/protocol.md).
enum class Method : std::uint8_t {
  GET = 1,
  HEAD = 2,
  POST = 3,
  PUT = 4,
  DELETE = 5,
  PATCH = 6,
  OPTIONS = 7,
};

/// kMethodCount is the number of methods; codes run from 1 to kMethodCount.
inline constexpr std::uint8_t kMethodCount = 7;

/// method_name returns the method's token, e.g. "GET".
[[nodiscard]] std::string_view method_name(Method m) noexcept;
/// parse_method reads a method token (exact, upper case); nullopt for anything else.
[[nodiscard]] std::optional<Method> parse_method(std::string_view token) noexcept;
/// method_from_code maps a wire code to a method; nullopt for an unknown code.
[[nodiscard]] std::optional<Method> method_from_code(std::uint8_t code) noexcept;

/// StatusCode is a response status. Any value in [200, 599] may travel on the wire; the enumerators
/// name the common ones.
enum class StatusCode : std::uint16_t {
  ok = 200,
  created = 201,
  accepted = 202,
  no_content = 204,
  partial_content = 206,
  moved_permanently = 301,
  found = 302,
  see_other = 303,
  not_modified = 304,
  temporary_redirect = 307,
  permanent_redirect = 308,
  bad_request = 400,
  unauthorized = 401,
  forbidden = 403,
  not_found = 404,
  method_not_allowed = 405,
  not_acceptable = 406,
  request_timeout = 408,
  conflict = 409,
  gone = 410,
  length_required = 411,
  precondition_failed = 412,
  content_too_large = 413,
  unsupported_media_type = 415,
  range_not_satisfiable = 416,
  unprocessable_content = 422,
  too_many_requests = 429,
  request_header_fields_too_large = 431,
  internal_server_error = 500,
  not_implemented = 501,
  bad_gateway = 502,
  service_unavailable = 503,
  gateway_timeout = 504,
};

/// kStatusMin and kStatusMax bound the status values the protocol carries (no interim 1xx responses).
inline constexpr std::uint16_t kStatusMin = 200;
inline constexpr std::uint16_t kStatusMax = 599;

/// status_value returns the numeric value of `s`.
[[nodiscard]] constexpr std::uint16_t status_value(StatusCode s) noexcept { return static_cast<std::uint16_t>(s); }
/// status_text returns the reason phrase of `s` ("Not Found"), or "" for a value without a name.
[[nodiscard]] std::string_view status_text(StatusCode s) noexcept;
/// is_success is true for 2xx statuses.
[[nodiscard]] constexpr bool is_success(StatusCode s) noexcept {
  return status_value(s) >= 200 && status_value(s) < 300;
}
/// allows_body is false for statuses whose responses never carry a body (204 and 304).
[[nodiscard]] constexpr bool allows_body(StatusCode s) noexcept {
  return s != StatusCode::no_content && s != StatusCode::not_modified;
}

}  // namespace moosicbox::p2p::router

/// @cond
/// fmt::formatter for Method prints its token.
template <>
struct fmt::formatter<moosicbox::p2p::router::Method> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(moosicbox::p2p::router::Method m, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(moosicbox::p2p::router::method_name(m), ctx);
  }
};

/// fmt::formatter for StatusCode prints "404 Not Found".
template <>
struct fmt::formatter<moosicbox::p2p::router::StatusCode> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(moosicbox::p2p::router::StatusCode s, Ctx& ctx) const {
    const auto text = moosicbox::p2p::router::status_text(s);
    if (text.empty()) return fmt::format_to(ctx.out(), "{}", moosicbox::p2p::router::status_value(s));
    return fmt::format_to(ctx.out(), "{} {}", moosicbox::p2p::router::status_value(s), text);
  }
};
/// @endcond
