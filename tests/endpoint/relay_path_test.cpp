// SPDX-License-Identifier: MIT OR Apache-2.0
// relay_path_test.cpp: the endpoint's relay path over loopback: endpoints that share only a relay
// exchange messages and streams, connect by node id and relay URL alone, prefer a working direct
// path, fall back to the relay when the direct address is dead, survive a relay that corrupts
// packets and a relay restart mid-transfer, and fail at once for a node the relay does not know.
// Real sockets on 127.0.0.1 only; every test is bounded in time.
// Layer: tests (endpoint, integration).
#include <gtest/gtest.h>

#include <boost/asio/ip/udp.hpp>

#include "endpoint/endpoint_fixture.hpp"
#include "endpoint/magicsock/relay_faults.hpp"
#include "moosicbox/p2p/core/spawn.hpp"
#include "moosicbox/p2p/relay/server.hpp"

namespace moosicbox::p2p {
namespace {

using namespace std::chrono_literals;
using testing::bind_or_fail;
using testing::loopback_config;
using testing::payload;
using testing::run_test;

relay::RelayServer start_relay(asio::any_io_executor ex, std::uint16_t port = 0) {
  relay::RelayServerConfig cfg;
  cfg.bind_addrs = {SocketAddr::v4_loopback(port)};
  auto s = relay::RelayServer::create(std::move(ex), std::move(cfg));
  if (!s) throw std::runtime_error("relay: " + s.error().message());
  return std::move(*s);
}

EndpointConfig relayed_config(std::string_view name, const std::string& relay_url, bool direct = false) {
  auto cfg = loopback_config(name);
  cfg.relay_urls = {relay_url};
  cfg.direct_paths = direct;
  cfg.initial_rtt = 10ms;
  return cfg;
}

// listen_relayed waits (bounded) for `ep`'s home relay session, so peers find it there, and listens
// for test/1. Throws when either fails.
asio::awaitable<Listener> listen_relayed(Endpoint& ep) {
  auto home = co_await ep.wait_home_relay(10s);
  if (!home) throw std::runtime_error("home relay: " + home.error().message());
  auto listener = ep.listen("test/1");
  if (!listener) throw std::runtime_error("listen: " + listener.error().message());
  co_return std::move(*listener);
}

// close_all closes the endpoints, then the relay.
asio::awaitable<void> close_all(Endpoint& client_ep, Endpoint& server_ep, relay::RelayServer& relay) {
  co_await client_ep.close();
  co_await server_ep.close();
  co_await relay.shutdown(false);
}

// echo_streams answers every bidirectional stream of `c` with its own bytes.
asio::awaitable<void> echo_streams(Connection c) {
  for (;;) {
    auto s = co_await c.accept_bi();
    if (!s) co_return;
    auto body = co_await s->read_to_end(16 << 20);
    if (!body) co_return;
    (void)co_await s->write(*body);
    (void)co_await s->finish();
  }
}

// echo_stream sends `data` on a new stream and returns what comes back.
asio::awaitable<P2PResult<Bytes>> echo_stream(Connection& c, const Bytes& data) {
  auto s = co_await c.open_bi();
  if (!s) co_return fail(s.error());
  if (auto w = co_await s->write(data); !w) co_return fail(w.error());
  if (auto f = co_await s->finish(); !f) co_return fail(f.error());
  co_return co_await s->read_to_end(16 << 20);
}

TEST(RelayPath, PeersThatShareOnlyARelayExchangeMessagesAndStreams) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto relay = start_relay(ex);
    auto server_ep = bind_or_fail(ex, relayed_config("server", relay.url()));
    auto client_ep = bind_or_fail(ex, relayed_config("client", relay.url()));
    auto home = co_await server_ep.wait_home_relay(10s);
    CO_ASSERT(home) << home.error().message();
    EXPECT_EQ(*home, relay.url());
    const NodeAddr addr = server_ep.addr();
    EXPECT_EQ(addr.relay_url(), relay.url());
    EXPECT_TRUE(addr.direct_addresses().empty()) << "direct paths are off";
    auto listener = server_ep.listen("test/1");
    CO_ASSERT(listener);
    auto client = co_await client_ep.connect(addr, "test/1");
    CO_ASSERT(client) << client.error().message();
    auto server = co_await listener->accept();
    CO_ASSERT(server) << server.error().message();
    EXPECT_EQ(server->remote_node_id(), test_node_id("client"));
    const PathInfo path = client->path();
    EXPECT_EQ(path.kind, PathKind::relay);
    EXPECT_EQ(path.relay_url, relay.url());
    EXPECT_EQ(server->path().kind, PathKind::relay);
    for (const std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{5000}, std::size_t{1} << 20}) {
      const Bytes msg = payload(size, static_cast<std::uint8_t>(size));
      CO_ASSERT(co_await client->send(msg));
      auto got = co_await server->recv();
      CO_ASSERT(got) << got.error().message();
      EXPECT_TRUE(*got == msg) << "size " << size;
    }
    CO_ASSERT(co_await server->send(as_bytes("pong")));
    auto pong = co_await client->recv();
    CO_ASSERT(pong);
    EXPECT_EQ(to_string(*pong), "pong");
    spawn_logged(ex, echo_streams(*server), "echo");
    const Bytes data = payload(3 << 20, 7);
    auto back = co_await echo_stream(*client, data);
    CO_ASSERT(back) << back.error().message();
    EXPECT_TRUE(*back == data);
    EXPECT_GT(client_ep.stats().relay_datagrams_sent, 1000U);
    EXPECT_GT(server_ep.stats().relay_datagrams_received, 1000U);
    EXPECT_GT(relay.stats().bytes_forwarded, std::uint64_t{6} << 20);
    (void)co_await client->close();
    co_await close_all(client_ep, server_ep, relay);
  });
}

