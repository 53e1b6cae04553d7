// SPDX-License-Identifier: MIT OR Apache-2.0
// endpoint_test.cpp: the real QUIC backend over loopback UDP: connecting by node id, messages,
// streams, datagrams, close semantics, identity and ALPN failures, limits and hostile input.
#include "moosicbox/p2p/endpoint/endpoint.hpp"
#include "moosicbox/p2p/endpoint/quic_p2p.hpp"

#include <gtest/gtest.h>

#include <boost/asio/ip/udp.hpp>
#include <thread>

#include "endpoint/endpoint_fixture.hpp"
#include "moosicbox/p2p/core/spawn.hpp"
#include "quic/connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

namespace moosicbox::p2p {
namespace {

using namespace std::chrono_literals;
using testing::bind_or_fail;
using testing::connect_pair;
using testing::loopback_config;
using testing::payload;
using testing::run_test;
using testing::with_timeout;

TEST(Endpoint, ConnectsByNodeIdAndExchangesMessages) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto p = co_await connect_pair(ex, loopback_config("server"), loopback_config("client"));
    EXPECT_EQ(p.client.remote_node_id(), test_node_id("server"));
    EXPECT_EQ(p.server.remote_node_id(), test_node_id("client"));
    EXPECT_EQ(p.client.alpn(), "test/1");
    EXPECT_TRUE(p.client.is_connected());
    EXPECT_TRUE(p.server.is_connected());
    for (const std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{1000}, std::size_t{1} << 20}) {
      const Bytes msg = payload(size, static_cast<std::uint8_t>(size));
      auto sent = co_await p.client.send(msg);
      EXPECT_TRUE(sent) << sent.error().message();
      auto got = co_await p.server.recv();
      CO_ASSERT(got) << got.error().message();
      EXPECT_TRUE(*got == msg) << "size " << size;
    }
    CO_ASSERT(co_await p.server.send(as_bytes("pong")));
    auto pong = co_await p.client.recv();
    CO_ASSERT(pong);
    EXPECT_EQ(to_string(*pong), "pong");
    const auto stats = p.client.stats();
    EXPECT_EQ(stats.messages_sent, 4U);
    EXPECT_EQ(stats.messages_received, 1U);
    EXPECT_EQ(stats.bytes_sent, 1001U + (1U << 20));
    CO_ASSERT(stats.rtt.has_value());
    EXPECT_GT(stats.rtt->count(), 0);
    EXPECT_LT(*stats.rtt, 100ms);
    co_return;
  });
}

// Without busy polling the receive loop sleeps after every short batch: request/response and
// streams still make progress (every wait is re-armed, so nothing that arrived meanwhile is missed).
TEST(Endpoint, WorksWithBusyPollingOff) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto server_cfg = loopback_config("server");
    auto client_cfg = loopback_config("client");
    for (auto* cfg : {&server_cfg, &client_cfg}) {
      cfg->busy_poll = Duration::zero();
      cfg->busy_poll_handshake = Duration::zero();
    }
    auto p = co_await connect_pair(ex, std::move(server_cfg), std::move(client_cfg));
    for (int i = 0; i < 200; ++i) {
      CO_ASSERT(co_await p.client.send(payload(64, static_cast<std::uint8_t>(i))));
      auto got = co_await p.server.recv();
      CO_ASSERT(got) << got.error().message();
      CO_ASSERT(co_await p.server.send(*got));
      auto back = co_await p.client.recv();
      CO_ASSERT(back) << back.error().message();
      EXPECT_TRUE(*back == payload(64, static_cast<std::uint8_t>(i))) << "round trip " << i;
    }
    co_return;
  });
}

TEST(Endpoint, OversizedMessagesAreRefusedOnBothEnds) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto server_cfg = loopback_config("server");
    server_cfg.limits.max_message_size = 1000;
    auto client_cfg = loopback_config("client");
    client_cfg.limits.max_message_size = 5000;
    auto p = co_await connect_pair(ex, std::move(server_cfg), std::move(client_cfg));
    // The sender refuses what exceeds its own limit, and the connection stays usable.
    auto too_big = co_await p.server.send(payload(1001));
    CO_ASSERT(!(too_big));
    EXPECT_EQ(too_big.error().code(), P2PErrc::message_too_large);
    EXPECT_EQ(too_big.error().message(), "Message too large: 1001 bytes exceeds max 1000");
    CO_ASSERT(co_await p.server.send(payload(1000)));
    CO_ASSERT(co_await p.client.recv());
    // A sender with a larger limit is stopped by the receiver: a protocol error that closes.
    CO_ASSERT(co_await p.client.send(payload(3000)));
    auto r = co_await p.server.recv();
    CO_ASSERT(!(r));
    EXPECT_EQ(r.error().code(), P2PErrc::protocol_error);
    EXPECT_NE(r.error().message().find("3000 bytes exceeds max 1000"), std::string::npos) << r.error().message();
    auto after = co_await p.client.recv();
    CO_ASSERT(!(after));
    EXPECT_EQ(after.error().code(), P2PErrc::connection_closed);
    EXPECT_NE(after.error().message().find("exceeds max 1000"), std::string::npos) << after.error().message();
    EXPECT_FALSE(p.client.is_connected());
  });
}

