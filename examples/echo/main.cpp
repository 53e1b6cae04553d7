// SPDX-License-Identifier: MIT OR Apache-2.0
// echo: an echo service on a real QUIC endpoint and a client that checks every echo, over loopback.
// The server uses the Endpoint API directly: a listener per application protocol, a coroutine per
// connection, the message API (send/recv) and one raw bidirectional stream. Exits 0 on success.
#include <moosicbox/p2p/core/spawn.hpp>
#include <moosicbox/p2p/endpoint/endpoint.hpp>
#include <moosicbox/p2p/env/asio_env.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>

namespace p2p = moosicbox::p2p;

namespace {

constexpr std::string_view kAlpn = "echo/1";
namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;

// serve echoes every message of one connection, and the bytes of every stream it opens.
asio::awaitable<void> serve(p2p::Connection conn) {
  auto stream = co_await conn.accept_bi();
  if (stream) {
    std::vector<std::byte> buf(64 * 1024);
    while (true) {
      auto n = co_await stream->read(buf);
      if (!n || *n == 0) break;
      if (auto awaited = co_await stream->write(p2p::ByteView(buf).first(*n)); !awaited) break;
    }
    (void)co_await stream->finish();
  }
  while (true) {
    auto msg = co_await conn.recv();
    if (!msg) co_return;  // the client closed
    if (auto awaited = co_await conn.send(*msg); !awaited) co_return;
  }
}

asio::awaitable<int> run(asio::io_context& io) {
  p2p::EndpointConfig server_cfg(p2p::test_secret_key("echo-server"));
  server_cfg.bind_addrs = {p2p::SocketAddr::v4_loopback(0)};
  auto server = p2p::Endpoint::bind(io.get_executor(), std::move(server_cfg));
  p2p::EndpointConfig client_cfg(p2p::test_secret_key("echo-client"));
  client_cfg.bind_addrs = {p2p::SocketAddr::v4_loopback(0)};
  auto client = p2p::Endpoint::bind(io.get_executor(), std::move(client_cfg));
  if (!server || !client) co_return 1;
  auto listener = server->listen(kAlpn);
  if (!listener) co_return 1;
  std::printf("echo server %s at %s\n", server->node_id().fmt_short().c_str(), listener->local_addr().c_str());

  auto conn = co_await client->connect(server->addr(), kAlpn);
  if (!conn) {
    std::fprintf(stderr, "connect: %s\n", conn.error().message().c_str());
    co_return 1;
  }
  auto incoming = co_await listener->accept();
  if (!incoming) co_return 1;
  p2p::spawn_logged(io.get_executor(), serve(std::move(*incoming)), "echo server connection");

  // A stream: 4 MiB up, the same 4 MiB back.
  auto stream = co_await conn->open_bi();
  if (!stream) co_return 1;
  std::vector<std::byte> payload(4 << 20);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<std::byte>(i * 31 % 251);
  auto [wrote, echoed] = co_await ([&]() -> asio::awaitable<bool> {
    auto wrote_all = co_await stream->write(payload);
    if (!wrote_all) co_return false;
    auto finished = co_await stream->finish();
    co_return finished.has_value();
  }() && [&]() -> asio::awaitable<std::vector<std::byte>> {
    std::vector<std::byte> back;
    std::vector<std::byte> buf(64 * 1024);
    while (true) {
      auto n = co_await stream->read(buf);
      if (!n || *n == 0) break;
      back.insert(back.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
    }
    co_return back;
  }());
  const bool stream_ok = wrote && echoed == payload;
  std::printf("stream: %zu bytes echoed %s\n", echoed.size(), stream_ok ? "intact" : "CORRUPTED");

  // Messages, in order.
  bool messages_ok = true;
  for (int i = 0; i < 100 && messages_ok; ++i) {
    const auto text = "echo " + std::to_string(i);
    if (auto awaited = co_await conn->send(p2p::as_bytes(text)); !awaited) messages_ok = false;
    auto back = co_await conn->recv();
    messages_ok = messages_ok && back && p2p::to_string(*back) == text;
  }
  std::printf("messages: 100 echoed %s, rtt %s\n", messages_ok ? "in order" : "WRONG",
              p2p::format_duration(conn->stats().rtt.value_or(p2p::Duration{})).c_str());
  (void)co_await conn->close();
  co_await client->close();
  co_await server->close();
  co_return stream_ok&& messages_ok ? 0 : 1;
}

}  // namespace

int main() {
  asio::io_context io;
  int rc = 1;
  asio::co_spawn(io, run(io), [&](std::exception_ptr e, int result) { rc = e ? 1 : result; });
  io.run();
  std::printf("%s\n", rc == 0 ? "ok" : "FAILED");
  return rc;
}
