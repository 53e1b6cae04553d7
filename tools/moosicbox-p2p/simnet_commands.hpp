// SPDX-License-Identifier: MIT OR Apache-2.0
// simnet_commands.hpp: the subcommands that run the real stack (Endpoint, ngtcp2, GnuTLS, the relay)
// on the simulated packet network: `demo --only simnet` and `bench simnet`.
// Each returns the process exit code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace moosicbox::p2p::cli {

/// simnet_demo tells the story of a music server at home behind a NAT, a phone behind a symmetric
/// NAT and a public backup box, on the simulated network: the phone reaches home through the relay
/// and the backup box directly, a NAT rebinding and a relay restart pass unnoticed, and the run ends
/// with its trace hash, checked by running the same seed a second time. `seed` fixes the run
/// (random, and printed, when absent). Returns 0 when the story went as expected.
int simnet_demo(std::optional<std::uint64_t> seed);

/// SimnetBenchOptions select the swarm `bench simnet` measures.
struct SimnetBenchOptions {
  std::uint64_t seed = 1;
  std::size_t endpoints = 1000;
  std::size_t messages = 1;  ///< request/response round trips per pair after the handshake
};

/// simnet_bench runs a swarm of real endpoints behind random NATs that handshake pairwise over the
/// relay, and prints a table, or with `json` one object with the keys endpoints, pairs, connected,
/// via_direct, via_relay, handshakes_per_wall_s, packets_per_wall_s, virtual_s_per_wall_s,
/// rss_bytes_per_endpoint, connect_ms_median, trace_hash, seed, messages, packets, wall_s,
/// setup_wall_s (the rates count the run, not the setup). Exit code 1 when a pair failed.
int simnet_bench(bool json, const SimnetBenchOptions& options);

}  // namespace moosicbox::p2p::cli
