// SPDX-License-Identifier: MIT OR Apache-2.0
// error.cpp: messages of P2PErrc, the p2p error category, duration formatting and MOOSICBOX_P2P_ASSERT's
// failure path. Layer: core. Stateless; thread-safe.
#include "moosicbox/p2p/core/error.hpp"

#include <cstdio>
#include <cstdlib>

#include "moosicbox/p2p/core/assert.hpp"

namespace moosicbox::p2p {

std::string_view message_prefix(P2PErrc code) noexcept {
  switch (code) {
    case P2PErrc::connection_failed:
      return "Connection failed: ";
    case P2PErrc::node_not_found:
      return "Node not found: ";
    case P2PErrc::network_error:
      return "Network error: ";
    case P2PErrc::invalid_node_id:
      return "Invalid node ID: ";
    case P2PErrc::timeout:
      return "Operation timed out after ";
    case P2PErrc::connection_closed:
      return "Connection closed by ";
    case P2PErrc::no_route:
      return "No route to destination ";
    case P2PErrc::discovery_failed:
      return "Discovery failed: ";
    case P2PErrc::protocol_error:
      return "Protocol error: ";
    case P2PErrc::message_too_large:
      return "Message too large: ";
    case P2PErrc::authentication_failed:
      return "Authentication failed for peer ";
    case P2PErrc::invalid_configuration:
      return "Invalid configuration: ";
    case P2PErrc::cancelled:
      return "Operation cancelled: ";
    case P2PErrc::stream_reset:
      return "Stream reset: ";
  }
  return "Unknown error: ";
}

std::string P2PError::message() const {
  std::string out(message_prefix(code_));
  out += context_;
  return out;
}

namespace {
class P2PCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "p2p"; }
  std::string message(int value) const override {
    auto prefix = message_prefix(static_cast<P2PErrc>(value));
    // The category message has no context: drop the trailing ": " or " " of the prefix.
    while (!prefix.empty() && (prefix.back() == ' ' || prefix.back() == ':')) prefix.remove_suffix(1);
    return std::string(prefix);
  }
};
}  // namespace

const std::error_category& p2p_category() noexcept {
  static const P2PCategory category;
  return category;
}

std::string format_duration(Duration d) {
  const auto ns = d.count();
  const auto abs = ns < 0 ? -ns : ns;
  // Whole units print without decimals ("30s"); others keep up to three significant decimals.
  auto render = [&](std::int64_t unit, const char* suffix) {
    if (ns % unit == 0) return fmt::format("{}{}", ns / unit, suffix);
    auto text = fmt::format("{:.3f}", static_cast<double>(ns) / static_cast<double>(unit));
    while (text.back() == '0') text.pop_back();
    if (text.back() == '.') text.pop_back();
    return text + suffix;
  };
  if (abs >= 1'000'000'000) return render(1'000'000'000, "s");
  if (abs >= 1'000'000) return render(1'000'000, "ms");
  if (abs >= 1'000) return render(1'000, "us");
  return fmt::format("{}ns", ns);
}

namespace detail {
void assert_fail(const char* expr, const char* file, int line, const char* func) noexcept {
  std::fprintf(stderr, "moosicbox-p2p: assertion failed: %s\n  at %s:%d in %s\n", expr, file, line, func);
  std::fflush(stderr);
  std::abort();
}
}  // namespace detail

}  // namespace moosicbox::p2p
