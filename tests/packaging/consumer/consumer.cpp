// SPDX-License-Identifier: MIT OR Apache-2.0
// consumer.cpp: a program built against the installed package (moosicbox_p2p::p2p or pkg-config
// moosicbox_p2p), using the real backend as an application would: two endpoints on loopback, a
// message each way, a stream echoed back, and a router request. Exits 0 when all of it works.
#include <moosicbox/p2p/core/spawn.hpp>
#include <moosicbox/p2p/endpoint/endpoint.hpp>
#include <moosicbox/p2p/env/asio_env.hpp>
#include <moosicbox/p2p/router/client.hpp>
#include <moosicbox/p2p/router/server.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <string>
#include <vector>

namespace p2p = moosicbox::p2p;
namespace router = p2p::router;
namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;  // NOLINT(google-build-using-namespace)

namespace {

constexpr std::string_view kEchoAlpn = "consumer-echo/1";

// echo answers the first message, then echoes one stream.
asio::awaitable<void> echo(p2p::Connection conn) {
  auto msg = co_await conn.recv();
  if (!msg) co_return;
  if (auto sent = co_await conn.send(p2p::as_bytes("pong: " + p2p::to_string(*msg))); !sent) co_return;
  auto stream = co_await conn.accept_bi();
  if (!stream) co_return;
  std::vector<std::byte> buf(16 * 1024);
  for (;;) {
    auto n = co_await stream->read(buf);
    if (!n || *n == 0) break;
    if (auto wrote = co_await stream->write(p2p::ByteView(buf).first(*n)); !wrote) co_return;
  }
  (void)co_await stream->finish();
}

bool check(bool ok, const char* what) {
  std::printf("[%s] %s\n", ok ? "ok" : "FAILED", what);
  return ok;
}

asio::awaitable<bool> run(asio::any_io_executor ex) {
  p2p::EndpointConfig server_cfg(p2p::test_secret_key("consumer-server"));
  server_cfg.bind_addrs = {p2p::SocketAddr::v4_loopback(0)};
  p2p::EndpointConfig client_cfg(p2p::test_secret_key("consumer-client"));
  client_cfg.bind_addrs = {p2p::SocketAddr::v4_loopback(0)};
  auto server = p2p::Endpoint::bind(ex, std::move(server_cfg));
  auto client = p2p::Endpoint::bind(ex, std::move(client_cfg));
  if (!check(server && client, "two endpoints bound on 127.0.0.1")) co_return false;

  // Messages and a stream on an application protocol of our own.
  auto echo_listener = server->listen(kEchoAlpn);
  if (!check(echo_listener.has_value(), "listening")) co_return false;
  auto conn = co_await client->connect(server->addr(), kEchoAlpn);
  if (!check(conn.has_value(), "connected by node id and address")) co_return false;
  auto incoming = co_await echo_listener->accept();
  if (!check(incoming && incoming->remote_node_id() == client->node_id(), "the server knows the client's id")) {
    co_return false;
  }
  p2p::spawn_logged(ex, echo(std::move(*incoming)), "echo");
  auto sent = co_await conn->send(p2p::as_bytes("ping"));
  auto reply = co_await conn->recv();
  bool ok = check(sent && reply && p2p::to_string(*reply) == "pong: ping", "a message each way");

  auto stream = co_await conn->open_bi();
  std::string payload(200'000, 'x');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + i % 26);
  std::string back;
  if (stream) {
    auto wrote = co_await stream->write(p2p::as_bytes(payload));
    auto finished = co_await stream->finish();
    std::vector<std::byte> buf(16 * 1024);
    for (;;) {
      auto n = co_await stream->read(buf);
      if (!n || *n == 0) break;
      back += p2p::to_string(p2p::ByteView(buf).first(*n));
    }
    ok = check(wrote && finished && back == payload, "a 200 kB stream echoed intact") && ok;
  } else {
    ok = check(false, "a stream opened") && ok;
  }
  (void)co_await conn->close();

  // A router request over the router protocol.
  router::P2PRouter routes;
  if (!check(routes
                 .get("/hello",
                      [](const router::P2PRequest&) {
                        return router::P2PResponse::text(router::StatusCode::ok, "hello from the server");
                      })
                 .has_value(),
             "a route registered")) {
    co_return false;
  }
  auto router_listener = server->listen(router::kAlpn);
  if (!check(router_listener.has_value(), "listening for the router protocol")) co_return false;
  router::Server<p2p::env::AsioEnv> http(p2p::env::AsioEnv(ex), std::move(routes));
  auto serve = [&]() -> asio::awaitable<bool> { co_return (co_await http.serve(*router_listener)).has_value(); };
  auto request = [&]() -> asio::awaitable<std::string> {
    std::string text;
    if (auto rconn = co_await client->connect(server->addr(), router::kAlpn); rconn) {
      router::P2PClient rclient(std::move(*rconn));
      auto resp = co_await rclient.get("/hello");
      if (resp && resp->status == router::StatusCode::ok) {
        auto body = co_await resp->body.read_text();
        if (body) text = *body;
      }
    }
    http.shutdown();  // serve() drains and returns
    co_return text;
  };
  auto [served, text] = co_await (serve() && request());
  ok = check(text == "hello from the server", "GET /hello answered 200 with its body") && ok;
  ok = check(served, "the router server shut down cleanly") && ok;

  co_await client->close();
  co_await server->close();
  co_return ok;
}

}  // namespace

int main() {
  asio::io_context io;
  bool ok = false;
  asio::co_spawn(io, run(io.get_executor()), [&](std::exception_ptr e, bool result) { ok = !e && result; });
  io.run();
  std::printf("%s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
