// SPDX-License-Identifier: MIT OR Apache-2.0
// concepts.hpp: the environment seam. Library code reads time, waits and draws randomness only
// through an Environment, so the same code runs on real sockets and time (AsioEnv) or in a
// deterministic simulation with virtual time (SimEnv).
// Layer: env. Concepts only.
#pragma once

#include <concepts>
#include <cstddef>
#include <span>

#include "moosicbox/p2p/core/asio.hpp"
#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/random.hpp"
#include "moosicbox/p2p/core/time.hpp"
#include "moosicbox/p2p/env/datagram.hpp"
#include "moosicbox/p2p/env/socket_addr.hpp"

namespace moosicbox::p2p::env {

/// Clock gives the current time of an environment.
template <class T>
concept Clock = requires(const T& c) {
  { c.now() }
  noexcept->std::same_as<TimePoint>;
};

/// Timer waits until an instant. wait_until completes with success at (or after) the deadline, or
/// with P2PErrc::cancelled when cancel() is called or the awaiting operation is cancelled (for
/// example by the losing side of `co_await (a || b)`).
template <class T>
concept Timer = requires(T& t, TimePoint at) {
  { t.wait_until(at) } -> std::same_as<asio::awaitable<P2PResult<void>>>;
  { t.cancel() }
  noexcept;
};

/// Environment is everything a driver needs from the outside world: a clock, timers, randomness and
/// the executor its coroutines run on. (Datagram sockets join it with the real backend.)
template <class T>
concept Environment = Clock<T> && RandomSource<T> && Timer<typename T::Timer> && requires(T& e) {
  { e.executor() } -> std::convertible_to<asio::any_io_executor>;
  { e.make_timer() } -> std::same_as<typename T::Timer>;
};

/// DatagramSocket is what a datagram driver (the QUIC endpoint) needs from a socket, real
/// (env::UdpSocket) or simulated: its address, its batching capability, non-blocking batched send
/// and receive where 0 means "would block", and readiness waits to sleep on between batches. The
/// driver's loop: `co_await wait_readable()`, then try_receive_batch until it returns 0; send with
/// try_send_batch and, when it consumed fewer transmits than given, `co_await wait_writable()`.
template <class T>
concept DatagramSocket = requires(T& s, const T& cs, std::span<const Transmit> out,
                                  std::span<const std::span<std::byte>> buffers, std::span<RecvMeta> metas) {
  { cs.local_addr() } -> std::same_as<SocketAddr>;
  { cs.gso_segments_max() } -> std::same_as<std::size_t>;
  { s.try_send_batch(out) } -> std::same_as<P2PResult<std::size_t>>;
  { s.try_receive_batch(buffers, metas) } -> std::same_as<P2PResult<std::size_t>>;
  { s.wait_readable() } -> std::same_as<asio::awaitable<P2PResult<void>>>;
  { s.wait_writable() } -> std::same_as<asio::awaitable<P2PResult<void>>>;
  { s.cancel() }
  noexcept;
};

}  // namespace moosicbox::p2p::env
