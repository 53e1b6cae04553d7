// SPDX-License-Identifier: MIT OR Apache-2.0
// udp_socket_test.cpp: UdpSocket on real loopback sockets (127.0.0.0/8 and ::1 only): batches, GSO
// sends, GRO receives, packet info on wildcard and dual-stack sockets, ECN, truncation, per-datagram
// send errors, bind errors and readiness waits, on the fast I/O path (bind_or_die asks for it unless
// a test chooses; udp_socket_paths_test.cpp covers the portable path and the fallbacks). Nothing
// sleeps: every test waits on readiness with the io_context; io_context::run_for only guards
// against a hang.
#include "moosicbox/p2p/env/udp_socket.hpp"

#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <fstream>
#include <stdexcept>

#include "integration/env/udp_test_support.hpp"
#include "moosicbox/p2p/env/asio_env.hpp"

namespace moosicbox::p2p::env {
namespace {

using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

using test::bind_or_die;
using test::Got;
using test::ipv6_loopback_available;
using test::pattern;
using test::receive;
using test::run;
using test::send_all;

TEST(UdpSocket, BindsIpv4LoopbackWithEphemeralPort) {
  asio::io_context io;
  auto s = bind_or_die(io, SocketAddr::v4_loopback());
  EXPECT_TRUE(s.local_addr().is_v4());
  EXPECT_TRUE(s.local_addr().is_loopback());
  EXPECT_NE(s.local_addr().port(), 0);
  EXPECT_FALSE(s.is_dual_stack());
  EXPECT_TRUE(s.is_open());
}

TEST(UdpSocket, BindsIpv6Loopback) {
  if (!ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback on this machine";
  asio::io_context io;
  auto s = bind_or_die(io, SocketAddr::v6_loopback(), {.v6_only = true});
  EXPECT_EQ(s.local_addr().with_port(0), SocketAddr::v6_loopback());
  EXPECT_NE(s.local_addr().port(), 0);
  EXPECT_FALSE(s.is_dual_stack());
}

TEST(UdpSocket, BindReportsAddressInUse) {
  asio::io_context io;
  auto first = bind_or_die(io, SocketAddr::v4_loopback());
  const auto again = UdpSocket::bind(io.get_executor(), first.local_addr());
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code(), P2PErrc::network_error);
  EXPECT_EQ(again.error().message(),
            fmt::format("Network error: bind 127.0.0.1:{}: Address already in use", first.local_addr().port()));
}

TEST(UdpSocket, BindReportsAddressInUseOnIpv6) {
  if (!ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback on this machine";
  asio::io_context io;
  auto first = bind_or_die(io, SocketAddr::v6_loopback());
  const auto again = UdpSocket::bind(io.get_executor(), first.local_addr());
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().message(),
            fmt::format("Network error: bind [::1]:{}: Address already in use", first.local_addr().port()));
}

TEST(UdpSocket, BindReportsPermissionDeniedForPrivilegedPort) {
  int unprivileged_start = 1024;
  std::ifstream("/proc/sys/net/ipv4/ip_unprivileged_port_start") >> unprivileged_start;
  if (::geteuid() == 0 || unprivileged_start <= 9) GTEST_SKIP() << "this process may bind privileged ports";
  asio::io_context io;
  const auto r = UdpSocket::bind(io.get_executor(), SocketAddr::v4_loopback(9));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), "Network error: bind 127.0.0.1:9: Permission denied");
}

TEST(UdpSocket, BindRejectsNegativeBufferSize) {
  asio::io_context io;
  const auto r = UdpSocket::bind(io.get_executor(), SocketAddr::v4_loopback(), {.receive_buffer_bytes = -1});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), P2PErrc::invalid_configuration);
}

