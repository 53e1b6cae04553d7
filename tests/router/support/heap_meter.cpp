// SPDX-License-Identifier: MIT OR Apache-2.0
// heap_meter.cpp: replacement global operator new / delete that count live bytes. Each block gets
// a header holding its size; aligned forms use a header as large as the alignment.
// Layer: tests. Thread-safe.
#include "router/support/heap_meter.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

namespace {
std::atomic<std::int64_t> g_live{0};
std::atomic<std::int64_t> g_peak{0};

constexpr std::size_t kHeader = 16;  // keeps the default new alignment

void count(std::int64_t delta) noexcept {
  const auto now = g_live.fetch_add(delta, std::memory_order_relaxed) + delta;
  auto peak = g_peak.load(std::memory_order_relaxed);
  while (now > peak && !g_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

void* allocate(std::size_t size, std::size_t align) {
  const std::size_t header = align > kHeader ? align : kHeader;
  void* raw = std::aligned_alloc(header, ((size + header + header - 1) / header) * header);
  if (raw == nullptr) throw std::bad_alloc();
  auto* base = static_cast<unsigned char*>(raw);
  std::memcpy(base + header - sizeof(std::size_t), &size, sizeof(size));
  count(static_cast<std::int64_t>(size));
  return base + header;
}

void release(void* p, std::size_t align) noexcept {
  if (p == nullptr) return;
  const std::size_t header = align > kHeader ? align : kHeader;
  auto* user = static_cast<unsigned char*>(p);
  std::size_t size = 0;
  std::memcpy(&size, user - sizeof(std::size_t), sizeof(size));
  count(-static_cast<std::int64_t>(size));
  std::free(user - header);
}
}  // namespace

namespace moosicbox::p2p::testing {
std::int64_t heap_live_bytes() noexcept { return g_live.load(std::memory_order_relaxed); }
std::int64_t heap_peak_bytes() noexcept { return g_peak.load(std::memory_order_relaxed); }
void heap_reset_peak() noexcept { g_peak.store(g_live.load(std::memory_order_relaxed), std::memory_order_relaxed); }
}  // namespace moosicbox::p2p::testing

void* operator new(std::size_t size) { return allocate(size, kHeader); }
void* operator new[](std::size_t size) { return allocate(size, kHeader); }
void* operator new(std::size_t size, std::align_val_t a) { return allocate(size, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t size, std::align_val_t a) { return allocate(size, static_cast<std::size_t>(a)); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return allocate(size, kHeader);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return allocate(size, kHeader);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { release(p, kHeader); }
void operator delete[](void* p) noexcept { release(p, kHeader); }
void operator delete(void* p, std::size_t) noexcept { release(p, kHeader); }
void operator delete[](void* p, std::size_t) noexcept { release(p, kHeader); }
void operator delete(void* p, std::align_val_t a) noexcept { release(p, static_cast<std::size_t>(a)); }
void operator delete[](void* p, std::align_val_t a) noexcept { release(p, static_cast<std::size_t>(a)); }
void operator delete(void* p, std::size_t, std::align_val_t a) noexcept { release(p, static_cast<std::size_t>(a)); }
void operator delete[](void* p, std::size_t, std::align_val_t a) noexcept { release(p, static_cast<std::size_t>(a)); }
void operator delete(void* p, const std::nothrow_t&) noexcept { release(p, kHeader); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { release(p, kHeader); }
