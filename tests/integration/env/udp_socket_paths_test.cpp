// SPDX-License-Identifier: MIT OR Apache-2.0
// udp_socket_paths_test.cpp: UdpSocket's two I/O paths on real loopback sockets (127.0.0.0/8 and
// ::1 only). The same behaviour on the fast and the portable path (single datagrams, batches, split
// transmits, IPv4, IPv6, dual-stack, packet info, truncation, oversized datagrams, ECN, and the two
// paths talking to each other), what the portable path does per system call, the build's default
// path, and the run-time fallbacks, made deterministic by faking the kernel's refusals
// (detail::UdpFaults). Nothing sleeps; io_context::run_for only guards against a hang.
#include <errno.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>

#include "env/udp_socket_faults.hpp"
#include "integration/env/udp_test_support.hpp"
#include "moosicbox/p2p/env/udp_socket.hpp"

namespace moosicbox::p2p::env {
namespace {

using test::bind_or_die;
using test::Got;
using test::ipv6_loopback_available;
using test::pattern;
using test::receive;
using test::run;
using test::send_all;

std::string path_name(const testing::TestParamInfo<UdpIoPath>& param) {
  return param.param == UdpIoPath::fast ? "Fast" : "Portable";
}

// Both paths must behave the same towards the caller; only the system calls differ.
class UdpIoPaths : public testing::TestWithParam<UdpIoPath> {
 protected:
  UdpSocket bind(const SocketAddr& addr, UdpSocketOptions options = {}) {
    return bind_or_die(io, addr, options, GetParam());
  }
  [[nodiscard]] bool portable() const { return GetParam() == UdpIoPath::portable; }

  asio::io_context io;
};

TEST_P(UdpIoPaths, ReportsThePathInUse) {
  auto s = bind(SocketAddr::v4_loopback());
  EXPECT_EQ(s.io_path(), GetParam());
  EXPECT_EQ(s.send_batching_enabled(), !portable());
  EXPECT_EQ(s.receive_batching_enabled(), !portable());
  if (portable()) {
    EXPECT_FALSE(s.gso_enabled());
    EXPECT_FALSE(s.gro_enabled());
    EXPECT_EQ(s.gso_segments_max(), 1U);
  }
  EXPECT_EQ(s.gso_enabled(), s.gso_segments_max() > 1);
  // The portable path asked for nothing it could be refused.
  if (portable()) {
    EXPECT_EQ(s.stats().gso_fallbacks, 0U);
    EXPECT_EQ(s.stats().gro_fallbacks, 0U);
  }
  EXPECT_EQ(s.stats().batch_fallbacks, 0U);
}

TEST_P(UdpIoPaths, SendsAndReceivesOneDatagram) {
  auto a = bind(SocketAddr::v4_loopback());
  auto b = bind(SocketAddr::v4_loopback());
  const Bytes p = pattern(333);
  ASSERT_EQ(a.try_send_batch(std::array{Transmit{.destination = b.local_addr(), .contents = p}}).value_or(0), 1U);
  EXPECT_EQ(a.stats().send_calls, 1U);
  run(io, [&]() -> asio::awaitable<void> {
    const auto got = co_await receive(b, 1);
    P2P_CO_ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(got[0].data, p);
    EXPECT_EQ(got[0].source, a.local_addr());
    P2P_CO_ASSERT(got[0].destination.has_value());
    EXPECT_EQ(*got[0].destination, b.local_addr());
  });
  EXPECT_EQ(b.stats().datagrams_received, 1U);
}

TEST_P(UdpIoPaths, SendsAndReceivesABatch) {
  auto a = bind(SocketAddr::v4_loopback());
  auto b = bind(SocketAddr::v4_loopback());
  std::vector<Bytes> payloads;
  std::vector<Transmit> txs;
  for (std::size_t i = 0; i < 40; ++i) payloads.push_back(pattern(50 + i, static_cast<std::uint8_t>(i)));
  for (const auto& p : payloads) txs.push_back(Transmit{.destination = b.local_addr(), .contents = p});
  run(io, [&]() -> asio::awaitable<void> {
    co_await send_all(a, txs);
    const auto got = co_await receive(b, payloads.size());
    P2P_CO_ASSERT_EQ(got.size(), payloads.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].data, payloads[i]) << "datagram " << i;
      P2P_CO_ASSERT(got[i].destination.has_value());
      EXPECT_EQ(*got[i].destination, b.local_addr());
    }
  });
  EXPECT_EQ(a.stats().datagrams_sent, 40U);
  EXPECT_EQ(a.stats().messages_sent, 40U);
  if (portable()) {
    EXPECT_EQ(a.stats().send_calls, 40U);  // one sendmsg per datagram
    EXPECT_GE(b.stats().receive_calls, 40U);
  } else {
    EXPECT_EQ(a.stats().send_calls, 2U);  // 32 + 8
  }
}

