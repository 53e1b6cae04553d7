// SPDX-License-Identifier: MIT OR Apache-2.0
// scenario_test.cpp: whole-network scenarios on the simulator, swept over seeds: a three-node mesh, a
// multi-hop path, partition and recovery, discovery by name, the NAT matrix with its expected direct
// or relayed outcomes, and a 1,000-node network. Every scenario also runs twice per seed and must
// produce the same trace hash (determinism), and a different seed must give a different trace.
#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "moosicbox/p2p/core/spawn.hpp"
#include "moosicbox/p2p/sim/sim.hpp"
#include "sim/sim_test_support.hpp"

namespace moosicbox::p2p::sim {
namespace {

using namespace testing;
using namespace std::chrono_literals;
using namespace boost::asio::experimental::awaitable_operators;

// ---- helpers ---------------------------------------------------------------------------------------------

LinkInfo wan_link(env::Rng& rng, Duration base) {
  LinkInfo l;
  l.latency = base + std::chrono::milliseconds(rng.uniform(20));
  l.jitter = std::chrono::milliseconds(rng.uniform(4));
  l.packet_loss = static_cast<double>(rng.uniform(3)) / 100.0;
  return l;
}

// exchange sends `count` numbered messages each way on a connection and checks both directions.
asio::awaitable<std::string> exchange(SimulatorConnection mine, SimulatorConnection theirs, int count) {
  auto send = [](SimulatorConnection c, int n, std::string tag) -> asio::awaitable<std::string> {
    for (int i = 0; i < n; ++i) {
      if (auto r = co_await c.send(as_bytes(fmt::format("{} {}", tag, i))); !r)
        co_return "send: " + r.error().message();
    }
    co_return std::string();
  };
  auto recv = [](SimulatorConnection c, int n, std::string tag) -> asio::awaitable<std::string> {
    for (int i = 0; i < n; ++i) {
      auto m = co_await c.recv();
      if (!m) co_return "recv: " + m.error().message();
      if (to_string(*m) != fmt::format("{} {}", tag, i)) co_return "out of order: " + to_string(*m);
    }
    co_return std::string();
  };
  auto [a, b, c, d] = co_await (send(mine, count, "there") && recv(theirs, count, "there") &&
                                send(theirs, count, "back") && recv(mine, count, "back"));
  co_return a + b + c + d;
}

// Dialed is one connection with both of its sides.
struct Dialed {
  std::optional<SimulatorConnection> client;
  std::optional<SimulatorConnection> server;
};

// dial connects `from` to `to` through `to`'s listener, checking both steps.
Dialed dial(World& w, SimulatorP2P& from, const SimulatorP2P& to, SimulatorListener& listener) {
  Dialed d;
  auto c = w.run(from.connect(to.local_node_id()));
  EXPECT_TRUE(c && *c) << from.name() << " -> " << to.name() << ": " << (c && !*c ? c->error().message() : "");
  if (!c || !*c) return d;
  auto s = w.run(listener.accept());
  EXPECT_TRUE(s && *s);
  if (!s || !*s) return d;
  d.client = **c;
  d.server = **s;
  return d;
}

// ---- scenarios -------------------------------------------------------------------------------------------

std::uint64_t three_node_mesh(std::uint64_t seed) {
  World w(seed);
  env::Rng rng(seed);
  std::vector<SimulatorP2P> nodes;
  std::vector<SimulatorListener> listeners;
  for (const auto* name : {"a", "b", "c"}) {
    nodes.push_back(*w.add_node(name));
    listeners.push_back(w.run(nodes.back().listen())->value());
  }
  for (std::size_t i = 0; i < 3; ++i) {
    for (std::size_t j = i + 1; j < 3; ++j) {
      EXPECT_TRUE(w.link(nodes[i].local_node_id(), nodes[j].local_node_id(), wan_link(rng, 10ms)));
    }
  }
  for (std::size_t i = 0; i < 3; ++i) {
    for (std::size_t j = 0; j < 3; ++j) {
      if (i == j) continue;
      auto d = dial(w, nodes[i], nodes[j], listeners[j]);
      if (!d.client) continue;
      EXPECT_EQ(d.client->path(), PathKind::direct);
      EXPECT_EQ(w.run(exchange(*d.client, *d.server, 50)), std::string());
    }
  }
  return w.trace_hash();
}

std::uint64_t multi_hop_path(std::uint64_t seed) {
  World w(seed);
  env::Rng rng(seed);
  std::vector<SimulatorP2P> chain;
  for (int i = 0; i < 6; ++i) chain.push_back(*w.add_node(fmt::format("hop{}", i)));
  for (std::size_t i = 0; i + 1 < chain.size(); ++i) {
    LinkInfo l = quiet_link(10ms);
    l.packet_loss = 0.02;
    l.jitter = std::chrono::milliseconds(rng.uniform(3));
    EXPECT_TRUE(w.link(chain[i].local_node_id(), chain[i + 1].local_node_id(), l));
  }
  const auto path = w.graph().find_path(chain.front().local_node_id(), chain.back().local_node_id());
  EXPECT_TRUE(path && path->size() == 6U);
  auto listener = w.run(chain.back().listen())->value();
  auto d = dial(w, chain.front(), chain.back(), listener);
  if (!d.client) return 0;
  EXPECT_EQ(d.client->stats().rtt, 100ms);  // five 10 ms hops each way
  EXPECT_EQ(w.run(exchange(*d.client, *d.server, 200)), std::string());
  // A stream across the five hops as well.
  auto body = w.run([](SimulatorConnection c, SimulatorConnection s) -> asio::awaitable<bool> {
    Bytes data(256 * 1024);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i * 31);
    auto out = co_await c.open_bi();
    if (!out) co_return false;
    if (const auto wrote = co_await out->write(data); !wrote) co_return false;
    if (const auto finished = co_await out->finish(); !finished) co_return false;
    auto in = co_await s.accept_bi();
    if (!in) co_return false;
    Bytes got;
    std::array<std::byte, 10'000> buf{};
    while (true) {
      auto k = co_await in->read(buf);
      if (!k) co_return false;
      if (*k == 0) break;
      got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*k));
    }
    co_return got == data;
  }(*d.client, *d.server));
  EXPECT_TRUE(body && *body);
  return w.trace_hash();
}

