// stats.hpp: ConnectionStats, the counters every connection of every backend reports.
// Layer: core. Plain value type.
#pragma once

#include <cstdint>
#include <optional>

#include "p2p/core/time.hpp"

namespace p2p {

/// ConnectionStats is a snapshot of one connection's counters.
struct ConnectionStats {
  std::uint64_t messages_sent = 0;      ///< messages accepted by send()
  std::uint64_t messages_received = 0;  ///< messages returned by recv() / try_recv()
  std::uint64_t bytes_sent = 0;         ///< payload bytes of messages sent
  std::uint64_t bytes_received = 0;     ///< payload bytes of messages received
  Duration duration{};                  ///< time since the connection was established
  Duration average_latency{};           ///< mean one-way delivery latency (simulator) or smoothed RTT / 2
  std::optional<Duration> rtt;          ///< smoothed round-trip time, when the backend measures it

  friend bool operator==(const ConnectionStats&, const ConnectionStats&) = default;
};

}  // namespace p2p
