// SPDX-License-Identifier: MIT OR Apache-2.0
// udp_socket_test.cpp: simulated datagram sockets: binding (wildcard, specific, dual-stack,
// ephemeral, in use, unavailable), source selection, GSO, truncation, the receive queue bound,
// waits and their cancellation, close.
#include <set>
#include <variant>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "simnet/simnet_test_support.hpp"

namespace moosicbox::p2p::simnet::test {
namespace {

using namespace boost::asio::experimental::awaitable_operators;

const SocketAddr kA4 = ip4(1, 0, 0, 1);
const SocketAddr kA4b = ip4(1, 0, 0, 2);
const SocketAddr kB4 = ip4(2, 0, 0, 1);

TEST(SimnetUdp, SpecificAndWildcardBindsReceiveTheirDatagrams) {
  World w;
  auto h = w.net.add_host("multi", w.net.internet(), {kA4, kA4b});
  ASSERT_TRUE(h);
  auto& b = w.host("b", kB4);
  auto specific = bind(**h, kA4.with_port(1000));
  auto any = bind(**h, ip4(0, 0, 0, 0, 2000));
  auto sb = bind(b, kB4.with_port(3000));
  send(sb, kA4.with_port(1000), "to specific");
  send(sb, kA4b.with_port(2000), "to wildcard");
  send(sb, kA4b.with_port(1000), "nobody");  // the specific socket holds 1.0.0.1 only
  w.rt.run_for(1s);
  const auto s = drain(specific, w.rt.now());
  const auto a = drain(any, w.rt.now());
  ASSERT_EQ(s.size(), 1U);
  ASSERT_EQ(a.size(), 1U);
  EXPECT_EQ(text(s[0].data), "to specific");
  EXPECT_EQ(s[0].meta.destination, kA4.with_port(1000));
  EXPECT_EQ(a[0].meta.destination, kA4b.with_port(2000));
  EXPECT_EQ(w.net.stats().dropped_no_socket, 1U);

  // A wildcard socket answers from the address it is told to (Transmit::source), else the first.
  env::Transmit tx;
  tx.destination = kB4.with_port(3000);
  const auto payload = bytes("reply");
  tx.contents = payload;
  tx.source = a[0].meta.destination;
  ASSERT_TRUE(any.try_send_batch(std::span<const env::Transmit>(&tx, 1)));
  tx.source.reset();
  ASSERT_TRUE(any.try_send_batch(std::span<const env::Transmit>(&tx, 1)));
  w.rt.run_for(1s);
  const auto r = drain(sb, w.rt.now());
  ASSERT_EQ(r.size(), 2U);
  EXPECT_EQ(r[0].meta.source, kA4b.with_port(2000));
  EXPECT_EQ(r[1].meta.source, kA4.with_port(2000));
}

TEST(SimnetUdp, V6WildcardIsDualStackAndShowsIpv4AsIpv4) {
  World w;
  const SocketAddr a6 = ip6("2001:db8::1");
  const SocketAddr b6 = ip6("2001:db8::2");
  auto h = w.net.add_host("dual", w.net.internet(), {kA4, a6});
  ASSERT_TRUE(h);
  auto b = w.net.add_host("b", w.net.internet(), {kB4, b6});
  ASSERT_TRUE(b);
  auto dual = bind(**h, ip6("::", 4433));
  auto v4 = bind(**b, kB4.with_port(5000));
  auto v6 = bind(**b, b6.with_port(5000));
  EXPECT_TRUE(dual.is_dual_stack());
  EXPECT_FALSE(v4.is_dual_stack());
  send(v4, kA4.with_port(4433), "over v4");
  send(v6, a6.with_port(4433), "over v6");
  w.rt.run_for(1s);
  const auto got = drain(dual, w.rt.now());
  ASSERT_EQ(got.size(), 2U);
  EXPECT_EQ(got[0].meta.source, kB4.with_port(5000));
  EXPECT_TRUE(got[0].meta.source.is_v4());
  EXPECT_EQ(got[0].meta.destination, kA4.with_port(4433));
  EXPECT_EQ(got[1].meta.source, b6.with_port(5000));
  // And it sends to IPv4 destinations (v4-mapped ones too).
  send(dual, kB4.with_port(5000).to_v6_mapped(), "back");
  w.rt.run_for(1s);
  const auto back = drain(v4, w.rt.now());
  ASSERT_EQ(back.size(), 1U);
  EXPECT_EQ(back[0].meta.source, kA4.with_port(4433));
  // An IPv4 socket cannot reach IPv6.
  send(v4, a6.with_port(4433), "nope");
  w.rt.run_for(1s);
  EXPECT_TRUE(drain(dual, w.rt.now()).empty());
}

TEST(SimnetUdp, BindRejectsUsedAndForeignAddresses) {
  World w;
  auto& a = w.host("a", kA4);
  auto first = bind(a, kA4.with_port(1000));
  auto again = UdpSocket::bind(a, kA4.with_port(1000));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), P2PErrc::network_error);
  EXPECT_NE(again.error().message().find("address in use"), std::string::npos);
  EXPECT_FALSE(UdpSocket::bind(a, ip4(0, 0, 0, 0, 1000)));  // the wildcard overlaps
  EXPECT_FALSE(UdpSocket::bind(a, ip6("::", 1000)));        // so does the dual-stack one
  auto foreign = UdpSocket::bind(a, ip4(9, 9, 9, 9, 1000));
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.error().code(), P2PErrc::network_error);
  EXPECT_NE(foreign.error().message().find("address not available"), std::string::npos);
  auto multicast = UdpSocket::bind(a, ip4(239, 0, 0, 1, 1000));
  ASSERT_FALSE(multicast);
  EXPECT_EQ(multicast.error().code(), P2PErrc::invalid_configuration);
  first.close();
  EXPECT_TRUE(UdpSocket::bind(a, kA4.with_port(1000)));  // free again
}

