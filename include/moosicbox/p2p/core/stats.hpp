// SPDX-License-Identifier: MIT OR Apache-2.0
// stats.hpp: ConnectionStats, the counters every connection of every backend reports, and
// TransportStats, the QUIC transport's counters of the real backend.
// Layer: core. Plain value type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "moosicbox/p2p/core/time.hpp"

namespace moosicbox::p2p {

/// ConnectionStats is a snapshot of one connection's counters.
struct ConnectionStats {
  std::uint64_t messages_sent = 0;      ///< messages accepted by send()
  std::uint64_t messages_received = 0;  ///< messages returned by recv() / try_recv()
  std::uint64_t bytes_sent = 0;         ///< payload bytes of messages sent
  std::uint64_t bytes_received = 0;     ///< payload bytes of messages received
  Duration duration{};                  ///< time since the connection was established
  Duration average_latency{};           ///< mean one-way delivery latency (simulator) or smoothed RTT / 2
  std::optional<Duration> rtt;          ///< smoothed round-trip time, when the backend measures it

  /// operator== compares every counter.
  friend bool operator==(const ConnectionStats&, const ConnectionStats&) = default;
};

/// TransportStats is the QUIC transport's view of a connection's path, for diagnostics and
/// benchmarks.
struct TransportStats {
  Duration smoothed_rtt{};               ///< smoothed RTT (RFC 9002); the initial estimate until a sample arrives
  Duration min_rtt{};                    ///< smallest round-trip sample, 0 before the first
  Duration latest_rtt{};                 ///< most recent round-trip sample, 0 before the first
  std::uint64_t cwnd = 0;                ///< congestion window, bytes
  std::uint64_t bytes_in_flight = 0;     ///< sent, not yet acknowledged or declared lost
  std::uint64_t datagrams_sent = 0;      ///< UDP datagrams sent
  std::uint64_t datagrams_received = 0;  ///< UDP datagrams received
  std::uint64_t bytes_sent = 0;          ///< UDP payload bytes sent
  std::uint64_t bytes_received = 0;      ///< UDP payload bytes received
  std::uint64_t datagrams_dropped = 0;   ///< QUIC DATAGRAMs dropped because a queue was full
  /// packets_lost counts the packets this side declared lost (from ngtcp2's trace, so only with
  /// stop_sending_codes on, the default).
  std::uint64_t packets_lost = 0;
  std::size_t udp_payload_size = 0;  ///< the largest UDP payload the path is known to carry now
};

}  // namespace moosicbox::p2p
