// SPDX-License-Identifier: MIT OR Apache-2.0
// log.hpp: the library's logger (spdlog, logger name "p2p"). Internal to src/.
// Layer: core. spdlog loggers are thread-safe.
#pragma once

#include <spdlog/spdlog.h>

namespace moosicbox::p2p {
/// logger returns the library's logger; its level follows P2P_LOG (trace, debug, info, warn, error,
/// off; default warn) read once at first use.
spdlog::logger& logger();
}  // namespace moosicbox::p2p