std::uint64_t partition_and_recovery(std::uint64_t seed) {
  NetworkConfig config;
  config.connection_timeout = 10s;
  World w(seed, config);
  auto net = w.setup_partitioned_network(2, 2);
  EXPECT_TRUE(net);
  if (!net) return 0;
  EXPECT_TRUE(w.graph().heal_partition(net->partition));
  auto& a0 = net->group_a[0];
  auto& b0 = net->group_b[0];
  auto listener = w.run(b0.listen())->value();
  auto d = dial(w, a0, b0, listener);
  if (!d.client) return 0;
  std::vector<NodeId> side_a{net->group_a[0].local_node_id(), net->group_a[1].local_node_id()};
  std::vector<NodeId> side_b{net->group_b[0].local_node_id(), net->group_b[1].local_node_id()};
  // A partition shorter than the timeout: messages sent meanwhile arrive after the heal.
  auto short_cut = w.graph().add_partition(side_a, side_b);
  EXPECT_TRUE(short_cut);
  EXPECT_TRUE(w.run([](SimulatorConnection c) -> asio::awaitable<bool> {
                 for (int i = 0; i < 20; ++i) {
                   if (const auto ok = co_await c.send(as_bytes(fmt::format("during {}", i))); !ok) co_return false;
                 }
                 co_return true;
               }(*d.client))
                  .value_or(false));
  w.run_for(5s);
  EXPECT_EQ(d.server->try_recv().value(), std::nullopt);
  EXPECT_TRUE(w.graph().heal_partition(*short_cut));
  for (int i = 0; i < 20; ++i) {
    auto m = w.run(d.server->recv());
    EXPECT_TRUE(m && *m && to_string(**m) == fmt::format("during {}", i));
  }
  EXPECT_TRUE(d.client->is_connected());
  // A partition longer than the timeout: both ends fail with a clear error.
  auto long_cut = w.graph().add_partition(side_a, side_b);
  EXPECT_TRUE(long_cut);
  auto client_err = w.run(d.client->recv());
  auto server_err = w.run(d.server->recv());
  EXPECT_TRUE(client_err && !*client_err && client_err->error().code() == P2PErrc::timeout);
  EXPECT_TRUE(server_err && !*server_err && server_err->error().code() == P2PErrc::timeout);
  // After the heal, a new connection works.
  EXPECT_TRUE(w.graph().heal_partition(*long_cut));
  auto again = dial(w, a0, b0, listener);
  if (again.client) {
    EXPECT_EQ(w.run(exchange(*again.client, *again.server, 30)), std::string());
  }
  return w.trace_hash();
}

std::uint64_t discovery_by_name(std::uint64_t seed) {
  World w(seed);
  auto peers = w.setup_connected_peers(4);
  EXPECT_TRUE(peers);
  if (!peers) return 0;
  auto& server = (*peers)[3];
  EXPECT_TRUE(server.register_peer("music-server", server.local_node_id()));
  auto listener = w.run(server.listen())->value();
  for (int i = 0; i < 3; ++i) {
    auto& client = (*peers)[static_cast<std::size_t>(i)];
    const auto before = w.now();
    auto id = w.run(client.discover("music-server"));
    EXPECT_TRUE(id && *id && **id == server.local_node_id());
    EXPECT_EQ(w.now() - before, w.config().discovery_delay);
    auto c = w.run(client.connect_by_name(i == 0 ? "music-server" : "peer3"));
    EXPECT_TRUE(c && *c);
    auto s = w.run(listener.accept());
    EXPECT_TRUE(s && *s);
    if (c && *c && s && *s) {
      EXPECT_EQ(w.run(exchange(**c, **s, 10)), std::string());
    }
  }
  auto missing = w.run((*peers)[0].connect_by_name("no-such-server"));
  EXPECT_TRUE(missing && !*missing && missing->error().code() == P2PErrc::node_not_found);
  return w.trace_hash();
}

