// SPDX-License-Identifier: MIT OR Apache-2.0
// simnet_swarm_test.cpp: swarms of real endpoints behind NATs of random kinds, with a relay, on the
// simulated packet network: a bounded seed sweep (P2P_SIM_SEEDS=N widens it, P2P_SIM_SEED=S replays
// one seed), loss, a partition, and the determinism of a whole swarm.
// Layer: tests (sim). Virtual time only; every failure prints the command that replays it.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "endpoint/simnet_fixture.hpp"
#include "simnet_world.hpp"

namespace moosicbox::p2p::testing {
namespace {

using namespace std::chrono_literals;

cli::SwarmReport swarm(cli::SwarmConfig cfg) {
  cli::SwarmReport r;
  env::run_isolated(cfg.seed, [&] { r = cli::run_swarm(cfg); });
  return r;
}

std::string replay(const cli::SwarmReport& r, std::string_view test) {
  std::string out =
      fmt::format("seed {}: replay with P2P_SIM_SEED={} ctest -R sim_swarm (test {})", r.seed, r.seed, test);
  for (const auto& f : r.failures) out += "\n  " + f;
  return out;
}

TEST(SimSwarm, EveryPairConnectsAcrossRandomNatsOverASeedSweep) {
  const std::uint64_t first = sim_seed(100);
  const std::size_t seeds = sim_seed_count(3);
  for (std::uint64_t seed = first; seed < first + seeds; ++seed) {
    cli::SwarmConfig cfg;
    cfg.seed = seed;
    cfg.endpoints = 40;
    const auto r = swarm(cfg);
    EXPECT_EQ(r.connected, r.pairs) << replay(r, "SeedSweep");
    EXPECT_EQ(r.via_direct + r.via_relay, r.connected) << replay(r, "SeedSweep");
    // A listener behind a NAT has only a private direct address: those pairs must use the relay.
    EXPECT_GT(r.via_relay, 0U) << replay(r, "SeedSweep");
  }
}

TEST(SimSwarm, TwoHundredEndpointsWithTrafficConnectEveryPair) {
  cli::SwarmConfig cfg;
  cfg.seed = sim_seed(150);
  cfg.endpoints = 200;
  cfg.messages = 5;
  const auto r = swarm(cfg);
  EXPECT_EQ(r.connected, r.pairs) << replay(r, "TwoHundred");
  EXPECT_GT(r.via_direct, 0U) << replay(r, "TwoHundred");  // public listeners are reached directly
  EXPECT_GT(r.kinds.size(), 4U) << replay(r, "TwoHundred");
}

TEST(SimSwarm, LossyLinksStillConnectEveryPair) {
  cli::SwarmConfig cfg;
  cfg.seed = sim_seed(200);
  cfg.endpoints = 30;
  cfg.loss = 0.03;
  cfg.jitter = 4ms;
  const auto r = swarm(cfg);
  EXPECT_EQ(r.connected, r.pairs) << replay(r, "Lossy");
}

TEST(SimSwarm, APartitionOfEveryListenerHealsBeforeTheConnectTimeout) {
  cli::SwarmConfig cfg;
  cfg.seed = sim_seed(300);
  cfg.endpoints = 20;
  cfg.partition_for = 4s;
  const auto r = swarm(cfg);
  EXPECT_EQ(r.connected, r.pairs) << replay(r, "Partition");
  EXPECT_GT(r.virtual_s, 4.0) << replay(r, "Partition");
}

TEST(SimSwarm, RelayOnlySwarmConnectsEveryPairThroughTheRelay) {
  cli::SwarmConfig cfg;
  cfg.seed = sim_seed(400);
  cfg.endpoints = 20;
  cfg.direct_paths = false;
  const auto r = swarm(cfg);
  EXPECT_EQ(r.connected, r.pairs) << replay(r, "RelayOnly");
  EXPECT_EQ(r.via_relay, r.pairs) << replay(r, "RelayOnly");
}

TEST(SimSwarm, TheSameSeedGivesTheSameSwarm) {
  cli::SwarmConfig cfg;
  cfg.seed = sim_seed(500);
  cfg.endpoints = 24;
  const auto a = swarm(cfg);
  const auto b = swarm(cfg);
  EXPECT_EQ(a.trace_hash, b.trace_hash) << replay(a, "SameSeed") << " (packets " << a.packets << " vs " << b.packets
                                        << ")";
  EXPECT_EQ(a.packets, b.packets) << replay(a, "SameSeed");
  EXPECT_EQ(a.via_relay, b.via_relay) << replay(a, "SameSeed");
  cfg.seed += 1;
  const auto c = swarm(cfg);
  EXPECT_NE(a.trace_hash, c.trace_hash) << "seeds " << a.seed << " and " << c.seed << " gave the same trace";
}

}  // namespace
}  // namespace moosicbox::p2p::testing
