// SPDX-License-Identifier: MIT OR Apache-2.0
// log.hpp: the library's log level and the hook that routes its log lines into an application's own
// logger.
// Layer: core. Every function here is thread-safe.
#pragma once

#include <functional>
#include <optional>
#include <string_view>

#include "moosicbox/p2p/core/error.hpp"

namespace moosicbox::p2p {

/// LogLevel orders the library's log lines from the most verbose to none.
enum class LogLevel { trace, debug, info, warn, error, off };

/// to_string returns the level's name as parse_log_level accepts it ("trace", ..., "off").
[[nodiscard]] std::string_view to_string(LogLevel level) noexcept;

/// parse_log_level reads a level name: trace, debug, info, warn (or warning), error, off, in any
/// letter case. Errors: invalid_configuration naming the text and the accepted names.
[[nodiscard]] P2PResult<LogLevel> parse_log_level(std::string_view text);

/// log_level_from_env reads the P2P_LOG environment variable: nullopt when it is unset.
/// Errors: invalid_configuration, e.g. "P2P_LOG='verbose': not a log level (accepted: trace, debug,
/// info, warn, error, off)".
[[nodiscard]] P2PResult<std::optional<LogLevel>> log_level_from_env();

/// LogRecord is one log line handed to a LogSink. `message` is only valid during the call.
struct LogRecord {
  LogLevel level;            ///< the line's level (never off)
  std::string_view message;  ///< the formatted text, without level, time or trailing newline
};

/// LogSink receives the library's log lines. It is called from whichever thread logs (the threads
/// running the library's executors), one call at a time, and must not call back into the library's
/// logging functions.
using LogSink = std::function<void(const LogRecord&)>;

/// set_log_sink routes every later log line to `sink` instead of standard error; an empty function
/// restores standard error. Lines below log_level() never reach the sink.
void set_log_sink(LogSink sink);

/// set_log_level sets the level below which lines are dropped. The initial level is P2P_LOG's when
/// it is set and valid, else warn; an invalid P2P_LOG prints one line to standard error naming the
/// variable and the accepted values, and the level stays warn.
void set_log_level(LogLevel level);

/// log_level returns the current level.
[[nodiscard]] LogLevel log_level();

}  // namespace moosicbox::p2p
