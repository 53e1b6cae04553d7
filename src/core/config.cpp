// SPDX-License-Identifier: MIT OR Apache-2.0
// config.cpp: NetworkConfig defaults validation and the strict environment readers (SIMULATOR_* for
// the simulator, P2P_* for the real backend).
// Layer: core. Reads the process environment only in from_env(); thread-compatible.
#include "moosicbox/p2p/core/config.hpp"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace moosicbox::p2p {
namespace {

P2PError bad_var(std::string_view var, std::string_view value, std::string_view why) {
  return P2PError::invalid_configuration(fmt::format("{}='{}': {}", var, value, why));
}

// parse_u64 accepts plain decimal digits only: no sign, no spaces, no suffix, no overflow.
P2PResult<std::uint64_t> parse_u64(std::string_view var, std::string_view value) {
  if (value.empty()) return fail(bad_var(var, value, "empty value"));
  if (value.front() == '-') return fail(bad_var(var, value, "must not be negative"));
  std::uint64_t out = 0;
  const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (ec == std::errc::result_out_of_range) return fail(bad_var(var, value, "out of range"));
  if (ec != std::errc() || ptr != value.data() + value.size()) {
    return fail(bad_var(var, value, "not a non-negative integer"));
  }
  return out;
}

P2PResult<double> parse_probability(std::string_view var, std::string_view value) {
  if (value.empty()) return fail(bad_var(var, value, "empty value"));
  double out = 0;
  const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (ec != std::errc() || ptr != value.data() + value.size() || !std::isfinite(out)) {
    return fail(bad_var(var, value, "not a number"));
  }
  if (out < 0.0 || out > 1.0) return fail(bad_var(var, value, "must be between 0 and 1"));
  return out;
}

// Durations above this would overflow nanosecond arithmetic downstream (about 292 years in int64 ns).
constexpr std::uint64_t kMillisMax = 1'000'000'000'000ULL;  // about 31 years

std::optional<std::string> process_env(std::string_view name) {
  const std::string key(name);
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read once at start-up.
  const char* v = std::getenv(key.c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

// The variable names of one backend; empty names are not read.
struct VarNames {
  std::string_view latency;
  std::string_view packet_loss;
  std::string_view discovery_delay;
  std::string_view connection_timeout;
  std::string_view max_message_size;
};

constexpr VarNames kSimulatorNames{"SIMULATOR_DEFAULT_LATENCY_MS", "SIMULATOR_DEFAULT_PACKET_LOSS",
                                   "SIMULATOR_DISCOVERY_DELAY_MS", "SIMULATOR_CONNECTION_TIMEOUT_SECS",
                                   "SIMULATOR_MAX_MESSAGE_SIZE"};
constexpr VarNames kQuicNames{{}, {}, {}, "P2P_CONNECTION_TIMEOUT_SECS", "P2P_MAX_MESSAGE_SIZE"};

std::optional<std::string> read(const NetworkConfig::EnvLookup& lookup, std::string_view name) {
  if (name.empty()) return std::nullopt;
  return lookup(name);
}

P2PResult<NetworkConfig> read_config(const VarNames& names, const NetworkConfig::EnvLookup& lookup) {
  NetworkConfig cfg;
  if (auto v = read(lookup, names.latency)) {
    auto ms = parse_u64(names.latency, *v);
    if (!ms) return fail(ms.error());
    if (*ms > kMillisMax) return fail(bad_var(names.latency, *v, "out of range"));
    cfg.latency = std::chrono::milliseconds(*ms);
  }
  if (auto v = read(lookup, names.packet_loss)) {
    auto p = parse_probability(names.packet_loss, *v);
    if (!p) return fail(p.error());
    cfg.packet_loss = *p;
  }
  if (auto v = read(lookup, names.discovery_delay)) {
    auto ms = parse_u64(names.discovery_delay, *v);
    if (!ms) return fail(ms.error());
    if (*ms > kMillisMax) return fail(bad_var(names.discovery_delay, *v, "out of range"));
    cfg.discovery_delay = std::chrono::milliseconds(*ms);
  }
  if (auto v = read(lookup, names.connection_timeout)) {
    auto s = parse_u64(names.connection_timeout, *v);
    if (!s) return fail(s.error());
    if (*s == 0) return fail(bad_var(names.connection_timeout, *v, "must be at least 1"));
    if (*s > kMillisMax / 1000) return fail(bad_var(names.connection_timeout, *v, "out of range"));
    cfg.connection_timeout = std::chrono::seconds(*s);
  }
  if (auto v = read(lookup, names.max_message_size)) {
    auto n = parse_u64(names.max_message_size, *v);
    if (!n) return fail(n.error());
    if (*n == 0) return fail(bad_var(names.max_message_size, *v, "must be at least 1"));
    if (*n > std::numeric_limits<std::uint32_t>::max()) {
      return fail(bad_var(names.max_message_size, *v, "must fit in 32 bits"));
    }
    cfg.max_message_size = static_cast<std::size_t>(*n);
  }
  if (auto ok = cfg.validate(); !ok) return fail(ok.error());
  return cfg;
}

}  // namespace

P2PResult<NetworkConfig> NetworkConfig::from_env() { return from_env(EnvNames::simulator, process_env); }

P2PResult<NetworkConfig> NetworkConfig::from_env(const EnvLookup& lookup) {
  return from_env(EnvNames::simulator, lookup);
}

P2PResult<NetworkConfig> NetworkConfig::from_env(EnvNames names) { return from_env(names, process_env); }

P2PResult<NetworkConfig> NetworkConfig::from_env(EnvNames names, const EnvLookup& lookup) {
  return read_config(names == EnvNames::quic ? kQuicNames : kSimulatorNames, lookup);
}

P2PResult<void> NetworkConfig::validate() const {
  if (latency < Duration::zero()) return fail(P2PError::invalid_configuration("latency must not be negative"));
  if (!(packet_loss >= 0.0 && packet_loss <= 1.0)) {
    return fail(P2PError::invalid_configuration(fmt::format("packet_loss {} is not between 0 and 1", packet_loss)));
  }
  if (discovery_delay < Duration::zero()) {
    return fail(P2PError::invalid_configuration("discovery_delay must not be negative"));
  }
  if (connection_timeout <= Duration::zero()) {
    return fail(P2PError::invalid_configuration("connection_timeout must be positive"));
  }
  if (max_message_size == 0 || max_message_size > std::numeric_limits<std::uint32_t>::max()) {
    return fail(P2PError::invalid_configuration(
        fmt::format("max_message_size {} must be between 1 and 4294967295", max_message_size)));
  }
  return {};
}

}  // namespace moosicbox::p2p
