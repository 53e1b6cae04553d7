// SPDX-License-Identifier: MIT OR Apache-2.0
// udp_test_support.hpp: helpers for the UdpSocket tests on real loopback sockets: binding, driving
// a coroutine on an io_context with a hang guard, receiving n datagrams and sending a whole batch
// with readiness waits (never sleeps), and coroutine-friendly assertions.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <chrono>
#include <exception>
#include <optional>
#include <span>
#include <stdexcept>
#include <vector>

#include "moosicbox/p2p/env/udp_socket.hpp"

// ASSERT_* return from the function, which a coroutine cannot do; these record the failure and
// co_return instead. Each argument is evaluated once.
#define P2P_CO_ASSERT(cond)                        \
  do {                                             \
    if (!(cond)) {                                 \
      ADD_FAILURE() << "assertion failed: " #cond; \
      co_return;                                   \
    }                                              \
  } while (false)
#define P2P_CO_ASSERT_EQ(a, b)               \
  do {                                       \
    const auto& co_a_ = (a);                 \
    const auto& co_b_ = (b);                 \
    EXPECT_EQ(co_a_, co_b_) << #a " == " #b; \
    if (!(co_a_ == co_b_)) co_return;        \
  } while (false)

namespace moosicbox::p2p::env::test {

inline constexpr std::chrono::seconds kHangGuard{20};

/// Got is one received datagram.
struct Got {
  SocketAddr source;
  std::optional<SocketAddr> destination;
  Ecn ecn = Ecn::not_ect;
  Bytes data;
};

/// pattern returns n bytes that differ with `salt`.
inline Bytes pattern(std::size_t n, std::uint8_t salt = 0) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>((i * 7 + salt) % 251);
  return b;
}

/// bind_or_die binds or throws. `automatic` becomes `path` (the fast path unless told), so a test
/// exercises the path it names whatever the build's default.
inline UdpSocket bind_or_die(asio::io_context& io, const SocketAddr& addr, UdpSocketOptions options = {},
                             UdpIoPath path = UdpIoPath::fast) {
  if (options.io_path == UdpIoPath::automatic) options.io_path = path;
  auto s = UdpSocket::bind(io.get_executor(), addr, options);
  if (!s) throw std::runtime_error(s.error().message());
  return std::move(*s);
}

inline bool ipv6_loopback_available() {
  asio::io_context io;
  return UdpSocket::bind(io.get_executor(), SocketAddr::v6_loopback()).has_value();
}

/// run drives the coroutine made by `make` to completion on `io`; the time limit is a hang guard.
template <class Make>
void run(asio::io_context& io, Make make) {
  bool done = false;
  std::exception_ptr error;
  io.restart();  // a test may run several coroutines one after the other
  asio::co_spawn(io, make(), [&](std::exception_ptr e) {
    done = true;
    error = e;
  });
  io.run_for(kHangGuard);
  ASSERT_TRUE(done) << "the test coroutine did not finish (hang guard)";
  if (error) std::rethrow_exception(error);
}

/// receive collects `n` whole datagrams, waiting for readiness whenever the socket would block.
inline asio::awaitable<std::vector<Got>> receive(UdpSocket& sock, std::size_t n, RecvBuffers& bufs) {
  std::vector<Got> out;
  while (out.size() < n) {
    auto r = sock.try_receive_batch(bufs.buffers(), bufs.metas());
    if (!r) throw std::runtime_error(r.error().message());
    if (*r == 0) {
      auto w = co_await sock.wait_readable();
      if (!w) throw std::runtime_error(w.error().message());
      continue;
    }
    for (std::size_t i = 0; i < *r; ++i) {
      for (const ByteView seg : bufs.segments(i)) {
        const auto& m = bufs.meta(i);
        out.push_back(Got{m.source, m.destination, m.ecn, Bytes(seg.begin(), seg.end())});
      }
    }
  }
  co_return out;
}

inline asio::awaitable<std::vector<Got>> receive(UdpSocket& sock, std::size_t n) {
  RecvBuffers bufs(UdpSocket::kBatchMax, 65536);
  co_return co_await receive(sock, n, bufs);
}

/// send_all sends every transmit, waiting for room when the socket would block.
inline asio::awaitable<void> send_all(UdpSocket& sock, std::span<const Transmit> txs) {
  while (!txs.empty()) {
    auto r = sock.try_send_batch(txs);
    if (!r) throw std::runtime_error(r.error().message());
    txs = txs.subspan(*r);
    if (!txs.empty()) {
      auto w = co_await sock.wait_writable();
      if (!w) throw std::runtime_error(w.error().message());
    }
  }
}

}  // namespace moosicbox::p2p::env::test
