// SPDX-License-Identifier: MIT OR Apache-2.0
// log_test.cpp: log level names, P2P_LOG validation and the application's log hook.
#include "moosicbox/p2p/core/log.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/log.hpp"
#include "moosicbox/p2p/core/spawn.hpp"

namespace moosicbox::p2p {
namespace {

TEST(LogLevel, ParsesEveryNameInAnyCase) {
  EXPECT_EQ(parse_log_level("trace").value(), LogLevel::trace);
  EXPECT_EQ(parse_log_level("DEBUG").value(), LogLevel::debug);
  EXPECT_EQ(parse_log_level("Info").value(), LogLevel::info);
  EXPECT_EQ(parse_log_level("warn").value(), LogLevel::warn);
  EXPECT_EQ(parse_log_level("warning").value(), LogLevel::warn);
  EXPECT_EQ(parse_log_level("error").value(), LogLevel::error);
  EXPECT_EQ(parse_log_level("off").value(), LogLevel::off);
  for (auto level :
       {LogLevel::trace, LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error, LogLevel::off}) {
    EXPECT_EQ(parse_log_level(to_string(level)).value(), level);
  }
}

TEST(LogLevel, RejectsAnythingElseNamingTheAcceptedValues) {
  for (const char* bad : {"", "verbose", "warn ", " info", "2", "err", "infoo"}) {
    auto level = parse_log_level(bad);
    ASSERT_FALSE(level) << bad;
    EXPECT_EQ(level.error().code(), P2PErrc::invalid_configuration);
    EXPECT_NE(level.error().message().find("accepted: trace, debug, info, warn, error, off"), std::string::npos);
  }
}

TEST(LogLevel, FromEnvNamesTheVariable) {
  ASSERT_EQ(::setenv("P2P_LOG", "verbose", 1), 0);
  auto bad = log_level_from_env();
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(),
            "Invalid configuration: P2P_LOG='verbose': not a log level (accepted: trace, debug, info, warn, error, "
            "off)");
  ASSERT_EQ(::setenv("P2P_LOG", "debug", 1), 0);
  EXPECT_EQ(log_level_from_env().value(), LogLevel::debug);
  ASSERT_EQ(::unsetenv("P2P_LOG"), 0);
  EXPECT_EQ(log_level_from_env().value(), std::nullopt);
}

TEST(LogSink, RoutesLinesAtOrAboveTheLevelToTheApplication) {
  std::vector<std::pair<LogLevel, std::string>> got;
  set_log_sink([&](const LogRecord& r) { got.emplace_back(r.level, std::string(r.message)); });
  set_log_level(LogLevel::info);
  EXPECT_EQ(log_level(), LogLevel::info);
  logger().debug("hidden {}", 1);
  logger().info("shown {}", 2);
  logger().warn("warned");
  logger().error("failed");
  log_task_failure("task", std::string_view("boom"));
  set_log_sink({});  // back to standard error
  logger().info("not captured");
  set_log_level(LogLevel::warn);

  ASSERT_EQ(got.size(), 4U);
  EXPECT_EQ(got[0], (std::pair<LogLevel, std::string>{LogLevel::info, "shown 2"}));
  EXPECT_EQ(got[1], (std::pair<LogLevel, std::string>{LogLevel::warn, "warned"}));
  EXPECT_EQ(got[2], (std::pair<LogLevel, std::string>{LogLevel::error, "failed"}));
  EXPECT_EQ(got[3], (std::pair<LogLevel, std::string>{LogLevel::error, "background task 'task' failed: boom"}));
}

TEST(LogSink, OffDropsEverything) {
  int calls = 0;
  set_log_sink([&](const LogRecord&) { ++calls; });
  set_log_level(LogLevel::off);
  logger().error("dropped");
  set_log_sink({});
  set_log_level(LogLevel::warn);
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace moosicbox::p2p
