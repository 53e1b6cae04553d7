// SPDX-License-Identifier: MIT OR Apache-2.0
// notifier.hpp: Notifier, the one waiting primitive of the endpoint: a condition a coroutine waits on
// until notify_all(). Waiters re-check their condition after every wakeup (no lost wakeups: the
// endpoint is single-threaded, so checking and starting to wait cannot race). Waits honour asio
// cancellation (the losing side of `co_await (a || b)`), and destroying the notifier ends them.
// Layer: endpoint (internal). Not thread-safe: one executor.
#pragma once

#include <cstdint>
#include <list>
#include <utility>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

#include "moosicbox/p2p/core/asio.hpp"

namespace moosicbox::p2p::detail {

/// Notifier wakes every coroutine waiting on it. Completions are posted to the notifier's executor,
/// which is the waiters' executor (the endpoint's).
class Notifier {
 public:
  explicit Notifier(asio::any_io_executor ex) : ex_(std::move(ex)) {}
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;
  ~Notifier() { complete_all(asio::error::operation_aborted); }

  /// async_wait is the completion-token form of wait(): void(error_code).
  template <class Token>
  auto async_wait(Token&& token) {
    return asio::async_initiate<Token, void(boost::system::error_code)>(
        [this](auto handler) {
          auto slot = asio::get_associated_cancellation_slot(handler);
          // Constructed in place: Boost 1.81's any_completion_handler move assignment recurses
          // forever, so a stored handler is never assigned.
          auto it = waiters_.emplace(waiters_.end(), std::move(handler));
          if (slot.is_connected()) {
            it->slot = slot;
            slot.assign([this, it](asio::cancellation_type) { complete(it, asio::error::operation_aborted); });
          }
        },
        token);
  }

  /// wait completes after the next notify_all() with true, or with false when the wait was
  /// cancelled or the notifier destroyed.
  asio::awaitable<bool> wait() {
    auto [ec] = co_await async_wait(asio::as_tuple(asio::use_awaitable));
    co_return !ec;
  }

  /// notify_all wakes every current waiter (their completions are posted, never run inline).
  void notify_all() { complete_all({}); }
  /// waiting returns how many coroutines wait.
  [[nodiscard]] std::size_t waiting() const noexcept { return waiters_.size(); }

 private:
  struct Waiter {
    template <class H>
    explicit Waiter(H&& h) : handler(std::forward<H>(h)) {}
    asio::any_completion_handler<void(boost::system::error_code)> handler;
    asio::cancellation_slot slot;
  };
  using Iter = std::list<Waiter>::iterator;

  void complete(Iter it, boost::system::error_code ec) {
    if (it->slot.is_connected()) it->slot.clear();
    auto handler = std::move(it->handler);
    waiters_.erase(it);
    asio::post(ex_, [h = std::move(handler), ec]() mutable { std::move(h)(ec); });
  }

  void complete_all(boost::system::error_code ec) {
    std::list<Waiter> all;
    all.swap(waiters_);
    while (!all.empty()) {
      auto& w = all.front();
      if (w.slot.is_connected()) w.slot.clear();
      auto handler = std::move(w.handler);
      all.pop_front();
      asio::post(ex_, [h = std::move(handler), ec]() mutable { std::move(h)(ec); });
    }
  }

  asio::any_io_executor ex_;
  std::list<Waiter> waiters_;
};

}  // namespace moosicbox::p2p::detail