TEST(Endpoint, TenThousandMessagesArriveInOrder) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto p = co_await connect_pair(ex, loopback_config("server"), loopback_config("client"));
    constexpr int kCount = 10000;
    bool sent_all = false;
    spawn_logged(
        ex,
        [](Connection c, bool& done) -> asio::awaitable<void> {
          for (int i = 0; i < kCount; ++i) {
            auto r = co_await c.send(as_bytes(fmt::format("message {}", i)));
            if (!r) co_return;
          }
          done = true;
        }(p.client, sent_all),
        "sender");
    for (int i = 0; i < kCount; ++i) {
      auto m = co_await p.server.recv();
      CO_ASSERT(m) << m.error().message();
      CO_ASSERT((to_string(*m)) == (fmt::format("message {}", i)));
    }
    EXPECT_TRUE(sent_all);
  });
}

TEST(Endpoint, GracefulCloseDeliversEverythingSentBeforeIt) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto p = co_await connect_pair(ex, loopback_config("server"), loopback_config("client"));
    for (int i = 0; i < 200; ++i) CO_ASSERT(co_await p.client.send(payload(5000, static_cast<std::uint8_t>(i))));
    CO_ASSERT(co_await p.client.close("done here"));
    EXPECT_FALSE(p.client.is_connected());
    auto after_close = co_await p.client.send(as_bytes("late"));
    CO_ASSERT(!(after_close));
    EXPECT_EQ(after_close.error().code(), P2PErrc::connection_closed);
    for (int i = 0; i < 200; ++i) {
      auto m = co_await p.server.recv();
      CO_ASSERT(m) << i << ": " << m.error().message();
      EXPECT_TRUE(*m == payload(5000, static_cast<std::uint8_t>(i)));
    }
    auto end = co_await p.server.recv();
    CO_ASSERT(!(end));
    EXPECT_EQ(end.error().code(), P2PErrc::connection_closed);
    EXPECT_FALSE(p.server.is_connected());
    // close is idempotent.
    EXPECT_TRUE(co_await p.client.close());
  });
}

TEST(Endpoint, CloseReasonReachesThePeer) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto p = co_await connect_pair(ex, loopback_config("server"), loopback_config("client"));
    CO_ASSERT(co_await p.server.close("maintenance"));
    auto r = co_await p.client.recv();
    CO_ASSERT(!(r));
    EXPECT_EQ(r.error().code(), P2PErrc::connection_closed);
    auto err = p.client.close_error();
    CO_ASSERT(err.has_value());
    EXPECT_NE(err->message().find("maintenance"), std::string::npos) << err->message();
  });
}

TEST(Endpoint, DroppingTheLastHandleClosesTheConnection) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto p = co_await connect_pair(ex, loopback_config("server"), loopback_config("client"));
    {
      Connection copy = p.client;
      EXPECT_TRUE(copy.is_connected());
    }
    EXPECT_TRUE(p.client.is_connected());  // another copy still lives
    CO_ASSERT(co_await p.client.send(as_bytes("bye")));
    p.client = p.server;  // drops the last client handle
    auto m = co_await p.server.recv();
    CO_ASSERT(m);
    EXPECT_EQ(to_string(*m), "bye");
    auto end = co_await with_timeout(ex, p.server.recv(), 5s);
    CO_ASSERT(end.has_value()) << "the peer's close never arrived";
    EXPECT_FALSE(*end);
  });
}

TEST(Endpoint, WrongNodeIdFailsAuthentication) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto server = bind_or_fail(ex, loopback_config("server", {"test/1"}));
    auto client = bind_or_fail(ex, loopback_config("client"));
    auto listener = server.listen("test/1");
    CO_ASSERT(listener);
    auto wrong = NodeAddr::create(test_node_id("impostor"), std::nullopt, server.local_addrs());
    CO_ASSERT(wrong);
    auto r = co_await client.connect(*wrong, "test/1");
    CO_ASSERT(!(r));
    EXPECT_EQ(r.error().code(), P2PErrc::authentication_failed) << r.error().message();
    EXPECT_NE(r.error().message().find(test_node_id("impostor").to_string()), std::string::npos);
    // The server is unaffected and still takes an honest client.
    auto ok = co_await client.connect(server.addr(), "test/1");
    CO_ASSERT(ok) << ok.error().message();
    auto accepted = co_await listener->accept();
    CO_ASSERT(accepted);
    EXPECT_EQ(accepted->remote_node_id(), test_node_id("client"));
  });
}

