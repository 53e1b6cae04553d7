// SPDX-License-Identifier: MIT OR Apache-2.0
// sim_commands.hpp: the simulator's subcommands of moosicbox-p2p: the demonstration of a small
// simulated network and the simulator's benchmark figures.
// Each returns the process exit code.
#pragma once

#include <cstdint>
#include <optional>

namespace moosicbox::p2p::cli {

/// sim_demo runs two NATed nodes, a relay, a partition and its heal on the simulator and prints what
/// happens as it happens. `seed` fixes the run (random, and printed, when absent). Returns 0 when the
/// story went as expected.
int sim_demo(std::optional<std::uint64_t> seed);

/// sim_bench measures the simulator (deliveries per wall second with 2 and 1,000 nodes, simulated
/// seconds per wall second idle and busy, resident memory per node at 10,000 nodes) and prints a
/// table, or with `json` one JSON object with the keys sim_deliveries_per_s_2_nodes,
/// sim_deliveries_per_s_1000_nodes, sim_speedup_idle, sim_speedup_busy, sim_rss_bytes_per_node_10000.
int sim_bench(bool json);

}  // namespace moosicbox::p2p::cli
