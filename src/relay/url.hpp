// SPDX-License-Identifier: MIT OR Apache-2.0
// url.hpp: RelayUrl, a relay's base URL split into scheme, host and port, with clear errors for
// malformed input. The client and probe_latency parse with it.
// Layer: relay (internal). Pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "moosicbox/p2p/core/error.hpp"

namespace moosicbox::p2p::relay {

/// RelayUrl is a parsed "http[s]://host[:port][/path]" (the path is ignored).
struct RelayUrl {
  bool tls = false;           ///< https (wss) rather than http (ws)
  std::string host;           ///< host name or IP address, without IPv6 brackets
  std::uint16_t port = 0;     ///< the explicit port, else 80 / 443
  bool ipv6_literal = false;  ///< host was written as [v6 address]
  /// host_header returns the Host header value: host, bracketed for IPv6, with ":port" unless the
  /// port is the scheme's default.
  [[nodiscard]] std::string host_header() const;
  /// operator== compares every field.
  friend bool operator==(const RelayUrl&, const RelayUrl&) = default;
};

/// parse_relay_url reads a relay URL.
/// Errors: invalid_configuration naming what is wrong (no scheme, unsupported scheme, empty host,
/// bad or out-of-range port, port 0, spaces or control characters, unbalanced IPv6 brackets).
[[nodiscard]] P2PResult<RelayUrl> parse_relay_url(std::string_view url);

}  // namespace moosicbox::p2p::relay
