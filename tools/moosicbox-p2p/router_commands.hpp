// SPDX-License-Identifier: MIT OR Apache-2.0
// router_commands.hpp: the router's command-line pieces: the benchmark behind
// `moosicbox-p2p bench router [--json]`.
// Layer: tools. Each function runs its own io_contexts and threads and returns when done.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/time.hpp"

namespace moosicbox::p2p::cli {

/// RouterBenchOptions sizes the benchmark.
struct RouterBenchOptions {
  Duration run = std::chrono::seconds(2);                 ///< length of each request-rate run
  int concurrency = 64;                                   ///< requests in flight for the *_c64 figures
  std::uint64_t stream_bytes = std::uint64_t{256} << 20;  ///< size of the one streamed response
  /// busy_poll, when set, replaces EndpointConfig::busy_poll and busy_poll_handshake on both ends
  /// (0: no busy polling); unset keeps the library's defaults.
  std::optional<std::chrono::microseconds> busy_poll;
};

/// LoadFigures are the figures of one request-rate run.
struct LoadFigures {
  double per_s = 0;   ///< completed requests per second
  double p50_ms = 0;  ///< median latency
  double p99_ms = 0;  ///< 99th percentile latency
  std::uint64_t requests = 0;
};

/// RouterBenchResult holds the benchmark's keys for the router and the Beast HTTP/1.1 baseline.
struct RouterBenchResult {
  std::string backend;                ///< what carried the router's requests
  LoadFigures router_c1;              ///< 64-byte GETs, one at a time
  LoadFigures router_c64;             ///< 64-byte GETs, `concurrency` in flight on one connection
  double router_stream_mb_per_s = 0;  ///< one streamed response; MB = 10^6 bytes
  /// router_during_bulk: 64-byte GETs one at a time while that response streams on the same
  /// connection (the router sends large bodies at a lower stream priority).
  LoadFigures router_during_bulk;
  LoadFigures beast_c1;              ///< the same over HTTP/1.1 (Boost.Beast), one connection
  LoadFigures beast_c64;             ///< `concurrency` keep-alive connections, one request each in flight
  double beast_stream_mb_per_s = 0;  ///< one response of the same size over HTTP/1.1
};

/// run_router_bench measures the router on loopback (server and client each on their own thread)
/// and Boost.Beast HTTP/1.1 on loopback TCP the same way. Bounded: every run has a time limit.
/// Errors: network_error (a socket cannot be bound), timeout (a run did not finish), and whatever
/// a connection reported.
[[nodiscard]] P2PResult<RouterBenchResult> run_router_bench(const RouterBenchOptions& options);

/// to_json renders a result as one JSON object.
[[nodiscard]] std::string to_json(const RouterBenchResult& r);

/// router_bench runs the benchmark and prints one JSON object (`json`) or a table; returns the
/// process exit code (0, or 1 with one error line on stderr).
int router_bench(bool json, const RouterBenchOptions& options = {});

}  // namespace moosicbox::p2p::cli
