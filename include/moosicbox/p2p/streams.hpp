// SPDX-License-Identifier: MIT OR Apache-2.0
// streams.hpp: byte streams inside a connection, for protocols that need more than ordered messages
// (the router runs one bidirectional stream per request). Both backends provide them: QUIC streams on
// the real backend, multiplexed streams on the simulator, with the same semantics.
// Layer: public API. Concepts only.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>

#include "moosicbox/p2p/concepts.hpp"

namespace moosicbox::p2p {

/// P2PSendStream is the sending half of a stream. Streams are move-only handles; destroying a send
/// half that was neither finished nor reset resets it (the peer sees stream_reset).
///
/// - write(bytes) queues bytes, waiting while the peer's flow-control window and the local buffer
///   bound are exhausted (memory stays bounded). Errors: stream_reset (the peer sent STOP_SENDING),
///   connection_closed, timeout, cancelled.
/// - finish() marks the end of the stream; the peer reads the data then end-of-stream. Errors: as write.
/// - reset(code) aborts the stream at once; unsent data is dropped, the peer's reads fail with
///   stream_reset carrying `code`. Never fails; no-op after finish()+delivery or a previous reset.
template <class S>
concept P2PSendStream = std::movable<S> && requires(S& s, ByteView data, std::uint64_t code) {
  { s.write(data) } -> std::same_as<asio::awaitable<P2PResult<void>>>;
  { s.finish() } -> std::same_as<asio::awaitable<P2PResult<void>>>;
  { s.reset(code) } -> std::same_as<void>;
};

/// P2PRecvStream is the receiving half of a stream.
///
/// - read(buffer) waits for data and copies up to buffer.size() bytes; returns 0 only at the end of
///   the stream (the peer finished and every byte was read). Errors: stream_reset (the peer reset the
///   stream; carries its code), connection_closed, timeout, cancelled.
/// - stop(code) tells the peer to stop sending (its writes fail with stream_reset) and discards what
///   arrives. Never fails.
template <class S>
concept P2PRecvStream = std::movable<S> && requires(S& s, std::span<std::byte> buffer, std::uint64_t code) {
  { s.read(buffer) } -> std::same_as<asio::awaitable<P2PResult<std::size_t>>>;
  { s.stop(code) } -> std::same_as<void>;
};

/// P2PBiStream is a bidirectional stream: both halves, closed independently.
template <class S>
concept P2PBiStream = P2PSendStream<S> && P2PRecvStream<S> && requires(const S& s) {
  { s.id() } -> std::convertible_to<std::uint64_t>;
};

/// P2PStreamConnection is a P2PConnection that also carries bidirectional streams. Streams do not
/// block each other (no head-of-line blocking between streams) and do not disturb the message API.
///
/// - open_bi() opens a stream; waits while the peer's stream limit is reached. Errors:
///   connection_closed, timeout, cancelled.
/// - accept_bi() waits for the next stream the peer opened, in opening order. Errors:
///   connection_closed, cancelled.
template <class C>
concept P2PStreamConnection = P2PConnection<C> && requires(C& c) {
  typename C::BiStream;
  requires P2PBiStream<typename C::BiStream>;
  { c.open_bi() } -> std::same_as<asio::awaitable<P2PResult<typename C::BiStream>>>;
  { c.accept_bi() } -> std::same_as<asio::awaitable<P2PResult<typename C::BiStream>>>;
};

}  // namespace moosicbox::p2p