// The buffer asked for is what the socket has, unless the kernel's cap (net.core.rmem_max) stops an
// unprivileged process; either way the effective size is reported.
TEST(UdpSocket, ReportsItsEffectiveReceiveBuffer) {
  asio::io_context io;
  constexpr int kAsked = 3 << 20;
  const auto r = UdpSocket::bind(io.get_executor(), SocketAddr::v4_loopback(), {.receive_buffer_bytes = kAsked});
  ASSERT_TRUE(r.has_value()) << r.error().message();
  const int got = r->receive_buffer_bytes();
  int rmem_max = 0;
  if (std::FILE* f = std::fopen("/proc/sys/net/core/rmem_max", "r")) {
    if (std::fscanf(f, "%d", &rmem_max) != 1) rmem_max = 0;
    std::fclose(f);
  }
  if (::geteuid() == 0 || rmem_max >= kAsked) {
    EXPECT_GE(got, kAsked);
  } else {
    EXPECT_GE(got, rmem_max);
  }
  auto plain = bind_or_die(io, SocketAddr::v4_loopback());
  EXPECT_GT(plain.receive_buffer_bytes(), 0);
}

TEST(UdpSocket, TryReceiveOnEmptySocketWouldBlock) {
  asio::io_context io;
  auto s = bind_or_die(io, SocketAddr::v4_loopback());
  RecvBuffers bufs(4, 2048);
  const auto r = s.try_receive_batch(bufs.buffers(), bufs.metas());
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(*r, 0U);
  EXPECT_EQ(s.stats().receive_calls, 1U);
}

TEST(UdpSocket, SendsAndReceivesABatchInOneCallEach) {
  asio::io_context io;
  auto a = bind_or_die(io, SocketAddr::v4_loopback());
  auto b = bind_or_die(io, SocketAddr::v4_loopback());
  std::vector<Bytes> payloads;
  std::vector<Transmit> txs;
  for (std::size_t i = 0; i < UdpSocket::kBatchMax; ++i)
    payloads.push_back(pattern(100 + i, static_cast<std::uint8_t>(i)));
  for (const auto& p : payloads) txs.push_back(Transmit{.destination = b.local_addr(), .contents = p});
  const auto sent = a.try_send_batch(txs);
  ASSERT_TRUE(sent.has_value()) << sent.error().message();
  EXPECT_EQ(*sent, txs.size());
  EXPECT_EQ(a.stats().send_calls, 1U);
  EXPECT_EQ(a.stats().messages_sent, UdpSocket::kBatchMax);
  EXPECT_EQ(a.stats().datagrams_sent, UdpSocket::kBatchMax);

  run(io, [&]() -> asio::awaitable<void> {
    const auto got = co_await receive(b, payloads.size());
    EXPECT_EQ(got.size(), payloads.size());
    for (std::size_t i = 0; i < got.size() && i < payloads.size(); ++i) {
      EXPECT_EQ(got[i].data, payloads[i]) << "datagram " << i;
      EXPECT_EQ(got[i].source, a.local_addr());
      P2P_CO_ASSERT(got[i].destination.has_value());
      EXPECT_EQ(*got[i].destination, b.local_addr());  // pktinfo: 127.0.0.1 and the socket's port
    }
  });
  EXPECT_EQ(b.stats().datagrams_received, UdpSocket::kBatchMax);
  EXPECT_LE(b.stats().receive_calls, 4U);  // batched, not one call per datagram
}

TEST(UdpSocket, SendsMoreTransmitsThanOneSystemCallCarries) {
  asio::io_context io;
  auto a = bind_or_die(io, SocketAddr::v4_loopback());
  auto b = bind_or_die(io, SocketAddr::v4_loopback());
  const Bytes p = pattern(200);
  std::vector<Transmit> txs(100, Transmit{.destination = b.local_addr(), .contents = p});
  run(io, [&]() -> asio::awaitable<void> {
    co_await send_all(a, txs);
    const auto got = co_await receive(b, txs.size());
    EXPECT_EQ(got.size(), 100U);
  });
  EXPECT_EQ(a.stats().send_calls, 4U);  // 32 + 32 + 32 + 4
  EXPECT_EQ(a.stats().datagrams_sent, 100U);
}

