// SPDX-License-Identifier: MIT OR Apache-2.0
// concepts.hpp: the four concepts every backend satisfies: P2PNodeId, P2PConnection, P2PListener and
// P2PSystem. Application code written against them runs unchanged on the simulator (SimulatorP2P)
// and on the real QUIC backend; the choice is made at compile time, never through virtual calls.
// Layer: public API. Concepts only.
#pragma once

#include <concepts>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "moosicbox/p2p/core/asio.hpp"
#include "moosicbox/p2p/core/bytes.hpp"
#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/stats.hpp"

namespace moosicbox::p2p {

/// P2PNodeId is a node identity: a copyable, ordered, hashable value with text forms. It need not
/// be default-constructible: there is no valid "empty" identity.
template <class T>
concept P2PNodeId = std::copyable<T> && std::totally_ordered<T> && requires(const T& id) {
  { id.to_string() } -> std::convertible_to<std::string>;
  { id.fmt_short() } -> std::convertible_to<std::string>;
  { std::hash<T>{}(id) } -> std::convertible_to<std::size_t>;
};

/// P2PConnection is an authenticated connection to one peer that carries messages reliably, in order
/// and exactly once. Copies are handles to the same connection; dropping the last one closes it.
///
/// - send(bytes) queues one message. Errors: message_too_large (over the configured maximum),
///   connection_closed (closed by either side), timeout (the path stalled longer than the connection
///   timeout), network_error.
/// - recv() waits for the next message. After the peer closes, it returns every message sent before
///   the close, then connection_closed. Errors: connection_closed, timeout, protocol_error (the peer
///   broke the framing, e.g. an oversized message), cancelled.
/// - remote_node_id() is the authenticated identity of the peer.
/// - is_connected() is true until either side closes or the connection fails.
/// - close() closes gracefully: messages already sent are still delivered. Idempotent.
/// - stats() returns the connection's counters.
template <class C>
concept P2PConnection = std::copyable<C> && requires(C& c, const C& cc, ByteView data) {
  typename C::NodeId;
  requires P2PNodeId<typename C::NodeId>;
  { c.send(data) } -> std::same_as<asio::awaitable<P2PResult<void>>>;
  { c.recv() } -> std::same_as<asio::awaitable<P2PResult<Bytes>>>;
  { cc.remote_node_id() } -> std::convertible_to<typename C::NodeId>;
  { cc.is_connected() } -> std::same_as<bool>;
  { c.close() } -> std::same_as<asio::awaitable<P2PResult<void>>>;
  { cc.stats() } -> std::same_as<ConnectionStats>;
};

/// P2PListener hands out incoming connections.
///
/// - accept() waits for the next incoming connection, in arrival order. Errors: connection_closed
///   (the listener or its system was closed), cancelled.
/// - local_addr() is the address the listener was bound to, as text.
template <class L>
concept P2PListener = requires(L& l, const L& cl) {
  typename L::Connection;
  requires P2PConnection<typename L::Connection>;
  { l.accept() } -> std::same_as<asio::awaitable<P2PResult<typename L::Connection>>>;
  { cl.local_addr() } -> std::convertible_to<std::string>;
};

/// P2PSystem is a backend: it dials node ids, listens, and resolves names.
///
/// - connect(node_id) dials a peer. Errors: node_not_found (nothing known about the id), no_route
///   (no path, direct or relayed), timeout (after the connection timeout), connection_failed (the peer
///   is not listening or refused), authentication_failed (the peer's key is not the dialed id).
/// - listen(addr) starts accepting connections. Errors: invalid_configuration (bad address),
///   network_error (cannot bind), connection_failed (already listening).
/// - discover(name) resolves a name to a node id. Errors: node_not_found, discovery_failed, timeout.
/// - local_node_id() is this node's identity.
template <class S>
concept P2PSystem = requires(S& s, const S& cs, const typename S::NodeId& id, std::string_view text) {
  typename S::NodeId;
  typename S::Connection;
  typename S::Listener;
  requires P2PNodeId<typename S::NodeId>;
  requires P2PConnection<typename S::Connection>;
  requires P2PListener<typename S::Listener>;
  requires std::same_as<typename S::Listener::Connection, typename S::Connection>;
  requires std::same_as<typename S::Connection::NodeId, typename S::NodeId>;
  { s.connect(id) } -> std::same_as<asio::awaitable<P2PResult<typename S::Connection>>>;
  { s.listen(text) } -> std::same_as<asio::awaitable<P2PResult<typename S::Listener>>>;
  { s.discover(text) } -> std::same_as<asio::awaitable<P2PResult<typename S::NodeId>>>;
  { cs.local_node_id() } -> std::convertible_to<typename S::NodeId>;
};

}  // namespace moosicbox::p2p