TEST(Endpoint, WrongAlpnFailsClearly) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto server = bind_or_fail(ex, loopback_config("server"));
    auto client = bind_or_fail(ex, loopback_config("client"));
    auto listener = server.listen("files/1");
    CO_ASSERT(listener);
    auto r = co_await client.connect(server.addr(), "chat/1");
    CO_ASSERT(!(r));
    EXPECT_EQ(r.error().code(), P2PErrc::connection_failed) << r.error().message();
    EXPECT_NE(r.error().message().find("ALPN"), std::string::npos) << r.error().message();
    auto nothing = co_await with_timeout(ex, listener->accept(), 300ms);
    EXPECT_FALSE(nothing.has_value());
    // Listening twice for one protocol is refused; a bad ALPN is refused.
    EXPECT_EQ(server.listen("files/1").error().code(), P2PErrc::connection_failed);
    EXPECT_EQ(server.listen("").error().code(), P2PErrc::invalid_configuration);
  });
}

TEST(Endpoint, ConnectWithoutReachableAddressFailsAtOnce) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto client = bind_or_fail(ex, loopback_config("client"));
    auto r = co_await client.connect(NodeAddr(test_node_id("nobody")), "test/1");
    CO_ASSERT(!(r));
    EXPECT_EQ(r.error().code(), P2PErrc::node_not_found);
  });
}

TEST(Endpoint, ConnectTimesOutWhenNobodyAnswers) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    // A bound socket that never answers.
    boost::asio::ip::udp::socket silent(ex, {boost::asio::ip::make_address("127.0.0.1"), 0});
    const auto port = silent.local_endpoint().port();
    auto cfg = loopback_config("client");
    cfg.connect_timeout = 1s;
    auto client = bind_or_fail(ex, std::move(cfg));
    const std::vector<SocketAddr> addrs{SocketAddr::v4_loopback(port)};
    auto addr = NodeAddr::create(test_node_id("nobody"), std::nullopt, addrs);
    CO_ASSERT(addr);
    auto r = co_await client.connect(*addr, "test/1");
    CO_ASSERT(!(r));
    EXPECT_EQ(r.error().code(), P2PErrc::timeout) << r.error().message();
  });
}

TEST(Endpoint, BidiStreamsEchoMegabytes) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto p = co_await connect_pair(ex, loopback_config("server"), loopback_config("client"));
    spawn_logged(
        ex,
        [](Connection c) -> asio::awaitable<void> {
          for (int i = 0; i < 3; ++i) {
            auto s = co_await c.accept_bi();
            if (!s) co_return;
            auto body = co_await s->read_to_end(8 << 20);
            if (!body) co_return;
            (void)co_await s->write(*body);
            (void)co_await s->finish();
          }
        }(p.server),
        "echo");
    for (int i = 0; i < 3; ++i) {
      auto s = co_await p.client.open_bi();
      CO_ASSERT(s) << s.error().message();
      const Bytes data = payload((2 << 20) + static_cast<std::size_t>(i), static_cast<std::uint8_t>(i));
      CO_ASSERT(co_await s->write(data));
      CO_ASSERT(co_await s->finish());
      auto back = co_await s->read_to_end(8 << 20);
      CO_ASSERT(back) << back.error().message();
      EXPECT_TRUE(*back == data);
    }
    // Messages still work alongside streams.
    CO_ASSERT(co_await p.client.send(as_bytes("still here")));
    auto m = co_await p.server.recv();
    CO_ASSERT(m);
    EXPECT_EQ(to_string(*m), "still here");
  });
}

TEST(Endpoint, UniStreamsAndResets) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto p = co_await connect_pair(ex, loopback_config("server"), loopback_config("client"));
    auto out = co_await p.client.open_uni();
    CO_ASSERT(out);
    CO_ASSERT(co_await out->write(as_bytes("one-way")));
    CO_ASSERT(co_await out->finish());
    auto in = co_await p.server.accept_uni();
    CO_ASSERT(in);
    auto body = co_await in->read_to_end(1024);
    CO_ASSERT(body);
    EXPECT_EQ(to_string(*body), "one-way");
    // A reset reaches the reader with its code, even when it overtakes every byte of the stream.
    auto out2 = co_await p.client.open_uni();
    CO_ASSERT(out2);
    CO_ASSERT(co_await out2->write(as_bytes("partial")));
    out2->reset(99);
    auto in2 = co_await p.server.accept_uni();
    CO_ASSERT(in2);
    auto r = co_await in2->read_to_end(1024);
    CO_ASSERT(!r);
    EXPECT_EQ(r.error().code(), P2PErrc::stream_reset);
    EXPECT_NE(r.error().message().find("99"), std::string::npos);
    // Dropping an unfinished send stream resets it too.
    std::optional<RecvStream> in3;
    {
      auto out3 = co_await p.client.open_uni();
      CO_ASSERT(out3);
      CO_ASSERT(co_await out3->write(as_bytes("abandoned")));
      auto accepted = co_await p.server.accept_uni();
      CO_ASSERT(accepted);
      in3.emplace(std::move(*accepted));
    }
    auto r3 = co_await in3->read_to_end(1024);
    CO_ASSERT(!r3);
    EXPECT_EQ(r3.error().code(), P2PErrc::stream_reset);
    // A reader that stops makes the writer fail.
    auto out4 = co_await p.client.open_uni();
    CO_ASSERT(out4);
    CO_ASSERT(co_await out4->write(as_bytes("first")));
    auto in4 = co_await p.server.accept_uni();
    CO_ASSERT(in4);
    in4->stop(7);
    P2PResult<void> w;
    for (int i = 0; i < 1000 && w; ++i) w = co_await out4->write(payload(100000));
    CO_ASSERT(!w);
    EXPECT_EQ(w.error().code(), P2PErrc::stream_reset);
    EXPECT_NE(w.error().message().find("7"), std::string::npos) << w.error().message();
  });
}

