// SPDX-License-Identifier: MIT OR Apache-2.0
// tunnel_bench.hpp: `moosicbox-p2p bench tunnel [--json]`, the baseline the relay is compared with:
// MoosicBox's tunnel pattern, a central server holding one WebSocket from each of two clients and
// forwarding every binary message from one to the other (Boost.Beast, loopback TCP).
// Layer: tools. run_tunnel_bench runs its own io_contexts and threads and returns when done.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/time.hpp"

namespace moosicbox::p2p::cli {

/// TunnelBenchOptions sizes the benchmark; every run is bounded in time and in bytes.
struct TunnelBenchOptions {
  Duration bulk_run = std::chrono::seconds(3);                ///< how long client A streams to B
  std::uint64_t bulk_bytes_max = std::uint64_t{1} << 30;      ///< stops the bulk run earlier (1 GiB)
  std::size_t bulk_message_size = 64 * 1024;                  ///< size of each bulk message
  Duration rpc_run = std::chrono::seconds(2);                 ///< how long the round-trip run lasts
  std::size_t rpc_message_size = 64;                          ///< request and answer size
  std::size_t server_queue_bytes_max = std::size_t{1} << 20;  ///< what the server queues per client
};

/// TunnelBenchResult holds the figures (MB = 10^6 bytes, MiB = 2^20 bytes).
struct TunnelBenchResult {
  double bulk_mb_per_s = 0;       ///< A to B through the server
  double bulk_mib_per_s = 0;      ///< the same in MiB/s
  std::uint64_t bulk_bytes = 0;   ///< bytes B received in the bulk run
  double rpc_per_s = 0;           ///< 64-byte request, 64-byte answer, one at a time
  double rtt_us = 0;              ///< median round trip of the rpc run
  double rtt_p99_us = 0;          ///< 99th percentile round trip of the rpc run
  std::uint64_t round_trips = 0;  ///< round trips counted in the rpc run
};

/// measure_tunnel runs the tunnel server on its own thread and io_context and both clients on the
/// calling thread (one io_context), on 127.0.0.1 only.
/// Errors: network_error (a socket cannot be bound, a connection fails), timeout (a run did not
/// finish within its hard limit).
[[nodiscard]] P2PResult<TunnelBenchResult> measure_tunnel(const TunnelBenchOptions& options = {});

/// run_tunnel_bench measures and prints one JSON object (`json`) or a table; returns the process exit
/// code (0, or 1 with one error line on stderr).
int run_tunnel_bench(bool json);

}  // namespace moosicbox::p2p::cli
