// SPDX-License-Identifier: MIT OR Apache-2.0
// driver_sim_test.cpp: the router driver suite on the simulator backend (SimulatorP2P streams), and
// what the simulator adds: the same seed gives the same run, under packet loss too.
#include "router/driver_suite.hpp"
#include "router/support/sim_backend.hpp"

namespace moosicbox::p2p::testing {

INSTANTIATE_TYPED_TEST_SUITE_P(Sim, RouterDriverSuite, ::testing::Types<SimBackend>);

namespace {

struct Run {
  std::vector<std::string> completions;  // in completion order, with virtual times
  std::uint64_t trace_hash = 0;
  int intact = 0;
};

// run_scenario sends 30 concurrent requests of seeded random sizes over a lossy 20 ms link.
Run run_scenario(std::uint64_t seed) {
  NetworkConfig net;
  net.latency = std::chrono::milliseconds(20);
  net.packet_loss = 0.02;
  SimBackend b(seed, net);
  P2PRouter r;
  EXPECT_TRUE(r.get("/blob/:n", [](const P2PRequest& req) {
                 const auto n = std::stoull(std::string(*req.param("n")));
                 return P2PResponse::stream(StatusCode::ok, pattern_source(n, 16 * 1024), n);
               }).has_value());
  ServerRun<SimBackend> server(b, std::move(r));
  Run run;
  int finished = 0;
  env::Rng rng(env::derive_seed(seed, "sizes"));
  std::optional<SimBackend::Connection> conn;
  start(b.executor(), [&]() -> asio::awaitable<void> {
    auto c = co_await b.connect("alice");
    if (!c) co_return;
    conn = std::move(*c);
    for (int i = 0; i < 30; ++i) {
      const auto size = rng.uniform(2u << 20);
      start(b.executor(), [&, i, size]() -> asio::awaitable<void> {
        P2PClient client(*conn);
        auto f = co_await fetch(client, Method::GET, fmt::format("/blob/{}", size));
        if (f.ok() && f.body == pattern(static_cast<std::size_t>(size))) ++run.intact;
        run.completions.push_back(
            fmt::format("{}:{}@{}", i, f.ok() ? "ok" : "error", b.world().now().time_since_epoch().count()));
        ++finished;
      });
    }
  });
  EXPECT_TRUE(b.run_until([&] { return finished == 30; }));
  run.trace_hash = b.world().trace_hash();
  conn.reset();
  return run;
}

}  // namespace

TEST(RouterSim, SameSeedGivesTheSameRunUnderLoss) {
  for (std::uint64_t seed = test_seed(11); seed < test_seed(11) + 3; ++seed) {
    SCOPED_TRACE(fmt::format("reproduce with P2P_SIM_SEED={}", seed));
    const auto first = run_scenario(seed);
    const auto second = run_scenario(seed);
    EXPECT_EQ(first.intact, 30);
    EXPECT_EQ(first.completions, second.completions);
    EXPECT_EQ(first.trace_hash, second.trace_hash);
  }
}

}  // namespace moosicbox::p2p::testing
