// SPDX-License-Identifier: MIT OR Apache-2.0
// log.cpp: the library's logger, its level from P2P_LOG, the application's log hook, and the failure
// path of spawn_logged.
// Layer: core. Thread-safe (spdlog's sink mutex guards the hook).
#include "core/log.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <utility>

#include "moosicbox/p2p/core/log.hpp"
#include "moosicbox/p2p/core/spawn.hpp"

namespace moosicbox::p2p {
namespace {

constexpr std::array<std::pair<std::string_view, LogLevel>, 7> kLevelNames{{
    {"trace", LogLevel::trace},
    {"debug", LogLevel::debug},
    {"info", LogLevel::info},
    {"warn", LogLevel::warn},
    {"warning", LogLevel::warn},
    {"error", LogLevel::error},
    {"off", LogLevel::off},
}};

bool equal_ignoring_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

spdlog::level::level_enum to_spdlog(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::trace:
      return spdlog::level::trace;
    case LogLevel::debug:
      return spdlog::level::debug;
    case LogLevel::info:
      return spdlog::level::info;
    case LogLevel::warn:
      return spdlog::level::warn;
    case LogLevel::error:
      return spdlog::level::err;
    case LogLevel::off:
      return spdlog::level::off;
  }
  return spdlog::level::warn;
}

LogLevel from_spdlog(spdlog::level::level_enum level) noexcept {
  switch (level) {
    case spdlog::level::trace:
      return LogLevel::trace;
    case spdlog::level::debug:
      return LogLevel::debug;
    case spdlog::level::info:
      return LogLevel::info;
    case spdlog::level::warn:
      return LogLevel::warn;
    case spdlog::level::err:
    case spdlog::level::critical:
      return LogLevel::error;
    default:
      return LogLevel::off;
  }
}

// HookSink writes to standard error until an application installs a LogSink, then forwards to it.
// base_sink's mutex serialises sink_it_ and the hook swap.
class HookSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  void set_hook(LogSink hook) {
    const std::lock_guard<std::mutex> lock(mutex_);
    hook_ = std::move(hook);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (hook_) {
      hook_(LogRecord{from_spdlog(msg.level), std::string_view(msg.payload.data(), msg.payload.size())});
      return;
    }
    stderr_.log(msg);
  }
  void flush_() override { stderr_.flush(); }

 private:
  LogSink hook_;
  spdlog::sinks::stderr_color_sink_st stderr_;
};

struct Logger {
  std::shared_ptr<HookSink> sink = std::make_shared<HookSink>();
  std::shared_ptr<spdlog::logger> logger = std::make_shared<spdlog::logger>("p2p", sink);

  Logger() {
    LogLevel level = LogLevel::warn;
    auto from_env = log_level_from_env();
    if (!from_env) {
      std::fprintf(stderr, "moosicbox-p2p: %s; logging at warn\n", from_env.error().message().c_str());
    } else if (*from_env) {
      level = **from_env;
    }
    logger->set_level(to_spdlog(level));
  }
};

Logger& instance() {
  static Logger l;
  return l;
}

}  // namespace

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::trace:
      return "trace";
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
    case LogLevel::off:
      return "off";
  }
  return "warn";
}

P2PResult<LogLevel> parse_log_level(std::string_view text) {
  for (const auto& [name, level] : kLevelNames) {
    if (equal_ignoring_case(text, name)) return level;
  }
  return fail(P2PError::invalid_configuration(
      fmt::format("'{}': not a log level (accepted: trace, debug, info, warn, error, off)", text)));
}

P2PResult<std::optional<LogLevel>> log_level_from_env() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read at first use of the logger or when asked.
  const char* text = std::getenv("P2P_LOG");
  if (text == nullptr) return std::optional<LogLevel>{};
  auto level = parse_log_level(text);
  if (!level) {
    return fail(P2PError::invalid_configuration(
        fmt::format("P2P_LOG='{}': not a log level (accepted: trace, debug, info, warn, error, off)", text)));
  }
  return std::optional<LogLevel>{*level};
}

void set_log_sink(LogSink sink) { instance().sink->set_hook(std::move(sink)); }

void set_log_level(LogLevel level) { instance().logger->set_level(to_spdlog(level)); }

LogLevel log_level() { return from_spdlog(instance().logger->level()); }

spdlog::logger& logger() { return *instance().logger; }

void log_task_failure(std::string_view name, std::string_view what) noexcept {
  try {
    logger().error("background task '{}' failed: {}", name, what);
  } catch (...) {  // logging must never take the process down
  }
}

void log_task_failure(std::string_view name, std::exception_ptr e) noexcept {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log_task_failure(name, std::string_view(ex.what()));
  } catch (...) {
    log_task_failure(name, std::string_view("unknown exception"));
  }
}

}  // namespace moosicbox::p2p
