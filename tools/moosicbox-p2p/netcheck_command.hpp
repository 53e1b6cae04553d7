// SPDX-License-Identifier: MIT OR Apache-2.0
// netcheck_command.hpp: `moosicbox-p2p netcheck`: runs netcheck against the given relays and prints
// the report for people (a short list) or as one JSON object (--json). docs/cli.md describes it.
// Layer: tools.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "moosicbox/p2p/endpoint/netcheck.hpp"

namespace moosicbox::p2p::cli {

/// NetcheckOptions configures `netcheck`.
struct NetcheckOptions {
  std::vector<std::string> relays;      ///< --relay URL (repeatable, at least one)
  std::optional<std::string> relay_ca;  ///< --relay-ca FILE
  std::uint32_t timeout_secs = 3;       ///< --timeout-secs N: bound on each phase
  bool json = false;                    ///< --json: one JSON object
};

/// netcheck runs the check and prints the report; exit 0 when it ran (whatever it found), 2 for bad
/// options (no relay, a malformed URL), 1 when no UDP socket could be bound.
int netcheck(const NetcheckOptions& options);

/// format_netcheck renders `report` for people: one fact per line, like `tailscale netcheck`.
[[nodiscard]] std::string format_netcheck(const NetReport& report);

}  // namespace moosicbox::p2p::cli
