// SPDX-License-Identifier: MIT OR Apache-2.0
// quic_commands.hpp: the QUIC backend's command-line pieces: the loopback benchmark behind
// `moosicbox-p2p bench quic [--json]`.
// Layer: tools. Each function runs its own io_context and threads and returns when done.
#pragma once

#include <chrono>
#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "moosicbox/p2p/core/error.hpp"

namespace moosicbox::p2p::cli {

/// QuicBenchOptions sizes the benchmark (defaults: full-size runs; tests use small ones).
struct QuicBenchOptions {
  int connect_samples = 50;                         ///< connections timed for connect_ms (after 3 warm-ups)
  int cold_samples = 20;                            ///< endpoint pairs timed for connect_cold_ms (after 2 warm-ups)
  int runs = 3;                                     ///< timed runs of rpc, messages and bulk (median reported)
  std::chrono::milliseconds rpc_run{1000};          ///< length of one request/response run
  std::size_t messages = 200'000;                   ///< 1 KiB messages per run
  std::size_t bulk_bytes = std::size_t{256} << 20;  ///< bytes per bulk run
  int idle_connections = 1000;                      ///< idle connection pairs held for rss_bytes_per_idle_conn
  /// jumbo_udp_payload_size, when not 0, adds a bulk run whose ends use datagrams of this size on
  /// loopback (EndpointConfig::loopback_udp_payload_size), reported as bulk_16k_mb_per_s (named for
  /// the usual 16384). Every other figure uses real-path datagrams: PMTU discovery from 1200 up to
  /// 1452 bytes, as quinn does on loopback.
  std::size_t jumbo_udp_payload_size = 0;
  /// busy_poll, when set, replaces EndpointConfig::busy_poll and busy_poll_handshake on both ends
  /// (0: no busy polling); unset keeps the library's defaults.
  std::optional<std::chrono::microseconds> busy_poll;
  /// stop_sending_codes is EndpointConfig::stop_sending_codes for both ends (off measures what
  /// ngtcp2's trace, which delivers peers' STOP_SENDING codes and loss counts, costs).
  bool stop_sending_codes = true;
  /// parts selects what is measured: a comma-separated list of result keys (`connect_ms`, `rpc`,
  /// ... as listed by kQuicBenchParts), empty for all. A part not measured is null in the JSON.
  std::string parts;
  /// relay_url, when set, puts every connection on a relay path through that relay (both ends home
  /// there, direct paths off): the figures of `bench relay`.
  std::optional<std::string> relay_url;
  /// one_thread runs both ends on one io_context thread (the layout of `bench tunnel`'s two
  /// clients) instead of one thread each.
  bool one_thread = false;
};

/// kQuicBenchParts names the parts `--only` accepts, in the order they run.
inline constexpr std::string_view kQuicBenchParts[] = {"connect", "0rtt", "cold", "rpc", "msgs", "bulk", "rss"};

/// check_quic_bench_parts checks a `--only` list ("rpc,bulk"); returns an error naming the first
/// unknown part.
[[nodiscard]] P2PResult<void> check_quic_bench_parts(std::string_view parts);

/// QuicBenchResult holds the benchmark's keys; a part that was not measured is NaN.
struct QuicBenchResult {
  static constexpr double kNotMeasured = std::numeric_limits<double>::quiet_NaN();
  double connect_ms = kNotMeasured;               ///< bound endpoints: connect + first 1-byte echo, median
                                                  ///< (a reconnect: the session resumes)
  double connect_full_ms = kNotMeasured;          ///< the same with resumption off: full handshakes
  double reconnect_0rtt_ms = kNotMeasured;        ///< connect_early + the echo sent in 0-RTT, median
  double connect_cold_ms = kNotMeasured;          ///< bind both endpoints + connect + echo, median
  double rpc_64b_per_s = kNotMeasured;            ///< 64-byte request/response round trips per second, one stream
  double msgs_1k_per_s = kNotMeasured;            ///< 1 KiB messages per second through send/recv
  double bulk_mb_per_s = kNotMeasured;            ///< one connection, one stream; MB = 10^6 bytes
  double rss_bytes_per_idle_conn = kNotMeasured;  ///< RSS growth (both ends in this process) per idle connection
  double cpu_s_per_gib = kNotMeasured;            ///< process CPU seconds (both ends) per GiB of bulk data
  double udp_payload_bytes = kNotMeasured;        ///< the sender's datagram size at the end of bulk
  double bulk_lost_packets = kNotMeasured;        ///< packets the sender declared lost in a bulk run, median
  double bulk_kernel_drops = kNotMeasured;        ///< UDP receive-buffer and softnet drops during bulk (all runs)
  double bulk_16k_mb_per_s = kNotMeasured;        ///< bulk with jumbo_udp_payload_size datagrams
  double jumbo_udp_payload_bytes = kNotMeasured;  ///< the datagram size of that run
};

/// run_quic_bench measures the QUIC backend on loopback, both ends in this process on two threads.
/// Bounded: every step has a time limit. Errors: network_error (a socket cannot be bound), timeout
/// (a step exceeded its limit), and whatever a connection reported.
[[nodiscard]] P2PResult<QuicBenchResult> run_quic_bench(const QuicBenchOptions& options);

/// to_json renders a result as one JSON object with the benchmark's keys.
[[nodiscard]] std::string to_json(const QuicBenchResult& r);

/// quic_bench runs the benchmark with the default sizes and prints one JSON object (`json`) or a
/// table; returns the process exit code (0, or 1 with one error line on stderr).
int quic_bench(bool json, const QuicBenchOptions& options = {});

}  // namespace moosicbox::p2p::cli
