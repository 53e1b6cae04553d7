// SPDX-License-Identifier: MIT OR Apache-2.0
// datagram.hpp: the vocabulary of batched datagram I/O shared by the real UDP socket and simulated
// ones: Transmit (one datagram, or a run of equal-size segments sent with one GSO call), RecvMeta
// (what arrived in one receive buffer: possibly several GRO-coalesced segments), Ecn, Segments (the
// datagrams inside one receive buffer) and RecvBuffers (owned receive buffers for a batch).
// Layer: env. Value types and views; no threading rule of their own.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "moosicbox/p2p/core/assert.hpp"
#include "moosicbox/p2p/core/bytes.hpp"
#include "moosicbox/p2p/env/socket_addr.hpp"

namespace moosicbox::p2p::env {

/// Ecn is the ECN codepoint of a datagram (the low two bits of the IPv4 TOS / IPv6 traffic class,
/// RFC 3168).
enum class Ecn : std::uint8_t {
  not_ect = 0b00,  ///< not ECN-capable
  ect1 = 0b01,     ///< ECN-capable transport, ECT(1)
  ect0 = 0b10,     ///< ECN-capable transport, ECT(0)
  ce = 0b11,       ///< congestion experienced
};

/// kDatagramBytesMax is the largest UDP payload over IPv4 (65535 - 20 - 8); a GSO transmit never
/// carries more than this in one send, and a single datagram above it is dropped (EMSGSIZE).
inline constexpr std::size_t kDatagramBytesMax = 65507;

/// Transmit is one outgoing datagram, or several datagrams of equal size sent as one buffer.
/// `contents` stays owned by the caller until the send call returns.
struct Transmit {
  /// destination is where the datagram goes. An IPv4 destination is fine on a dual-stack socket.
  SocketAddr destination;
  /// contents is the payload. With segment_size > 0 it is split into segments of segment_size bytes
  /// (the last one may be shorter), each sent as its own datagram.
  ByteView contents;
  /// segment_size is the GSO segment size, 0 for one datagram. Sockets without GSO split the
  /// contents themselves, so the receiver sees the same datagrams either way.
  std::size_t segment_size = 0;
  /// source selects the local IP the datagram leaves from (IP_PKTINFO / IPV6_PKTINFO), for sockets
  /// bound to a wildcard address on a multi-homed host; its port is ignored. Typically the
  /// RecvMeta::destination of the datagram being answered.
  std::optional<SocketAddr> source;
  /// ecn is the ECN codepoint to mark the datagram with.
  Ecn ecn = Ecn::not_ect;

  /// segment_count returns how many datagrams this transmit makes.
  [[nodiscard]] constexpr std::size_t segment_count() const noexcept {
    if (segment_size == 0 || contents.size() <= segment_size) return 1;
    return (contents.size() + segment_size - 1) / segment_size;
  }
};

/// RecvMeta describes what one receive buffer holds after a receive: `length` bytes, which are one
/// datagram, or (with GRO) several datagrams of `stride` bytes each (the last may be shorter).
struct RecvMeta {
  /// source is the sender. IPv4 senders on a dual-stack socket appear as IPv4 (never \::ffff:a.b.c.d).
  SocketAddr source;
  /// destination is the local address the datagram was sent to (the socket's port), when the kernel
  /// reported it (IP_PKTINFO / IPV6_RECVPKTINFO). Answer from this address on a multi-homed host.
  std::optional<SocketAddr> destination;
  /// interface_index is the index of the interface the datagram arrived on, 0 when unknown.
  std::uint32_t interface_index = 0;
  /// length is the number of bytes written to the buffer.
  std::size_t length = 0;
  /// stride is the size of each coalesced segment; equals length when the buffer holds one datagram.
  std::size_t stride = 0;
  /// ecn is the ECN codepoint of the datagram(s).
  Ecn ecn = Ecn::not_ect;
  /// truncated is true when the datagram (or the coalesced run) was larger than the buffer: the
  /// kernel cut it (MSG_TRUNC). Only the segments that arrived whole are handed on; see Segments.
  bool truncated = false;