TEST(SimnetUdp, EphemeralPortsAreDistinctAndInRange) {
  World w;
  auto& a = w.host("a", kA4);
  std::vector<UdpSocket> sockets;
  std::set<std::uint16_t> ports;
  for (int i = 0; i < 100; ++i) {
    sockets.push_back(bind(a, ip4(0, 0, 0, 0, 0)));
    const auto p = sockets.back().local_addr().port();
    EXPECT_GE(p, 49152);
    ports.insert(p);
  }
  EXPECT_EQ(ports.size(), 100U);
}

TEST(SimnetUdp, GsoTransmitsArriveAsSeparateDatagrams) {
  World w;
  auto& a = w.host("a", kA4);
  auto& b = w.host("b", kB4);
  auto sa = bind(a, kA4.with_port(1000));
  auto sb = bind(b, kB4.with_port(2000));
  EXPECT_EQ(sa.gso_segments_max(), 64U);
  std::vector<std::byte> payload(3000);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<std::byte>(i);
  env::Transmit tx;
  tx.destination = kB4.with_port(2000);
  tx.contents = payload;
  tx.segment_size = 1200;
  ASSERT_EQ(sa.try_send_batch(std::span<const env::Transmit>(&tx, 1)).value(), 1U);
  w.rt.run_for(1s);
  const auto got = drain(sb, w.rt.now());
  ASSERT_EQ(got.size(), 3U);
  EXPECT_EQ(got[0].data.size(), 1200U);
  EXPECT_EQ(got[1].data.size(), 1200U);
  EXPECT_EQ(got[2].data.size(), 600U);
  EXPECT_EQ(got[2].meta.stride, 600U);
  EXPECT_EQ(got[1].data[0], static_cast<std::byte>(1200 % 256));
  EXPECT_EQ(w.net.stats().packets_sent, 3U);
}

TEST(SimnetUdp, SmallBuffersTruncate) {
  World w;
  auto& a = w.host("a", kA4);
  auto& b = w.host("b", kB4);
  auto sa = bind(a, kA4.with_port(1000));
  auto sb = bind(b, kB4.with_port(2000));
  send(sa, kB4.with_port(2000), "0123456789");
  w.rt.run_for(1s);
  const auto got = drain(sb, w.rt.now(), 4);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_TRUE(got[0].meta.truncated);
  EXPECT_EQ(got[0].meta.length, 4U);
  EXPECT_EQ(text(got[0].data), "0123");
}

TEST(SimnetUdp, AFullReceiveQueueDropsArrivals) {
  World w;
  auto& a = w.host("a", kA4);
  auto& b = w.host("b", kB4);
  auto sa = bind(a, kA4.with_port(1000));
  auto sb = bind(b, kB4.with_port(2000));
  for (std::size_t i = 0; i < UdpSocket::kRecvQueueMax + 76; ++i) send(sa, kB4.with_port(2000), "x");
  w.rt.run_for(1s);
  EXPECT_EQ(w.net.stats().dropped_receive_queue, 76U);
  EXPECT_EQ(drain(sb, w.rt.now()).size(), UdpSocket::kRecvQueueMax);
}

