// SPDX-License-Identifier: MIT OR Apache-2.0
// error.hpp: P2PError and P2PResult<T>, the one error vocabulary of the library. A P2PError is a code
// from P2PErrc (registered as a std::error_code category) plus a short context; message() renders
// a fixed text per code plus the context, such as "Message too large: 2000000 bytes exceeds max 1048576".
// Layer: core. Plain value types; the category object is immutable and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "moosicbox/p2p/core/time.hpp"

namespace moosicbox::p2p {

/// P2PErrc lists every kind of failure a caller can react to differently.
enum class P2PErrc : int {
  connection_failed = 1,  ///< "Connection failed: {}"
  node_not_found,         ///< "Node not found: {}"
  network_error,          ///< "Network error: {}"
  invalid_node_id,        ///< "Invalid node ID: {}"
  timeout,                ///< "Operation timed out after {duration}"
  connection_closed,      ///< "Connection closed by {reason}"
  no_route,               ///< "No route to destination {node_id}"
  discovery_failed,       ///< "Discovery failed: {}"
  protocol_error,         ///< "Protocol error: {}"
  message_too_large,      ///< "Message too large: {size} bytes exceeds max {max}"
  authentication_failed,  ///< "Authentication failed for peer {peer}"
  invalid_configuration,  ///< "Invalid configuration: {}"
  cancelled,              ///< "Operation cancelled: {}" (a wait ended by cancel(), not by failure)
  stream_reset,           ///< "Stream reset: {}" (the peer aborted one stream; the connection lives)
};

/// p2p_category is the std::error_category of P2PErrc ("p2p").
[[nodiscard]] const std::error_category& p2p_category() noexcept;

/// make_error_code lets P2PErrc convert to std::error_code.
[[nodiscard]] inline std::error_code make_error_code(P2PErrc e) noexcept {
  return {static_cast<int>(e), p2p_category()};
}

/// P2PError is a failure: a code and a short context that completes the code's message.
class [[nodiscard]] P2PError {
 public:
  /// P2PError builds an error from its code and context (the part after the code's prefix).
  P2PError(P2PErrc code, std::string context) : code_(code), context_(std::move(context)) {}

  /// code returns the kind of failure.
  [[nodiscard]] P2PErrc code() const noexcept { return code_; }
  /// error_code returns the code as a std::error_code of p2p_category().
  [[nodiscard]] std::error_code error_code() const noexcept { return make_error_code(code_); }
  /// context returns the short context, without the code's prefix.
  [[nodiscard]] const std::string& context() const noexcept { return context_; }
  /// message returns the full text for people, e.g. "Node not found: alice".
  [[nodiscard]] std::string message() const;

  /// operator== is true for the same code and the same context.
  friend bool operator==(const P2PError& a, const P2PError& b) = default;

  /// Factories, one per code, build the error from the values its message names. Each is named after
  /// its code, except network() (network_error) and protocol() (protocol_error); timeout() renders
  /// `after` with format_duration(), stream_reset() names the peer's application code.
  ///@{
  static P2PError connection_failed(std::string why) { return {P2PErrc::connection_failed, std::move(why)}; }
  static P2PError node_not_found(std::string what) { return {P2PErrc::node_not_found, std::move(what)}; }
  static P2PError network(std::string why) { return {P2PErrc::network_error, std::move(why)}; }
  static P2PError invalid_node_id(std::string why) { return {P2PErrc::invalid_node_id, std::move(why)}; }
  static P2PError timeout(Duration after) { return {P2PErrc::timeout, format_duration(after)}; }
  static P2PError connection_closed(std::string by) { return {P2PErrc::connection_closed, std::move(by)}; }
  static P2PError no_route(std::string node_id) { return {P2PErrc::no_route, std::move(node_id)}; }
  static P2PError discovery_failed(std::string why) { return {P2PErrc::discovery_failed, std::move(why)}; }
  static P2PError protocol(std::string why) { return {P2PErrc::protocol_error, std::move(why)}; }
  static P2PError message_too_large(std::size_t size, std::size_t max) {
    return {P2PErrc::message_too_large, fmt::format("{} bytes exceeds max {}", size, max)};
  }
  static P2PError authentication_failed(std::string peer) { return {P2PErrc::authentication_failed, std::move(peer)}; }
  static P2PError invalid_configuration(std::string why) { return {P2PErrc::invalid_configuration, std::move(why)}; }
  static P2PError cancelled(std::string what) { return {P2PErrc::cancelled, std::move(what)}; }
  static P2PError stream_reset(std::uint64_t app_code) {
    return {P2PErrc::stream_reset, fmt::format("application code {}", app_code)};
  }
  ///@}

 private:
  P2PErrc code_;
  std::string context_;
};

/// P2PResult is the result of every fallible operation: a value or a P2PError.
template <class T>
using P2PResult = std::expected<T, P2PError>;

/// fail wraps an error for returning from a function that returns P2PResult<T>.
[[nodiscard]] inline std::unexpected<P2PError> fail(P2PError e) { return std::unexpected<P2PError>(std::move(e)); }

/// prefix returns the fixed part of a code's message, e.g. "Message too large: ".
[[nodiscard]] std::string_view message_prefix(P2PErrc code) noexcept;

}  // namespace moosicbox::p2p

template <>
struct std::is_error_code_enum<moosicbox::p2p::P2PErrc> : std::true_type {};

/// @cond
/// fmt::formatter for P2PError prints message().
template <>
struct fmt::formatter<moosicbox::p2p::P2PError> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const moosicbox::p2p::P2PError& e, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(e.message(), ctx);
  }
};
/// @endcond
