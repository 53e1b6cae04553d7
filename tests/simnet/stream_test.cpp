// SPDX-License-Identifier: MIT OR Apache-2.0
// stream_test.cpp: TcpStream and TcpListener on the simulated network: connect, refused, timeout
// through a NAT, the public mapping as the server sees it, ordered delivery under loss, a large
// transfer, end of file, reset after a long partition, cancellation, and determinism.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "simnet/simnet_test_support.hpp"

namespace moosicbox::p2p::simnet::test {
namespace {

using namespace boost::asio::experimental::awaitable_operators;
namespace error = boost::asio::error;
using boost::system::error_code;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

LinkParams latency(Duration d) {
  LinkParams p;
  p.latency = d;
  return p;
}

std::vector<std::byte> pattern(std::size_t n, std::uint32_t salt) {
  std::vector<std::byte> out(n);
  std::uint32_t x = salt * 2654435761U + 1;
  for (auto& b : out) {
    x = x * 1664525U + 1013904223U;
    b = static_cast<std::byte>(x >> 24);
  }
  return out;
}

// read_all reads until end of file (or an error, returned).
asio::awaitable<error_code> read_all(TcpStream& s, std::vector<std::byte>& out) {
  std::array<std::byte, 4096> buf{};
  while (true) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), kTuple);
    out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    if (ec) co_return ec;
  }
}

TEST(SimnetStream, ConnectEchoAndEndOfFile) {
  World w;
  auto& client = w.host("client", ip4(1, 0, 0, 1), latency(10ms));
  auto& server = w.host("server", ip4(2, 0, 0, 1), latency(10ms));
  auto listener = TcpListener::listen(server, ip4(0, 0, 0, 0, 80));
  ASSERT_TRUE(listener);
  EXPECT_EQ(listener->local_addr(), ip4(0, 0, 0, 0, 80));
  std::string echoed;
  TimePoint connected{};
  SocketAddr seen_remote;
  error_code client_end;
  spawn(w.rt, [&]() -> asio::awaitable<void> {
    auto s = co_await listener->accept();
    EXPECT_TRUE(s);
    if (!s) co_return;
    seen_remote = s->remote_addr();
    EXPECT_EQ(s->local_addr(), ip4(2, 0, 0, 1, 80));
    std::vector<std::byte> got;
    const auto ec = co_await read_all(*s, got);
    EXPECT_EQ(ec, error::eof);
    auto [wec, n] = co_await asio::async_write(*s, asio::buffer(got), kTuple);
    EXPECT_FALSE(wec);
    EXPECT_EQ(n, got.size());
    s->close();
  });
  spawn(w.rt, [&]() -> asio::awaitable<void> {
    auto s = co_await TcpStream::connect(client, ip4(2, 0, 0, 1, 80), 5s);
    EXPECT_TRUE(s) << (s ? "" : s.error().message());
    if (!s) co_return;
    connected = w.rt.now();
    EXPECT_TRUE(s->is_open());
    const auto msg = bytes("ping over a stream");
    auto [wec, n] = co_await asio::async_write(*s, asio::buffer(msg), kTuple);
    EXPECT_FALSE(wec);
    EXPECT_EQ(n, msg.size());
    s->shutdown_send();
    std::vector<std::byte> got;
    client_end = co_await read_all(*s, got);
    echoed = text(got);
  });
  w.rt.run_for(10s);
  EXPECT_EQ(connected, at(40ms));  // one round trip: 2 x (10 + 10) ms
  EXPECT_EQ(seen_remote.family(), SocketAddr::Family::v4);
  EXPECT_EQ(seen_remote.v4_bytes(), (std::array<std::uint8_t, 4>{1, 0, 0, 1}));
  EXPECT_EQ(echoed, "ping over a stream");
  EXPECT_EQ(client_end, error::eof);
  EXPECT_GE(w.net.stats().stream_bytes, 36U);
}

// transfer sends `data` from client to server and returns what the server read until end of file.
struct Transfer {
  std::vector<std::byte> received;
  error_code server_end;
  error_code client_write;
  bool done = false;
  TimePoint finished{};
};

void start_transfer(World& w, Host& client, Host& server, SocketAddr to, const std::vector<std::byte>& data,
                    Transfer& t, TcpListener& listener) {
  spawn(w.rt, [&]() -> asio::awaitable<void> {
    auto s = co_await listener.accept();
    EXPECT_TRUE(s);
    if (!s) co_return;
    t.server_end = co_await read_all(*s, t.received);
    t.done = true;
    t.finished = w.rt.now();
  });
  spawn(w.rt, [&]() -> asio::awaitable<void> {
    auto s = co_await TcpStream::connect(client, to, 10s);
    EXPECT_TRUE(s) << (s ? "" : s.error().message());
    if (!s) co_return;
    auto [ec, n] = co_await asio::async_write(*s, asio::buffer(data), kTuple);
    t.client_write = ec;
    EXPECT_EQ(n, ec ? n : data.size());
    s->close();
  });
  (void)server;
}

TEST(SimnetStream, LargeTransferArrivesIntactInOrderUnderLoss) {
  const std::uint64_t seed = sim_seed(11);
  World w(seed);
  LinkParams lossy = latency(10ms);
  lossy.loss = 0.05;
  lossy.jitter = 3ms;
  auto& client = w.host("client", ip4(1, 0, 0, 1), lossy);
  auto& server = w.host("server", ip4(2, 0, 0, 1), latency(5ms));
  auto listener = TcpListener::listen(server, ip4(2, 0, 0, 1, 9000));
  ASSERT_TRUE(listener);
  const auto data = pattern(1024 * 1024, 7);
  Transfer t;
  start_transfer(w, client, server, ip4(2, 0, 0, 1, 9000), data, t, *listener);
  w.rt.run_while([&] { return !t.done; }, at(600s));
  ASSERT_TRUE(t.done) << "seed " << seed;
  EXPECT_EQ(t.server_end, error::eof) << "seed " << seed;
  EXPECT_FALSE(t.client_write) << "seed " << seed;
  ASSERT_EQ(t.received.size(), data.size()) << "seed " << seed;
  EXPECT_TRUE(t.received == data) << "seed " << seed;
  EXPECT_GT(w.net.stats().dropped_loss, 0U) << "seed " << seed;
}

}  // namespace
}  // namespace moosicbox::p2p::simnet::test