TEST(SimnetUdp, WaitReadableEndsWithCancelledOnCancelAndClose) {
  World w;
  auto& a = w.host("a", kA4);
  auto s = bind(a, kA4.with_port(1000));
  std::vector<P2PErrc> ends;
  for (int i = 0; i < 2; ++i) {
    spawn(w.rt, [&]() -> asio::awaitable<void> {
      auto r = co_await s.wait_readable();
      ends.push_back(r ? P2PErrc{} : r.error().code());
    });
    w.rt.run_for(1s);
    EXPECT_EQ(ends.size(), static_cast<std::size_t>(i));
    if (i == 0) s.cancel();
    if (i == 1) s.close();
    w.rt.run_for(1s);
  }
  EXPECT_EQ(ends, (std::vector<P2PErrc>{P2PErrc::cancelled, P2PErrc::cancelled}));
  // Closed: sends fail, arrivals are dropped.
  const auto payload = bytes("x");
  env::Transmit tx;
  tx.destination = kB4.with_port(1);
  tx.contents = payload;
  auto r = s.try_send_batch(std::span<const env::Transmit>(&tx, 1));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), P2PErrc::network_error);
}

TEST(SimnetUdp, WaitReadableLosesARaceCleanly) {
  World w;
  auto& a = w.host("a", kA4);
  auto& b = w.host("b", kB4);
  auto sa = bind(a, kA4.with_port(1000));
  auto sb = bind(b, kB4.with_port(2000));
  int timer_won = 0;
  int readable_won = 0;
  spawn(w.rt, [&]() -> asio::awaitable<void> {
    auto timer = b.env().make_timer();
    for (int i = 0; i < 2; ++i) {
      auto r = co_await (sb.wait_readable() || timer.wait_until(w.rt.now() + 100ms));
      if (r.index() == 0) ++readable_won;
      if (r.index() == 1) ++timer_won;
    }
  });
  w.rt.run_for(150ms);
  EXPECT_EQ(timer_won, 1);
  send(sa, kB4.with_port(2000), "x");
  w.rt.run_for(1s);
  EXPECT_EQ(readable_won, 1);
  EXPECT_EQ(drain(sb, w.rt.now()).size(), 1U);
}

TEST(SimnetUdp, LateDeliveriesToAClosedSocketAreDropped) {
  World w;
  auto& a = w.host("a", kA4);
  auto& b = w.host("b", kB4);
  auto sa = bind(a, kA4.with_port(1000));
  auto sb = bind(b, kB4.with_port(2000));
  send(sa, kB4.with_port(2000), "late");
  sb.close();
  w.rt.run_for(1s);
  EXPECT_EQ(w.net.stats().dropped_no_socket, 1U);
}

TEST(SimnetUdp, HundredsOfHostsExchangeManyDatagrams) {
  World w;
  constexpr int kHosts = 300;
  constexpr int kRounds = 400;
  std::vector<Host*> hosts;
  std::vector<UdpSocket> socks;
  for (int i = 0; i < kHosts; ++i) {
    LinkParams p;
    p.latency = std::chrono::milliseconds(1 + i % 7);
    p.jitter = 1ms;
    const auto addr = ip4(10, static_cast<std::uint8_t>(i / 250), static_cast<std::uint8_t>(i % 250), 1);
    hosts.push_back(&w.host(fmt::format("h{}", i), addr, p));
    socks.push_back(bind(*hosts.back(), addr.with_port(4000)));
  }
  std::uint64_t received = 0;
  env::RecvBuffers bufs(32, 1500);
  const std::vector<std::byte> payload(1200);
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < kHosts; ++i) {
      const int j = (i * 7 + round + 1) % kHosts;
      send(socks[static_cast<std::size_t>(i)], socks[static_cast<std::size_t>(j)].local_addr(), payload);
    }
    w.rt.run_for(1ms);
    for (auto& s : socks) {
      while (true) {
        auto n = s.try_receive_batch(bufs.buffers(), bufs.metas());
        if (!n || *n == 0) break;
        received += *n;
      }
    }
  }
  w.rt.run_for(1s);
  for (auto& s : socks) received += drain(s, w.rt.now()).size();
  EXPECT_EQ(received, static_cast<std::uint64_t>(kHosts) * kRounds);
  EXPECT_EQ(w.net.stats().packets_delivered, received);
}

}  // namespace
}  // namespace moosicbox::p2p::simnet::test