TEST(RelayPath, NodeIdAndRelayUrlAloneAreEnoughToConnectAndGoDirect) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto relay = start_relay(ex);
    // The server also has direct paths; the dialer only knows its id and relay.
    auto server_ep = bind_or_fail(ex, relayed_config("server", relay.url(), true));
    auto client_ep = bind_or_fail(ex, relayed_config("client", relay.url(), true));
    auto listener = co_await listen_relayed(server_ep);
    auto addr = NodeAddr::create(server_ep.node_id(), relay.url(), {});
    CO_ASSERT(addr);
    auto client = co_await client_ep.connect(*addr, "test/1");
    CO_ASSERT(client) << client.error().message();
    CO_ASSERT(co_await client->send(as_bytes("hello")));
    auto server = co_await listener.accept();
    CO_ASSERT(server);
    auto got = co_await server->recv();
    CO_ASSERT(got);
    EXPECT_EQ(to_string(*got), "hello");
    // The ticket had no direct address: the server's CallMeMaybe over the relay names its
    // addresses, and the connection moves to a direct path without noticing.
    PathInfo now = client->path();
    while (now.kind != PathKind::direct) {
      auto next = co_await client->path_changed(now);
      CO_ASSERT(next) << next.error().message();
      now = *next;
    }
    EXPECT_EQ(now.remote_addr, server_ep.local_addrs().front());
    EXPECT_GE(client_ep.stats().direct_paths_validated, 1U);
    CO_ASSERT(co_await client->send(as_bytes("again")));
    got = co_await server->recv();
    CO_ASSERT(got);
    EXPECT_EQ(to_string(*got), "again");
    co_await close_all(client_ep, server_ep, relay);
  });
}

TEST(RelayPath, ADialerWithoutRelaysOfItsOwnUsesTheTicketsRelay) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto relay = start_relay(ex);
    auto server_ep = bind_or_fail(ex, relayed_config("server", relay.url()));
    auto client_ep = bind_or_fail(ex, loopback_config("client"));  // no relay configured
    EXPECT_FALSE(client_ep.home_relay().has_value());
    auto listener = co_await listen_relayed(server_ep);
    auto client = co_await client_ep.connect(server_ep.addr(), "test/1");
    CO_ASSERT(client) << client.error().message();
    EXPECT_EQ(client->path().kind, PathKind::relay);
    auto server = co_await listener.accept();
    CO_ASSERT(server);
    CO_ASSERT(co_await client->send(as_bytes("hi")));
    auto got = co_await server->recv();
    CO_ASSERT(got);
    EXPECT_EQ(to_string(*got), "hi");
    co_await close_all(client_ep, server_ep, relay);
  });
}

