// SPDX-License-Identifier: MIT OR Apache-2.0
// url.cpp: relay URL parsing. Strict on purpose: a typo in a relay URL should fail at configuration
// time with a message that names it, not later as a connection failure.
// Layer: relay (internal). Pure functions.
#include "relay/url.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <fmt/format.h>

namespace moosicbox::p2p::relay {

namespace {

std::unexpected<P2PError> bad(std::string_view url, std::string_view why) {
  return fail(P2PError::invalid_configuration(fmt::format("relay URL '{}': {}", url, why)));
}

bool is_host_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || c == '-' || c == '.' || c == '_';
}

}  // namespace

std::string RelayUrl::host_header() const {
  const std::string h = ipv6_literal ? "[" + host + "]" : host;
  if (port == (tls ? 443 : 80)) return h;
  return fmt::format("{}:{}", h, port);
}

P2PResult<RelayUrl> parse_relay_url(std::string_view url) {
  if (url.empty()) return bad(url, "empty");
  if (std::ranges::any_of(url, [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; })) {
    return bad(url, "contains a space or a control character");
  }
  const auto sep = url.find("://");
  if (sep == std::string_view::npos) return bad(url, "no scheme (expected http:// or https://)");
  std::string scheme(url.substr(0, sep));
  std::ranges::transform(scheme, scheme.begin(), [](char c) { return static_cast<char>(c | 0x20); });
  RelayUrl out;
  if (scheme == "http" || scheme == "ws") {
    out.tls = false;
  } else if (scheme == "https" || scheme == "wss") {
    out.tls = true;
  } else {
    return bad(url, fmt::format("unsupported scheme '{}' (expected http or https)", scheme));
  }
  auto rest = url.substr(sep + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (rest.find('@') != std::string_view::npos) return bad(url, "user information is not supported");
  std::string_view host;
  std::string_view port_text;
  bool has_port = false;
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return bad(url, "unbalanced '[' in the host");
    host = rest.substr(1, close - 1);
    out.ipv6_literal = true;
    const auto after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad(url, "unexpected characters after ']'");
      port_text = after.substr(1);
      has_port = true;
    }
    if (host.empty()) return bad(url, "empty host");
    if (!std::ranges::all_of(
            host, [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.'; })) {
      return bad(url, "bad IPv6 address");
    }
  } else {
    const auto colon = rest.rfind(':');
    host = rest.substr(0, colon);
    if (colon != std::string_view::npos) {
      port_text = rest.substr(colon + 1);
      has_port = true;
    }
    if (host.empty()) return bad(url, "empty host");
    if (host.find(':') != std::string_view::npos || host.find(']') != std::string_view::npos) {
      return bad(url, "an IPv6 address must be written in brackets, like [::1]:443");
    }
    if (!std::ranges::all_of(host, is_host_char)) return bad(url, "bad character in the host");
  }
  out.host = std::string(host);
  out.port = out.tls ? 443 : 80;
  if (has_port) {
    if (port_text.empty()) return bad(url, "empty port");
    unsigned long port = 0;
    const auto* end = port_text.data() + port_text.size();
    const auto [ptr, ec] = std::from_chars(port_text.data(), end, port);
    if (ec == std::errc::result_out_of_range || (ec == std::errc() && ptr == end && port > 65535)) {
      return bad(url, fmt::format("port {} out of range (1..65535)", port_text));
    }
    if (ec != std::errc() || ptr != end) return bad(url, fmt::format("bad port '{}'", port_text));
    if (port == 0) return bad(url, "port 0 (expected 1..65535)");
    out.port = static_cast<std::uint16_t>(port);
  }
  return out;
}

}  // namespace moosicbox::p2p::relay
