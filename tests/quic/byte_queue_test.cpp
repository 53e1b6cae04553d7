// SPDX-License-Identifier: MIT OR Apache-2.0
// byte_queue_test.cpp: ByteQueue keeps bytes in order across block boundaries, keeps pointers stable
// and frees storage once consumed (tests/quic/transfer_prop.cpp compares it with a deque).
#include "quic/byte_queue.hpp"

#include <gtest/gtest.h>

namespace moosicbox::p2p::quic {
namespace {

Bytes seq(std::size_t n, std::uint8_t start) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = std::byte(static_cast<std::uint8_t>(start + i));
  return b;
}

TEST(ByteQueue, KeepsOrderAcrossBlocksAndFreesConsumedBlocks) {
  ByteQueue q;
  EXPECT_EQ(q.allocated(), 0U);
  const Bytes a = seq(ByteQueue::kBlockSize + 100, 0);
  q.append(a);
  EXPECT_EQ(q.size(), a.size());
  EXPECT_EQ(q.allocated(), 2 * ByteQueue::kBlockSize);
  Bytes out(a.size());
  EXPECT_EQ(q.copy_out(0, out), a.size());
  EXPECT_EQ(out, a);
  q.consume(ByteQueue::kBlockSize + 1);
  EXPECT_EQ(q.allocated(), ByteQueue::kBlockSize);
  q.consume(q.size());
  EXPECT_EQ(q.allocated(), 0U);
  EXPECT_TRUE(q.empty());
}

TEST(ByteQueue, SegmentsPointIntoStableStorage) {
  ByteQueue q;
  q.append(seq(ByteQueue::kBlockSize - 10, 1));
  std::array<ByteQueue::Segment, 4> segs{};
  ASSERT_EQ(q.segments(0, SIZE_MAX, segs), 1U);
  const std::byte* first = segs[0].data();
  q.append(seq(3 * ByteQueue::kBlockSize, 2));  // appending never moves held bytes
  ASSERT_EQ(q.segments(0, SIZE_MAX, segs), 4U);
  EXPECT_EQ(segs[0].data(), first);
  EXPECT_EQ(segs[0].size(), ByteQueue::kBlockSize);  // the tail of the first block was filled
  EXPECT_EQ(segs[1].size(), ByteQueue::kBlockSize);
  ASSERT_EQ(q.segments(5, 20, segs), 1U);
  EXPECT_EQ(segs[0].size(), 20U);
  EXPECT_EQ(q.segments(q.size(), 20, segs), 0U);
}

}  // namespace
}  // namespace moosicbox::p2p::quic
