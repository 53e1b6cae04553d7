// page_arena.hpp: PageArena, the allocator an endpoint hands to the QUIC engine for ngtcp2's state.
// ngtcp2 allocates its per-connection state in blocks sized for the worst case (64 streams, 64 sent
// packets, 8 KiB reorder chunks...), of which an idle connection touches a small part. PageArena
// serves large requests with whole pages from a reserved address range, so the untouched pages of
// a block are never backed by memory. Freed blocks are kept for reuse (a few per size, still
// resident: returning pages to the kernel costs a TLB shootdown on every CPU the process runs on)
// and the rest returned to the kernel. Small requests go to malloc.
// Layer: quic. Not thread-safe: one arena belongs to one endpoint (one executor).
#pragma once

#include <cstddef>
#include <memory>
#include <unordered_map>
#include <vector>

namespace p2p::quic {

/// PageArena hands out page-granular memory from one reserved address range.
class PageArena {
 public:
  /// kPageAllocMin is the smallest request served with whole pages; smaller ones use malloc.
  static constexpr std::size_t kPageAllocMin = 2048;
  /// kReserveBytesDefault is the address range reserved by default (not memory: pages are backed
  /// only once written).
  static constexpr std::size_t kReserveBytesDefault = std::size_t{1} << 32;

  /// create reserves `reserve_bytes` of address space; nullptr when the reservation fails (callers
  /// then use malloc).
  [[nodiscard]] static std::shared_ptr<PageArena> create(std::size_t reserve_bytes = kReserveBytesDefault);

  PageArena(const PageArena&) = delete;
  PageArena& operator=(const PageArena&) = delete;
  ~PageArena();

  /// kKeptBlocksMax is how many freed blocks of one size stay resident for reuse.
  static constexpr std::size_t kKeptBlocksMax = 64;

  /// allocate returns `size` bytes of unspecified content, or nullptr when out of memory.
  [[nodiscard]] void* allocate(std::size_t size) noexcept;
  /// allocate_zeroed returns `size` zeroed bytes.
  [[nodiscard]] void* allocate_zeroed(std::size_t size) noexcept;
  /// reallocate resizes a block from allocate (nullptr allocates).
  [[nodiscard]] void* reallocate(void* p, std::size_t size) noexcept;
  /// deallocate frees a block from allocate (nullptr is ignored).
  void deallocate(void* p) noexcept;

  /// pages_in_use returns how many pages are handed out (an upper bound of the resident ones).
  [[nodiscard]] std::size_t pages_in_use() const noexcept { return pages_in_use_; }

 private:
  PageArena(std::byte* base, std::size_t size) noexcept;
  [[nodiscard]] bool owns(const void* p) const noexcept;
  [[nodiscard]] std::size_t block_pages(const void* p) const noexcept;

  std::byte* base_;
  std::size_t size_;
  std::size_t page_;
  std::size_t used_ = 0;  // bump pointer, bytes from base_
  std::size_t pages_in_use_ = 0;
  struct FreeBlock {
    std::byte* p;
    bool dirty;  // still holds old contents (kept resident); clean blocks read as zeroes
  };
  [[nodiscard]] void* take(std::size_t size, bool zeroed) noexcept;
  // Freed blocks by their page count, reused whole.
  std::unordered_map<std::size_t, std::vector<FreeBlock>> free_;
  // The page count of every block handed out, by its address.
  std::unordered_map<const std::byte*, std::size_t> sizes_;
};

}  // namespace p2p::quic