std::uint64_t nat_matrix(std::uint64_t seed) {
  using enum NatType;
  const NatType all[] = {none, full_cone, address_restricted, port_restricted, symmetric};
  std::uint64_t hash = 0;
  for (const bool with_relay : {true, false}) {
    World w(seed);
    env::Rng rng(seed);
    std::optional<SimulatorP2P> relay;
    if (with_relay) relay = *w.add_node("relay", NodeOptions{.relay = true});
    for (const auto da : all) {
      for (const auto db : all) {
        auto a = *w.add_node(fmt::format("dialer-{}-{}", to_string(da), to_string(db)), NodeOptions{.nat = da});
        auto b = *w.add_node(fmt::format("target-{}-{}", to_string(da), to_string(db)), NodeOptions{.nat = db});
        EXPECT_TRUE(w.link(a.local_node_id(), b.local_node_id(), wan_link(rng, 10ms)));
        if (relay) {
          EXPECT_TRUE(w.link(a.local_node_id(), relay->local_node_id(), wan_link(rng, 20ms)));
          EXPECT_TRUE(w.link(b.local_node_id(), relay->local_node_id(), wan_link(rng, 20ms)));
        }
        auto listener = w.run(b.listen())->value();
        const bool direct = direct_connection_possible(da, db);
        SCOPED_TRACE(fmt::format("{} -> {}, relay {}", to_string(da), to_string(db), with_relay));
        auto c = w.run(a.connect(b.local_node_id()));
        EXPECT_TRUE(c.has_value());
        if (!c) continue;
        if (!direct && !with_relay) {
          EXPECT_FALSE(*c);
          if (!*c) {
            EXPECT_EQ(c->error().code(), P2PErrc::no_route);
          }
          continue;
        }
        EXPECT_TRUE(*c);
        if (!*c) continue;
        EXPECT_EQ(c->value().path(), direct ? PathKind::direct : PathKind::relayed);
        auto s = w.run(listener.accept());
        EXPECT_TRUE(s && *s);
        if (s && *s) {
          EXPECT_EQ(s->value().path(), c->value().path());
          EXPECT_EQ(w.run(exchange(**c, **s, 5)), std::string());
        }
      }
    }
    hash ^= w.trace_hash() + (with_relay ? 1 : 0);
  }
  return hash;
}

