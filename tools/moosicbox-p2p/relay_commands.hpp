// SPDX-License-Identifier: MIT OR Apache-2.0
// relay_commands.hpp: `moosicbox-p2p bench relay [--json]`: the relay path measured on loopback,
// with the relay server in a child process, both endpoints in this one.
// Layer: tools. The function forks the relay, runs its own io_contexts and threads, and returns
// when done.
#pragma once

#include <chrono>
#include <cstddef>
#include <limits>
#include <optional>
#include <string>

#include "moosicbox/p2p/core/error.hpp"

namespace moosicbox::p2p::cli {

/// RelayBenchOptions sizes the relay benchmark (defaults: full-size runs; tests use small ones).
struct RelayBenchOptions {
  int connect_samples = 30;                         ///< connects timed for relay_connect_ms
  int runs = 3;                                     ///< timed rpc and bulk runs (median reported)
  std::chrono::milliseconds rpc_run{1000};          ///< length of one request/response run
  std::size_t bulk_bytes = std::size_t{256} << 20;  ///< bytes per bulk run
  int idle_clients = 1000;                          ///< relay sessions held for relay_rss_bytes_per_client
  /// busy_poll, when set, replaces the endpoints' busy polling (0: off) in both the relayed and the
  /// direct runs; unset keeps the library's defaults.
  std::optional<std::chrono::microseconds> busy_poll;
  /// one_thread puts both endpoints on one thread, as `bench tunnel` puts its two clients: with
  /// the relay process that makes two busy threads for the machine's two cores.
  bool one_thread = false;
};

/// RelayBenchResult holds the benchmark's keys; a figure not measured is NaN.
struct RelayBenchResult {
  static constexpr double kNotMeasured = std::numeric_limits<double>::quiet_NaN();
  double relay_connect_ms = kNotMeasured;            ///< bound endpoints: dial over the relay + first echo, median
  double relay_rpc_64b_per_s = kNotMeasured;         ///< 64-byte request/response round trips per second
  double relay_bulk_mb_per_s = kNotMeasured;         ///< one stream through the relay, real-path datagrams
  double direct_rpc_64b_per_s = kNotMeasured;        ///< the same exchange on a direct path, same run
  double relay_added_rtt_us = kNotMeasured;          ///< round trip over the relay minus direct
  double relay_rss_bytes_per_client = kNotMeasured;  ///< the relay process's RSS growth per idle client
};

/// run_relay_bench measures the relay path. Bounded: every step has a time limit; the relay child
/// is ended before it returns. Errors: network_error (cannot start the relay, bind), timeout, and
/// whatever a connection reported.
[[nodiscard]] P2PResult<RelayBenchResult> run_relay_bench(const RelayBenchOptions& options);

/// to_json renders a result as one JSON object with the benchmark's keys.
[[nodiscard]] std::string to_json(const RelayBenchResult& r);

/// relay_bench runs the benchmark with the default sizes and prints one JSON object (`json`) or a
/// table; returns the process exit code (0, or 1 with one error line on stderr).
int relay_bench(bool json, const RelayBenchOptions& options = {});

}  // namespace moosicbox::p2p::cli