TEST_P(UdpIoPaths, SegmentedTransmitArrivesAsItsDatagrams) {
  auto a = bind(SocketAddr::v4_loopback());
  auto b = bind(SocketAddr::v4_loopback(), {.gro = false});
  const Bytes p = pattern(12500);
  ASSERT_EQ(a.try_send_batch(std::array{Transmit{.destination = b.local_addr(), .contents = p, .segment_size = 1200}})
                .value_or(0),
            1U);
  EXPECT_EQ(a.stats().datagrams_sent, 11U);
  if (portable()) {
    EXPECT_EQ(a.stats().send_calls, 11U);
    EXPECT_EQ(a.stats().messages_sent, 11U);
  }
  run(io, [&]() -> asio::awaitable<void> {
    const auto got = co_await receive(b, 11);
    P2P_CO_ASSERT_EQ(got.size(), 11U);
    Bytes joined;
    for (const auto& g : got) joined.insert(joined.end(), g.data.begin(), g.data.end());
    EXPECT_EQ(joined, p);
    EXPECT_EQ(got.front().data.size(), 1200U);
    EXPECT_EQ(got.back().data.size(), 500U);
  });
}

TEST_P(UdpIoPaths, CarriesIpv6WithPacketInfo) {
  if (!ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback on this machine";
  auto a = bind(SocketAddr::v6_loopback(), {.v6_only = true});
  auto b = bind(SocketAddr::v6_loopback(), {.v6_only = true});
  const Bytes one = pattern(100, 1);
  const Bytes two = pattern(1400, 2);
  const std::array txs{Transmit{.destination = b.local_addr(), .contents = one},
                       Transmit{.destination = b.local_addr(), .contents = two}};
  ASSERT_EQ(a.try_send_batch(txs).value_or(0), 2U);
  run(io, [&]() -> asio::awaitable<void> {
    const auto got = co_await receive(b, 2);
    P2P_CO_ASSERT_EQ(got.size(), 2U);
    EXPECT_EQ(got[0].data, one);
    EXPECT_EQ(got[1].data, two);
    EXPECT_EQ(got[0].source, a.local_addr());
    P2P_CO_ASSERT(got[0].destination.has_value());
    EXPECT_EQ(*got[0].destination, b.local_addr());
  });
}

TEST_P(UdpIoPaths, DualStackSocketServesBothFamilies) {
  if (!ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback on this machine";
  auto server = bind(SocketAddr::v6_any());
  ASSERT_TRUE(server.is_dual_stack());
  auto client4 = bind(SocketAddr::v4_loopback());
  auto client6 = bind(SocketAddr::v6_loopback());
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
    std::ranges::sort(got, {}, &Got::source);  // IPv4 first
    EXPECT_EQ(got[0].source, client4.local_addr());
    P2P_CO_ASSERT(got[0].destination.has_value());
    EXPECT_EQ(*got[0].destination, SocketAddr::v4_loopback(port));
    EXPECT_EQ(got[1].source, client6.local_addr());
    P2P_CO_ASSERT(got[1].destination.has_value());
    EXPECT_EQ(*got[1].destination, SocketAddr::v6_loopback(port));
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

TEST_P(UdpIoPaths, WildcardSocketAnswersFromTheAddressItWasReachedAt) {
  auto server = bind(SocketAddr::v4_any());
  auto client = bind(SocketAddr::v4_loopback());
  const SocketAddr second = SocketAddr::v4({127, 0, 0, 2}, server.local_addr().port());
  const Bytes ping = to_bytes("ping");
  ASSERT_EQ(client.try_send_batch(std::array{Transmit{.destination = second, .contents = ping}}).value_or(0), 1U);
  run(io, [&]() -> asio::awaitable<void> {
    const auto got = co_await receive(server, 1);
    P2P_CO_ASSERT_EQ(got.size(), 1U);
    P2P_CO_ASSERT(got[0].destination.has_value());
    EXPECT_EQ(*got[0].destination, second);
    const std::array reply{Transmit{.destination = got[0].source, .contents = ping, .source = got[0].destination}};
    P2P_CO_ASSERT_EQ(server.try_send_batch(reply).value_or(0), 1U);
    const auto back = co_await receive(client, 1);
    P2P_CO_ASSERT_EQ(back.size(), 1U);
    EXPECT_EQ(back[0].source, second);
  });
}

TEST_P(UdpIoPaths, TruncatedDatagramIsFlaggedWithoutOverflow) {
  auto a = bind(SocketAddr::v4_loopback());
  auto b = bind(SocketAddr::v4_loopback(), {.gro = false});
  const Bytes big = pattern(500);
  const Bytes small = pattern(50, 9);
  ASSERT_EQ(a.try_send_batch(std::array{Transmit{.destination = b.local_addr(), .contents = big},
                                        Transmit{.destination = b.local_addr(), .contents = small}})
                .value_or(0),
            2U);
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
        auto w = co_await b.wait_readable();
        P2P_CO_ASSERT(w.has_value());
        continue;
      }
      filled += *r;
    }
  });
  EXPECT_TRUE(metas[0].truncated);
  EXPECT_EQ(metas[0].length, 100U);
  EXPECT_TRUE(Segments(views[0], metas[0]).empty());
  EXPECT_FALSE(metas[1].truncated);
  EXPECT_EQ(Bytes(arena.begin() + 200, arena.begin() + 250), small);
  for (std::size_t i = 100; i < 200; ++i) EXPECT_EQ(arena[i], std::byte{0xAA}) << "overflow at " << i;
  for (std::size_t i = 300; i < 400; ++i) EXPECT_EQ(arena[i], std::byte{0xAA}) << "overflow at " << i;
  EXPECT_EQ(b.stats().truncated_received, 1U);
}