std::uint64_t thousand_nodes(std::uint64_t seed) {
  constexpr std::size_t kNodes = 1000;
  constexpr std::size_t kRelays = 10;
  constexpr std::size_t kConnections = 500;
  World w(seed);
  env::Rng rng(env::derive_seed(seed, "topology"));
  std::vector<SimulatorP2P> nodes;
  nodes.reserve(kNodes);
  for (std::size_t i = 0; i < kNodes; ++i) {
    NodeOptions o;
    if (i < kRelays) {
      o.relay = true;
    } else {
      const auto r = rng.uniform(10);
      o.nat = r == 0  ? NatType::symmetric
              : r < 3 ? NatType::port_restricted
              : r < 5 ? NatType::full_cone
                      : NatType::none;
    }
    nodes.push_back(*w.add_node(fmt::format("n{}", i), o));
  }
  // A ring for connectivity, two random chords per node, and every node near some relay.
  for (std::size_t i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(w.link(nodes[i].local_node_id(), nodes[(i + 1) % kNodes].local_node_id(), wan_link(rng, 5ms)));
    for (int k = 0; k < 2; ++k) {
      const auto j = rng.uniform(kNodes);
      if (j == i || w.graph().get_link(nodes[i].local_node_id(), nodes[j].local_node_id()) != nullptr) continue;
      EXPECT_TRUE(w.link(nodes[i].local_node_id(), nodes[j].local_node_id(), wan_link(rng, 10ms)));
    }
    if (i >= kRelays) {
      const auto r = rng.uniform(kRelays);
      if (w.graph().get_link(nodes[i].local_node_id(), nodes[r].local_node_id()) == nullptr) {
        EXPECT_TRUE(w.link(nodes[i].local_node_id(), nodes[r].local_node_id(), wan_link(rng, 15ms)));
      }
    }
  }
  // Every target echoes on every connection it accepts.
  auto echo = [](SimulatorConnection c) -> asio::awaitable<void> {
    while (true) {
      auto m = co_await c.recv();
      if (!m) co_return;
      if (const auto sent = co_await c.send(std::move(*m)); !sent) co_return;
    }
  };
  auto serve = [](SimulatorListener l, decltype(echo) one) -> asio::awaitable<void> {
    while (true) {
      auto c = co_await l.accept();
      if (!c) co_return;
      spawn_logged(co_await asio::this_coro::executor, one(*c), "echo");
    }
  };
  for (std::size_t i = kRelays; i < kNodes; ++i) {
    auto l = w.run(nodes[i].listen());
    EXPECT_TRUE(l && *l);
    spawn_logged(w.runtime().executor(), serve(**l, echo), "serve");
  }
  // All connections run at once: dial, send 20 messages, read the 20 echoes, close.
  struct Tally {
    std::size_t done = 0;
    std::size_t relayed = 0;
    std::vector<std::string> errors;
  } tally;
  auto client = [](SimulatorP2P a, NodeId target, Tally* t) -> asio::awaitable<void> {
    auto c = co_await a.connect(target);
    if (!c) {
      t->errors.push_back(a.name() + ": " + c.error().message());
      co_return;
    }
    for (int i = 0; i < 20; ++i) {
      if (const auto ok = co_await c->send(as_bytes(fmt::format("{} {}", a.name(), i))); !ok) {
        t->errors.push_back(a.name() + ": send failed");
        co_return;
      }
    }
    for (int i = 0; i < 20; ++i) {
      auto m = co_await c->recv();
      if (!m || to_string(*m) != fmt::format("{} {}", a.name(), i)) {
        t->errors.push_back(a.name() + ": echo missing or out of order");
        co_return;
      }
    }
    t->relayed += c->path() == PathKind::relayed ? 1U : 0U;
    (void)co_await c->close();
    ++t->done;
  };
  for (std::size_t k = 0; k < kConnections; ++k) {
    const auto from = kRelays + rng.uniform(kNodes - kRelays);
    auto to = kRelays + rng.uniform(kNodes - kRelays);
    if (to == from) to = kRelays + (to + 1 - kRelays) % (kNodes - kRelays);
    spawn_logged(w.runtime().executor(), client(nodes[from], nodes[to].local_node_id(), &tally), "client");
  }
  w.run_while([&] { return tally.done + tally.errors.size() < kConnections; }, w.now() + 1h);
  EXPECT_EQ(tally.done, kConnections);
  EXPECT_TRUE(tally.errors.empty()) << (tally.errors.empty() ? "" : tally.errors.front());
  EXPECT_GT(tally.relayed, 0U);  // symmetric NATs make some paths relayed
  EXPECT_GE(w.messages_delivered(), kConnections * 40);
  return w.trace_hash();
}

// ---- the tests -------------------------------------------------------------------------------------------

struct Named {
  const char* name;
  std::uint64_t (*run)(std::uint64_t seed);
};

const Named kScenarios[] = {
    {"ThreeNodeMesh", three_node_mesh},
    {"MultiHopPath", multi_hop_path},
    {"PartitionAndRecovery", partition_and_recovery},
    {"DiscoveryByName", discovery_by_name},
    {"NatMatrix", nat_matrix},
    {"ThousandNodes", thousand_nodes},
};

class SimScenario : public ::testing::TestWithParam<std::tuple<std::size_t, std::uint64_t>> {};

// Each scenario checks its own outcome, twice with one seed; both runs must trace the same events.
TEST_P(SimScenario, RunsCorrectlyAndDeterministically) {
  const auto& [index, fallback] = GetParam();
  const auto& scenario = kScenarios[index];
  const auto seed = test_seed(fallback);
  P2P_SIM_SCOPE(seed);
  SCOPED_TRACE(scenario.name);
  const auto first = scenario.run(seed);
  const auto second = scenario.run(seed);
  EXPECT_EQ(first, second) << "the same seed produced a different trace: the simulation is not deterministic";
}

INSTANTIATE_TEST_SUITE_P(Seeds, SimScenario,
                         ::testing::Combine(::testing::Range<std::size_t>(0, std::size(kScenarios)),
                                            ::testing::Values<std::uint64_t>(1, 2, 3)),
                         [](const auto& param_info) {
                           return fmt::format("{}Seed{}", kScenarios[std::get<0>(param_info.param)].name,
                                              std::get<1>(param_info.param));
                         });

TEST(SimDeterminism, DifferentSeedsGiveDifferentTraces) {
  for (const auto& scenario : kScenarios) {
    SCOPED_TRACE(scenario.name);
    if (std::string_view(scenario.name) == "ThousandNodes") continue;  // covered above; slow to repeat
    EXPECT_NE(scenario.run(101), scenario.run(102));
  }
}

}  // namespace
}  // namespace moosicbox::p2p::sim
