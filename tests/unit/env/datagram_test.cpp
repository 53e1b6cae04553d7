// SPDX-License-Identifier: MIT OR Apache-2.0
// datagram_test.cpp: the datagram vocabulary without sockets: how a transmit counts its segments and
// how a receive buffer splits into whole datagrams (single, GRO-coalesced, truncated, empty).
#include "moosicbox/p2p/env/datagram.hpp"

#include <gtest/gtest.h>

#include <numeric>

#include "moosicbox/p2p/env/concepts.hpp"

namespace moosicbox::p2p::env {
namespace {

Bytes pattern(std::size_t n) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>(i % 251);
  return b;
}

TEST(Transmit, CountsSegments) {
  const Bytes data = pattern(12500);
  EXPECT_EQ((Transmit{.contents = data}).segment_count(), 1U);
  EXPECT_EQ((Transmit{.contents = data, .segment_size = 1200}).segment_count(), 11U);
  EXPECT_EQ((Transmit{.contents = ByteView(data).first(2400), .segment_size = 1200}).segment_count(), 2U);
  EXPECT_EQ((Transmit{.contents = ByteView(data).first(1200), .segment_size = 1200}).segment_count(), 1U);
  EXPECT_EQ((Transmit{.contents = ByteView(data).first(100), .segment_size = 1200}).segment_count(), 1U);
  EXPECT_EQ((Transmit{.contents = {}, .segment_size = 1200}).segment_count(), 1U);
}

TEST(Segments, SingleDatagramIsOneSegment) {
  const Bytes buf = pattern(2000);
  const RecvMeta meta{.length = 700, .stride = 700};
  const Segments s(buf, meta);
  ASSERT_EQ(s.size(), 1U);
  EXPECT_EQ(s[0].data(), buf.data());
  EXPECT_EQ(s[0].size(), 700U);
}

TEST(Segments, SplitsCoalescedRunAtStride) {
  const Bytes buf = pattern(65536);
  const RecvMeta meta{.length = 12500, .stride = 1200};
  EXPECT_TRUE(meta.coalesced());
  const Segments s(buf, meta);
  ASSERT_EQ(s.size(), 11U);
  std::size_t total = 0;
  std::size_t i = 0;
  for (const ByteView seg : s) {
    EXPECT_EQ(seg.data(), buf.data() + i * 1200);
    EXPECT_EQ(seg.size(), i < 10 ? 1200U : 500U);
    total += seg.size();
    ++i;
  }
  EXPECT_EQ(i, 11U);
  EXPECT_EQ(total, 12500U);
}

TEST(Segments, ExactMultipleHasNoShortTail) {
  const Bytes buf = pattern(4096);
  const Segments s(buf, RecvMeta{.length = 3600, .stride = 1200});
  ASSERT_EQ(s.size(), 3U);
  EXPECT_EQ(s[2].size(), 1200U);
}

TEST(Segments, TruncatedSingleDatagramYieldsNothing) {
  const Bytes buf = pattern(100);
  const RecvMeta meta{.length = 100, .stride = 100, .truncated = true};
  const Segments s(buf, meta);
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.begin(), s.end());
}

TEST(Segments, TruncatedCoalescedRunYieldsOnlyWholeSegments) {
  const Bytes buf = pattern(3000);
  const RecvMeta meta{.length = 3000, .stride = 1200, .truncated = true};
  const Segments s(buf, meta);
  ASSERT_EQ(s.size(), 2U);
  EXPECT_EQ(s[0].size(), 1200U);
  EXPECT_EQ(s[1].size(), 1200U);
}

TEST(Segments, EmptyDatagramIsOneEmptySegment) {
  const Bytes buf = pattern(16);
  const Segments s(buf, RecvMeta{.length = 0, .stride = 0});
  ASSERT_EQ(s.size(), 1U);
  EXPECT_TRUE(s[0].empty());
}

TEST(RecvBuffers, ViewsDisjointEqualBuffers) {
  RecvBuffers b(4, 100);
  ASSERT_EQ(b.size(), 4U);
  ASSERT_EQ(b.buffers().size(), 4U);
  ASSERT_EQ(b.metas().size(), 4U);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(b.buffers()[i].size(), 100U);
    if (i > 0) {
      EXPECT_EQ(b.buffers()[i].data(), b.buffers()[i - 1].data() + 100);
    }
  }
  b.metas()[2] = RecvMeta{.length = 30, .stride = 10};
  EXPECT_EQ(b.data(2).size(), 30U);
  EXPECT_EQ(b.segments(2).size(), 3U);
}

// A socket that is not a kernel socket (as a simulated one will be) satisfies DatagramSocket with
// the same signatures; one without readiness waits does not.
struct FakeSocket {
  SocketAddr local_addr() const { return SocketAddr::v4_loopback(1); }
  std::size_t gso_segments_max() const { return 1; }
  P2PResult<std::size_t> try_send_batch(std::span<const Transmit> t) { return t.size(); }
  P2PResult<std::size_t> try_receive_batch(std::span<const std::span<std::byte>>, std::span<RecvMeta>) { return 0; }
  asio::awaitable<P2PResult<void>> wait_readable();
  asio::awaitable<P2PResult<void>> wait_writable();
  void cancel() noexcept {}
};
struct SocketWithoutWaits {
  SocketAddr local_addr() const { return {}; }
  std::size_t gso_segments_max() const { return 1; }
  P2PResult<std::size_t> try_send_batch(std::span<const Transmit> t) { return t.size(); }
  P2PResult<std::size_t> try_receive_batch(std::span<const std::span<std::byte>>, std::span<RecvMeta>) { return 0; }
  void cancel() noexcept {}
};
static_assert(DatagramSocket<FakeSocket>);
static_assert(!DatagramSocket<SocketWithoutWaits>);

}  // namespace
}  // namespace moosicbox::p2p::env
