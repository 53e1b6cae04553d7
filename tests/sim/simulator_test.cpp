// SPDX-License-Identifier: MIT OR Apache-2.0
// simulator_test.cpp: SimulatorP2P, SimulatorConnection and SimulatorListener: dialing, messages,
// timing on a quiet link, close semantics, errors, discovery and the handles' lifetime rules.
#include "moosicbox/p2p/sim/sim.hpp"

#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "sim/sim_test_support.hpp"

namespace moosicbox::p2p::sim {
namespace {

using namespace testing;
using namespace boost::asio::experimental::awaitable_operators;

NetworkConfig quiet_config() {
  NetworkConfig c;
  c.packet_loss = 0.0;
  c.latency = ms(50);
  return c;
}

// Pair is alice and bob on one 50 ms link; bob listens.
struct Pair {
  explicit Pair(std::uint64_t seed = 1, NetworkConfig config = quiet_config())
      : world(seed, config), alice(*world.add_node("alice")), bob(*world.add_node("bob")) {
    EXPECT_TRUE(world.link(alice.local_node_id(), bob.local_node_id(), quiet_link(ms(50))));
    auto l = world.run(bob.listen("bob-addr"));
    EXPECT_TRUE(l && *l);
    listener = **l;
  }
  // connect dials bob and accepts on bob's side.
  std::pair<SimulatorConnection, SimulatorConnection> connect() {
    auto client = world.run(alice.connect(bob.local_node_id()));
    auto server = world.run(listener->accept());
    EXPECT_TRUE(client && *client);
    EXPECT_TRUE(server && *server);
    return {**client, **server};
  }
  World world;
  SimulatorP2P alice;
  SimulatorP2P bob;
  std::optional<SimulatorListener> listener;
};

TEST(SimulatorP2P, ConnectTakesOneRoundTripAndMessageOneWay) {
  Pair p;
  const auto start = p.world.now();
  auto client = p.world.run(p.alice.connect(p.bob.local_node_id()));
  ASSERT_TRUE(client && *client);
  EXPECT_EQ(p.world.now() - start, ms(100));
  EXPECT_EQ(client->value().path(), PathKind::direct);
  EXPECT_EQ(client->value().remote_node_id(), p.bob.local_node_id());
  EXPECT_EQ(client->value().local_node_id(), p.alice.local_node_id());
  auto server = p.world.run(p.listener->accept());
  ASSERT_TRUE(server && *server);
  EXPECT_EQ(server->value().remote_node_id(), p.alice.local_node_id());
  auto conn = **client;
  const auto sent_at = p.world.now();
  ASSERT_TRUE(p.world.run(conn.send(as_bytes("hello"))));
  EXPECT_EQ(p.world.now(), sent_at);  // send queues; it does not wait for delivery
  auto srv = **server;
  auto msg = p.world.run(srv.recv());
  ASSERT_TRUE(msg && *msg);
  EXPECT_EQ(to_string(**msg), "hello");
  EXPECT_EQ(p.world.now() - sent_at, ms(50));
  EXPECT_EQ(srv.stats().messages_received, 1U);
  EXPECT_EQ(srv.stats().average_latency, ms(50));
  EXPECT_EQ(conn.stats().messages_sent, 1U);
  EXPECT_EQ(conn.stats().rtt, ms(100));
}

TEST(SimulatorP2P, RecvWaitsForTheMessage) {
  Pair p;
  auto [client, server] = p.connect();
  std::optional<P2PResult<Bytes>> got;
  p.world.run(
      [](SimulatorConnection s, std::optional<P2PResult<Bytes>>* out) -> asio::awaitable<void> {
        *out = co_await s.recv();
      }(server, &got),
      ms(1));
  EXPECT_FALSE(got.has_value());  // nothing sent yet: recv is still waiting, not failing
  ASSERT_TRUE(p.world.run(client.send(as_bytes("late"))));
  p.world.run_until_idle();
  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(to_string(**got), "late");
}

TEST(SimulatorP2P, MessagesArriveInOrderExactlyOnce) {
  Pair p;
  auto [client, server] = p.connect();
  static constexpr int kCount = 5000;
  auto sender = [](SimulatorConnection c) -> asio::awaitable<bool> {
    for (int i = 0; i < kCount; ++i) {
      if (const auto ok = co_await c.send(as_bytes(std::to_string(i))); !ok) co_return false;
    }
    co_return true;
  };
  auto receiver = [](SimulatorConnection c) -> asio::awaitable<int> {
    for (int i = 0; i < kCount; ++i) {
      auto m = co_await c.recv();
      if (!m || to_string(*m) != std::to_string(i)) co_return i;
    }
    co_return kCount;
  };
  auto both = p.world.run(
      [&]() -> asio::awaitable<std::tuple<bool, int>> { co_return co_await (sender(client) && receiver(server)); }());
  ASSERT_TRUE(both);
  EXPECT_TRUE(std::get<0>(*both));
  EXPECT_EQ(std::get<1>(*both), kCount);
  EXPECT_EQ(server.try_recv().value(), std::nullopt);
}

TEST(SimulatorP2P, PeerCloseDeliversEverythingThenConnectionClosed) {
  Pair p;
  auto [client, server] = p.connect();
  for (const auto* text : {"one", "two", "three"}) ASSERT_TRUE(p.world.run(client.send(as_bytes(text))));
  ASSERT_TRUE(p.world.run(client.close()));
  EXPECT_FALSE(client.is_connected());
  for (const auto* text : {"one", "two", "three"}) {
    auto m = p.world.run(server.recv());
    ASSERT_TRUE(m && *m);
    EXPECT_EQ(to_string(**m), text);
  }
  auto end = p.world.run(server.recv());
  ASSERT_TRUE(end);
  ASSERT_FALSE(*end);
  EXPECT_EQ(end->error().code(), P2PErrc::connection_closed);
  EXPECT_FALSE(server.is_connected());
  auto reply = p.world.run(server.send(as_bytes("too late")));
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->error().code(), P2PErrc::connection_closed);
}

TEST(SimulatorP2P, SendAfterCloseFailsAndCloseIsIdempotent) {
  Pair p;
  auto [client, server] = p.connect();
  ASSERT_TRUE(p.world.run(client.close()));
  ASSERT_TRUE(p.world.run(client.close()));
  auto r = p.world.run(client.send(as_bytes("x")));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->error().code(), P2PErrc::connection_closed);
  auto rr = p.world.run(client.recv());
  ASSERT_TRUE(rr);
  EXPECT_EQ(rr->error().code(), P2PErrc::connection_closed);
}