  /// coalesced is true when the buffer holds GRO-coalesced segments of `stride` bytes.
  [[nodiscard]] constexpr bool coalesced() const noexcept { return stride != 0 && stride < length; }
  /// segment_count returns how many whole datagrams the buffer holds: 0 for a truncated single
  /// datagram, length / stride for a truncated coalesced run, otherwise ceil(length / stride)
  /// (1 for an empty datagram).
  [[nodiscard]] constexpr std::size_t segment_count() const noexcept {
    if (truncated) return coalesced() ? length / stride : 0;
    if (length == 0 || stride == 0) return 1;
    return (length + stride - 1) / stride;
  }
};

/// Segments views the whole datagrams in one receive buffer, as ByteViews, in arrival order.
class Segments {
 public:
  /// Segments views `buffer` as described by `meta` (buffer must hold at least meta.length bytes).
  Segments(ByteView buffer, const RecvMeta& meta) noexcept
      : data_(checked_prefix(buffer, meta.length)),
        stride_(meta.stride == 0 ? meta.length : meta.stride),
        count_(meta.segment_count()) {}

  /// size returns the number of whole datagrams.
  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  /// empty is true when the buffer holds no whole datagram.
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  /// operator[] returns datagram `i` (i < size()).
  [[nodiscard]] ByteView operator[](std::size_t i) const noexcept {
    MOOSICBOX_P2P_ASSERT(i < count_);
    const std::size_t begin = i * stride_;
    const std::size_t len = std::min(stride_, data_.size() - begin);
    return data_.subspan(begin, len);
  }

  /// Iterator walks the datagrams in order; it is a std::forward_iterator of ByteView values.
  class Iterator {
   public:
    /// value_type and difference_type are the iterator's std::iterator_traits.
    ///@{
    using value_type = ByteView;
    using difference_type = std::ptrdiff_t;
    ///@}
    /// Iterator() is a singular iterator; Iterator(s, i) points at datagram `i` of `s` (begin() and
    /// end() build them).
    ///@{
    Iterator() = default;
    Iterator(const Segments* s, std::size_t i) noexcept : s_(s), i_(i) {}
    ///@}
    /// operator* returns the datagram the iterator points at; operator++ moves to the next one;
    /// operator== compares positions (iterators of the same Segments only).
    ///@{
    ByteView operator*() const noexcept { return (*s_)[i_]; }
    Iterator& operator++() noexcept {
      ++i_;
      return *this;
    }
    Iterator operator++(int) noexcept {
      auto old = *this;
      ++i_;
      return old;
    }
    friend bool operator==(const Iterator& a, const Iterator& b) noexcept { return a.i_ == b.i_; }
    ///@}

   private:
    const Segments* s_ = nullptr;
    std::size_t i_ = 0;
  };
  /// begin returns an iterator to the first datagram.
  [[nodiscard]] Iterator begin() const noexcept { return {this, 0}; }
  /// end returns the past-the-end iterator.
  [[nodiscard]] Iterator end() const noexcept { return {this, count_}; }

 private:
  static ByteView checked_prefix(ByteView buffer, std::size_t length) noexcept {
    MOOSICBOX_P2P_ASSERT(length <= buffer.size());
    return buffer.first(length);
  }

  ByteView data_;
  std::size_t stride_;
  std::size_t count_;
};

/// RecvBuffers owns `count` receive buffers of `size` bytes each and their RecvMeta, ready for
/// DatagramSocket::try_receive_batch(buffers(), metas()). With GRO on, use 65536-byte buffers, or
/// coalesced runs arrive truncated.
class RecvBuffers {
 public:
  /// RecvBuffers allocates count * size bytes. Requires count > 0 and size > 0.
  RecvBuffers(std::size_t count, std::size_t size) : storage_(count * size), views_(count), metas_(count) {
    MOOSICBOX_P2P_ASSERT(count > 0 && size > 0);
    for (std::size_t i = 0; i < count; ++i) views_[i] = std::span<std::byte>(storage_).subspan(i * size, size);
  }

  /// size returns the number of buffers.
  [[nodiscard]] std::size_t size() const noexcept { return views_.size(); }
  /// buffers views the buffers, for try_receive_batch.
  [[nodiscard]] std::span<const std::span<std::byte>> buffers() const noexcept { return views_; }
  /// metas views the metadata, for try_receive_batch.
  [[nodiscard]] std::span<RecvMeta> metas() noexcept { return metas_; }
  /// meta returns the metadata of buffer `i` after a receive filled it.
  [[nodiscard]] const RecvMeta& meta(std::size_t i) const noexcept { return metas_.at(i); }
  /// data returns the bytes received into buffer `i`.
  [[nodiscard]] ByteView data(std::size_t i) const noexcept { return views_.at(i).first(metas_.at(i).length); }
  /// segments returns the whole datagrams in buffer `i`.
  [[nodiscard]] Segments segments(std::size_t i) const noexcept { return {views_.at(i), metas_.at(i)}; }

 private:
  std::vector<std::byte> storage_;
  std::vector<std::span<std::byte>> views_;
  std::vector<RecvMeta> metas_;
};

}  // namespace moosicbox::p2p::env