TEST(Endpoint, DatagramsArrive) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto p = co_await connect_pair(ex, loopback_config("server"), loopback_config("client"));
    EXPECT_GE(p.client.max_datagram_size(), 1000U);
    CO_ASSERT(p.client.send_datagram(as_bytes("tick")));
    auto d = co_await with_timeout(ex, p.server.recv_datagram(), 5s);
    CO_ASSERT(d.has_value());
    CO_ASSERT(*d);
    EXPECT_EQ(to_string(**d), "tick");
    auto big = p.client.send_datagram(Bytes(p.client.max_datagram_size() + 1));
    CO_ASSERT(!(big));
    EXPECT_EQ(big.error().code(), P2PErrc::message_too_large);
  });
}

TEST(Endpoint, ManyClientsConnectConcurrently) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto server = bind_or_fail(ex, loopback_config("server"));
    auto listener = server.listen("test/1");
    CO_ASSERT(listener);
    constexpr int kClients = 20;
    std::vector<Endpoint> clients;
    int done = 0;
    for (int i = 0; i < kClients; ++i) {
      clients.push_back(bind_or_fail(ex, loopback_config(fmt::format("client{}", i))));
      spawn_logged(
          ex,
          [](Endpoint ep, NodeAddr to, int& count) -> asio::awaitable<void> {
            auto c = co_await ep.connect(to, "test/1");
            if (!c) co_return;
            if (auto awaited = co_await c->send(as_bytes("hi")); !awaited) co_return;
            auto echo = co_await c->recv();
            if (echo && to_string(*echo) == "hi") ++count;
          }(clients.back(), server.addr(), done),
          "client");
    }
    std::vector<Connection> accepted;
    for (int i = 0; i < kClients; ++i) {
      auto c = co_await listener->accept();
      CO_ASSERT(c) << c.error().message();
      auto m = co_await c->recv();
      CO_ASSERT(m);
      CO_ASSERT(co_await c->send(*m));
      accepted.push_back(*c);
    }
    env::AsioEnv env(ex);
    auto t = env.make_timer();
    for (int i = 0; i < 100 && done < kClients; ++i) (void)co_await t.wait_until(env.now() + 10ms);
    EXPECT_EQ(done, kClients);
    EXPECT_EQ(server.stats().connections_accepted, static_cast<std::uint64_t>(kClients));
  });
}

TEST(Endpoint, Ipv6LoopbackWorks) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto server_cfg = loopback_config("server");
    server_cfg.bind_addrs = {SocketAddr::v6_loopback(0)};
    auto server = Endpoint::bind(ex, std::move(server_cfg));
    if (!server) {
      CO_SKIP("no IPv6 loopback: " + server.error().message());
    }
    auto client_cfg = loopback_config("client");
    client_cfg.bind_addrs = {SocketAddr::v6_loopback(0)};
    auto client = bind_or_fail(ex, std::move(client_cfg));
    auto listener = server->listen("test/1");
    CO_ASSERT(listener);
    auto c = co_await client.connect(server->addr(), "test/1");
    CO_ASSERT(c) << c.error().message();
    EXPECT_TRUE(c->remote_addr().is_v6());
    CO_ASSERT(co_await c->send(as_bytes("v6")));
    auto s = co_await listener->accept();
    CO_ASSERT(s);
    auto m = co_await s->recv();
    CO_ASSERT(m);
    EXPECT_EQ(to_string(*m), "v6");
  });
}

