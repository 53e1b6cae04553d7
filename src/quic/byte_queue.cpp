// SPDX-License-Identifier: MIT OR Apache-2.0
// byte_queue.cpp: block storage for stream data.
// Layer: quic. Not thread-safe.
#include "quic/byte_queue.hpp"

#include <algorithm>
#include <cstring>

#include "moosicbox/p2p/core/assert.hpp"

namespace moosicbox::p2p::quic {

void ByteQueue::append(ByteView data) {
  while (!data.empty()) {
    const std::size_t end = head_ + size_;  // position just past the last byte, from blocks_.front()
    const std::size_t room = blocks_.size() * kBlockSize - end;
    if (room == 0) {
      blocks_.push_back(std::make_unique_for_overwrite<std::byte[]>(kBlockSize));
      continue;
    }
    const std::size_t n = std::min(room, data.size());
    std::byte* dst = blocks_[end / kBlockSize].get() + end % kBlockSize;
    std::memcpy(dst, data.data(), n);
    size_ += n;
    data = data.subspan(n);
  }
}

std::size_t ByteQueue::copy_out(std::size_t from, std::span<std::byte> out) const noexcept {
  if (from >= size_) return 0;
  std::size_t pos = head_ + from;
  std::size_t left = std::min(out.size(), size_ - from);
  std::size_t copied = 0;
  while (left > 0) {
    const std::size_t in_block = pos % kBlockSize;
    const std::size_t n = std::min(left, kBlockSize - in_block);
    std::memcpy(out.data() + copied, blocks_[pos / kBlockSize].get() + in_block, n);
    copied += n;
    pos += n;
    left -= n;
  }
  return copied;
}

void ByteQueue::consume(std::size_t n) noexcept {
  MOOSICBOX_P2P_ASSERT(n <= size_);
  size_ -= n;
  head_ += n;
  while (head_ >= kBlockSize) {
    blocks_.pop_front();
    head_ -= kBlockSize;
  }
  if (size_ == 0) clear();
}

void ByteQueue::clear() noexcept {
  blocks_.clear();
  head_ = 0;
  size_ = 0;
}

std::size_t ByteQueue::segments(std::size_t from, std::size_t max_bytes, std::span<Segment> out) const noexcept {
  std::size_t count = 0;
  if (from >= size_) return 0;
  std::size_t pos = head_ + from;
  std::size_t left = std::min(max_bytes, size_ - from);
  while (left > 0 && count < out.size()) {
    const std::size_t in_block = pos % kBlockSize;
    const std::size_t n = std::min(left, kBlockSize - in_block);
    out[count++] = Segment(blocks_[pos / kBlockSize].get() + in_block, n);
    pos += n;
    left -= n;
  }
  return count;
}

}  // namespace moosicbox::p2p::quic
