// page_arena_test.cpp: PageArena hands out zeroed page blocks, reuses freed ones (zeroed again),
// resizes, and leaves small requests to malloc.
#include "quic/page_arena.hpp"

#include <gtest/gtest.h>

#include <cstring>

namespace p2p::quic {
namespace {

bool all_zero(const void* p, std::size_t n) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) {
    if (b[i] != 0) return false;
  }
  return true;
}

TEST(PageArena, LargeBlocksAreZeroedPagesAndReusedZeroed) {
  auto arena = PageArena::create(std::size_t{64} << 20);
  ASSERT_NE(arena, nullptr);
  void* a = arena->allocate_zeroed(10000);
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(all_zero(a, 10000));
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a) % 4096, 0U);
  EXPECT_EQ(arena->pages_in_use(), 3U);
  std::memset(a, 0xab, 10000);
  arena->deallocate(a);
  EXPECT_EQ(arena->pages_in_use(), 0U);
  void* b = arena->allocate_zeroed(9000);  // same page count: the freed block comes back, zeroed
  EXPECT_EQ(b, a);
  EXPECT_TRUE(all_zero(b, 9000));
  arena->deallocate(b);
}

TEST(PageArena, BlocksBeyondTheKeptOnesAreReturnedAndComeBackZeroed) {
  auto arena = PageArena::create(std::size_t{64} << 20);
  ASSERT_NE(arena, nullptr);
  std::vector<void*> blocks;
  for (std::size_t i = 0; i < PageArena::kKeptBlocksMax + 10; ++i) {
    void* p = arena->allocate(5000);
    std::memset(p, 0x5a, 5000);
    blocks.push_back(p);
  }
  for (void* p : blocks) arena->deallocate(p);
  // Every reused block reads as zeroes when zeroes are asked for, kept or returned.
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    void* p = arena->allocate_zeroed(5000);
    ASSERT_TRUE(all_zero(p, 5000)) << i;
    blocks[i] = p;
  }
  for (void* p : blocks) arena->deallocate(p);
}

TEST(PageArena, SmallRequestsUseMalloc) {
  auto arena = PageArena::create(std::size_t{64} << 20);
  ASSERT_NE(arena, nullptr);
  void* s = arena->allocate_zeroed(100);
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(all_zero(s, 100));
  EXPECT_EQ(arena->pages_in_use(), 0U);
  arena->deallocate(s);
}

TEST(PageArena, ReallocateKeepsContentsAcrossSizes) {
  auto arena = PageArena::create(std::size_t{64} << 20);
  ASSERT_NE(arena, nullptr);
  auto* p = static_cast<unsigned char*>(arena->allocate(100));
  for (int i = 0; i < 100; ++i) p[i] = static_cast<unsigned char>(i);
  p = static_cast<unsigned char*>(arena->reallocate(p, 5000));  // malloc -> pages
  ASSERT_NE(p, nullptr);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(p[i], i);
  p[4999] = 7;
  auto* q = static_cast<unsigned char*>(arena->reallocate(p, 6000));  // still two pages: in place
  EXPECT_EQ(q, p);
  q = static_cast<unsigned char*>(arena->reallocate(q, 20000));  // grows into a new block
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q[4999], 7);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(q[i], i);
  arena->deallocate(q);
  EXPECT_EQ(arena->pages_in_use(), 0U);
}

TEST(PageArena, ExhaustedReservationFallsBackToMalloc) {
  auto arena = PageArena::create(std::size_t{16} * 4096);
  ASSERT_NE(arena, nullptr);
  std::vector<void*> blocks;
  for (int i = 0; i < 8; ++i) {
    void* p = arena->allocate_zeroed(3 * 4096);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(all_zero(p, 3 * 4096));
    blocks.push_back(p);
  }
  EXPECT_EQ(arena->pages_in_use(), 15U);  // five blocks fit, three came from malloc
  for (void* p : blocks) arena->deallocate(p);
  EXPECT_EQ(arena->pages_in_use(), 0U);
}

}  // namespace
}  // namespace p2p::quic
