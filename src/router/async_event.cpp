// SPDX-License-Identifier: MIT OR Apache-2.0
// async_event.cpp: waiters are kept with their completion handlers; a cancellation slot removes one
// waiter. Completions are posted, so notify_all never runs a waiter inside the caller.
// Layer: router (internal). Single executor.
#include "async_event.hpp"

#include <algorithm>
#include <list>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "moosicbox/p2p/core/assert.hpp"

namespace moosicbox::p2p::router::detail {

using WaitHandler = asio::any_completion_handler<void(boost::system::error_code)>;

struct AsyncEvent::State : std::enable_shared_from_this<AsyncEvent::State> {
  struct Waiter {
    std::uint64_t id;
    WaitHandler handler;
  };

  explicit State(asio::any_io_executor e) : ex(std::move(e)) {}

  void start(WaitHandler handler) {
    const std::uint64_t id = next_id++;
    auto slot = asio::get_associated_cancellation_slot(handler);
    if (slot.is_connected()) {
      slot.assign([weak = weak_from_this(), id](asio::cancellation_type) {
        if (auto self = weak.lock()) self->complete_one(id, asio::error::operation_aborted);
      });
    }
    waiters.push_back(Waiter{id, std::move(handler)});
  }

  void complete(WaitHandler handler, boost::system::error_code ec) {
    asio::get_associated_cancellation_slot(handler).clear();
    // Every waiter of an event runs on the event's executor (one executor per server or test).
    asio::post(ex, [h = std::move(handler), ec]() mutable { std::move(h)(ec); });
  }

  void complete_one(std::uint64_t id, boost::system::error_code ec) {
    const auto it = std::ranges::find(waiters, id, &Waiter::id);
    if (it == waiters.end()) return;
    WaitHandler h(std::move(it->handler));
    waiters.erase(it);
    complete(std::move(h), ec);
  }

  void complete_all(boost::system::error_code ec) {
    std::list<Waiter> all;
    all.swap(waiters);
    for (auto& w : all) complete(std::move(w.handler), ec);
  }

  template <class Token>
  static auto async_wait(std::shared_ptr<State> st, Token&& token) {
    return asio::async_initiate<Token, void(boost::system::error_code)>(
        [](auto handler, std::shared_ptr<State> s) { s->start(WaitHandler(std::move(handler))); }, token,
        std::move(st));
  }

  asio::any_io_executor ex;
  std::uint64_t next_id = 0;
  // A list, never a vector: Boost 1.81's any_completion_handler move assignment recurses forever
  // (it copies its operand through the wrapping constructor), and vector::erase move-assigns.
  std::list<Waiter> waiters;
};

AsyncEvent::AsyncEvent(asio::any_io_executor ex) : state_(std::make_shared<State>(std::move(ex))) {}

AsyncEvent::~AsyncEvent() { state_->complete_all(asio::error::operation_aborted); }

asio::awaitable<P2PResult<void>> AsyncEvent::wait() {
  auto [ec] = co_await State::async_wait(state_, asio::as_tuple(asio::use_awaitable));
  if (ec) co_return fail(P2PError::cancelled("event wait"));
  co_return P2PResult<void>{};
}

void AsyncEvent::notify_all() { state_->complete_all({}); }

std::size_t AsyncEvent::waiter_count() const noexcept { return state_->waiters.size(); }

bool AsyncSemaphore::try_acquire() noexcept {
  if (available_ == 0) return false;
  --available_;
  return true;
}

asio::awaitable<P2PResult<void>> AsyncSemaphore::acquire() {
  while (!try_acquire()) {
    if (auto r = co_await released_.wait(); !r) co_return r;
  }
  co_return P2PResult<void>{};
}

void AsyncSemaphore::release() {
  ++available_;
  released_.notify_all();
}

}  // namespace moosicbox::p2p::router::detail
