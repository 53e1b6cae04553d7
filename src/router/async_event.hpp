// SPDX-License-Identifier: MIT OR Apache-2.0
// async_event.hpp: AsyncEvent, a broadcast wake-up for coroutines, and AsyncSemaphore built on it.
// No clock is involved: waiters wake on notify_all() or when their wait is cancelled, so both work
// the same on real and simulated executors.
// Layer: router (internal). Single executor: use an event only from the executor it was made on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "moosicbox/p2p/core/asio.hpp"
#include "moosicbox/p2p/core/error.hpp"

namespace moosicbox::p2p::router::detail {

/// AsyncEvent wakes every coroutine waiting on it when notified.
class AsyncEvent {
 public:
  /// AsyncEvent completes its waiters through `ex`.
  explicit AsyncEvent(asio::any_io_executor ex);
  AsyncEvent(const AsyncEvent&) = delete;
  AsyncEvent& operator=(const AsyncEvent&) = delete;
  /// ~AsyncEvent completes pending waits with cancelled.
  ~AsyncEvent();

  /// wait suspends until the next notify_all(). Errors: cancelled (the awaiting operation was
  /// cancelled, or the event was destroyed).
  asio::awaitable<P2PResult<void>> wait();
  /// notify_all wakes every current waiter; they resume after the caller yields.
  void notify_all();
  /// waiter_count returns how many waits are pending.
  [[nodiscard]] std::size_t waiter_count() const noexcept;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

/// AsyncSemaphore counts permits; acquire() waits for one.
class AsyncSemaphore {
 public:
  /// AsyncSemaphore starts with `permits` permits.
  AsyncSemaphore(asio::any_io_executor ex, std::size_t permits) : available_(permits), released_(std::move(ex)) {}
  /// try_acquire takes a permit when one is free.
  bool try_acquire() noexcept;
  /// acquire waits for a permit. Errors: cancelled.
  asio::awaitable<P2PResult<void>> acquire();
  /// release returns a permit.
  void release();
  /// available returns the number of free permits.
  [[nodiscard]] std::size_t available() const noexcept { return available_; }

 private:
  std::size_t available_;
  AsyncEvent released_;
};

}  // namespace moosicbox::p2p::router::detail
