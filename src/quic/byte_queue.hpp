// SPDX-License-Identifier: MIT OR Apache-2.0
// byte_queue.hpp: ByteQueue, a FIFO of bytes stored in fixed-size blocks that never move, so that a
// pointer into it stays valid until the bytes are consumed (ngtcp2 keeps pointers to unacknowledged
// stream data for retransmission). Blocks are freed as soon as they are consumed, so an idle stream
// holds no memory.
// Layer: quic. Not thread-safe; owned by one connection.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

#include "core/fifo.hpp"
#include "moosicbox/p2p/core/bytes.hpp"

namespace moosicbox::p2p::quic {

/// ByteQueue is an append-at-the-back, consume-at-the-front byte FIFO with stable storage.
class ByteQueue {
 public:
  /// kBlockSize is the size of one storage block in bytes.
  static constexpr std::size_t kBlockSize = 16 * 1024;

  /// size returns the number of bytes held.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// empty reports whether no bytes are held.
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  /// allocated returns the bytes of storage currently allocated (for memory accounting).
  [[nodiscard]] std::size_t allocated() const noexcept { return blocks_.size() * kBlockSize; }

  /// append copies `data` to the back.
  void append(ByteView data);
  /// copy_out copies up to out.size() bytes from position `from` (counted from the front) into `out`
  /// without consuming them; returns the number copied.
  std::size_t copy_out(std::size_t from, std::span<std::byte> out) const noexcept;
  /// consume drops `n` bytes from the front (n <= size()).
  void consume(std::size_t n) noexcept;
  /// clear drops everything and frees the storage.
  void clear() noexcept;

  /// Segment is a contiguous run of held bytes.
  using Segment = std::span<const std::byte>;
  /// segments fills `out` with the contiguous runs starting at position `from`, at most `max_bytes`
  /// in total; returns how many runs it filled. The pointers stay valid until consumed.
  std::size_t segments(std::size_t from, std::size_t max_bytes, std::span<Segment> out) const noexcept;

 private:
  detail::Fifo<std::unique_ptr<std::byte[]>> blocks_;
  std::size_t head_ = 0;  // offset of the first held byte inside blocks_.front()
  std::size_t size_ = 0;
};

}  // namespace moosicbox::p2p::quic
