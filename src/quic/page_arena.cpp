// page_arena.cpp: page-granular allocation over one reserved anonymous mapping.
// Layer: quic. Not thread-safe.
#include "quic/page_arena.hpp"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "p2p/core/assert.hpp"

namespace p2p::quic {

std::shared_ptr<PageArena> PageArena::create(std::size_t reserve_bytes) {
  // MAP_NORESERVE: the range is address space only; the kernel backs a page when it is first
  // written, and a freshly mapped (or MADV_DONTNEED'ed) page reads as zeroes.
  void* p = ::mmap(nullptr, reserve_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  return std::shared_ptr<PageArena>(new PageArena(static_cast<std::byte*>(p), reserve_bytes));
}

PageArena::PageArena(std::byte* base, std::size_t size) noexcept
    : base_(base), size_(size), page_(static_cast<std::size_t>(::sysconf(_SC_PAGESIZE))) {}

PageArena::~PageArena() { ::munmap(base_, size_); }

bool PageArena::owns(const void* p) const noexcept {
  const auto* b = static_cast<const std::byte*>(p);
  return b >= base_ && b < base_ + size_;
}

void* PageArena::take(std::size_t size, bool zeroed) noexcept {
  const std::size_t pages = (size + page_ - 1) / page_;
  std::byte* p = nullptr;
  if (auto it = free_.find(pages); it != free_.end() && !it->second.empty()) {
    const FreeBlock b = it->second.back();
    it->second.pop_back();
    p = b.p;
    if (b.dirty && zeroed) std::memset(p, 0, size);
  } else if (used_ + pages * page_ <= size_) {
    p = base_ + used_;  // never touched: zero, and not resident until written
    used_ += pages * page_;
  } else {
    // The reservation is exhausted: malloc still works, without the page savings.
    return zeroed ? std::calloc(1, size) : std::malloc(size);
  }
  sizes_.emplace(p, pages);
  pages_in_use_ += pages;
  return p;
}

void* PageArena::allocate(std::size_t size) noexcept {
  if (size < kPageAllocMin) return std::malloc(size);
  return take(size, false);
}

void* PageArena::allocate_zeroed(std::size_t size) noexcept {
  if (size < kPageAllocMin) return std::calloc(1, size);
  return take(size, true);
}

std::size_t PageArena::block_pages(const void* p) const noexcept {
  const auto it = sizes_.find(static_cast<const std::byte*>(p));
  P2P_ASSERT(it != sizes_.end());
  return it->second;
}

void* PageArena::reallocate(void* p, std::size_t size) noexcept {
  if (p == nullptr) return allocate(size);
  if (!owns(p)) {
    if (size < kPageAllocMin) return std::realloc(p, size);
    // A malloc block grows into pages: the old size is unknown, so copy what malloc reports usable.
    void* q = allocate(size);
    if (q == nullptr) return nullptr;
    std::memcpy(q, p, std::min(size, static_cast<std::size_t>(::malloc_usable_size(p))));
    std::free(p);
    return q;
  }
  const std::size_t old_bytes = block_pages(p) * page_;
  if (size <= old_bytes && size >= kPageAllocMin) return p;
  void* q = allocate(size);
  if (q == nullptr) return nullptr;
  std::memcpy(q, p, std::min(size, old_bytes));
  deallocate(p);
  return q;
}

void PageArena::deallocate(void* p) noexcept {
  if (p == nullptr) return;
  if (!owns(p)) {
    std::free(p);
    return;
  }
  auto* b = static_cast<std::byte*>(p);
  const std::size_t pages = block_pages(b);
  sizes_.erase(b);
  pages_in_use_ -= pages;
  auto& list = free_[pages];
  if (list.size() < kKeptBlocksMax) {
    list.push_back(FreeBlock{b, true});
    return;
  }
  // Enough of this size are kept: give the memory back (the pages read as zeroes when reused).
  ::madvise(b, pages * page_, MADV_DONTNEED);
  list.insert(list.begin(), FreeBlock{b, false});
}

}  // namespace p2p::quic