TEST(Endpoint, DualStackWildcardServerAnswersIpv4LoopbackClients) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto server_cfg = loopback_config("server");
    server_cfg.bind_addrs = {SocketAddr::v6_any(0)};  // every address, IPv6 and IPv4
    auto server = Endpoint::bind(ex, std::move(server_cfg));
    if (!server) CO_SKIP("no dual-stack socket: " + server.error().message());
    auto client = bind_or_fail(ex, loopback_config("client"));
    auto listener = server->listen("test/1");
    CO_ASSERT(listener);
    // Dial only the loopback address; the server must answer from it.
    const std::vector<SocketAddr> to{SocketAddr::v4_loopback(server->local_addrs().front().port())};
    auto addr = NodeAddr::create(server->node_id(), std::nullopt, to);
    CO_ASSERT(addr);
    auto c = co_await client.connect(*addr, "test/1");
    CO_ASSERT(c) << c.error().message();
    CO_ASSERT(co_await c->send(as_bytes("via ipv4")));
    auto s = co_await listener->accept();
    CO_ASSERT(s);
    auto m = co_await s->recv();
    CO_ASSERT(m);
    EXPECT_EQ(to_string(*m), "via ipv4");
    EXPECT_TRUE(s->remote_addr().is_v4());
    // The wildcard server's NodeAddr lists concrete interface addresses, never the wildcard.
    const auto na = server->addr();
    EXPECT_FALSE(na.direct_addresses().empty());
    for (const auto& a : na.direct_addresses()) EXPECT_FALSE(a.is_unspecified());
  });
}

TEST(Endpoint, ConfiguredProtocolsQueueConnectionsUntilListened) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto server = bind_or_fail(ex, loopback_config("server", {"early/1"}));
    auto client = bind_or_fail(ex, loopback_config("client"));
    // The protocol is served from bind() on: the connection is accepted before anyone listens.
    auto c = co_await client.connect(server.addr(), "early/1");
    CO_ASSERT(c) << c.error().message();
    CO_ASSERT(co_await c->send(as_bytes("queued")));
    auto listener = server.listen("early/1");
    CO_ASSERT(listener) << listener.error().message();
    auto s = co_await listener->accept();
    CO_ASSERT(s);
    auto m = co_await s->recv();
    CO_ASSERT(m);
    EXPECT_EQ(to_string(*m), "queued");
    // The listener is handed out once.
    auto again = server.listen("early/1");
    CO_ASSERT(!again);
    EXPECT_EQ(again.error().code(), P2PErrc::connection_failed);
  });
}

TEST(Endpoint, BindRejectsBadConfiguration) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto no_addr = loopback_config("x");
    no_addr.bind_addrs.clear();
    EXPECT_EQ(Endpoint::bind(ex, no_addr).error().code(), P2PErrc::invalid_configuration);
    auto bad_alpn = loopback_config("x", {std::string(300, 'a')});
    EXPECT_EQ(Endpoint::bind(ex, bad_alpn).error().code(), P2PErrc::invalid_configuration);
    auto zero_limit = loopback_config("x");
    zero_limit.limits.connections = 0;
    EXPECT_EQ(Endpoint::bind(ex, zero_limit).error().code(), P2PErrc::invalid_configuration);
    auto negative_poll = loopback_config("x");
    negative_poll.busy_poll = -std::chrono::microseconds(1);
    EXPECT_EQ(Endpoint::bind(ex, negative_poll).error().code(), P2PErrc::invalid_configuration);
    negative_poll.busy_poll = {};
    negative_poll.busy_poll_handshake = -std::chrono::microseconds(1);
    EXPECT_EQ(Endpoint::bind(ex, negative_poll).error().code(), P2PErrc::invalid_configuration);
    // A port already bound cannot be bound again.
    auto first = bind_or_fail(ex, loopback_config("x"));
    auto taken = loopback_config("y");
    taken.bind_addrs = {first.local_addrs().front()};
    auto second = Endpoint::bind(ex, taken);
    CO_ASSERT(!second);
    EXPECT_EQ(second.error().code(), P2PErrc::network_error) << second.error().message();
    co_return;
  });
}

TEST(Endpoint, RetryValidatesAddressesWhenRequired) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto server_cfg = loopback_config("server");
    server_cfg.require_retry = true;
    auto p = co_await connect_pair(ex, std::move(server_cfg), loopback_config("client"));
    EXPECT_EQ(p.server_ep.stats().retries_sent, 1U);
    CO_ASSERT(co_await p.client.send(as_bytes("validated")));
    auto m = co_await p.server.recv();
    CO_ASSERT(m);
  });
}

TEST(Endpoint, EndpointCloseClosesConnections) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto client_cfg = loopback_config("client");
    client_cfg.connect_timeout = 1s;  // nothing answers once the server endpoint is gone
    auto p = co_await connect_pair(ex, loopback_config("server"), std::move(client_cfg));
    co_await p.server_ep.close();
    EXPECT_TRUE(p.server_ep.is_closed());
    EXPECT_FALSE(p.server.is_connected());
    auto r = co_await with_timeout(ex, p.client.recv(), 5s);
    CO_ASSERT(r.has_value());
    CO_ASSERT(!(*r));
    EXPECT_EQ(r->error().code(), P2PErrc::connection_closed);
    auto again = co_await p.client_ep.connect(p.server_ep.addr(), "test/1");
    EXPECT_FALSE(again);
  });
}