TEST(SimulatorP2P, MessageSizeIsCheckedAgainstTheMaximum) {
  NetworkConfig config = quiet_config();
  config.max_message_size = 1000;
  Pair p(1, config);
  auto [client, server] = p.connect();
  Bytes max(1000, std::byte{7});
  Bytes over(1001, std::byte{7});
  ASSERT_TRUE(p.world.run(client.send(ByteView(max))).value());
  auto r = p.world.run(client.send(ByteView(over)));
  ASSERT_TRUE(r);
  ASSERT_FALSE(*r);
  EXPECT_EQ(r->error().code(), P2PErrc::message_too_large);
  EXPECT_EQ(r->error().message(), "Message too large: 1001 bytes exceeds max 1000");
  auto m = p.world.run(server.recv());
  ASSERT_TRUE(m && *m);
  EXPECT_EQ(**m, max);
}

TEST(SimulatorP2P, DroppingTheLastHandleClosesTheConnection) {
  Pair p;
  auto [client, server] = p.connect();
  {
    auto copy = client;
    ASSERT_TRUE(p.world.run(copy.send(as_bytes("bye"))));
  }
  p.world.run_until_idle();
  EXPECT_TRUE(server.is_connected());  // `client` still holds the connection
  {
    auto last = std::move(client);
    ASSERT_TRUE(p.world.run(last.send(as_bytes("last"))));
  }
  auto m1 = p.world.run(server.recv());
  auto m2 = p.world.run(server.recv());
  auto end = p.world.run(server.recv());
  ASSERT_TRUE(m1 && *m1 && m2 && *m2 && end);
  EXPECT_EQ(to_string(**m1), "bye");
  EXPECT_EQ(to_string(**m2), "last");
  ASSERT_FALSE(*end);
  EXPECT_EQ(end->error().code(), P2PErrc::connection_closed);
}