TEST_P(UdpIoPaths, OversizedDatagramIsDroppedAndTheBatchGoesOn) {
  auto a = bind(SocketAddr::v4_loopback());
  auto b = bind(SocketAddr::v4_loopback());
  const Bytes huge = pattern(70000);
  const Bytes fine = pattern(64, 3);
  const auto r = a.try_send_batch(std::array{Transmit{.destination = b.local_addr(), .contents = huge},
                                             Transmit{.destination = b.local_addr(), .contents = fine}});
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

TEST_P(UdpIoPaths, CarriesEcnMarksOverBothFamilies) {
  auto a = bind(SocketAddr::v4_loopback());
  auto b = bind(SocketAddr::v4_loopback());
  const Bytes p = to_bytes("ecn");
  ASSERT_EQ(a.try_send_batch(std::array{Transmit{.destination = b.local_addr(), .contents = p, .ecn = Ecn::ect0},
                                        Transmit{.destination = b.local_addr(), .contents = p, .ecn = Ecn::ce},
                                        Transmit{.destination = b.local_addr(), .contents = p}})
                .value_or(0),
            3U);
  run(io, [&]() -> asio::awaitable<void> {
    const auto got = co_await receive(b, 3);
    P2P_CO_ASSERT_EQ(got.size(), 3U);
    EXPECT_EQ(got[0].ecn, Ecn::ect0);
    EXPECT_EQ(got[1].ecn, Ecn::ce);
    EXPECT_EQ(got[2].ecn, Ecn::not_ect);
  });
  if (!ipv6_loopback_available()) return;
  auto a6 = bind(SocketAddr::v6_loopback());
  auto b6 = bind(SocketAddr::v6_loopback());
  ASSERT_EQ(a6.try_send_batch(std::array{Transmit{.destination = b6.local_addr(), .contents = p, .ecn = Ecn::ect1}})
                .value_or(0),
            1U);
  run(io, [&]() -> asio::awaitable<void> {
    const auto got = co_await receive(b6, 1);
    P2P_CO_ASSERT_EQ(got.size(), 1U);
    EXPECT_EQ(got[0].ecn, Ecn::ect1);
  });
}

// A portable socket and a fast one talk to each other (GSO out, plain in; plain out, GRO in).
TEST_P(UdpIoPaths, TalksToASocketOnTheOtherPath) {
  const UdpIoPath other = portable() ? UdpIoPath::fast : UdpIoPath::portable;
  auto a = bind(SocketAddr::v4_loopback());
  auto b = bind_or_die(io, SocketAddr::v4_loopback(), {}, other);
  const Bytes p = pattern(6000);
  const std::array txs{Transmit{.destination = b.local_addr(), .contents = p, .segment_size = 1000}};
  run(io, [&]() -> asio::awaitable<void> {
    co_await send_all(a, txs);
    auto got = co_await receive(b, 6);
    P2P_CO_ASSERT_EQ(got.size(), 6U);
    const std::array back{Transmit{.destination = a.local_addr(), .contents = p, .segment_size = 1000}};
    co_await send_all(b, back);
    got = co_await receive(a, 6);
    P2P_CO_ASSERT_EQ(got.size(), 6U);
    Bytes joined;
    for (const auto& g : got) joined.insert(joined.end(), g.data.begin(), g.data.end());
    EXPECT_EQ(joined, p);
  });
}

INSTANTIATE_TEST_SUITE_P(Paths, UdpIoPaths, testing::Values(UdpIoPath::fast, UdpIoPath::portable), path_name);

// --- the build's default ---

TEST(UdpIoPathDefault, AutomaticIsTheBuildsChoice) {
#if MOOSICBOX_P2P_TEST_PORTABLE_SOCKETS
  EXPECT_EQ(UdpSocket::default_io_path(), UdpIoPath::portable);
#else
  EXPECT_EQ(UdpSocket::default_io_path(), UdpIoPath::fast);
#endif
  asio::io_context io;
  auto s = UdpSocket::bind(io.get_executor(), SocketAddr::v4_loopback());
  ASSERT_TRUE(s.has_value()) << s.error().message();
  EXPECT_EQ(s->io_path(), UdpSocket::default_io_path());
}

// --- run-time fallbacks ---

P2PResult<UdpSocket> bind_faulty(asio::io_context& io, const detail::UdpFaults& faults, UdpSocketOptions options = {}) {
  options.io_path = UdpIoPath::fast;
  return detail::UdpSocketAccess::bind_with_faults(io.get_executor(), SocketAddr::v4_loopback(), options, faults);
}

// The kernel refuses GSO sends the way a device without checksum offload does: every datagram
// still arrives, once and in order, and the socket stops using GSO.
class UdpGsoRefusal : public testing::TestWithParam<int> {};

TEST_P(UdpGsoRefusal, RefusedGsoSendIsResentOneByOneAndGsoStops) {
  asio::io_context io;
  auto a = bind_faulty(io, {.gso_send_errno = GetParam()});
  ASSERT_TRUE(a.has_value()) << a.error().message();
  if (!a->gso_enabled()) GTEST_SKIP() << "this kernel has no UDP GSO";
  auto b = bind_or_die(io, SocketAddr::v4_loopback(), {.gro = false, .receive_buffer_bytes = 1 << 20});
  const Bytes first = pattern(80, 1);
  const Bytes run1 = pattern(12500, 2);
  const Bytes run2 = pattern(6000, 3);
  const Bytes last = pattern(90, 4);
  const std::array txs{Transmit{.destination = b.local_addr(), .contents = first},
                       Transmit{.destination = b.local_addr(), .contents = run1, .segment_size = 1200},
                       Transmit{.destination = b.local_addr(), .contents = run2, .segment_size = 1000},
                       Transmit{.destination = b.local_addr(), .contents = last}};
  const auto r = a->try_send_batch(txs);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(*r, 4U);
  EXPECT_FALSE(a->gso_enabled());
  EXPECT_EQ(a->gso_segments_max(), 1U);
  EXPECT_EQ(a->stats().gso_fallbacks, 1U);
  EXPECT_EQ(a->stats().datagrams_sent, 1U + 11U + 6U + 1U);
  EXPECT_EQ(a->stats().datagrams_dropped, 0U);
  EXPECT_TRUE(a->send_batching_enabled());
  run(io, [&]() -> asio::awaitable<void> {
    const auto got = co_await receive(b, 19);
    P2P_CO_ASSERT_EQ(got.size(), 19U);
    Bytes joined;
    for (const auto& g : got) joined.insert(joined.end(), g.data.begin(), g.data.end());
    Bytes expected;
    for (const Bytes* p : {&first, &run1, &run2, &last}) expected.insert(expected.end(), p->begin(), p->end());
    EXPECT_EQ(joined, expected);
    EXPECT_EQ(got[0].data, first);
    EXPECT_EQ(got[18].data, last);
  });
  // Nothing arrived twice: the queue is empty now (loopback delivers during the send call).
  RecvBuffers more(4, 65536);
  EXPECT_EQ(b.try_receive_batch(more.buffers(), more.metas()).value_or(99), 0U);

  // Later transmits are split without trying GSO again: 11 messages in one sendmmsg.
  const auto calls = a->stats().send_calls;
  ASSERT_EQ(
      a->try_send_batch(std::array{Transmit{.destination = b.local_addr(), .contents = run1, .segment_size = 1200}})
          .value_or(0),
      1U);
  EXPECT_EQ(a->stats().send_calls, calls + 1);
  EXPECT_EQ(a->stats().gso_fallbacks, 1U);
  run(io, [&]() -> asio::awaitable<void> {
    const auto got = co_await receive(b, 11);
    EXPECT_EQ(got.size(), 11U);
  });
}

std::string errno_name(const testing::TestParamInfo<int>& param) {
  switch (param.param) {
    case EIO:
      return "EIO";
    case EINVAL:
      return "EINVAL";
    default:
      return "EOPNOTSUPP";
  }
}

INSTANTIATE_TEST_SUITE_P(Errors, UdpGsoRefusal, testing::Values(EIO, EINVAL, EOPNOTSUPP), errno_name);

TEST(UdpFallback, GsoRefusedAtBindSplitsTransmits) {
  asio::io_context io;
  auto a = bind_faulty(io, {.gso_option_refused = true});
  ASSERT_TRUE(a.has_value()) << a.error().message();
  EXPECT_FALSE(a->gso_enabled());
  EXPECT_EQ(a->stats().gso_fallbacks, 1U);
  EXPECT_EQ(a->io_path(), UdpIoPath::fast);
  auto b = bind_or_die(io, SocketAddr::v4_loopback(), {.gro = false});
  const Bytes p = pattern(5000);
  ASSERT_EQ(a->try_send_batch(std::array{Transmit{.destination = b.local_addr(), .contents = p, .segment_size = 1000}})
                .value_or(0),
            1U);
  EXPECT_EQ(a->stats().messages_sent, 5U);
  EXPECT_EQ(a->stats().send_calls, 1U);
  run(io, [&]() -> asio::awaitable<void> {
    const auto got = co_await receive(b, 5);
    EXPECT_EQ(got.size(), 5U);
  });
}

TEST(UdpFallback, GroRefusedAtBindReceivesOneDatagramPerBuffer) {
  asio::io_context io;
  auto b = bind_faulty(io, {.gro_option_refused = true});
  ASSERT_TRUE(b.has_value()) << b.error().message();
  EXPECT_FALSE(b->gro_enabled());
  EXPECT_EQ(b->stats().gro_fallbacks, 1U);
  auto a = bind_or_die(io, SocketAddr::v4_loopback());
  const Bytes p = pattern(6000);
  ASSERT_EQ(a.try_send_batch(std::array{Transmit{.destination = b->local_addr(), .contents = p, .segment_size = 1200}})
                .value_or(0),
            1U);
  run(io, [&]() -> asio::awaitable<void> {
    const auto got = co_await receive(*b, 5);
    EXPECT_EQ(got.size(), 5U);
  });
  EXPECT_EQ(b->stats().messages_received, 5U);  // never coalesced
}

TEST(UdpFallback, NoSendmmsgSendsOneDatagramPerCallWithoutLosingAny) {
  asio::io_context io;
  auto a = bind_faulty(io, {.no_sendmmsg = true}, {.gso = false});
  ASSERT_TRUE(a.has_value()) << a.error().message();
  auto b = bind_or_die(io, SocketAddr::v4_loopback());
  std::vector<Bytes> payloads;
  std::vector<Transmit> txs;
  for (std::size_t i = 0; i < 5; ++i) payloads.push_back(pattern(100 + i, static_cast<std::uint8_t>(i)));
  for (const auto& p : payloads) txs.push_back(Transmit{.destination = b.local_addr(), .contents = p});
  ASSERT_EQ(a->try_send_batch(txs).value_or(0), 5U);
  EXPECT_FALSE(a->send_batching_enabled());
  EXPECT_TRUE(a->receive_batching_enabled());
  EXPECT_EQ(a->stats().batch_fallbacks, 1U);
  EXPECT_EQ(a->stats().send_calls, 1U + 5U);  // the refused sendmmsg, then one sendmsg each
  EXPECT_EQ(a->stats().datagrams_sent, 5U);
  run(io, [&]() -> asio::awaitable<void> {
    const auto got = co_await receive(b, 5);
    P2P_CO_ASSERT_EQ(got.size(), 5U);
    for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(got[i].data, payloads[i]);
  });
}

TEST(UdpFallback, NoRecvmmsgReceivesOneDatagramPerCallWithoutLosingAny) {
  asio::io_context io;
  auto b = bind_faulty(io, {.no_recvmmsg = true});
  ASSERT_TRUE(b.has_value()) << b.error().message();
  auto a = bind_or_die(io, SocketAddr::v4_loopback());
  std::vector<Bytes> payloads;
  std::vector<Transmit> txs;
  for (std::size_t i = 0; i < 7; ++i) payloads.push_back(pattern(60 + i, static_cast<std::uint8_t>(i)));
  for (const auto& p : payloads) txs.push_back(Transmit{.destination = b->local_addr(), .contents = p});
  ASSERT_EQ(a.try_send_batch(txs).value_or(0), 7U);
  run(io, [&]() -> asio::awaitable<void> {
    const auto got = co_await receive(*b, 7);
    P2P_CO_ASSERT_EQ(got.size(), 7U);
    for (std::size_t i = 0; i < 7; ++i) {
      EXPECT_EQ(got[i].data, payloads[i]);
      P2P_CO_ASSERT(got[i].destination.has_value());
      EXPECT_EQ(*got[i].destination, b->local_addr());
    }
  });
  EXPECT_FALSE(b->receive_batching_enabled());
  EXPECT_TRUE(b->send_batching_enabled());
  EXPECT_EQ(b->stats().batch_fallbacks, 1U);
  EXPECT_EQ(b->stats().datagrams_received, 7U);
}

}  // namespace
}  // namespace moosicbox::p2p::env
