// SPDX-License-Identifier: MIT OR Apache-2.0
// config.hpp: NetworkConfig, the knobs shared by both backends, with defaults and strict
// readers of the environment: SIMULATOR_* for the simulator, P2P_* for the real backend.
// Layer: core. Plain value type.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/time.hpp"

namespace moosicbox::p2p {

/// NetworkConfig holds defaults for simulated links and limits both backends enforce.
struct NetworkConfig {
  /// latency is the default one-way latency of a simulated link (SIMULATOR_DEFAULT_LATENCY_MS).
  Duration latency = std::chrono::milliseconds(50);
  /// packet_loss is the default loss probability of a simulated link, in [0, 1]
  /// (SIMULATOR_DEFAULT_PACKET_LOSS).
  double packet_loss = 0.01;
  /// discovery_delay is how long discover() takes in the simulator (SIMULATOR_DISCOVERY_DELAY_MS).
  Duration discovery_delay = std::chrono::milliseconds(100);
  /// connection_timeout bounds connect() and a stalled connection (SIMULATOR_CONNECTION_TIMEOUT_SECS).
  Duration connection_timeout = std::chrono::seconds(30);
  /// max_message_size is the largest message send() accepts and recv() delivers, in bytes
  /// (SIMULATOR_MAX_MESSAGE_SIZE).
  std::size_t max_message_size = std::size_t{1} << 20;

  /// EnvLookup returns the value of an environment variable, or nullopt when it is unset.
  using EnvLookup = std::function<std::optional<std::string>(std::string_view)>;

  /// EnvNames picks the variables a reader uses: the simulator's (SIMULATOR_DEFAULT_LATENCY_MS,
  /// SIMULATOR_DEFAULT_PACKET_LOSS, SIMULATOR_DISCOVERY_DELAY_MS, SIMULATOR_CONNECTION_TIMEOUT_SECS,
  /// SIMULATOR_MAX_MESSAGE_SIZE) or the real backend's (P2P_CONNECTION_TIMEOUT_SECS,
  /// P2P_MAX_MESSAGE_SIZE; the link fields keep their defaults, the real network sets them).
  enum class EnvNames { simulator, quic };

  /// from_env returns the defaults overridden by the SIMULATOR_* environment variables that are set.
  /// Errors: invalid_configuration naming the variable and its value when a value does not parse or
  /// is out of range (negative, loss above 1, zero size or timeout).
  [[nodiscard]] static P2PResult<NetworkConfig> from_env();
  /// from_env reads the variables through `lookup` instead of the process environment (for tests and
  /// for embedding). Errors: as above.
  [[nodiscard]] static P2PResult<NetworkConfig> from_env(const EnvLookup& lookup);
  /// from_env reads the variables of `names` from the process environment. Errors: as above.
  [[nodiscard]] static P2PResult<NetworkConfig> from_env(EnvNames names);
  /// from_env reads the variables of `names` through `lookup`. Errors: as above.
  [[nodiscard]] static P2PResult<NetworkConfig> from_env(EnvNames names, const EnvLookup& lookup);

  /// validate checks that every field is in range.
  /// Errors: invalid_configuration naming the first field out of range.
  [[nodiscard]] P2PResult<void> validate() const;

  /// operator== compares every field.
  friend bool operator==(const NetworkConfig&, const NetworkConfig&) = default;
};

}  // namespace moosicbox::p2p
