// SPDX-License-Identifier: MIT OR Apache-2.0
// model_test.cpp: the simulator's network model: loss costs retransmission time, never messages;
// bandwidth costs serialisation and queueing; partitions stall and heals resume; a stall longer than
// the connection timeout fails both ends; link flaps reroute; NATs decide direct or relayed paths;
// relays add their latency; crashes, restarts and offline nodes.
#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "moosicbox/p2p/sim/sim.hpp"
#include "sim/sim_test_support.hpp"

namespace moosicbox::p2p::sim {
namespace {

using namespace testing;
using namespace std::chrono_literals;

NetworkConfig config() {
  NetworkConfig c;
  c.packet_loss = 0;
  return c;
}

struct Nodes {
  explicit Nodes(std::uint64_t seed, NetworkConfig c = config()) : world(seed, c) {}
  SimulatorP2P add(std::string_view name, NodeOptions o = {}) {
    auto n = world.add_node(name, o);
    EXPECT_TRUE(n);
    return *n;
  }
  void link(const SimulatorP2P& a, const SimulatorP2P& b, LinkInfo l) {
    EXPECT_TRUE(world.link(a.local_node_id(), b.local_node_id(), l));
  }
  // dial returns both sides of a new connection from `a` to `b` (which must listen).
  std::pair<P2PResult<SimulatorConnection>, std::optional<SimulatorConnection>> dial(SimulatorP2P& a,
                                                                                     SimulatorListener& l,
                                                                                     const SimulatorP2P& b) {
    auto c = world.run(a.connect(b.local_node_id()));
    EXPECT_TRUE(c);
    if (!c || !*c) return {c ? *c : fail(P2PError::timeout(0s)), std::nullopt};
    auto s = world.run(l.accept());
    EXPECT_TRUE(s && *s);
    return {*c, s && *s ? std::optional(**s) : std::nullopt};
  }
  SimulatorListener listen(SimulatorP2P& n) { return world.run(n.listen())->value(); }
  World world;
};

// send_all sends `count` numbered messages of `size` bytes.
asio::awaitable<P2PResult<void>> send_all(SimulatorConnection c, int count, std::size_t size = 16) {
  for (int i = 0; i < count; ++i) {
    Bytes m(size, std::byte{0});
    const auto text = std::to_string(i);
    std::memcpy(m.data(), text.data(), std::min(text.size(), size));
    if (auto r = co_await c.send(std::move(m)); !r) co_return r;
  }
  co_return P2PResult<void>{};
}

// recv_all receives `count` messages and checks their numbering; returns how many were in order.
asio::awaitable<int> recv_all(SimulatorConnection c, int count) {
  for (int i = 0; i < count; ++i) {
    auto m = co_await c.recv();
    if (!m) co_return i;
    const auto text = std::to_string(i);
    if (std::memcmp(m->data(), text.data(), std::min(text.size(), m->size())) != 0) co_return i;
  }
  co_return count;
}

TEST(SimModel, LossCostsRetransmissionTimeNeverMessages) {
  const auto seed = test_seed(11);
  P2P_SIM_SCOPE(seed);
  Nodes n(seed);
  auto a = n.add("a");
  auto b = n.add("b");
  LinkInfo lossy = quiet_link(50ms);
  lossy.packet_loss = 0.3;
  n.link(a, b, lossy);
  auto l = n.listen(b);
  auto [c, s] = n.dial(a, l, b);
  ASSERT_TRUE(c && s);
  constexpr int kCount = 2000;
  ASSERT_TRUE(n.world.run(send_all(*c, kCount)).value());
  EXPECT_EQ(n.world.run(recv_all(*s, kCount)), kCount);
  // Every lost transmission costs a retransmission timeout (2 RTT + 25 ms = 225 ms here), and in one
  // ordered flow a late message holds back those behind it: the mean latency is far above the 50 ms
  // of the link, but bounded (no message needs more than a handful of retransmissions).
  const auto mean = s->stats().average_latency;
  EXPECT_GT(mean, 100ms);
  EXPECT_LT(mean, 5s);
  EXPECT_TRUE(c->is_connected());
}

TEST(SimModel, BandwidthCostsSerialisationAndQueueing) {
  Nodes n(1);
  auto a = n.add("a");
  auto b = n.add("b");
  LinkInfo slow = quiet_link(50ms);
  slow.bandwidth = 1'000'000;  // 1 MB/s
  n.link(a, b, slow);
  auto l = n.listen(b);
  auto [c, s] = n.dial(a, l, b);
  ASSERT_TRUE(c && s);
  const auto start = n.world.now();
  ASSERT_TRUE(n.world.run(send_all(*c, 100, 10'000)).value());
  EXPECT_EQ(n.world.run(recv_all(*s, 100)), 100);
  // 100 messages of 10,000 bytes (10,440 on the wire with framing and 9 packet headers) take 1.044 s
  // to serialise, plus 50 ms of propagation for the last one.
  EXPECT_EQ(n.world.now() - start, 1044ms + 50ms);
}

TEST(SimModel, ConnectionsShareALinksBandwidth) {
  Nodes n(1);
  auto a = n.add("a");
  auto b = n.add("b");
  LinkInfo slow = quiet_link(10ms);
  slow.bandwidth = 1'000'000;
  n.link(a, b, slow);
  auto l = n.listen(b);
  auto [c1, s1] = n.dial(a, l, b);
  auto [c2, s2] = n.dial(a, l, b);
  ASSERT_TRUE(c1 && c2 && s1 && s2);
  const auto start = n.world.now();
  auto both = n.world.run([](SimulatorConnection x, SimulatorConnection y) -> asio::awaitable<bool> {
    using namespace boost::asio::experimental::awaitable_operators;
    auto [r1, r2] = co_await (send_all(x, 50, 10'000) && send_all(y, 50, 10'000));
    co_return r1.has_value() && r2.has_value();
  }(*c1, *c2));
  ASSERT_TRUE(both && *both);
  EXPECT_EQ(n.world.run(recv_all(*s1, 50)), 50);
  EXPECT_EQ(n.world.run(recv_all(*s2, 50)), 50);
  EXPECT_EQ(n.world.now() - start, 1044ms + 10ms);  // the two transfers queue behind each other
}

TEST(SimModel, PartitionStallsDeliveryAndHealResumesIt) {
  Nodes n(1);
  auto a = n.add("a");
  auto b = n.add("b");
  n.link(a, b, quiet_link(50ms));
  auto l = n.listen(b);
  auto [c, s] = n.dial(a, l, b);
  ASSERT_TRUE(c && s);
  auto part = n.world.graph().add_partition(std::vector{a.local_node_id()}, std::vector{b.local_node_id()});
  ASSERT_TRUE(part);
  ASSERT_TRUE(n.world.run(c->send(as_bytes("during"))).value());
  std::optional<P2PResult<Bytes>> got;
  n.world.run([](SimulatorConnection x,
                 std::optional<P2PResult<Bytes>>* out) -> asio::awaitable<void> { *out = co_await x.recv(); }(*s, &got),
              10s);
  EXPECT_FALSE(got.has_value());  // stalled, not lost and not failed
  EXPECT_TRUE(c->is_connected());
  const auto heal = n.world.now();
  ASSERT_TRUE(n.world.graph().heal_partition(*part));
  n.world.run_until_idle();
  ASSERT_TRUE(got.has_value() && got->has_value());
  EXPECT_EQ(to_string(**got), "during");
  // After the heal the message waits for its retransmission timer (225 ms), then crosses (50 ms).
  EXPECT_EQ(s->stats().average_latency, 10s + 225ms + 50ms);
  EXPECT_GE(n.world.now() - heal, 275ms);
}

TEST(SimModel, StallLongerThanTheTimeoutFailsBothEnds) {
  NetworkConfig cfg = config();
  cfg.connection_timeout = 10s;
  Nodes n(1, cfg);
  auto a = n.add("a");
  auto b = n.add("b");
  n.link(a, b, quiet_link(50ms));
  auto l = n.listen(b);
  auto [c, s] = n.dial(a, l, b);
  ASSERT_TRUE(c && s);
  ASSERT_TRUE(n.world.run(s->send(as_bytes("arrived"))).value());
  n.world.run_for(1s);
  ASSERT_TRUE(n.world.graph().add_partition(std::vector{a.local_node_id()}, std::vector{b.local_node_id()}));
  const auto stall = n.world.now();
  ASSERT_TRUE(n.world.run(c->send(as_bytes("lost with the connection"))).value());
  auto r = n.world.run(s->recv());
  ASSERT_TRUE(r);
  ASSERT_FALSE(*r);
  EXPECT_EQ(r->error().code(), P2PErrc::timeout);
  EXPECT_EQ(r->error().message(), "Operation timed out after 10s");
  EXPECT_EQ(n.world.now() - stall, 10s);
  // The client had a message waiting: it gets it, then the same failure.
  auto first = n.world.run(c->recv());
  ASSERT_TRUE(first && *first);
  EXPECT_EQ(to_string(**first), "arrived");
  auto then = n.world.run(c->recv());
  ASSERT_TRUE(then);
  EXPECT_EQ(then->error().code(), P2PErrc::timeout);
  EXPECT_FALSE(c->is_connected());
  EXPECT_FALSE(s->is_connected());
  auto send = n.world.run(c->send(as_bytes("x")));
  EXPECT_EQ(send->error().code(), P2PErrc::timeout);
}

TEST(SimModel, LinkFlapReroutesWithoutFailing) {
  Nodes n(1);
  auto a = n.add("a");
  auto b = n.add("b");
  auto via = n.add("via");
  n.link(a, b, quiet_link(10ms));
  n.link(a, via, quiet_link(30ms));
  n.link(via, b, quiet_link(30ms));
  auto l = n.listen(b);
  auto [c, s] = n.dial(a, l, b);
  ASSERT_TRUE(c && s);
  EXPECT_EQ(c->stats().rtt, 20ms);
  ASSERT_TRUE(n.world.graph().set_link_active(a.local_node_id(), b.local_node_id(), false));
  EXPECT_EQ(c->stats().rtt, 120ms);
  ASSERT_TRUE(n.world.run(send_all(*c, 10)).value());
  EXPECT_EQ(n.world.run(recv_all(*s, 10)), 10);
  ASSERT_TRUE(n.world.graph().set_link_active(a.local_node_id(), b.local_node_id(), true));
  ASSERT_TRUE(n.world.run(send_all(*c, 10)).value());
  EXPECT_EQ(n.world.run(recv_all(*s, 10)), 10);
  EXPECT_TRUE(c->is_connected());
}

TEST(SimModel, JitterNeverReordersMessages) {
  const auto seed = test_seed(5);
  P2P_SIM_SCOPE(seed);
  Nodes n(seed);
  auto a = n.add("a");
  auto b = n.add("b");
  LinkInfo jittery = quiet_link(5ms);
  jittery.jitter = 40ms;
  n.link(a, b, jittery);
  auto l = n.listen(b);
  auto [c, s] = n.dial(a, l, b);
  ASSERT_TRUE(c && s);
  auto both = n.world.run([](SimulatorConnection x, SimulatorConnection y) -> asio::awaitable<int> {
    using namespace boost::asio::experimental::awaitable_operators;
    auto [sent, got] = co_await (send_all(x, 3000) && recv_all(y, 3000));
    co_return sent ? got : -1;
  }(*c, *s));
  EXPECT_EQ(both, 3000);
}

TEST(SimModel, AsymmetricLinksGiveAsymmetricLatency) {
  Nodes n(1);
  auto a = n.add("a");
  auto b = n.add("b");
  ASSERT_TRUE(n.world.graph().connect_one_way(a.local_node_id(), b.local_node_id(), quiet_link(10ms)));
  ASSERT_TRUE(n.world.graph().connect_one_way(b.local_node_id(), a.local_node_id(), quiet_link(90ms)));
  auto l = n.listen(b);
  const auto start = n.world.now();
  auto [c, s] = n.dial(a, l, b);
  ASSERT_TRUE(c && s);
  EXPECT_EQ(n.world.now() - start, 100ms);
  ASSERT_TRUE(n.world.run(c->send(as_bytes("up"))).value());
  ASSERT_TRUE(n.world.run(s->recv()).value());
  EXPECT_EQ(s->stats().average_latency, 10ms);
  ASSERT_TRUE(n.world.run(s->send(as_bytes("down"))).value());
  ASSERT_TRUE(n.world.run(c->recv()).value());
  EXPECT_EQ(c->stats().average_latency, 90ms);
}

TEST(SimModel, HolePunchingCostsARoundTripAndStaysDirect) {
  Nodes n(1);
  auto a = n.add("a", NodeOptions{.nat = NatType::port_restricted});
  auto b = n.add("b", NodeOptions{.nat = NatType::address_restricted});
  n.link(a, b, quiet_link(20ms));
  auto l = n.listen(b);
  const auto start = n.world.now();
  auto [c, s] = n.dial(a, l, b);
  ASSERT_TRUE(c && s);
  EXPECT_EQ(c->path(), PathKind::direct);
  EXPECT_EQ(n.world.now() - start, 80ms);  // one round trip to punch, one for the handshake
}

TEST(SimModel, SymmetricNatsGoThroughARelayWithItsLatency) {
  Nodes n(1);
  auto a = n.add("a", NodeOptions{.nat = NatType::symmetric});
  auto b = n.add("b", NodeOptions{.nat = NatType::port_restricted});
  auto relay = n.add("relay", NodeOptions{.relay = true, .relay_delay = 2ms});
  n.link(a, b, quiet_link(10ms));
  n.link(a, relay, quiet_link(30ms));
  n.link(b, relay, quiet_link(40ms));
  auto l = n.listen(b);
  const auto start = n.world.now();
  auto [c, s] = n.dial(a, l, b);
  ASSERT_TRUE(c && s);
  EXPECT_EQ(c->path(), PathKind::relayed);
  EXPECT_EQ(c->relay(), relay.local_node_id());
  EXPECT_EQ(s->path(), PathKind::relayed);
  EXPECT_EQ(n.world.now() - start, 2 * (30ms + 40ms + 2ms));
  EXPECT_EQ(c->stats().rtt, 144ms);
}

TEST(SimModel, NoRelayAndIncompatibleNatsMeanNoRoute) {
  Nodes n(1);
  auto a = n.add("a", NodeOptions{.nat = NatType::symmetric});
  auto b = n.add("b", NodeOptions{.nat = NatType::symmetric});
  n.link(a, b, quiet_link(10ms));
  auto l = n.listen(b);
  auto r = n.world.run(a.connect(b.local_node_id()));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->error().code(), P2PErrc::no_route);
}

TEST(SimModel, RelayGoingDownMovesTheConnectionToAnotherRelay) {
  Nodes n(1);
  auto a = n.add("a", NodeOptions{.nat = NatType::symmetric});
  auto b = n.add("b", NodeOptions{.nat = NatType::symmetric});
  auto r1 = n.add("r1", NodeOptions{.relay = true});
  auto r2 = n.add("r2", NodeOptions{.relay = true});
  for (auto* r : {&r1, &r2}) {
    n.link(a, *r, quiet_link(r == &r1 ? 10ms : 40ms));
    n.link(b, *r, quiet_link(r == &r1 ? 10ms : 40ms));
  }
  auto l = n.listen(b);
  auto [c, s] = n.dial(a, l, b);
  ASSERT_TRUE(c && s);
  EXPECT_EQ(c->relay(), r1.local_node_id());
  ASSERT_TRUE(n.world.crash(r1.local_node_id()));
  EXPECT_EQ(c->relay(), r2.local_node_id());
  ASSERT_TRUE(n.world.run(send_all(*c, 20)).value());
  EXPECT_EQ(n.world.run(recv_all(*s, 20)), 20);
}

TEST(SimModel, CrashEndsTheLocalSideAtOnceAndThePeerAfterTheTimeout) {
  Nodes n(1);
  auto a = n.add("a");
  auto b = n.add("b");
  n.link(a, b, quiet_link(10ms));
  auto l = n.listen(b);
  auto [c, s] = n.dial(a, l, b);
  ASSERT_TRUE(c && s);
  const auto crash = n.world.now();
  ASSERT_TRUE(n.world.crash(b.local_node_id()));
  EXPECT_FALSE(b.is_up());
  auto local = n.world.run(s->recv());
  ASSERT_TRUE(local);
  EXPECT_EQ(local->error().code(), P2PErrc::connection_closed);
  EXPECT_EQ(n.world.run(l.accept())->error().code(), P2PErrc::connection_closed);
  // Restarting does not revive the old connection: the peer still times out.
  n.world.run_for(1s);
  ASSERT_TRUE(n.world.restart(b.local_node_id()));
  auto remote = n.world.run(c->recv());
  ASSERT_TRUE(remote);
  EXPECT_EQ(remote->error().code(), P2PErrc::timeout);
  EXPECT_EQ(n.world.now() - crash, 30s);
  // The restarted node listens again and takes new connections.
  auto l2 = n.listen(b);
  auto [c2, s2] = n.dial(a, l2, b);
  ASSERT_TRUE(c2 && s2);
  ASSERT_TRUE(n.world.run(c2->send(as_bytes("again"))).value());
  EXPECT_EQ(to_string(n.world.run(s2->recv())->value()), "again");
}

TEST(SimModel, OfflineNodeStallsItsConnectionsUntilItReturns) {
  Nodes n(1);
  auto a = n.add("a");
  auto b = n.add("b");
  n.link(a, b, quiet_link(10ms));
  auto l = n.listen(b);
  auto [c, s] = n.dial(a, l, b);
  ASSERT_TRUE(c && s);
  ASSERT_TRUE(n.world.graph().set_online(b.local_node_id(), false));
  ASSERT_TRUE(n.world.run(send_all(*c, 5)).value());
  n.world.run_for(20s);
  EXPECT_EQ(s->try_recv().value(), std::nullopt);
  ASSERT_TRUE(n.world.graph().set_online(b.local_node_id(), true));
  EXPECT_EQ(n.world.run(recv_all(*s, 5)), 5);
  EXPECT_TRUE(c->is_connected());
}

TEST(SimModel, SendWaitsWhenTheReceiverDoesNotRead) {
  SimLimits limits;
  limits.message_window = 64 * 1024;
  NetworkConfig cfg = config();
  cfg.max_message_size = 4096;
  World w(1, cfg, limits);
  auto a = *w.add_node("a");
  auto b = *w.add_node("b");
  ASSERT_TRUE(w.link(a.local_node_id(), b.local_node_id(), quiet_link(10ms)));
  auto l = w.run(b.listen())->value();
  auto c = w.run(a.connect(b.local_node_id()))->value();
  auto s = w.run(l.accept())->value();
  int sent = 0;
  w.run(
      [](SimulatorConnection x, int* count) -> asio::awaitable<void> {
        for (int i = 0; i < 1000; ++i) {
          if (const auto ok = co_await x.send(Bytes(1000, std::byte{1})); !ok) co_return;
          ++*count;
        }
      }(c, &sent),
      60s);
  // 64 KiB of window at 1064 bytes per message: the sender stops after 61 messages.
  EXPECT_EQ(sent, 61);
  int got = 0;
  while (got < 1000) {
    auto m = w.run(s.recv());
    ASSERT_TRUE(m && *m);
    ++got;
  }
  EXPECT_EQ(sent, 1000);
}

}  // namespace
}  // namespace moosicbox::p2p::sim
