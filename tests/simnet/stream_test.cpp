// SPDX-License-Identifier: MIT OR Apache-2.0
// stream_test.cpp: TcpStream and TcpListener on the simulated network: connect, refused, timeout
// through a NAT, the public mapping as the server sees it, ordered delivery under loss, a large
// transfer, end of file, reset after a long partition, cancellation, and determinism.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
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

TEST(SimnetStream, ConnectToAClosedPortIsRefusedAfterOneRoundTrip) {
  World w;
  auto& client = w.host("client", ip4(1, 0, 0, 1), latency(10ms));
  w.host("server", ip4(2, 0, 0, 1), latency(15ms));
  std::optional<P2PResult<TcpStream>> r;
  spawn(w.rt, [&]() -> asio::awaitable<void> { r = co_await TcpStream::connect(client, ip4(2, 0, 0, 1, 81), 5s); });
  w.rt.run_while([&] { return !r; });
  ASSERT_TRUE(r);
  ASSERT_FALSE(*r);
  EXPECT_EQ(r->error().code(), P2PErrc::connection_failed);
  EXPECT_NE(r->error().message().find("refused"), std::string::npos);
  EXPECT_EQ(w.rt.now(), at(50ms));
}

TEST(SimnetStream, ConnectToANattedAddressWithoutAMappingTimesOut) {
  World w;
  auto& client = w.host("client", ip4(1, 0, 0, 1));
  auto& r = w.router("r", ip4(100, 0, 0, 1));
  auto& server = w.host_on(r.lan(), "server", ip4(192, 168, 1, 2));
  auto listener = TcpListener::listen(server, ip4(0, 0, 0, 0, 80));
  ASSERT_TRUE(listener);
  std::optional<P2PResult<TcpStream>> res;
  spawn(w.rt, [&]() -> asio::awaitable<void> { res = co_await TcpStream::connect(client, ip4(100, 0, 0, 1, 80), 3s); });
  w.rt.run_while([&] { return !res; });
  ASSERT_TRUE(res);
  ASSERT_FALSE(*res);
  EXPECT_EQ(res->error().code(), P2PErrc::timeout);
  EXPECT_EQ(w.rt.now(), at(3s));
  EXPECT_GE(r.stats().unmapped_in, 2U);  // the SYN and its retransmissions
}

TEST(SimnetStream, TheServerSeesTheClientsPublicMapping) {
  World w;
  auto& r = w.router("r", ip4(100, 0, 0, 1));
  auto& client = w.host_on(r.lan(), "client", ip4(192, 168, 1, 2));
  auto& server = w.host("server", ip4(2, 0, 0, 1));
  auto listener = TcpListener::listen(server, ip4(2, 0, 0, 1, 443));
  ASSERT_TRUE(listener);
  SocketAddr remote;
  SocketAddr local;
  std::string got;
  spawn(w.rt, [&]() -> asio::awaitable<void> {
    auto s = co_await listener->accept();
    if (!s) co_return;
    remote = s->remote_addr();
    std::vector<std::byte> data;
    co_await read_all(*s, data);
    got = text(data);
  });
  spawn(w.rt, [&]() -> asio::awaitable<void> {
    auto s = co_await TcpStream::connect(client, ip4(2, 0, 0, 1, 443), 5s);
    EXPECT_TRUE(s);
    if (!s) co_return;
    local = s->local_addr();
    const auto msg = bytes("through the NAT");
    co_await asio::async_write(*s, asio::buffer(msg), kTuple);
  });
  w.rt.run_for(10s);
  EXPECT_EQ(remote, ip4(100, 0, 0, 1, local.port()));  // a port-preserving NAT
  EXPECT_EQ(local.v4_bytes(), (std::array<std::uint8_t, 4>{192, 168, 1, 2}));
  EXPECT_EQ(got, "through the NAT");
  EXPECT_EQ(r.stats().mappings_created, 1U);
  EXPECT_GT(r.stats().translated_in, 0U);
}

TEST(SimnetStream, StreamsCrossARouterThatBlocksUdp) {
  World w;
  NatConfig nat;
  nat.udp_blocked = true;
  auto& r = w.router("r", ip4(100, 0, 0, 1), nat);
  auto& client = w.host_on(r.lan(), "client", ip4(192, 168, 1, 2));
  auto& server = w.host("server", ip4(2, 0, 0, 1));
  auto listener = TcpListener::listen(server, ip4(2, 0, 0, 1, 443));
  ASSERT_TRUE(listener);
  const auto data = pattern(10000, 3);
  Transfer t;
  start_transfer(w, client, server, ip4(2, 0, 0, 1, 443), data, t, *listener);
  w.rt.run_while([&] { return !t.done; }, at(60s));
  EXPECT_TRUE(t.received == data);
}