TEST(RelayPath, AWorkingDirectPathIsPreferred) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto relay = start_relay(ex);
    auto server_cfg = relayed_config("server", relay.url(), true);
    auto client_cfg = relayed_config("client", relay.url(), true);
    // Long enough that a direct handshake on loopback always completes first.
    client_cfg.relay_head_start = 5s;
    auto server_ep = bind_or_fail(ex, std::move(server_cfg));
    auto client_ep = bind_or_fail(ex, std::move(client_cfg));
    auto listener = co_await listen_relayed(server_ep);
    const NodeAddr addr = server_ep.addr();
    EXPECT_TRUE(addr.relay_url().has_value());
    EXPECT_FALSE(addr.direct_addresses().empty());
    auto client = co_await client_ep.connect(addr, "test/1");
    CO_ASSERT(client) << client.error().message();
    EXPECT_EQ(client->path().kind, PathKind::direct);
    EXPECT_EQ(client->path().remote_addr, server_ep.local_addrs().front());
    co_await close_all(client_ep, server_ep, relay);
  });
}

TEST(RelayPath, ADeadDirectAddressFallsBackToTheRelay) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto relay = start_relay(ex);
    // A bound socket that never answers stands for a peer behind a firewall.
    boost::asio::ip::udp::socket silent(ex, {boost::asio::ip::make_address("127.0.0.1"), 0});
    auto server_ep = bind_or_fail(ex, relayed_config("server", relay.url()));
    auto client_cfg = relayed_config("client", relay.url(), true);
    client_cfg.relay_head_start = 100ms;
    auto client_ep = bind_or_fail(ex, std::move(client_cfg));
    auto listener = co_await listen_relayed(server_ep);
    const std::vector<SocketAddr> dead{SocketAddr::v4_loopback(silent.local_endpoint().port())};
    auto addr = NodeAddr::create(server_ep.node_id(), relay.url(), dead);
    CO_ASSERT(addr);
    auto client = co_await client_ep.connect(*addr, "test/1");
    CO_ASSERT(client) << client.error().message();
    EXPECT_EQ(client->path().kind, PathKind::relay);
    CO_ASSERT(co_await client->send(as_bytes("through the relay")));
    auto server = co_await listener.accept();
    CO_ASSERT(server);
    auto got = co_await server->recv();
    CO_ASSERT(got);
    EXPECT_EQ(to_string(*got), "through the relay");
    co_await close_all(client_ep, server_ep, relay);
  });
}

// The relay sees only end-to-end encrypted QUIC packets: one that flips bytes makes packets fail
// authentication, which QUIC treats as loss. Every byte still arrives intact.
TEST(RelayPath, ARelayThatFlipsBytesOnlyCausesDrops) {
  std::uint64_t seen = 0;
  std::uint64_t flipped = 0;
  magicsock::relay_receive_fault() = [&](std::span<std::byte> d) {
    if (++seen % 7 == 0 && !d.empty()) {
      d[d.size() / 2] ^= std::byte{0x40};
      ++flipped;
    }
  };
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto relay = start_relay(ex);
    auto server_ep = bind_or_fail(ex, relayed_config("server", relay.url()));
    auto client_ep = bind_or_fail(ex, relayed_config("client", relay.url()));
    auto listener = co_await listen_relayed(server_ep);
    auto client = co_await client_ep.connect(server_ep.addr(), "test/1");
    CO_ASSERT(client) << client.error().message();
    auto server = co_await listener.accept();
    CO_ASSERT(server);
    spawn_logged(ex, echo_streams(*server), "echo");
    const Bytes data = payload(1 << 20, 3);
    auto back = co_await echo_stream(*client, data);
    CO_ASSERT(back) << back.error().message();
    EXPECT_TRUE(*back == data);
    EXPECT_GT(client->transport_stats().packets_lost + server->transport_stats().packets_lost, 0U);
    co_await close_all(client_ep, server_ep, relay);
  });
  magicsock::relay_receive_fault() = nullptr;
  EXPECT_GT(flipped, 10U);
}