// --- hostile input ---

TEST(EndpointHostile, GarbageTruncatedAndUnknownDatagramsAreIgnored) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto p = co_await connect_pair(ex, loopback_config("server"), loopback_config("client"));
    boost::asio::ip::udp::socket raw(ex, {boost::asio::ip::make_address("127.0.0.1"), 0});
    const auto target = p.server_ep.local_addrs().front();
    const boost::asio::ip::udp::endpoint to(boost::asio::ip::make_address("127.0.0.1"), target.port());
    env::AsioEnv env(ex);
    auto pause = env.make_timer();
    for (std::size_t i = 0; i < 3000; ++i) {
      Bytes junk = payload(1 + (i * 37) % 1400, static_cast<std::uint8_t>(i));
      if (i % 3 == 0) junk[0] = std::byte{0x40};  // short header: an unknown connection id
      if (i % 3 == 1) junk[0] = std::byte{0xc0};  // long header garbage
      raw.send_to(boost::asio::buffer(junk.data(), junk.size()), to);
      // Pause now and then, so the kernel's receive buffer does not drop the flood before the
      // endpoint sees it.
      if (i % 50 == 49) (void)co_await pause.wait_until(env.now() + 2ms);
    }
    // Empty datagrams too.
    for (int i = 0; i < 10; ++i) raw.send_to(boost::asio::buffer(static_cast<const void*>(nullptr), 0), to);
    // The connection still works.
    CO_ASSERT(co_await p.client.send(as_bytes("after the storm")));
    auto m = co_await p.server.recv();
    CO_ASSERT(m) << m.error().message();
    EXPECT_EQ(to_string(*m), "after the storm");
    const auto stats = p.server_ep.stats();
    EXPECT_GT(stats.datagrams_unroutable, 1000U);
    EXPECT_GT(stats.stateless_resets_sent, 0U);
    EXPECT_LE(stats.stateless_resets_sent, 1000U);  // rate-limited
    EXPECT_EQ(stats.connections_live, 1U);
  });
}

TEST(EndpointHostile, PeerThatNeverReadsKeepsMemoryBounded) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto server_cfg = loopback_config("server");
    server_cfg.limits.buffered_bytes_per_connection = 256 * 1024;
    auto client_cfg = loopback_config("client");
    client_cfg.limits.send_buffer_per_stream = 128 * 1024;
    auto p = co_await connect_pair(ex, std::move(server_cfg), std::move(client_cfg));
    // The server never calls recv(); the client sends until send() blocks.
    const Bytes msg = payload(10000);
    std::size_t sent = 0;
    for (;;) {
      auto r = co_await with_timeout(ex, p.client.send(msg), 500ms);
      if (!r) break;  // blocked: flow control holds the sender
      CO_ASSERT(*r);
      ++sent;
      CO_ASSERT((sent) < (1000U)) << "the sender was never held back";
    }
    // What the server holds is bounded by its window, what the client holds by its send buffer.
    EXPECT_LE(sent * msg.size(), 256U * 1024U + 128U * 1024U + 2 * msg.size());
    EXPECT_TRUE(p.client.is_connected());
    // Reading drains everything that was accepted, intact.
    for (std::size_t i = 0; i < sent; ++i) {
      auto m = co_await p.server.recv();
      CO_ASSERT(m);
      CO_ASSERT(*m == msg);
    }
  });
}

TEST(EndpointHostile, HandshakesBeyondTheLimitAreRefusedWithoutHurtingOthers) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto server_cfg = loopback_config("server");
    server_cfg.limits.concurrent_handshakes = 3;
    auto p = co_await connect_pair(ex, std::move(server_cfg), loopback_config("client"));
    // Half-open handshakes: client Initials from an engine nobody drives further.
    boost::asio::ip::udp::socket raw(ex, {boost::asio::ip::make_address("127.0.0.1"), 0});
    const auto port = p.server_ep.local_addrs().front().port();
    const boost::asio::ip::udp::endpoint to(boost::asio::ip::make_address("127.0.0.1"), port);
    auto identity = *quic::TlsIdentity::create(test_secret_key("half-open"));
    env::AsioEnv env(ex);
    for (int i = 0; i < 6; ++i) {
      quic::ClientConfig cc;
      cc.identity = identity;
      cc.server_id = test_node_id("server");
      cc.alpn = "test/1";
      cc.path = quic::Path{raw.local_endpoint(), to};
      cc.random = quic::make_random_fn(env);
      auto q = quic::Connection::connect(std::move(cc), env.now());
      CO_ASSERT(q);
      std::vector<std::byte> buf(1452);
      auto t = (*q)->poll_transmit(env.now(), buf);
      CO_ASSERT(t);
      raw.send_to(boost::asio::buffer(buf.data(), t->size), to);
    }
    auto timer = env.make_timer();
    (void)co_await timer.wait_until(env.now() + 300ms);
    const auto stats = p.server_ep.stats();
    EXPECT_EQ(stats.handshakes_refused, 3U);
    EXPECT_EQ(stats.handshakes_live, 3U);
    // The established connection is unaffected.
    CO_ASSERT(co_await p.client.send(as_bytes("unaffected")));
    auto m = co_await p.server.recv();
    CO_ASSERT(m);
    EXPECT_EQ(to_string(*m), "unaffected");
  });
}