TEST(UdpSocket, GsoSendArrivesAsSeparateDatagrams) {
  asio::io_context io;
  auto a = bind_or_die(io, SocketAddr::v4_loopback());
  if (a.gso_segments_max() <= 1) GTEST_SKIP() << "this kernel has no UDP GSO";
  auto b = bind_or_die(io, SocketAddr::v4_loopback(), {.gro = false});
  const Bytes p = pattern(12500);
  const std::array txs{Transmit{.destination = b.local_addr(), .contents = p, .segment_size = 1200}};
  ASSERT_EQ(a.try_send_batch(txs).value_or(0), 1U);
  EXPECT_EQ(a.stats().send_calls, 1U);
  EXPECT_EQ(a.stats().messages_sent, 1U);    // one GSO message...
  EXPECT_EQ(a.stats().datagrams_sent, 11U);  // ...of eleven datagrams
  run(io, [&]() -> asio::awaitable<void> {
    const auto got = co_await receive(b, 11);
    P2P_CO_ASSERT_EQ(got.size(), 11U);
    for (std::size_t i = 0; i < 11; ++i) {
      const std::size_t len = i < 10 ? 1200 : 500;
      EXPECT_EQ(got[i].data, Bytes(p.begin() + static_cast<std::ptrdiff_t>(i * 1200),
                                   p.begin() + static_cast<std::ptrdiff_t>(i * 1200 + len)))
          << "segment " << i;
    }
  });
  EXPECT_EQ(b.stats().messages_received, 11U);
}

TEST(UdpSocket, SplitsSegmentedTransmitWhenGsoIsOff) {
  asio::io_context io;
  auto a = bind_or_die(io, SocketAddr::v4_loopback(), {.gso = false});
  ASSERT_EQ(a.gso_segments_max(), 1U);
  auto b = bind_or_die(io, SocketAddr::v4_loopback(), {.gro = false});
  const Bytes p = pattern(12500);
  const std::array txs{Transmit{.destination = b.local_addr(), .contents = p, .segment_size = 1200}};
  ASSERT_EQ(a.try_send_batch(txs).value_or(0), 1U);
  EXPECT_EQ(a.stats().messages_sent, 11U);
  EXPECT_EQ(a.stats().send_calls, 1U);
  run(io, [&]() -> asio::awaitable<void> {
    const auto got = co_await receive(b, 11);
    P2P_CO_ASSERT_EQ(got.size(), 11U);
    Bytes joined;
    for (const auto& g : got) joined.insert(joined.end(), g.data.begin(), g.data.end());
    EXPECT_EQ(joined, p);
    EXPECT_EQ(got.back().data.size(), 500U);
  });
}

TEST(UdpSocket, ChunksGsoTransmitsBySegmentCountAndSize) {
  asio::io_context io;
  auto a = bind_or_die(io, SocketAddr::v4_loopback());
  if (a.gso_segments_max() <= 1) GTEST_SKIP() << "this kernel has no UDP GSO";
  auto b = bind_or_die(io, SocketAddr::v4_loopback(), {.gro = false, .receive_buffer_bytes = 1 << 20});
  // 100 segments of 600 bytes exceed the 64 segments of one send; 60 segments of 1400 bytes exceed
  // the 65507 bytes of one IPv4 datagram (46 fit).
  const Bytes small = pattern(100 * 600, 1);
  const Bytes big = pattern(60 * 1400, 2);
  const std::array txs{Transmit{.destination = b.local_addr(), .contents = small, .segment_size = 600},
                       Transmit{.destination = b.local_addr(), .contents = big, .segment_size = 1400}};
  ASSERT_EQ(a.try_send_batch(txs).value_or(0), 2U);
  EXPECT_EQ(a.stats().messages_sent, 4U);  // 64 + 36, 46 + 14
  EXPECT_EQ(a.stats().datagrams_sent, 160U);
  run(io, [&]() -> asio::awaitable<void> {
    const auto got = co_await receive(b, 160);
    P2P_CO_ASSERT_EQ(got.size(), 160U);
    Bytes joined_small;
    Bytes joined_big;
    for (std::size_t i = 0; i < 100; ++i)
      joined_small.insert(joined_small.end(), got[i].data.begin(), got[i].data.end());
    for (std::size_t i = 100; i < 160; ++i) joined_big.insert(joined_big.end(), got[i].data.begin(), got[i].data.end());
    EXPECT_EQ(joined_small, small);
    EXPECT_EQ(joined_big, big);
  });
}

