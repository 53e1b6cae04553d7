// SPDX-License-Identifier: MIT OR Apache-2.0
// websocket_test.cpp: Beast's WebSocket on a simulated TcpStream: the HTTP upgrade handshake,
// binary messages both ways (through a NAT, over a lossy link), and the closing handshake with
// its teardown.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/websocket.hpp>

#include "moosicbox/p2p/simnet/beast.hpp"
#include "simnet/simnet_test_support.hpp"

namespace moosicbox::p2p::simnet::test {
namespace {

namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using boost::system::error_code;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

static_assert(std::is_same_v<beast::lowest_layer_type<TcpStream>, TcpStream>);

TEST(SimnetWebSocket, UpgradesAndExchangesBinaryMessages) {
  const std::uint64_t seed = sim_seed(77);
  World w(seed);
  LinkParams lossy;
  lossy.latency = 15ms;
  lossy.loss = 0.02;
  auto& r = w.router("home", ip4(100, 0, 0, 1), NatConfig{}, lossy);
  auto& client = w.host_on(r.lan(), "client", ip4(192, 168, 1, 2));
  auto& server = w.host("relay", ip4(2, 0, 0, 1));
  auto listener = TcpListener::listen(server, ip4(0, 0, 0, 0, 443));
  ASSERT_TRUE(listener);

  std::vector<std::string> server_got;
  std::vector<std::string> client_got;
  error_code server_end;
  bool client_closed = false;
  spawn(w.rt, [&]() -> asio::awaitable<void> {
    auto s = co_await listener->accept();
    EXPECT_TRUE(s);
    if (!s) co_return;
    websocket::stream<TcpStream> ws(std::move(*s));
    auto [aec] = co_await ws.async_accept(kTuple);
    EXPECT_FALSE(aec) << aec.message();
    if (aec) co_return;
    ws.binary(true);
    while (true) {
      beast::flat_buffer buf;
      auto [ec, n] = co_await ws.async_read(buf, kTuple);
      if (ec) {
        server_end = ec;
        break;
      }
      EXPECT_TRUE(ws.got_binary());
      server_got.push_back(beast::buffers_to_string(buf.data()));
      auto [wec, wn] = co_await ws.async_write(buf.data(), kTuple);
      EXPECT_FALSE(wec);
    }
  });
  spawn(w.rt, [&]() -> asio::awaitable<void> {
    auto s = co_await TcpStream::connect(client, ip4(2, 0, 0, 1, 443), 10s);
    EXPECT_TRUE(s);
    if (!s) co_return;
    websocket::stream<TcpStream> ws(std::move(*s));
    EXPECT_EQ(&beast::get_lowest_layer(ws), &ws.next_layer());
    auto [hec] = co_await ws.async_handshake("relay.example", "/derp", kTuple);
    EXPECT_FALSE(hec) << hec.message();
    if (hec) co_return;
    ws.binary(true);
    for (int i = 0; i < 20; ++i) {
      // Sizes from a few bytes to several segments.
      const std::string msg = fmt::format("message {} ", i) + std::string(static_cast<std::size_t>(i) * 997, 'x');
      auto [wec, wn] = co_await ws.async_write(asio::buffer(msg), kTuple);
      EXPECT_FALSE(wec);
      beast::flat_buffer buf;
      auto [rec, rn] = co_await ws.async_read(buf, kTuple);
      EXPECT_FALSE(rec);
      client_got.push_back(beast::buffers_to_string(buf.data()));
    }
    auto [cec] = co_await ws.async_close(websocket::close_code::normal, kTuple);
    EXPECT_FALSE(cec) << cec.message();
    client_closed = true;
  });
  w.rt.run_while([&] { return !client_closed || server_end == error_code{}; }, at(300s));
  ASSERT_EQ(server_got.size(), 20U) << "seed " << seed;
  EXPECT_EQ(client_got, server_got) << "seed " << seed;
  EXPECT_EQ(server_got[3].substr(0, 10), "message 3 ");
  EXPECT_EQ(server_got[19].size(), std::string("message 19 ").size() + 19 * 997U);
  EXPECT_TRUE(client_closed) << "seed " << seed;
  EXPECT_EQ(server_end, websocket::error::closed) << "seed " << seed;
  EXPECT_GT(w.net.stats().stream_bytes, 20U * 10U);
}

}  // namespace
}  // namespace moosicbox::p2p::simnet::test
