// SPDX-License-Identifier: MIT OR Apache-2.0
// handles.hpp: the definitions behind the public handles: Endpoint::Handle and Connection::Handle.
// The last copy of a handle closes what it points to, in the background.
// Layer: endpoint (internal). Endpoint executor only.
#pragma once

#include <memory>

#include "endpoint/state.hpp"

namespace moosicbox::p2p {

/// Endpoint::Handle is shared by every copy of an Endpoint; its destruction closes the endpoint.
struct Endpoint::Handle {
  explicit Handle(std::shared_ptr<detail::EndpointState> s) noexcept : st(std::move(s)) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle();
  std::shared_ptr<detail::EndpointState> st;
};

/// Connection::Handle is shared by every copy of a Connection; its destruction closes the connection
/// gracefully.
struct Connection::Handle {
  explicit Handle(std::shared_ptr<detail::ConnState> s) noexcept : st(std::move(s)) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle();
  std::shared_ptr<detail::ConnState> st;
};

/// Listener::Handle is shared by every copy of a Listener; its destruction stops listening.
struct Listener::Handle {
  explicit Handle(std::shared_ptr<detail::ListenerState> s) noexcept : st(std::move(s)) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle();
  std::shared_ptr<detail::ListenerState> st;
};

namespace detail {

/// close_listener stops a listener: its queued connections are closed, its waiters woken.
void close_listener(ListenerState& l);

/// Access builds public handles from internal state (the handles' constructors are private).
struct Access {
  static Connection connection(std::shared_ptr<ConnState> c) {
    return Connection(std::make_shared<Connection::Handle>(std::move(c)));
  }
  static const std::shared_ptr<ConnState>& state(const Connection& c) noexcept { return c.handle_->st; }
  static Endpoint endpoint(std::shared_ptr<EndpointState> e) {
    return Endpoint(std::make_shared<Endpoint::Handle>(std::move(e)));
  }
  static const std::shared_ptr<EndpointState>& state(const Endpoint& e) noexcept { return e.handle_->st; }
  static Listener listener(std::shared_ptr<ListenerState> l) {
    return Listener(std::make_shared<Listener::Handle>(std::move(l)));
  }
  static BiStream bi(std::shared_ptr<ConnState> c, quic::StreamId id) {
    return BiStream(std::make_unique<StreamRef>(std::move(c), id));
  }
  static SendStream send(std::shared_ptr<ConnState> c, quic::StreamId id) {
    return SendStream(std::make_unique<StreamRef>(std::move(c), id));
  }
  static RecvStream recv(std::shared_ptr<ConnState> c, quic::StreamId id) {
    return RecvStream(std::make_unique<StreamRef>(std::move(c), id));
  }
};

/// endpoint_close closes the endpoint (Endpoint::close's body, also run when the last handle drops).
asio::awaitable<void> endpoint_close(std::shared_ptr<EndpointState> ep);

}  // namespace detail

}  // namespace moosicbox::p2p
