// SPDX-License-Identifier: MIT OR Apache-2.0
// simnet_world.hpp: a swarm of real endpoints on the simulated packet network, behind NATs of random
// kinds, with a relay on the simulated internet: what `moosicbox-p2p bench simnet` measures and the
// scenario tests sweep over seeds. Everything runs in virtual time on the calling thread; run it
// under env::run_isolated(seed) so the TLS randomness is seeded too and the trace hash is a function
// of the seed alone.
// Layer: tools. Single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "moosicbox/p2p/core/time.hpp"

namespace moosicbox::p2p::cli {

/// NatKind is how one swarm member reaches the internet.
enum class NatKind : std::uint8_t {
  public_host,        ///< an address on the internet, no NAT
  full_cone,          ///< endpoint-independent mapping, no filtering
  port_restricted,    ///< endpoint-independent mapping, address-and-port filtering (most home routers)
  address_dependent,  ///< mapping per destination address, address filtering
  symmetric,          ///< mapping per destination address and port, random ports ("hard")
  udp_blocked,        ///< UDP dropped at the router: only the relay (over TCP) works
};
/// nat_kind_name returns the kind's name ("public", "full_cone", ...).
[[nodiscard]] std::string_view nat_kind_name(NatKind k) noexcept;

/// SwarmConfig describes one swarm run.
struct SwarmConfig {
  std::uint64_t seed = 1;
  std::size_t endpoints = 1000;                      ///< rounded down to an even number: pairs dial each other
  Duration latency = std::chrono::milliseconds(10);  ///< each access link, one way
  Duration jitter = std::chrono::milliseconds(1);
  double loss = 0.0;
  bool direct_paths = true;                   ///< false: relay only
  bool random_nats = true;                    ///< each member's kind drawn from the seed; else all public
  std::size_t messages = 1;                   ///< request/response round trips per pair (64-byte messages)
  Duration limit = std::chrono::minutes(10);  ///< virtual time bound of the whole run
  Duration partition_for{};                   ///< > 0: every pair's listener is cut off the network this long...
  Duration partition_at{};                    ///< ...from this instant (0: before anyone reached the relay)
  std::function<void(std::string_view)> log;  ///< narrative lines (optional)
};

/// SwarmReport is what one run measured.
struct SwarmReport {
  std::uint64_t seed = 0;
  std::size_t endpoints = 0;
  std::size_t pairs = 0;
  std::size_t connected = 0;  ///< pairs whose QUIC handshake completed and message echoed
  std::size_t via_direct = 0;
  std::size_t via_relay = 0;
  std::map<std::string, std::size_t> kinds;  ///< members per NatKind name
  std::vector<std::string> failures;         ///< the first failures, with the pair and the error
  double setup_wall_s = 0;                   ///< wall time to build the network and bind the endpoints (keys, TLS)
  double wall_s = 0;                         ///< wall time of the run: every pair connecting and exchanging
  double virtual_s = 0;                      ///< virtual time of the run
  std::uint64_t packets = 0;  ///< simulated packets delivered during the run (datagrams and stream packets)
  std::uint64_t trace_hash = 0;
  double rss_bytes_per_endpoint = 0;
  double connect_ms_median = 0;  ///< virtual time from connect() to connected, median

  [[nodiscard]] double handshakes_per_wall_s() const {
    return wall_s > 0 ? static_cast<double>(connected) / wall_s : 0;
  }
  [[nodiscard]] double packets_per_wall_s() const { return wall_s > 0 ? static_cast<double>(packets) / wall_s : 0; }
  [[nodiscard]] double virtual_s_per_wall_s() const { return wall_s > 0 ? virtual_s / wall_s : 0; }
};

/// run_swarm builds the swarm, lets every pair connect and exchange one message, closes everything
/// and reports. Runs on the calling thread.
SwarmReport run_swarm(const SwarmConfig& config);

}  // namespace moosicbox::p2p::cli