TEST(SimnetStream, ALongPartitionResetsTheStream) {
  World w;
  auto& client = w.host("client", ip4(1, 0, 0, 1), latency(10ms));
  auto& server = w.host("server", ip4(2, 0, 0, 1), latency(10ms));
  auto listener = TcpListener::listen(server, ip4(2, 0, 0, 1, 80));
  ASSERT_TRUE(listener);
  std::optional<TcpStream> server_side;
  spawn(w.rt, [&]() -> asio::awaitable<void> {
    auto s = co_await listener->accept();
    if (s) server_side.emplace(std::move(*s));
  });
  error_code write_end;
  error_code read_end;
  TimePoint reset_at{};
  std::optional<TcpStream> client_side;
  spawn(w.rt, [&]() -> asio::awaitable<void> {
    auto s = co_await TcpStream::connect(client, ip4(2, 0, 0, 1, 80), 5s);
    if (!s) co_return;
    client_side.emplace(std::move(*s));
  });
  w.rt.run_for(1s);
  ASSERT_TRUE(client_side && server_side);
  // A short cut only delays.
  w.net.partition({&client}, {&server});
  const auto msg = bytes("held by the partition");
  spawn(w.rt, [&]() -> asio::awaitable<void> {
    auto [ec, n] = co_await asio::async_write(*client_side, asio::buffer(msg), kTuple);
    EXPECT_FALSE(ec);
  });
  spawn(w.rt, [&]() -> asio::awaitable<void> {
    std::array<std::byte, 16> buf{};
    auto [ec, n] = co_await client_side->async_read_some(asio::buffer(buf), kTuple);
    read_end = ec;
    reset_at = w.rt.now();
  });
  w.rt.run_for(5s);
  w.net.heal();
  std::array<std::byte, 64> buf{};
  std::size_t got = 0;
  spawn(w.rt, [&]() -> asio::awaitable<void> {
    auto [ec, n] = co_await server_side->async_read_some(asio::buffer(buf), kTuple);
    got = n;
  });
  w.rt.run_for(2s);
  EXPECT_EQ(got, msg.size());
  EXPECT_FALSE(read_end);
  EXPECT_EQ(reset_at, TimePoint{});

  // A long one resets the side that has data to deliver: its reads and writes fail.
  w.net.partition({&client}, {&server});
  const auto cut = w.rt.now();
  spawn(w.rt, [&]() -> asio::awaitable<void> {
    auto [ec, n] = co_await client_side->async_write_some(asio::buffer(msg), kTuple);
    EXPECT_FALSE(ec);
    auto timer = client.env().make_timer();
    co_await timer.wait_until(w.rt.now() + 20s);
    auto [wec, wn] = co_await client_side->async_write_some(asio::buffer(msg), kTuple);
    write_end = wec;
  });
  w.rt.run_for(30s);
  EXPECT_EQ(read_end, error::connection_reset);
  EXPECT_EQ(write_end, error::connection_reset);
  EXPECT_GE(reset_at - cut, TcpStream::kResetAfterDefault);
  EXPECT_LE(reset_at - cut, TcpStream::kResetAfterDefault + 2s);
  EXPECT_FALSE(client_side->is_open());
}

TEST(SimnetStream, OperationsAreCancellable) {
  World w;
  auto& client = w.host("client", ip4(1, 0, 0, 1));
  auto& server = w.host("server", ip4(2, 0, 0, 1));
  auto listener = TcpListener::listen(server, ip4(2, 0, 0, 1, 80));
  ASSERT_TRUE(listener);
  std::optional<TcpStream> server_side;
  std::optional<TcpStream> client_side;
  spawn(w.rt, [&]() -> asio::awaitable<void> {
    auto s = co_await listener->accept();
    if (s) server_side.emplace(std::move(*s));
  });
  spawn(w.rt, [&]() -> asio::awaitable<void> {
    auto s = co_await TcpStream::connect(client, ip4(2, 0, 0, 1, 80), 5s);
    if (s) client_side.emplace(std::move(*s));
  });
  w.rt.run_for(1s);
  ASSERT_TRUE(client_side && server_side);

  // The losing side of ||: the read is cancelled, and the stream goes on.
  std::size_t winner = 9;
  spawn(w.rt, [&]() -> asio::awaitable<void> {
    std::array<std::byte, 16> buf{};
    auto timer = client.env().make_timer();
    auto r = co_await (client_side->async_read_some(asio::buffer(buf), asio::use_awaitable) ||
                       timer.wait_until(w.rt.now() + 100ms));
    winner = r.index();
  });
  w.rt.run_for(1s);
  EXPECT_EQ(winner, 1U);

  // A cancellation signal bound to the handler.
  asio::cancellation_signal signal;
  error_code by_signal;
  std::array<std::byte, 16> buf{};
  client_side->async_read_some(
      asio::buffer(buf),
      asio::bind_cancellation_slot(signal.slot(), [&](error_code ec, std::size_t) { by_signal = ec; }));
  w.rt.run_for(1ms);
  signal.emit(asio::cancellation_type::terminal);
  w.rt.run_for(1ms);
  EXPECT_EQ(by_signal, error::operation_aborted);

  // cancel(): completes through the executor, never inline.
  error_code by_cancel;
  bool ran = false;
  client_side->async_read_some(asio::buffer(buf), [&](error_code ec, std::size_t) {
    by_cancel = ec;
    ran = true;
  });
  client_side->cancel();
  EXPECT_FALSE(ran);
  w.rt.run_for(1ms);
  EXPECT_EQ(by_cancel, error::operation_aborted);

  // Still works afterwards.
  std::size_t n_read = 0;
  client_side->async_read_some(asio::buffer(buf), [&](error_code ec, std::size_t n) {
    EXPECT_FALSE(ec);
    n_read = n;
  });
  const auto msg = bytes("after");
  server_side->async_write_some(asio::buffer(msg), [](error_code, std::size_t) {});
  w.rt.run_for(1s);
  EXPECT_EQ(n_read, 5U);

  // The accept and connect waits are cancellable too.
  std::optional<P2PResult<TcpStream>> accepted;
  spawn(w.rt, [&]() -> asio::awaitable<void> { accepted = co_await listener->accept(); });
  w.rt.run_for(1ms);
  listener->close();
  w.rt.run_for(1ms);
  ASSERT_TRUE(accepted);
  ASSERT_FALSE(*accepted);
  EXPECT_EQ(accepted->error().code(), P2PErrc::cancelled);
}

