// SPDX-License-Identifier: MIT OR Apache-2.0
// log.cpp: the library's logger and the failure path of spawn_logged.
// Layer: core. Thread-safe (spdlog).
#include "core/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <cstdlib>

#include "moosicbox/p2p/core/spawn.hpp"

namespace moosicbox::p2p {

spdlog::logger& logger() {
  static const std::shared_ptr<spdlog::logger> instance = [] {
    auto l = spdlog::stderr_color_mt("p2p");
    // NOLINTNEXTLINE(concurrency-mt-unsafe): read once, at first use.
    const char* level = std::getenv("P2P_LOG");
    l->set_level(level != nullptr ? spdlog::level::from_str(level) : spdlog::level::warn);
    return l;
  }();
  return *instance;
}

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