TEST(UdpSocket, GroReceiveSplitsCoalescedRunIntoSegments) {
  asio::io_context io;
  auto a = bind_or_die(io, SocketAddr::v4_loopback());
  auto b = bind_or_die(io, SocketAddr::v4_loopback());
  if (a.gso_segments_max() <= 1 || !b.gro_enabled()) GTEST_SKIP() << "this kernel has no UDP GSO or GRO";
  const Bytes p = pattern(12500);
  const std::array txs{Transmit{.destination = b.local_addr(), .contents = p, .segment_size = 1200}};
  ASSERT_EQ(a.try_send_batch(txs).value_or(0), 1U);
  run(io, [&]() -> asio::awaitable<void> {
    RecvBuffers bufs(4, 65536);
    const auto got = co_await receive(b, 11, bufs);
    P2P_CO_ASSERT_EQ(got.size(), 11U);
    for (std::size_t i = 0; i < 11; ++i) {
      const std::size_t len = i < 10 ? 1200 : 500;
      EXPECT_EQ(got[i].data.size(), len);
      EXPECT_EQ(got[i].data, Bytes(p.begin() + static_cast<std::ptrdiff_t>(i * 1200),
                                   p.begin() + static_cast<std::ptrdiff_t>(i * 1200 + len)));
      EXPECT_EQ(got[i].source, a.local_addr());
    }
    // The kernel handed the run over coalesced: one buffer, stride 1200.
    EXPECT_EQ(bufs.meta(0).length, 12500U);
    EXPECT_EQ(bufs.meta(0).stride, 1200U);
    EXPECT_TRUE(bufs.meta(0).coalesced());
  });
  EXPECT_EQ(b.stats().messages_received, 1U);
  EXPECT_EQ(b.stats().datagrams_received, 11U);
}

TEST(UdpSocket, GroReceiverSeesPlainDatagramAsOneSegment) {
  asio::io_context io;
  auto a = bind_or_die(io, SocketAddr::v4_loopback());
  auto b = bind_or_die(io, SocketAddr::v4_loopback());
  if (!b.gro_enabled()) GTEST_SKIP() << "this kernel has no UDP GRO";
  const Bytes p = pattern(700);
  const std::array txs{Transmit{.destination = b.local_addr(), .contents = p}};
  ASSERT_EQ(a.try_send_batch(txs).value_or(0), 1U);
  run(io, [&]() -> asio::awaitable<void> {
    RecvBuffers bufs(1, 65536);
    const auto got = co_await receive(b, 1, bufs);
    P2P_CO_ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(got[0].data, p);
    EXPECT_EQ(bufs.meta(0).stride, 700U);
    EXPECT_FALSE(bufs.meta(0).coalesced());
  });
}

TEST(UdpSocket, TruncatedDatagramIsFlaggedWithoutOverflow) {
  asio::io_context io;
  auto a = bind_or_die(io, SocketAddr::v4_loopback());
  auto b = bind_or_die(io, SocketAddr::v4_loopback(), {.gro = false});
  const Bytes big = pattern(500);
  const Bytes small = pattern(50, 9);
  const std::array txs{Transmit{.destination = b.local_addr(), .contents = big},
                       Transmit{.destination = b.local_addr(), .contents = small}};
  ASSERT_EQ(a.try_send_batch(txs).value_or(0), 2U);
  // Two 100-byte buffers inside one array with canaries after each: nothing may be written past 100.
  std::array<std::byte, 400> arena{};
  arena.fill(std::byte{0xAA});
  const std::array<std::span<std::byte>, 2> views{std::span<std::byte>(arena).subspan(0, 100),
                                                  std::span<std::byte>(arena).subspan(200, 100)};
  std::array<RecvMeta, 2> metas{};
  run(io, [&]() -> asio::awaitable<void> {
    std::size_t filled = 0;
    while (filled < 2) {
      auto r = b.try_receive_batch(std::span(views).subspan(filled), std::span(metas).subspan(filled));
      P2P_CO_ASSERT(r.has_value());
      if (*r == 0) {
        P2P_CO_ASSERT((co_await b.wait_readable()).has_value());
        continue;
      }
      filled += *r;
    }
  });
  EXPECT_TRUE(metas[0].truncated);
  EXPECT_EQ(metas[0].length, 100U);
  EXPECT_TRUE(Segments(views[0], metas[0]).empty());
  EXPECT_EQ(Bytes(arena.begin(), arena.begin() + 100), Bytes(big.begin(), big.begin() + 100));
  EXPECT_FALSE(metas[1].truncated);
  EXPECT_EQ(metas[1].length, 50U);
  ASSERT_EQ(Segments(views[1], metas[1]).size(), 1U);
  EXPECT_EQ(Bytes(arena.begin() + 200, arena.begin() + 250), small);
  for (std::size_t i = 100; i < 200; ++i) EXPECT_EQ(arena[i], std::byte{0xAA}) << "overflow at " << i;
  for (std::size_t i = 300; i < 400; ++i) EXPECT_EQ(arena[i], std::byte{0xAA}) << "overflow at " << i;
  EXPECT_EQ(b.stats().truncated_received, 1U);
}

