// SPDX-License-Identifier: MIT OR Apache-2.0
// config_test.cpp: NetworkConfig defaults and the strict readers of SIMULATOR_* and the real
// backend's P2P_* variables.
#include "moosicbox/p2p/core/config.hpp"

#include <gtest/gtest.h>

#include <map>

namespace moosicbox::p2p {
namespace {

using namespace std::chrono_literals;

NetworkConfig::EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(NetworkConfig, DefaultsMatchTheSpec) {
  const NetworkConfig cfg;
  EXPECT_EQ(cfg.latency, 50ms);
  EXPECT_DOUBLE_EQ(cfg.packet_loss, 0.01);
  EXPECT_EQ(cfg.discovery_delay, 100ms);
  EXPECT_EQ(cfg.connection_timeout, 30s);
  EXPECT_EQ(cfg.max_message_size, 1048576U);
  EXPECT_TRUE(cfg.validate());
}

TEST(NetworkConfig, FromEnvWithNothingSetGivesDefaults) {
  auto cfg = NetworkConfig::from_env(env_of({}));
  ASSERT_TRUE(cfg);
  EXPECT_EQ(*cfg, NetworkConfig{});
}

TEST(NetworkConfig, FromEnvReadsEveryVariable) {
  auto cfg = NetworkConfig::from_env(env_of({{"SIMULATOR_DEFAULT_LATENCY_MS", "7"},
                                             {"SIMULATOR_DEFAULT_PACKET_LOSS", "0.25"},
                                             {"SIMULATOR_DISCOVERY_DELAY_MS", "0"},
                                             {"SIMULATOR_CONNECTION_TIMEOUT_SECS", "5"},
                                             {"SIMULATOR_MAX_MESSAGE_SIZE", "4096"}}));
  ASSERT_TRUE(cfg) << cfg.error().message();
  EXPECT_EQ(cfg->latency, 7ms);
  EXPECT_DOUBLE_EQ(cfg->packet_loss, 0.25);
  EXPECT_EQ(cfg->discovery_delay, 0ms);
  EXPECT_EQ(cfg->connection_timeout, 5s);
  EXPECT_EQ(cfg->max_message_size, 4096U);
}

TEST(NetworkConfig, FromEnvRejectsBadValuesNamingVariableAndValue) {
  struct Case {
    const char* var;
    const char* value;
    const char* why;
  };
  const Case cases[] = {
      {"SIMULATOR_DEFAULT_LATENCY_MS", "-5", "must not be negative"},
      {"SIMULATOR_DEFAULT_LATENCY_MS", "abc", "not a non-negative integer"},
      {"SIMULATOR_DEFAULT_LATENCY_MS", "10ms", "not a non-negative integer"},
      {"SIMULATOR_DEFAULT_LATENCY_MS", "", "empty value"},
      {"SIMULATOR_DEFAULT_LATENCY_MS", "99999999999999999999999", "out of range"},
      {"SIMULATOR_DEFAULT_PACKET_LOSS", "1.5", "must be between 0 and 1"},
      {"SIMULATOR_DEFAULT_PACKET_LOSS", "-0.1", "must be between 0 and 1"},
      {"SIMULATOR_DEFAULT_PACKET_LOSS", "nan", "not a number"},
      {"SIMULATOR_DEFAULT_PACKET_LOSS", "half", "not a number"},
      {"SIMULATOR_DISCOVERY_DELAY_MS", " 3", "not a non-negative integer"},
      {"SIMULATOR_CONNECTION_TIMEOUT_SECS", "0", "must be at least 1"},
      {"SIMULATOR_CONNECTION_TIMEOUT_SECS", "1.5", "not a non-negative integer"},
      {"SIMULATOR_MAX_MESSAGE_SIZE", "0", "must be at least 1"},
      {"SIMULATOR_MAX_MESSAGE_SIZE", "-1", "must not be negative"},
      {"SIMULATOR_MAX_MESSAGE_SIZE", "5000000000", "must fit in 32 bits"},
  };
  for (const auto& c : cases) {
    auto cfg = NetworkConfig::from_env(env_of({{c.var, c.value}}));
    ASSERT_FALSE(cfg) << c.var << "=" << c.value;
    EXPECT_EQ(cfg.error().code(), P2PErrc::invalid_configuration);
    EXPECT_EQ(cfg.error().message(), fmt::format("Invalid configuration: {}='{}': {}", c.var, c.value, c.why));
  }
}

TEST(NetworkConfig, TheRealBackendReadsItsOwnNamesOnly) {
  // SIMULATOR_* set too: the real backend's reader ignores them, and the link fields keep defaults.
  auto cfg = NetworkConfig::from_env(NetworkConfig::EnvNames::quic, env_of({{"P2P_CONNECTION_TIMEOUT_SECS", "12"},
                                                                            {"P2P_MAX_MESSAGE_SIZE", "4096"},
                                                                            {"SIMULATOR_CONNECTION_TIMEOUT_SECS", "99"},
                                                                            {"SIMULATOR_DEFAULT_LATENCY_MS", "7"}}));
  ASSERT_TRUE(cfg) << cfg.error().message();
  EXPECT_EQ(cfg->connection_timeout, 12s);
  EXPECT_EQ(cfg->max_message_size, 4096U);
  EXPECT_EQ(cfg->latency, NetworkConfig{}.latency);

  // And the simulator's reader ignores the real backend's names.
  auto sim =
      NetworkConfig::from_env(NetworkConfig::EnvNames::simulator, env_of({{"P2P_CONNECTION_TIMEOUT_SECS", "12"}}));
  ASSERT_TRUE(sim);
  EXPECT_EQ(sim->connection_timeout, NetworkConfig{}.connection_timeout);
}

TEST(NetworkConfig, TheRealBackendsNamesAreValidatedLikeTheSimulators) {
  struct Case {
    const char* var;
    const char* value;
    const char* why;
  };
  const Case cases[] = {
      {"P2P_CONNECTION_TIMEOUT_SECS", "0", "must be at least 1"},
      {"P2P_CONNECTION_TIMEOUT_SECS", "30s", "not a non-negative integer"},
      {"P2P_CONNECTION_TIMEOUT_SECS", "", "empty value"},
      {"P2P_MAX_MESSAGE_SIZE", "-1", "must not be negative"},
      {"P2P_MAX_MESSAGE_SIZE", "1e6", "not a non-negative integer"},
      {"P2P_MAX_MESSAGE_SIZE", "5000000000", "must fit in 32 bits"},
  };
  for (const auto& c : cases) {
    auto cfg = NetworkConfig::from_env(NetworkConfig::EnvNames::quic, env_of({{c.var, c.value}}));
    ASSERT_FALSE(cfg) << c.var << "=" << c.value;
    EXPECT_EQ(cfg.error().message(), fmt::format("Invalid configuration: {}='{}': {}", c.var, c.value, c.why));
  }
}

TEST(NetworkConfig, ValidateRejectsOutOfRangeFields) {
  NetworkConfig cfg;
  cfg.packet_loss = 2.0;
  EXPECT_FALSE(cfg.validate());
  cfg = {};
  cfg.max_message_size = 0;
  EXPECT_FALSE(cfg.validate());
  cfg = {};
  cfg.connection_timeout = 0s;
  EXPECT_FALSE(cfg.validate());
  cfg = {};
  cfg.latency = -1ms;
  EXPECT_FALSE(cfg.validate());
}

}  // namespace
}  // namespace moosicbox::p2p