TEST(RelayPath, ATransferSurvivesARelayRestart) {
  run_test(
      [](asio::any_io_executor ex) -> asio::awaitable<void> {
        auto relay = start_relay(ex);
        const auto port = relay.local_addrs().front().port();
        auto server_ep = bind_or_fail(ex, relayed_config("server", relay.url()));
        auto client_ep = bind_or_fail(ex, relayed_config("client", relay.url()));
        auto listener = co_await listen_relayed(server_ep);
        auto client = co_await client_ep.connect(server_ep.addr(), "test/1");
        CO_ASSERT(client) << client.error().message();
        auto server = co_await listener.accept();
        CO_ASSERT(server);
        // The server echoes messages; the client sends some, the relay restarts, it sends more.
        spawn_logged(
            ex,
            [](Connection c) -> asio::awaitable<void> {
              for (;;) {
                auto m = co_await c.recv();
                if (!m) co_return;
                auto sent = co_await c.send(*m);
                if (!sent) co_return;
              }
            }(*server),
            "echo messages");
        for (int i = 0; i < 20; ++i) {
          const Bytes m = payload(20'000, static_cast<std::uint8_t>(i));
          CO_ASSERT(co_await client->send(m));
          auto back = co_await client->recv();
          CO_ASSERT(back) << back.error().message();
          EXPECT_TRUE(*back == m);
        }
        co_await relay.shutdown(true);
        auto again = start_relay(ex, port);
        for (int i = 20; i < 40; ++i) {
          const Bytes m = payload(20'000, static_cast<std::uint8_t>(i));
          CO_ASSERT(co_await client->send(m));
          auto back = co_await client->recv();
          CO_ASSERT(back) << back.error().message();
          EXPECT_TRUE(*back == m) << "message " << i;
        }
        EXPECT_TRUE(client->is_connected());
        co_await client_ep.close();
        co_await server_ep.close();
        co_await again.shutdown(false);
      },
      std::chrono::seconds(90));
}

// Closing an endpoint sends its connections' CONNECTION_CLOSE through the relay before the relay
// session ends: the peer learns at once, not after its idle timeout.
TEST(RelayPath, ClosingAnEndpointReachesThePeerThroughTheRelay) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto relay = start_relay(ex);
    auto server_cfg = relayed_config("server", relay.url());
    server_cfg.idle_timeout = 120s;  // longer than the test's bound: only the close can end it
    auto server_ep = bind_or_fail(ex, std::move(server_cfg));
    auto client_ep = bind_or_fail(ex, relayed_config("client", relay.url()));
    auto listener = co_await listen_relayed(server_ep);
    auto client = co_await client_ep.connect(server_ep.addr(), "test/1");
    CO_ASSERT(client) << client.error().message();
    CO_ASSERT(co_await client->send(as_bytes("bye soon")));
    auto server = co_await listener.accept();
    CO_ASSERT(server);
    auto first = co_await server->recv();
    CO_ASSERT(first);
    co_await client_ep.close();
    auto after = co_await server->recv();
    CO_ASSERT(!after);
    EXPECT_EQ(after.error().code(), P2PErrc::connection_closed) << after.error().message();
    co_await server_ep.close();
    co_await relay.shutdown(false);
  });
}

TEST(RelayPath, ANodeTheRelayDoesNotKnowFailsAtOnce) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto relay = start_relay(ex);
    auto cfg = relayed_config("client", relay.url());
    cfg.connect_timeout = 60s;  // the test's own bound (60 s) fails first if peer-gone is ignored
    auto client_ep = bind_or_fail(ex, std::move(cfg));
    CO_ASSERT(co_await client_ep.wait_home_relay(10s));
    auto addr = NodeAddr::create(test_node_id("nobody"), relay.url(), {});
    CO_ASSERT(addr);
    auto r = co_await client_ep.connect(*addr, "test/1");
    CO_ASSERT(!r);
    EXPECT_EQ(r.error().code(), P2PErrc::node_not_found) << r.error().message();
    EXPECT_NE(r.error().message().find("not connected to relay"), std::string::npos) << r.error().message();
    co_await client_ep.close();
    co_await relay.shutdown(false);
  });
}

TEST(RelayPath, DirectPathsOffWithoutARelayIsAConfigurationError) {
  asio::io_context io(1);
  auto cfg = loopback_config("client");
  cfg.direct_paths = false;
  auto ep = Endpoint::bind(io.get_executor(), std::move(cfg));
  ASSERT_FALSE(ep);
  EXPECT_EQ(ep.error().code(), P2PErrc::invalid_configuration);
}

TEST(RelayPath, AMalformedRelayUrlIsAConfigurationError) {
  asio::io_context io(1);
  for (const char* url : {"", "relay.example", "ftp://192.0.2.1", "http://", "http://a b"}) {
    auto cfg = loopback_config("client");
    cfg.relay_urls = {url};
    auto ep = Endpoint::bind(io.get_executor(), std::move(cfg));
    ASSERT_FALSE(ep) << url;
    EXPECT_EQ(ep.error().code(), P2PErrc::invalid_configuration) << url;
  }
}

}  // namespace
}  // namespace moosicbox::p2p