TEST(UdpSocket, TruncatedGroRunKeepsOnlyWholeSegments) {
  asio::io_context io;
  auto a = bind_or_die(io, SocketAddr::v4_loopback());
  auto b = bind_or_die(io, SocketAddr::v4_loopback());
  if (a.gso_segments_max() <= 1 || !b.gro_enabled()) GTEST_SKIP() << "this kernel has no UDP GSO or GRO";
  const Bytes p = pattern(12500);
  const std::array txs{Transmit{.destination = b.local_addr(), .contents = p, .segment_size = 1200}};
  ASSERT_EQ(a.try_send_batch(txs).value_or(0), 1U);
  RecvBuffers bufs(1, 3000);
  run(io, [&]() -> asio::awaitable<void> {
    while (true) {
      auto r = b.try_receive_batch(bufs.buffers(), bufs.metas());
      P2P_CO_ASSERT(r.has_value());
      if (*r == 1) break;
      P2P_CO_ASSERT((co_await b.wait_readable()).has_value());
    }
  });
  const auto& m = bufs.meta(0);
  EXPECT_TRUE(m.truncated);
  EXPECT_EQ(m.length, 3000U);
  EXPECT_EQ(m.stride, 1200U);
  const auto segs = bufs.segments(0);
  ASSERT_EQ(segs.size(), 2U);
  EXPECT_EQ(Bytes(segs[1].begin(), segs[1].end()), Bytes(p.begin() + 1200, p.begin() + 2400));
}

TEST(UdpSocket, OversizedDatagramIsDroppedAndTheBatchGoesOn) {
  asio::io_context io;
  auto a = bind_or_die(io, SocketAddr::v4_loopback());
  auto b = bind_or_die(io, SocketAddr::v4_loopback());
  const Bytes huge = pattern(70000);
  const Bytes fine = pattern(64, 3);
  const std::array txs{Transmit{.destination = b.local_addr(), .contents = huge},
                       Transmit{.destination = b.local_addr(), .contents = fine}};
  const auto r = a.try_send_batch(txs);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(*r, 2U);
  EXPECT_EQ(a.stats().datagrams_dropped, 1U);
  EXPECT_EQ(a.stats().datagrams_sent, 1U);
  run(io, [&]() -> asio::awaitable<void> {
    const auto got = co_await receive(b, 1);
    P2P_CO_ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(got[0].data, fine);
  });
}

TEST(UdpSocket, WildcardSocketReportsAndAnswersFromTheAddressItWasReachedAt) {
  asio::io_context io;
  auto server = bind_or_die(io, SocketAddr::v4_any());
  auto client = bind_or_die(io, SocketAddr::v4_loopback());
  // 127.0.0.2 is a second local address (all of 127.0.0.0/8 is loopback).
  const SocketAddr second = SocketAddr::v4({127, 0, 0, 2}, server.local_addr().port());
  const Bytes ping = to_bytes("ping");
  const Bytes pong = to_bytes("pong");
  const std::array out{Transmit{.destination = second, .contents = ping}};
  ASSERT_EQ(client.try_send_batch(out).value_or(0), 1U);
  run(io, [&]() -> asio::awaitable<void> {
    const auto got = co_await receive(server, 1);
    P2P_CO_ASSERT_EQ(got.size(), 1U);
    P2P_CO_ASSERT(got[0].destination.has_value());
    EXPECT_EQ(*got[0].destination, second);
    EXPECT_EQ(got[0].source, client.local_addr());
    // Answer from the address the request was sent to, and once without choosing: the kernel then
    // picks 127.0.0.1, which a NAT or a QUIC path check would not accept as the same peer.
    const std::array replies{Transmit{.destination = got[0].source, .contents = pong, .source = got[0].destination},
                             Transmit{.destination = got[0].source, .contents = pong}};
    P2P_CO_ASSERT_EQ(server.try_send_batch(replies).value_or(0), 2U);
    const auto back = co_await receive(client, 2);
    P2P_CO_ASSERT_EQ(back.size(), 2U);
    EXPECT_EQ(back[0].source, second);
    EXPECT_EQ(back[1].source, SocketAddr::v4_loopback(server.local_addr().port()));
  });
}

