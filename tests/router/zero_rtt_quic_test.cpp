// SPDX-License-Identifier: MIT OR Apache-2.0
// zero_rtt_quic_test.cpp: session resumption and 0-RTT through the real endpoint and the router over
// loopback (127.0.0.1 only, every run bounded in time): early messages and streams, a server that
// restarted (early data refused, then resent), and the router serving GET at once but deferring a
// POST that came as early data until the handshake completed.
#include <gtest/gtest.h>

#include "endpoint/endpoint_fixture.hpp"
#include "moosicbox/p2p/router/client.hpp"
#include "moosicbox/p2p/router/router.hpp"
#include "moosicbox/p2p/router/server.hpp"

namespace moosicbox::p2p::testing {
namespace {

using router::Body;
using router::P2PClient;
using router::P2PRequest;
using router::P2PResponse;
using router::Server;
using router::StatusCode;

constexpr std::string_view kAlpn = "test/0rtt/1";

// warm_up connects once and exchanges a message, so the client holds a ticket from `server`.
asio::awaitable<void> warm_up(Endpoint& client, Endpoint& server, Listener& listener) {
  auto c = co_await client.connect(server.addr(), kAlpn);
  CO_ASSERT(c.has_value()) << c.error().message();
  auto s = co_await listener.accept();
  CO_ASSERT(s.has_value()) << s.error().message();
  CO_ASSERT((co_await c->send(as_bytes("ping"))).has_value());
  auto got = co_await s->recv();
  CO_ASSERT(got.has_value());
  CO_ASSERT((co_await s->send(as_bytes("pong"))).has_value());
  CO_ASSERT((co_await c->recv()).has_value());
  CO_ASSERT(c->zero_rtt() == ZeroRtt::none);
  (void)co_await c->close();
}

TEST(ZeroRtt, EarlyMessagesAndStreamsReachTheServerOnAResumedConnection) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto server = bind_or_fail(ex, loopback_config("server"));
    auto client = bind_or_fail(ex, loopback_config("client"));
    auto listener = server.listen(kAlpn);
    CO_ASSERT(listener.has_value());
    co_await warm_up(client, server, *listener);

    auto c = co_await client.connect_early(server.addr(), kAlpn);
    CO_ASSERT(c.has_value()) << c.error().message();
    EXPECT_TRUE(c->is_early());
    EXPECT_TRUE(c->is_connected());
    EXPECT_EQ(c->zero_rtt(), ZeroRtt::pending);
    auto bi = co_await c->open_bi();
    CO_ASSERT(bi.has_value()) << bi.error().message();
    const Bytes request = payload(3000, 1);
    CO_ASSERT((co_await bi->write(request)).has_value());
    CO_ASSERT((co_await bi->finish()).has_value());
    CO_ASSERT((co_await c->send(as_bytes("hello early"))).has_value());

    auto s = co_await listener->accept();
    CO_ASSERT(s.has_value()) << s.error().message();
    EXPECT_EQ(s->remote_node_id(), client.node_id());
    auto sb = co_await s->accept_bi_early();
    CO_ASSERT(sb.has_value()) << sb.error().message();
    EXPECT_TRUE(sb->is_early());
    auto body = co_await sb->read_to_end(1 << 20);
    CO_ASSERT(body.has_value());
    EXPECT_EQ(*body, request);
    CO_ASSERT((co_await sb->write(as_bytes("answer"))).has_value());
    CO_ASSERT((co_await sb->finish()).has_value());
    auto answer = co_await bi->read_to_end(1024);
    CO_ASSERT(answer.has_value());
    EXPECT_EQ(to_string(*answer), "answer");
    // Messages wait for the handshake on the server side; they arrive intact.
    auto msg = co_await s->recv();
    CO_ASSERT(msg.has_value()) << msg.error().message();
    EXPECT_EQ(to_string(*msg), "hello early");
    EXPECT_FALSE(s->is_early());
    CO_ASSERT((co_await c->handshake()).has_value());
    EXPECT_FALSE(c->is_early());
    // The server sends its ticket when its handshake completes, a flight after the client's: an
    // answer sent after that brings it along.
    CO_ASSERT((co_await s->send(as_bytes("after"))).has_value());
    auto after = co_await c->recv();
    CO_ASSERT(after.has_value());
    EXPECT_EQ(c->zero_rtt(), ZeroRtt::accepted);
    EXPECT_EQ(s->zero_rtt(), ZeroRtt::accepted);
    EXPECT_EQ(client.stats().resumed, 1U);
    EXPECT_EQ(client.stats().zero_rtt_accepted, 1U);
    EXPECT_EQ(server.stats().zero_rtt_accepted, 1U);
    EXPECT_EQ(server.stats().resumed, 1U);

    // The ticket was used once: the next connect_early resumes with the one this connection got.
    auto again = co_await client.connect_early(server.addr(), kAlpn);
    CO_ASSERT(again.has_value());
    EXPECT_TRUE(again->is_early());
    CO_ASSERT((co_await again->handshake()).has_value());
    (void)co_await listener->accept();
    co_await client.close();
    co_await server.close();
  });
}

