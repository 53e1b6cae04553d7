// SPDX-License-Identifier: MIT OR Apache-2.0
// relay_config.hpp: the configuration of the moosicbox-p2p-relay binary: the config file (a subset
// of TOML: `key = value` lines, `#` comments, quoted strings, integers, booleans, durations such as
// "10s", byte sizes such as "64KiB", arrays of strings), the command-line overrides, and the text
// --print-config shows (which reads back as a config file). The reference is docs/operations.md.
// Layer: tools. Pure functions over values, except load_relay_config (reads one file).
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/log.hpp"
#include "moosicbox/p2p/env/socket_addr.hpp"
#include "moosicbox/p2p/relay/server.hpp"

namespace moosicbox::p2p::cli {

/// kRelayPortDefault is the TCP port the relay binary binds when nothing else is configured.
inline constexpr std::uint16_t kRelayPortDefault = 3340;

/// kStunPortDefault is the UDP port of the STUN responder unless configured otherwise.
inline constexpr std::uint16_t kStunPortDefault = 3478;

/// kRelayConfigFileSizeMax is the largest config file load_relay_config reads (1 MiB).
inline constexpr std::size_t kRelayConfigFileSizeMax = 1024 * 1024;

/// RelayToolConfig is everything the relay binary needs: the server's configuration and its log level.
struct RelayToolConfig {
  /// server is handed to RelayServer::create. Its bind_addrs default to 127.0.0.1:3340 (loopback
  /// only: serving others takes an explicit bind).
  relay::RelayServerConfig server = default_server_config();
  /// log_level is the level of the library's log lines.
  LogLevel log_level = LogLevel::info;
  /// log_level_set is true when the file (or a flag) named log_level, which then wins over P2P_LOG.
  bool log_level_set = false;
  /// stun_set is true when the file (`stun`) or a flag (--stun, --no-stun) chose the STUN
  /// addresses; otherwise they follow the bind addresses (see default_stun_addrs).
  bool stun_set = false;

  /// default_server_config returns RelayServerConfig's defaults with bind_addrs = {127.0.0.1:3340}
  /// and stun_bind_addrs = {127.0.0.1:3478}.
  [[nodiscard]] static relay::RelayServerConfig default_server_config();
};

/// default_stun_addrs returns the STUN addresses that follow `bind`: UDP port kStunPortDefault
/// (3478) on each distinct IP of `bind`, or port 0 (a free port) for an IP bound with port 0.
[[nodiscard]] std::vector<env::SocketAddr> default_stun_addrs(const std::vector<env::SocketAddr>& bind);

/// parse_relay_config reads the text of a config file; `name` (the file's path as given) starts every
/// error message, with the line and the key: "relay.conf:7: frame_size_max: '64q' is not a byte size
/// (examples: 65536, 64KiB)". Keys absent from the text keep RelayToolConfig's defaults; `bind`
/// (a string or an array of strings, repeatable) replaces the default addresses; `stun` (the same
/// forms; `stun = []` for none) replaces the STUN addresses, which otherwise follow bind.
/// Errors: invalid_configuration for a syntax error, an unknown key, a repeated key (other than bind
/// and stun), a value of the wrong type, a value out of range, tls_cert without tls_key (or the reverse),
/// and limits that contradict each other (e.g. client_queue_bytes_max below frame_size_max).
[[nodiscard]] P2PResult<RelayToolConfig> parse_relay_config(std::string_view text, std::string_view name);

/// load_relay_config reads and parses the file at `path` (at most kRelayConfigFileSizeMax bytes).
/// Errors: invalid_configuration naming the path when the file cannot be read or is too large, and
/// those of parse_relay_config.
[[nodiscard]] P2PResult<RelayToolConfig> load_relay_config(const std::filesystem::path& path);

/// RelayFlags are the command-line options that override the config file.
struct RelayFlags {
  std::optional<std::filesystem::path> config;  ///< --config FILE
  std::vector<std::string> bind;                ///< --bind ADDR (repeatable; replaces the file's bind)
  std::vector<std::string> stun;                ///< --stun ADDR (repeatable; replaces the file's stun)
  bool no_stun = false;                         ///< --no-stun (no STUN responder)
  std::optional<std::string> tls_cert;          ///< --tls-cert FILE
  std::optional<std::string> tls_key;           ///< --tls-key FILE
  bool trust_forwarded_for = false;             ///< --trust-forwarded-for (only turns it on)
  std::optional<std::string> log_level;         ///< --log-level LEVEL
};

/// resolve_relay_config builds the effective configuration: the defaults, then the file of
/// --config, then the flags. Without a log level in the file or the flags, a valid P2P_LOG (read by
/// the caller, `env_log_level`) comes before the default (info). --stun replaces the STUN addresses,
/// --no-stun empties them; without either (nor a `stun` key) they follow the effective bind addresses.
/// Errors: invalid_configuration: those of load_relay_config, a bad --bind or --log-level (naming
/// the flag), a bad --stun or --stun with --no-stun, and tls_cert without tls_key (or the reverse)
/// after the flags are applied.
[[nodiscard]] P2PResult<RelayToolConfig> resolve_relay_config(const RelayFlags& flags,
                                                              std::optional<LogLevel> env_log_level = std::nullopt);

/// format_relay_config renders `config` as a config file with every key (what --print-config
/// prints); parse_relay_config reads it back to the same values.
[[nodiscard]] std::string format_relay_config(const RelayToolConfig& config);

/// format_byte_size renders a byte count with the largest binary unit that divides it ("64KiB",
/// "1MiB", "1000").
[[nodiscard]] std::string format_byte_size(std::uint64_t bytes);

/// format_config_duration renders a duration with the largest unit that divides it ("10s", "500ms",
/// "2m"); the config file reads it back.
[[nodiscard]] std::string format_config_duration(Duration d);

}  // namespace moosicbox::p2p::cli
