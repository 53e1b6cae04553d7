// SPDX-License-Identifier: MIT OR Apache-2.0
// fifo.hpp: Fifo, a first-in first-out queue over one vector. An empty Fifo owns no memory (a
// std::deque allocates its map and a 512-byte node even when empty, which an idle connection with a
// dozen queues pays for in every one), and a Fifo that empties gives its storage back once it grew
// past a small size, so a burst does not stay resident on an idle connection.
// Layer: core (private). Not thread-safe.
#pragma once

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <utility>
#include <vector>

#include "moosicbox/p2p/core/assert.hpp"

namespace moosicbox::p2p::detail {

/// Fifo is a queue with push at the back, pop at the front, indexing from the front, and ordered
/// insertion. Iterators and references are invalidated by every change.
template <class T>
class Fifo {
 public:
  using iterator = typename std::vector<T>::iterator;
  using const_iterator = typename std::vector<T>::const_iterator;

  /// kKeptBytes is the storage an emptied Fifo keeps for reuse; more is freed.
  static constexpr std::size_t kKeptBytes = 1024;

  [[nodiscard]] bool empty() const noexcept { return head_ == items_.size(); }
  [[nodiscard]] std::size_t size() const noexcept { return items_.size() - head_; }

  [[nodiscard]] T& front() noexcept {
    MOOSICBOX_P2P_ASSERT(!empty());
    return items_[head_];
  }
  [[nodiscard]] const T& front() const noexcept {
    MOOSICBOX_P2P_ASSERT(!empty());
    return items_[head_];
  }
  [[nodiscard]] T& operator[](std::size_t i) noexcept { return items_[head_ + i]; }
  [[nodiscard]] const T& operator[](std::size_t i) const noexcept { return items_[head_ + i]; }

  [[nodiscard]] iterator begin() noexcept { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
  [[nodiscard]] iterator end() noexcept { return items_.end(); }
  [[nodiscard]] const_iterator begin() const noexcept { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
  [[nodiscard]] const_iterator end() const noexcept { return items_.end(); }

  void push_back(T v) { items_.push_back(std::move(v)); }
  template <class... A>
  T& emplace_back(A&&... args) {
    return items_.emplace_back(std::forward<A>(args)...);
  }
  /// insert puts `v` before `pos`.
  void insert(const_iterator pos, T v) { items_.insert(pos, std::move(v)); }

  /// pop_front drops the front element (its resources are released at once).
  void pop_front() noexcept {
    MOOSICBOX_P2P_ASSERT(!empty());
    items_[head_] = T{};
    ++head_;
    if (head_ == items_.size()) {
      clear();
    } else if (head_ >= 32 && head_ * 2 >= items_.size()) {
      // Reclaim the consumed front so a queue that never empties stays bounded by its contents.
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }

  /// erase_value removes every element equal to `v`.
  void erase_value(const T& v) {
    items_.erase(std::remove(begin(), end(), v), items_.end());
    if (empty()) clear();
  }

  /// clear drops everything; storage beyond kKeptBytes is freed.
  void clear() noexcept {
    if (items_.capacity() * sizeof(T) > kKeptBytes) {
      std::vector<T>().swap(items_);
    } else {
      items_.clear();
    }
    head_ = 0;
  }

 private:
  std::vector<T> items_;
  std::size_t head_ = 0;
};

}  // namespace moosicbox::p2p::detail