TEST(ZeroRtt, AServerThatRestartedRefusesEarlyDataAndGetsItResent) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto client = bind_or_fail(ex, loopback_config("client"));
    {
      auto first = bind_or_fail(ex, loopback_config("server"));
      auto listener = first.listen(kAlpn);
      CO_ASSERT(listener.has_value());
      co_await warm_up(client, first, *listener);
      co_await first.close();
    }
    // Same node key, new process state: the old ticket cannot be opened.
    auto server = bind_or_fail(ex, loopback_config("server"));
    auto listener = server.listen(kAlpn);
    CO_ASSERT(listener.has_value());
    auto c = co_await client.connect_early(server.addr(), kAlpn);
    CO_ASSERT(c.has_value()) << c.error().message();
    EXPECT_TRUE(c->is_early());
    auto bi = co_await c->open_bi();
    CO_ASSERT(bi.has_value());
    const Bytes request = payload(50'000, 2);
    CO_ASSERT((co_await bi->write(request)).has_value());
    CO_ASSERT((co_await bi->finish()).has_value());
    CO_ASSERT((co_await c->send(as_bytes("resent"))).has_value());

    auto s = co_await listener->accept();
    CO_ASSERT(s.has_value());
    auto sb = co_await s->accept_bi();
    CO_ASSERT(sb.has_value());
    EXPECT_FALSE(sb->is_early());
    auto body = co_await sb->read_to_end(1 << 20);
    CO_ASSERT(body.has_value());
    EXPECT_EQ(*body, request);
    auto msg = co_await s->recv();
    CO_ASSERT(msg.has_value());
    EXPECT_EQ(to_string(*msg), "resent");
    CO_ASSERT((co_await c->handshake()).has_value());
    EXPECT_EQ(c->zero_rtt(), ZeroRtt::rejected);
    EXPECT_EQ(client.stats().zero_rtt_rejected, 1U);
    co_await client.close();
    co_await server.close();
  });
}

TEST(ZeroRtt, RouterServesEarlyGetAtOnceAndDefersEarlyPostUntilTheHandshake) {
  run_test([](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto server = bind_or_fail(ex, loopback_config("server"));
    auto client = bind_or_fail(ex, loopback_config("client"));
    auto listener = server.listen(router::kAlpn);
    CO_ASSERT(listener.has_value());
    P2PRouter routes;
    int posts = 0;
    CO_ASSERT(
        routes.get("/track", [](const P2PRequest&) { return P2PResponse::text(StatusCode::ok, "track"); }).has_value());
    CO_ASSERT(routes
                  .post("/play",
                        [&posts](P2PRequest req) -> asio::awaitable<P2PResponse> {
                          auto body = co_await req.body.read_text(1024);
                          ++posts;
                          co_return P2PResponse::text(StatusCode::ok, body ? *body : std::string("?"));
                        })
                  .has_value());
    Server<env::AsioEnv> http(env::AsioEnv(ex), std::move(routes));
    bool served = false;
    asio::co_spawn(
        ex,
        [&]() -> asio::awaitable<void> {
          (void)co_await http.serve(*listener);
          served = true;
        },
        asio::detached);

    {
      auto warm = co_await client.connect(server.addr(), router::kAlpn);
      CO_ASSERT(warm.has_value());
      P2PClient web(std::move(*warm));
      auto r = co_await web.get("/track");
      CO_ASSERT(r.has_value());
      (void)co_await r->body.read_text(1024);
    }
    auto c = co_await client.connect_early(server.addr(), router::kAlpn);
    CO_ASSERT(c.has_value());
    EXPECT_TRUE(c->is_early());
    P2PClient web(std::move(*c));
    // Both requests leave as early data, at once.
    using namespace boost::asio::experimental::awaitable_operators;
    auto [get, post] = co_await (web.get("/track") && web.post("/play", Body("song")));
    CO_ASSERT(get.has_value()) << get.error().message();
    EXPECT_EQ(get->status, StatusCode::ok);
    auto text = co_await get->body.read_text(1024);
    CO_ASSERT(text.has_value());
    EXPECT_EQ(*text, "track");
    CO_ASSERT(post.has_value()) << post.error().message();
    auto echoed = co_await post->body.read_text(1024);
    CO_ASSERT(echoed.has_value());
    EXPECT_EQ(*echoed, "song");
    // The GET ran in 0-RTT; the POST waited for the handshake, so a replay never runs it.
    EXPECT_EQ(http.stats().requests_deferred_0rtt, 1U);
    EXPECT_EQ(posts, 1);
    EXPECT_EQ(web.connection().zero_rtt(), ZeroRtt::accepted);
    http.shutdown();
    co_await client.close();
    co_await server.close();
    (void)served;
  });
}

}  // namespace
}  // namespace moosicbox::p2p::testing