TEST(SimnetStream, TheSendWindowBoundsUnreadData) {
  World w;
  auto& client = w.host("client", ip4(1, 0, 0, 1));
  auto& server = w.host("server", ip4(2, 0, 0, 1));
  auto listener = TcpListener::listen(server, ip4(2, 0, 0, 1, 80));
  ASSERT_TRUE(listener);
  std::optional<TcpStream> server_side;
  std::optional<TcpStream> client_side;
  spawn(w.rt, [&]() -> asio::awaitable<void> {
    auto s = co_await listener->accept();
    if (s) server_side.emplace(std::move(*s));
  });
  spawn(w.rt, [&]() -> asio::awaitable<void> {
    auto s = co_await TcpStream::connect(client, ip4(2, 0, 0, 1, 80), 5s);
    if (s) client_side.emplace(std::move(*s));
  });
  w.rt.run_for(1s);
  ASSERT_TRUE(client_side && server_side);
  const auto data = pattern(1024 * 1024, 1);
  std::size_t first = 0;
  client_side->async_write_some(asio::buffer(data), [&](error_code ec, std::size_t n) {
    EXPECT_FALSE(ec);
    first = n;
  });
  w.rt.run_for(1s);
  EXPECT_EQ(first, 256U * 1024U);  // partial: the window
  bool second_done = false;
  client_side->async_write_some(asio::buffer(data), [&](error_code, std::size_t) { second_done = true; });
  w.rt.run_for(1s);
  EXPECT_FALSE(second_done);  // nobody reads: it waits
  std::vector<std::byte> buf(1000);
  server_side->async_read_some(asio::buffer(buf), [](error_code, std::size_t) {});
  w.rt.run_for(1s);
  EXPECT_TRUE(second_done);
}

// scenario runs a small mixed workload (NAT, loss, jitter, datagrams and a stream) and returns the
// trace hash.
std::uint64_t scenario(std::uint64_t seed) {
  World w(seed);
  LinkParams wan = latency(20ms);
  wan.jitter = 5ms;
  wan.loss = 0.05;
  wan.reorder = 0.05;
  auto& r = w.router("home", ip4(100, 0, 0, 1), NatConfig{}, wan);
  auto& laptop = w.host_on(r.lan(), "laptop", ip4(192, 168, 1, 2), latency(2ms));
  auto& server = w.host("server", ip4(2, 0, 0, 1), wan);
  auto us = bind(server, ip4(2, 0, 0, 1, 3478));
  auto ul = bind(laptop, ip4(0, 0, 0, 0, 0));
  auto listener = TcpListener::listen(server, ip4(2, 0, 0, 1, 443));
  EXPECT_TRUE(listener);
  for (int i = 0; i < 50; ++i) {
    send(ul, ip4(2, 0, 0, 1, 3478), fmt::format("ping {}", i));
    w.rt.run_for(10ms);
    for (auto& d : drain(us, w.rt.now())) send(us, d.meta.source, d.data);
  }
  const auto data = pattern(200 * 1000, 9);
  Transfer t;
  start_transfer(w, laptop, server, ip4(2, 0, 0, 1, 443), data, t, *listener);
  w.rt.run_while([&] { return !t.done; }, at(300s));
  EXPECT_TRUE(t.received == data) << "seed " << seed;
  return w.rt.trace_hash();
}

TEST(SimnetDeterminism, TheSameSeedGivesTheSameTrace) {
  const std::uint64_t seed = sim_seed(2024);
  const auto a = scenario(seed);
  EXPECT_EQ(a, scenario(seed)) << "seed " << seed;
  EXPECT_NE(a, scenario(seed + 1)) << "seed " << seed;
}

}  // namespace
}  // namespace moosicbox::p2p::simnet::test