TEST(UdpSocket, DualStackSocketSeesIpv4PeersAsIpv4) {
  if (!ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback on this machine";
  asio::io_context io;
  auto server = bind_or_die(io, SocketAddr::v6_any());
  ASSERT_TRUE(server.is_dual_stack());
  auto client4 = bind_or_die(io, SocketAddr::v4_loopback());
  auto client6 = bind_or_die(io, SocketAddr::v6_loopback());
  const std::uint16_t port = server.local_addr().port();
  const Bytes hello = to_bytes("hello");
  ASSERT_EQ(
      client4.try_send_batch(std::array{Transmit{.destination = SocketAddr::v4_loopback(port), .contents = hello}})
          .value_or(0),
      1U);
  ASSERT_EQ(
      client6.try_send_batch(std::array{Transmit{.destination = SocketAddr::v6_loopback(port), .contents = hello}})
          .value_or(0),
      1U);
  run(io, [&]() -> asio::awaitable<void> {
    auto got = co_await receive(server, 2);
    P2P_CO_ASSERT_EQ(got.size(), 2U);
    std::ranges::sort(got, {}, &Got::source);        // IPv4 first
    EXPECT_EQ(got[0].source, client4.local_addr());  // 127.0.0.1:p, not [::ffff:127.0.0.1]:p
    P2P_CO_ASSERT(got[0].destination.has_value());
    EXPECT_EQ(*got[0].destination, SocketAddr::v4_loopback(port));
    EXPECT_EQ(got[1].source, client6.local_addr());
    P2P_CO_ASSERT(got[1].destination.has_value());
    EXPECT_EQ(*got[1].destination, SocketAddr::v6_loopback(port));
    // Replies to both, from the addresses they reached, through the one dual-stack socket.
    const std::array replies{Transmit{.destination = got[0].source, .contents = hello, .source = got[0].destination},
                             Transmit{.destination = got[1].source, .contents = hello, .source = got[1].destination}};
    P2P_CO_ASSERT_EQ(server.try_send_batch(replies).value_or(0), 2U);
    EXPECT_EQ(server.stats().datagrams_dropped, 0U);
    const auto r4 = co_await receive(client4, 1);
    const auto r6 = co_await receive(client6, 1);
    EXPECT_EQ(r4.at(0).source, SocketAddr::v4_loopback(port));
    EXPECT_EQ(r6.at(0).source, SocketAddr::v6_loopback(port));
  });
}

TEST(UdpSocket, DropsDestinationsOfTheWrongFamily) {
  if (!ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback on this machine";
  asio::io_context io;
  auto v4 = bind_or_die(io, SocketAddr::v4_loopback());
  auto v6only = bind_or_die(io, SocketAddr::v6_loopback(), {.v6_only = true});
  const Bytes p = to_bytes("x");
  const auto r1 = v4.try_send_batch(std::array{Transmit{.destination = v6only.local_addr(), .contents = p}});
  ASSERT_TRUE(r1.has_value());
  EXPECT_EQ(*r1, 1U);
  EXPECT_EQ(v4.stats().datagrams_dropped, 1U);
  const auto r2 = v6only.try_send_batch(std::array{Transmit{.destination = v4.local_addr(), .contents = p}});
  ASSERT_TRUE(r2.has_value());
  EXPECT_EQ(*r2, 1U);
  EXPECT_EQ(v6only.stats().datagrams_dropped, 1U);
  // A source of the other family than the destination is dropped too.
  const auto r3 = v4.try_send_batch(
      std::array{Transmit{.destination = v4.local_addr(), .contents = p, .source = SocketAddr::v6_loopback()}});
  ASSERT_TRUE(r3.has_value());
  EXPECT_EQ(v4.stats().datagrams_dropped, 2U);
  EXPECT_EQ(v4.stats().send_calls, 0U);  // all refused before any system call
}

TEST(UdpSocket, AcceptsV4MappedDestinationOnIpv4Socket) {
  asio::io_context io;
  auto a = bind_or_die(io, SocketAddr::v4_loopback());
  auto b = bind_or_die(io, SocketAddr::v4_loopback());
  const Bytes p = to_bytes("mapped");
  ASSERT_EQ(
      a.try_send_batch(std::array{Transmit{.destination = b.local_addr().to_v6_mapped(), .contents = p}}).value_or(0),
      1U);
  run(io, [&]() -> asio::awaitable<void> {
    const auto got = co_await receive(b, 1);
    EXPECT_EQ(got.at(0).data, p);
  });
}

TEST(UdpSocket, CarriesEcnMarks) {
  asio::io_context io;
  auto a = bind_or_die(io, SocketAddr::v4_loopback());
  auto b = bind_or_die(io, SocketAddr::v4_loopback());
  const Bytes p = to_bytes("ecn");
  const std::array txs{Transmit{.destination = b.local_addr(), .contents = p, .ecn = Ecn::ect0},
                       Transmit{.destination = b.local_addr(), .contents = p, .ecn = Ecn::ect1},
                       Transmit{.destination = b.local_addr(), .contents = p}};
  ASSERT_EQ(a.try_send_batch(txs).value_or(0), 3U);
  run(io, [&]() -> asio::awaitable<void> {
    const auto got = co_await receive(b, 3);
    P2P_CO_ASSERT_EQ(got.size(), 3U);
    EXPECT_EQ(got[0].ecn, Ecn::ect0);
    EXPECT_EQ(got[1].ecn, Ecn::ect1);
    EXPECT_EQ(got[2].ecn, Ecn::not_ect);
  });
}

TEST(UdpSocket, CarriesEcnMarksOverIpv6) {
  if (!ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback on this machine";
  asio::io_context io;
  auto a = bind_or_die(io, SocketAddr::v6_loopback());
  auto b = bind_or_die(io, SocketAddr::v6_loopback());
  const Bytes p = to_bytes("ecn6");
  const std::array txs{Transmit{.destination = b.local_addr(), .contents = p, .ecn = Ecn::ect1},
                       Transmit{.destination = b.local_addr(), .contents = p, .ecn = Ecn::ce}};
  ASSERT_EQ(a.try_send_batch(txs).value_or(0), 2U);
  run(io, [&]() -> asio::awaitable<void> {
    const auto got = co_await receive(b, 2);
    P2P_CO_ASSERT_EQ(got.size(), 2U);
    EXPECT_EQ(got[0].ecn, Ecn::ect1);
    EXPECT_EQ(got[1].ecn, Ecn::ce);
  });
}

TEST(UdpSocket, WaitReadableCompletesWhileDatagramsRemainQueued) {
  asio::io_context io;
  auto a = bind_or_die(io, SocketAddr::v4_loopback());
  auto b = bind_or_die(io, SocketAddr::v4_loopback());
  const Bytes p = pattern(10);
  const std::array txs{Transmit{.destination = b.local_addr(), .contents = p},
                       Transmit{.destination = b.local_addr(), .contents = p},
                       Transmit{.destination = b.local_addr(), .contents = p}};
  ASSERT_EQ(a.try_send_batch(txs).value_or(0), 3U);
  run(io, [&]() -> asio::awaitable<void> {
    RecvBuffers one(1, 64);
    std::size_t received = 0;
    // Take one datagram per wakeup: each wait must see the ones still queued, not only new arrivals.
    while (received < 3) {
      P2P_CO_ASSERT((co_await b.wait_readable()).has_value());
      auto r = b.try_receive_batch(one.buffers(), one.metas());
      P2P_CO_ASSERT(r.has_value());
      received += *r;
    }
  });
}

TEST(UdpSocket, WaitWritableCompletesWhenThereIsRoom) {
  asio::io_context io;
  auto a = bind_or_die(io, SocketAddr::v4_loopback());
  run(io, [&]() -> asio::awaitable<void> { EXPECT_TRUE((co_await a.wait_writable()).has_value()); });
}

TEST(UdpSocket, CancelEndsAPendingWait) {
  asio::io_context io;
  auto a = bind_or_die(io, SocketAddr::v4_loopback());
  std::optional<P2PResult<void>> result;
  run(io, [&]() -> asio::awaitable<void> {
    asio::post(io, [&] { a.cancel(); });  // runs once the wait below is pending
    result = co_await a.wait_readable();
  });
  ASSERT_TRUE(result.has_value());
  ASSERT_FALSE(result->has_value());
  EXPECT_EQ(result->error().code(), P2PErrc::cancelled);
  EXPECT_TRUE(a.is_open());
}

TEST(UdpSocket, CloseEndsAPendingWaitAndLaterCallsFail) {
  asio::io_context io;
  auto a = bind_or_die(io, SocketAddr::v4_loopback());
  std::optional<P2PResult<void>> result;
  run(io, [&]() -> asio::awaitable<void> {
    asio::post(io, [&] { a.close(); });  // runs once the wait below is pending
    result = co_await a.wait_readable();
  });
  ASSERT_TRUE(result.has_value());
  ASSERT_FALSE(result->has_value());
  EXPECT_EQ(result->error().code(), P2PErrc::cancelled);
  EXPECT_FALSE(a.is_open());
  RecvBuffers bufs(1, 64);
  const auto r = a.try_receive_batch(bufs.buffers(), bufs.metas());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), P2PErrc::network_error);
  const Bytes p = to_bytes("x");
  const auto s = a.try_send_batch(std::array{Transmit{.destination = SocketAddr::v4_loopback(9), .contents = p}});
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), P2PErrc::network_error);
}