// RawPeer is a QUIC client driven by hand over a plain UDP socket, to send what the library never
// sends: broken message framing.
class RawPeer {
 public:
  RawPeer(asio::any_io_executor ex, const Endpoint& server, std::string alpn)
      : env_(ex), sock_(ex, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    to_ = quic::Address(boost::asio::ip::make_address("127.0.0.1"), server.local_addrs().front().port());
    quic::ClientConfig cc;
    cc.identity = *quic::TlsIdentity::create(test_secret_key("raw"));
    cc.server_id = server.node_id();
    cc.alpn = std::move(alpn);
    cc.path = quic::Path{sock_.local_endpoint(), to_};
    cc.random = quic::make_random_fn(env_);
    conn_ = std::move(*quic::Connection::connect(std::move(cc), env_.now()));
  }
  quic::Connection& conn() { return *conn_; }

  // drive exchanges packets until `done()` or `limit` passes.
  asio::awaitable<bool> drive(std::function<bool()> done, Duration limit) {
    using namespace boost::asio::experimental::awaitable_operators;
    const TimePoint end = env_.now() + limit;
    std::vector<std::byte> buf(65536);
    auto timer = env_.make_timer();
    while (!done() && env_.now() < end) {
      while (auto t = conn_->poll_transmit(env_.now(), buf)) {
        sock_.send_to(boost::asio::buffer(buf.data(), t->size), to_);
      }
      const TimePoint wake = std::min(end, conn_->next_deadline());
      boost::asio::ip::udp::endpoint from;
      auto r = co_await (
          sock_.async_receive_from(boost::asio::buffer(buf), from, boost::asio::as_tuple(boost::asio::use_awaitable)) ||
          timer.wait_until(wake));
      if (r.index() == 0) {
        auto [ec, n] = std::get<0>(r);
        if (!ec) conn_->on_datagram(env_.now(), quic::Path{sock_.local_endpoint(), from}, ByteView(buf).first(n));
      } else if (conn_->next_deadline() <= env_.now()) {
        conn_->on_deadline(env_.now());
      }
    }
    co_return done();
  }

 private:
  env::AsioEnv env_;
  boost::asio::ip::udp::socket sock_;
  quic::Address to_;
  std::unique_ptr<quic::Connection> conn_;
};

TEST(EndpointHostile, BrokenMessageFramingIsAProtocolError) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto server = bind_or_fail(ex, loopback_config("server"));
    auto listener = server.listen("test/1");
    CO_ASSERT(listener);
    RawPeer peer(ex, server, "test/1");
    // Confirmed: the server completed too (a client is established one flight earlier).
    CO_ASSERT(co_await peer.drive([&] { return peer.conn().is_handshake_confirmed(); }, 5s));
    // The first unidirectional stream is the message stream: announce 10 bytes, send 3, end it.
    auto sid = peer.conn().open_uni();
    CO_ASSERT(sid && sid->has_value());
    const std::array<std::byte, 4> broken{std::byte{10}, std::byte{'a'}, std::byte{'b'}, std::byte{'c'}};
    CO_ASSERT(peer.conn().stream_write(**sid, broken, true));
    auto c = co_await listener->accept();
    CO_ASSERT(c);
    bool got = false;
    std::optional<P2PResult<Bytes>> r;
    spawn_logged(
        ex,
        [](Connection conn, std::optional<P2PResult<Bytes>>* out, bool* flag) -> asio::awaitable<void> {
          out->emplace(co_await conn.recv());
          *flag = true;
        }(*c, &r, &got),
        "recv");
    CO_ASSERT(co_await peer.drive([&] { return got; }, 5s));
    CO_ASSERT(!*r);
    EXPECT_EQ(r->error().code(), P2PErrc::protocol_error);
    EXPECT_NE(r->error().message().find("ended inside a message"), std::string::npos) << r->error().message();
    // The peer learns why.
    CO_ASSERT(co_await peer.drive([&] { return peer.conn().is_closed(); }, 5s));
    EXPECT_NE(peer.conn().close_info()->reason.find("inside a message"), std::string::npos);
  });
}

