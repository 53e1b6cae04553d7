// SPDX-License-Identifier: MIT OR Apache-2.0
// simnet_test_support.hpp: helpers for the simulated network's tests: a runtime with a network,
// address shorthands, a coroutine spawner, and a datagram recorder that notes arrival times.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/co_spawn.hpp>

#include "moosicbox/p2p/simnet/network.hpp"

namespace moosicbox::p2p::simnet::test {

using namespace std::chrono_literals;

/// ip4 is a.b.c.d:port.
inline SocketAddr ip4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d, std::uint16_t port = 0) {
  return SocketAddr::v4({a, b, c, d}, port);
}
/// ip6 parses an IPv6 address without brackets.
inline SocketAddr ip6(std::string_view text, std::uint16_t port = 0) {
  return SocketAddr::parse_ip(text, port).value();
}

/// at is the instant `d` after the start of the simulation.
inline TimePoint at(Duration d) { return TimePoint(d); }

/// bytes copies text into bytes.
inline std::vector<std::byte> bytes(std::string_view s) {
  std::vector<std::byte> out(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) out[i] = static_cast<std::byte>(s[i]);
  return out;
}
inline std::string text(ByteView b) {
  std::string s(b.size(), '\0');
  for (std::size_t i = 0; i < b.size(); ++i) s[i] = static_cast<char>(b[i]);
  return s;
}

/// spawn runs a test coroutine on the runtime; an exception inside it fails the test run.
template <class F>
void spawn(env::SimRuntime& rt, F&& f) {
  asio::co_spawn(rt.executor(), std::forward<F>(f), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
}

/// sim_seed is P2P_SIM_SEED when set, else `fallback`.
inline std::uint64_t sim_seed(std::uint64_t fallback) {
  if (const char* s = std::getenv("P2P_SIM_SEED")) return std::strtoull(s, nullptr, 10);
  return fallback;
}

/// World is a runtime and a network on it.
struct World {
  explicit World(std::uint64_t seed = 1) : rt(seed), net(rt) {}
  Host& host(const std::string& name, SocketAddr addr, LinkParams link = {}) {
    return host_on(net.internet(), name, addr, link);
  }
  Host& host_on(Segment& seg, const std::string& name, SocketAddr addr, LinkParams link = {}) {
    auto h = net.add_host(name, seg, {addr}, link);
    EXPECT_TRUE(h) << h.error().message();
    return **h;
  }
  Router& router(const std::string& name, SocketAddr pub, NatConfig nat = {}, LinkParams link = {}) {
    return router_on(net.internet(), name, pub, nat, link);
  }
  Router& router_on(Segment& seg, const std::string& name, SocketAddr pub, NatConfig nat = {}, LinkParams link = {}) {
    auto r = net.add_router(name, seg, pub, nat, link);
    EXPECT_TRUE(r) << r.error().message();
    return **r;
  }
  env::SimRuntime rt;
  Network net;
};

/// bind binds or fails the test.
inline UdpSocket bind(Host& h, SocketAddr addr) {
  auto s = UdpSocket::bind(h, addr);
  EXPECT_TRUE(s) << s.error().message();
  return std::move(*s);
}

/// send sends one datagram.
inline void send(UdpSocket& s, SocketAddr to, ByteView data) {
  env::Transmit tx;
  tx.destination = to;
  tx.contents = data;
  auto r = s.try_send_batch(std::span<const env::Transmit>(&tx, 1));
  EXPECT_TRUE(r && *r == 1);
}
inline void send(UdpSocket& s, SocketAddr to, std::string_view data) {
  const auto b = bytes(data);
  send(s, to, b);
}

/// Received is one datagram taken from a socket, with the time it was taken.
struct Received {
  std::vector<std::byte> data;
  env::RecvMeta meta;
  TimePoint at;
};

/// drain takes every queued datagram from `s`.
inline std::vector<Received> drain(UdpSocket& s, TimePoint now, std::size_t buffer_size = 2048) {
  std::vector<Received> out;
  env::RecvBuffers bufs(8, buffer_size);
  while (true) {
    auto n = s.try_receive_batch(bufs.buffers(), bufs.metas());
    if (!n || *n == 0) break;
    for (std::size_t i = 0; i < *n; ++i) {
      const auto d = bufs.data(i);
      out.push_back(Received{std::vector<std::byte>(d.begin(), d.end()), bufs.meta(i), now});
    }
  }
  return out;
}

/// Recorder receives on a socket in a coroutine and notes when each datagram arrived.
struct Recorder {
  void start(env::SimRuntime& rt, UdpSocket& s) {
    spawn(rt, [this, &rt, &s]() -> asio::awaitable<void> {
      while (true) {
        auto r = co_await s.wait_readable();
        if (!r) co_return;
        for (auto& d : drain(s, rt.now())) got.push_back(std::move(d));
      }
    });
  }
  std::vector<Received> got;
};

}  // namespace moosicbox::p2p::simnet::test