TEST(UdpSocket, WaitLosingARaceIsCancelledAndTheSocketStaysUsable) {
  asio::io_context io;
  AsioEnv env(io.get_executor());
  auto a = bind_or_die(io, SocketAddr::v4_loopback());
  auto b = bind_or_die(io, SocketAddr::v4_loopback());
  run(io, [&]() -> asio::awaitable<void> {
    auto timer = env.make_timer();
    // Nothing was sent, so the timer wins and the wait is cancelled.
    const auto first = co_await (b.wait_readable() || timer.wait_until(env.now() + 1ms));
    EXPECT_EQ(first.index(), 1U);
    const Bytes p = to_bytes("after");
    EXPECT_EQ(a.try_send_batch(std::array{Transmit{.destination = b.local_addr(), .contents = p}}).value_or(0), 1U);
    const auto got = co_await receive(b, 1);
    EXPECT_EQ(got.at(0).data, p);
  });
}

TEST(UdpSocket, MovedSocketKeepsItsStateAndWorks) {
  asio::io_context io;
  auto a = bind_or_die(io, SocketAddr::v4_loopback());
  auto b = bind_or_die(io, SocketAddr::v4_loopback());
  const auto addr = b.local_addr();
  UdpSocket moved = std::move(b);
  EXPECT_EQ(moved.local_addr(), addr);
  const Bytes p = to_bytes("moved");
  ASSERT_EQ(a.try_send_batch(std::array{Transmit{.destination = addr, .contents = p}}).value_or(0), 1U);
  run(io, [&]() -> asio::awaitable<void> {
    const auto got = co_await receive(moved, 1);
    EXPECT_EQ(got.at(0).data, p);
  });
}

TEST(UdpSocket, EmptyDatagramIsDelivered) {
  asio::io_context io;
  auto a = bind_or_die(io, SocketAddr::v4_loopback());
  auto b = bind_or_die(io, SocketAddr::v4_loopback());
  ASSERT_EQ(a.try_send_batch(std::array{Transmit{.destination = b.local_addr()}}).value_or(0), 1U);
  run(io, [&]() -> asio::awaitable<void> {
    const auto got = co_await receive(b, 1);
    P2P_CO_ASSERT_EQ(got.size(), 1U);
    EXPECT_TRUE(got[0].data.empty());
  });
}

}  // namespace
}  // namespace moosicbox::p2p::env