TEST(EndpointHostile, RefusedClientLearnsAtOnce) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto server_cfg = loopback_config("server");
    server_cfg.limits.connections = 1;
    auto p = co_await connect_pair(ex, std::move(server_cfg), loopback_config("client"));
    auto other = bind_or_fail(ex, loopback_config("other"));
    auto r = co_await other.connect(p.server_ep.addr(), "test/1");
    CO_ASSERT(!(r));
    EXPECT_EQ(r.error().code(), P2PErrc::connection_failed) << r.error().message();
    EXPECT_NE(r.error().message().find("refused"), std::string::npos) << r.error().message();
    EXPECT_TRUE(p.client.is_connected());
  });
}

TEST(EndpointHostile, VanishedPeerTimesOutWithAClearError) {
  // The server runs on its own io_context, which stops: it vanishes without a word.
  asio::io_context server_io(1);
  auto server_cfg = loopback_config("server");
  server_cfg.idle_timeout = 1s;
  server_cfg.keep_alive_interval = 0s;
  auto server = bind_or_fail(server_io.get_executor(), std::move(server_cfg));
  auto listener = server.listen("test/1");
  ASSERT_TRUE(listener);
  std::optional<Connection> accepted;
  asio::co_spawn(
      server_io,
      [&]() -> asio::awaitable<void> {
        auto c = co_await listener->accept();
        if (c) accepted = *c;
      },
      [](std::exception_ptr) {});
  std::thread server_thread([&] { server_io.run_for(std::chrono::seconds(2)); });
  run_test([&](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto cfg = loopback_config("client");
    cfg.idle_timeout = 1s;
    cfg.keep_alive_interval = 0s;
    auto client = bind_or_fail(ex, std::move(cfg));
    auto c = co_await client.connect(server.addr(), "test/1");
    CO_ASSERT(c) << c.error().message();
    server_io.stop();
    auto r = co_await with_timeout(ex, c->recv(), 10s);
    CO_ASSERT(r.has_value()) << "the idle timeout never fired";
    CO_ASSERT(!(*r));
    EXPECT_EQ(r->error().code(), P2PErrc::timeout) << r->error().message();
    EXPECT_NE(r->error().message().find("idle timeout"), std::string::npos) << r->error().message();
  });
  server_thread.join();
}

}  // namespace
}  // namespace moosicbox::p2p

namespace moosicbox::p2p {
namespace {

using namespace std::chrono_literals;
using testing::loopback_config;
using testing::run_test;

TEST(QuicP2P, DialsNodeIdsThroughItsAddressBook) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto a = QuicP2P::create(ex, loopback_config("alice"));
    auto b = QuicP2P::create(ex, loopback_config("bob"));
    CO_ASSERT(a && b);
    EXPECT_EQ(a->local_node_id(), test_node_id("alice"));
    auto listener = co_await b->listen("");
    CO_ASSERT(listener) << listener.error().message();
    auto unknown = co_await a->connect(b->local_node_id());
    CO_ASSERT(!unknown);
    EXPECT_EQ(unknown.error().code(), P2PErrc::node_not_found);
    EXPECT_TRUE(a->add_node_addr(b->addr()));
    auto c = co_await a->connect(b->local_node_id());
    CO_ASSERT(c) << c.error().message();
    EXPECT_EQ(c->alpn(), QuicP2P::kDefaultAlpn);
    auto s = co_await listener->accept();
    CO_ASSERT(s);
    EXPECT_EQ(s->remote_node_id(), a->local_node_id());
    CO_ASSERT(co_await c->send(as_bytes("hello bob")));
    auto m = co_await s->recv();
    CO_ASSERT(m);
    EXPECT_EQ(to_string(*m), "hello bob");
    EXPECT_FALSE(listener->local_addr().empty());
  });
}

TEST(QuicP2P, DiscoverSaysDiscoveryIsNotHereYet) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto a = QuicP2P::create(ex, loopback_config("alice"));
    CO_ASSERT(a);
    auto r = co_await a->discover("bob");
    CO_ASSERT(!r);
    EXPECT_EQ(r.error().code(), P2PErrc::discovery_failed);
    EXPECT_NE(r.error().message().find("discovery"), std::string::npos);
  });
}

TEST(QuicP2P, ListenChecksTheAddressAgainstTheBoundSockets) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto a = QuicP2P::create(ex, loopback_config("alice"));
    CO_ASSERT(a);
    auto bad = co_await a->listen("not an address");
    CO_ASSERT(!bad);
    EXPECT_EQ(bad.error().code(), P2PErrc::invalid_configuration);
    auto other = co_await a->listen("10.1.2.3:4433");
    CO_ASSERT(!other);
    EXPECT_EQ(other.error().code(), P2PErrc::invalid_configuration);
    auto ok = co_await a->listen("127.0.0.1:0");
    CO_ASSERT(ok) << ok.error().message();
    auto twice = co_await a->listen("");
    CO_ASSERT(!twice);
    EXPECT_EQ(twice.error().code(), P2PErrc::connection_failed);
  });
}

}  // namespace
}  // namespace moosicbox::p2p