TEST(SimulatorP2P, ConnectErrorsNameTheirCause) {
  Pair p;
  auto carol = *p.world.add_node("carol");  // no links at all
  auto unknown = p.world.run(p.alice.connect(test_node_id("nobody")));
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->error().code(), P2PErrc::node_not_found);
  auto no_route = p.world.run(p.alice.connect(carol.local_node_id()));
  ASSERT_TRUE(no_route);
  EXPECT_EQ(no_route->error().code(), P2PErrc::no_route);
  auto self = p.world.run(p.alice.connect(p.alice.local_node_id()));
  ASSERT_TRUE(self);
  EXPECT_EQ(self->error().code(), P2PErrc::connection_failed);
  // bob is linked to carol but carol does not listen: refused after one round trip.
  ASSERT_TRUE(p.world.link(p.bob.local_node_id(), carol.local_node_id(), quiet_link(ms(10))));
  const auto before = p.world.now();
  auto refused = p.world.run(p.bob.connect(carol.local_node_id()));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->error().code(), P2PErrc::connection_failed);
  EXPECT_EQ(p.world.now() - before, ms(20));
  auto twice = p.world.run(p.bob.listen(""));
  ASSERT_TRUE(twice);
  EXPECT_EQ(twice->error().code(), P2PErrc::connection_failed);
}

TEST(SimulatorP2P, ConnectThroughAPartitionTimesOut) {
  Pair p;
  ASSERT_TRUE(p.world.graph().add_partition(std::vector{p.alice.local_node_id()}, std::vector{p.bob.local_node_id()}));
  const auto before = p.world.now();
  auto r = p.world.run(p.alice.connect(p.bob.local_node_id()));
  ASSERT_TRUE(r);
  ASSERT_FALSE(*r);
  EXPECT_EQ(r->error().code(), P2PErrc::timeout);
  EXPECT_EQ(r->error().message(), "Operation timed out after 30s");
  EXPECT_EQ(p.world.now() - before, std::chrono::seconds(30));
}

TEST(SimulatorP2P, DiscoverTakesTheDiscoveryDelay) {
  Pair p;
  const auto before = p.world.now();
  auto id = p.world.run(p.alice.discover("bob"));
  ASSERT_TRUE(id && *id);
  EXPECT_EQ(**id, p.bob.local_node_id());
  EXPECT_EQ(p.world.now() - before, ms(100));
  auto missing = p.world.run(p.alice.discover("nobody"));
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->error().code(), P2PErrc::node_not_found);
  ASSERT_TRUE(p.alice.register_peer("the-server", p.bob.local_node_id()));
  auto conn = p.world.run(p.alice.connect_by_name("the-server"));
  ASSERT_TRUE(conn && *conn);
  EXPECT_EQ(conn->value().remote_node_id(), p.bob.local_node_id());
}

TEST(SimulatorP2P, ListenerClosedFailsAccept) {
  Pair p;
  p.listener->close();
  auto r = p.world.run(p.listener->accept());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->error().code(), P2PErrc::connection_closed);
  auto dial = p.world.run(p.alice.connect(p.bob.local_node_id()));
  ASSERT_TRUE(dial);
  EXPECT_EQ(dial->error().code(), P2PErrc::connection_failed);
  EXPECT_TRUE(p.world.run(p.bob.listen("again")).value());
}

TEST(SimulatorP2P, RecvIsCancelledByTheLosingSideOfARace) {
  Pair p;
  auto [client, server] = p.connect();
  auto r = p.world.run([](SimulatorConnection s, SimulatorP2P bob) -> asio::awaitable<int> {
    auto timer = bob.env().make_timer();
    auto which = co_await (s.recv() || timer.wait_until(bob.env().now() + std::chrono::seconds(1)));
    co_return static_cast<int>(which.index());
  }(server, p.bob));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 1);
  // The cancelled recv left nothing behind: the next message goes to the next recv.
  ASSERT_TRUE(p.world.run(client.send(as_bytes("after"))));
  auto m = p.world.run(server.recv());
  ASSERT_TRUE(m && *m);
  EXPECT_EQ(to_string(**m), "after");
}

TEST(SimulatorP2P, TryRecvDoesNotWait) {
  Pair p;
  auto [client, server] = p.connect();
  auto none = server.try_recv();
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(p.world.run(client.send(as_bytes("x"))));
  p.world.run_until_idle();
  auto some = server.try_recv();
  ASSERT_TRUE(some && some->has_value());
  EXPECT_EQ(to_string(**some), "x");
}

}  // namespace
}  // namespace moosicbox::p2p::sim
