// SPDX-License-Identifier: MIT OR Apache-2.0
// types.cpp: method tokens and status reason phrases.
// Layer: router. Pure functions over constant tables; thread-safe.
#include "moosicbox/p2p/router/types.hpp"

#include <array>

namespace moosicbox::p2p::router {

namespace {
constexpr std::array<std::string_view, kMethodCount + 1> kMethodNames = {
    "", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
};
}  // namespace

std::string_view method_name(Method m) noexcept {
  const auto code = static_cast<std::uint8_t>(m);
  return code >= 1 && code <= kMethodCount ? kMethodNames[code] : std::string_view("?");
}

std::optional<Method> parse_method(std::string_view token) noexcept {
  for (std::uint8_t code = 1; code <= kMethodCount; ++code) {
    if (kMethodNames[code] == token) return static_cast<Method>(code);
  }
  return std::nullopt;
}

std::optional<Method> method_from_code(std::uint8_t code) noexcept {
  if (code < 1 || code > kMethodCount) return std::nullopt;
  return static_cast<Method>(code);
}

std::string_view status_text(StatusCode s) noexcept {
  switch (s) {
    case StatusCode::ok:
      return "OK";
    case StatusCode::created:
      return "Created";
    case StatusCode::accepted:
      return "Accepted";
    case StatusCode::no_content:
      return "No Content";
    case StatusCode::partial_content:
      return "Partial Content";
    case StatusCode::moved_permanently:
      return "Moved Permanently";
    case StatusCode::found:
      return "Found";
    case StatusCode::see_other:
      return "See Other";
    case StatusCode::not_modified:
      return "Not Modified";
    case StatusCode::temporary_redirect:
      return "Temporary Redirect";
    case StatusCode::permanent_redirect:
      return "Permanent Redirect";
    case StatusCode::bad_request:
      return "Bad Request";
    case StatusCode::unauthorized:
      return "Unauthorized";
    case StatusCode::forbidden:
      return "Forbidden";
    case StatusCode::not_found:
      return "Not Found";
    case StatusCode::method_not_allowed:
      return "Method Not Allowed";
    case StatusCode::not_acceptable:
      return "Not Acceptable";
    case StatusCode::request_timeout:
      return "Request Timeout";
    case StatusCode::conflict:
      return "Conflict";
    case StatusCode::gone:
      return "Gone";
    case StatusCode::length_required:
      return "Length Required";
    case StatusCode::precondition_failed:
      return "Precondition Failed";
    case StatusCode::content_too_large:
      return "Content Too Large";
    case StatusCode::unsupported_media_type:
      return "Unsupported Media Type";
    case StatusCode::range_not_satisfiable:
      return "Range Not Satisfiable";
    case StatusCode::unprocessable_content:
      return "Unprocessable Content";
    case StatusCode::too_many_requests:
      return "Too Many Requests";
    case StatusCode::request_header_fields_too_large:
      return "Request Header Fields Too Large";
    case StatusCode::internal_server_error:
      return "Internal Server Error";
    case StatusCode::not_implemented:
      return "Not Implemented";
    case StatusCode::bad_gateway:
      return "Bad Gateway";
    case StatusCode::service_unavailable:
      return "Service Unavailable";
    case StatusCode::gateway_timeout:
      return "Gateway Timeout";
  }
  return "";
}

}  // namespace moosicbox::p2p::router
