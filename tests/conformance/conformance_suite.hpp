// SPDX-License-Identifier: MIT OR Apache-2.0
// conformance_suite.hpp: the generic conformance suite every backend runs unchanged: two typed
// GoogleTest suites, P2PConformance (messages, lifecycle, close semantics, listeners, many
// connections) for any P2PSystem, and P2PStreamConformance (bidirectional streams) for backends whose
// connections satisfy P2PStreamConnection. A backend instantiates them over a Harness:
//
//   INSTANTIATE_TYPED_TEST_SUITE_P(Sim, P2PConformance, ::testing::Types<MyHarness>);
//   INSTANTIATE_TYPED_TEST_SUITE_P(Sim, P2PStreamConformance, ::testing::Types<MyHarness>);
//
// The Harness contract (one fresh harness per test, created by the fixture):
//   typename H::System                  a type satisfying P2PSystem.
//   H()                                 an isolated environment (a simulated world, or an io_context
//                                       with loopback endpoints).
//   System& make_system(std::string_view name)
//                                       a new system (node) that lives as long as the harness, with a
//                                       stable address; every system of one harness can connect() to
//                                       every other by node id once that one listens (the harness
//                                       supplies whatever address lookup the backend needs).
//   std::string listen_addr()           the address to pass to System::listen (e.g. "127.0.0.1:0").
//   std::size_t max_message_size() const  the largest message send() accepts.
//   template <class T> std::optional<T> run(asio::awaitable<T> task)
//                                       runs `task` on the harness's executor until it completes and
//                                       returns its value; nullopt when a bound was hit first (virtual
//                                       time for a simulation, a wall-clock watchdog of at most a
//                                       minute for a real backend). Rethrows an exception of the task.
//   std::string context() const         a line printed with every failure (a simulation prints
//                                       "reproduce with P2P_SIM_SEED=<n>").
// Tests never sleep: every wait is on the protocol itself, so the suite runs the same in virtual and
// in real time.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include "moosicbox/p2p/concepts.hpp"
#include "moosicbox/p2p/streams.hpp"

namespace moosicbox::p2p::conformance {

/// Outcome is what a test coroutine reports: nullopt when every check held, else the failed check.
using Outcome = std::optional<std::string>;

/// into runs `task` and stores its value in `out` (values need not be default-constructible, which
/// asio's awaitable operators would otherwise require).
template <class T>
asio::awaitable<void> into(asio::awaitable<T> task, std::optional<T>* out) {
  out->emplace(co_await std::move(task));
}

/// pattern returns `n` deterministic bytes that differ for different `seed`s.
inline Bytes pattern(std::size_t n, std::uint32_t seed) {
  Bytes b(n);
  std::uint32_t x = seed * 2654435761U + 7;
  for (auto& v : b) {
    x = x * 1664525U + 1013904223U;
    v = static_cast<std::byte>(x >> 24);
  }
  return b;
}

/// is_one_of reports whether `code` is among `codes`.
inline bool is_one_of(P2PErrc code, std::initializer_list<P2PErrc> codes) {
  for (const auto c : codes) {
    if (c == code) return true;
  }
  return false;
}

}  // namespace moosicbox::p2p::conformance

/// P2P_CO_CHECK(cond) ends a test coroutine with a description of `cond` when it does not hold.
#define P2P_CO_CHECK(cond)                                                                      \
  do {                                                                                          \
    if (!(cond)) co_return ::fmt::format("{}:{}: check failed: {}", __FILE__, __LINE__, #cond); \
  } while (false)

/// P2P_CO_CHECK_OK(expr) ends a test coroutine when the P2PResult `expr` (evaluated once) holds an
/// error, naming it.
#define P2P_CO_CHECK_OK(expr)                                                                                      \
  do {                                                                                                             \
    const auto& p2p_co_result = (expr);                                                                            \
    if (!p2p_co_result) {                                                                                          \
      co_return ::fmt::format("{}:{}: {} failed: {}", __FILE__, __LINE__, #expr, p2p_co_result.error().message()); \
    }                                                                                                              \
  } while (false)

namespace moosicbox::p2p::conformance {

/// ConformanceBase is the fixture of both suites: a harness and helpers to connect two systems.
template <class H>
class ConformanceBase : public ::testing::Test {
 public:
  using System = typename H::System;
  using Connection = typename System::Connection;
  using Listener = typename System::Listener;
  static_assert(P2PSystem<System>);

  /// Link is a connected pair: the dialer's and the acceptor's side of one connection.
  struct Link {
    std::optional<Connection> client;
    std::optional<Connection> server;
  };

  /// connect dials `server` from `client` while `listener` accepts.
  static asio::awaitable<P2PResult<Link>> connect(System& client, System& server, Listener& listener) {
    using namespace boost::asio::experimental::awaitable_operators;
    std::optional<P2PResult<Connection>> dialed;
    std::optional<P2PResult<Connection>> accepted;
    co_await (into(client.connect(server.local_node_id()), &dialed) && into(listener.accept(), &accepted));
    if (!*dialed) co_return fail(dialed->error());
    if (!*accepted) co_return fail(accepted->error());
    co_return Link{**dialed, **accepted};
  }

  /// listen starts `server` listening on the harness's address.
  asio::awaitable<P2PResult<Listener>> listen(System& server) {
    co_return co_await server.listen(harness_.listen_addr());
  }

  /// check runs a test coroutine and reports its outcome as a test failure.
  void check(asio::awaitable<Outcome> task) {
    SCOPED_TRACE(harness_.context());
    auto outcome = harness_.run(std::move(task));
    ASSERT_TRUE(outcome.has_value()) << "the test did not complete within the harness's bound";
    EXPECT_FALSE(outcome->has_value()) << **outcome;
  }

  /// echo_pair builds the usual setup: systems "client" and "server", server listening.
  struct Pair {
    System* client;
    System* server;
  };
  Pair make_pair() { return Pair{&harness_.make_system("client"), &harness_.make_system("server")}; }

  H harness_;
};

// ---- P2PConformance ----------------------------------------------------------------------------------

template <class H>
class P2PConformance : public ConformanceBase<H> {};

TYPED_TEST_SUITE_P(P2PConformance);

// roundtrip sends one message of `size` bytes client -> server and checks it arrives byte for byte.
template <class Fixture>
asio::awaitable<Outcome> message_roundtrip(Fixture* f, std::size_t size) {
  auto [client, server] = f->make_pair();
  auto listener = co_await f->listen(*server);
  P2P_CO_CHECK_OK(listener);
  auto link = co_await Fixture::connect(*client, *server, *listener);
  P2P_CO_CHECK_OK(link);
  const Bytes data = pattern(size, static_cast<std::uint32_t>(size));
  auto sent = co_await link->client->send(data);
  P2P_CO_CHECK_OK(sent);
  auto got = co_await link->server->recv();
  P2P_CO_CHECK_OK(got);
  P2P_CO_CHECK(got->size() == size);
  P2P_CO_CHECK(*got == data);
  co_return std::nullopt;
}

TYPED_TEST_P(P2PConformance, EmptyMessageArrivesIntact) { this->check(message_roundtrip(this, 0)); }

TYPED_TEST_P(P2PConformance, OneByteMessageArrivesIntact) { this->check(message_roundtrip(this, 1)); }

TYPED_TEST_P(P2PConformance, MaxSizeMessageArrivesIntact) {
  this->check(message_roundtrip(this, this->harness_.max_message_size()));
}

TYPED_TEST_P(P2PConformance, OversizedMessageIsRejectedAndTheConnectionLives) {
  this->check([](auto* f) -> asio::awaitable<Outcome> {
    auto [client, server] = f->make_pair();
    auto listener = co_await f->listen(*server);
    P2P_CO_CHECK_OK(listener);
    auto link = co_await std::remove_pointer_t<decltype(f)>::connect(*client, *server, *listener);
    P2P_CO_CHECK_OK(link);
    const auto max = f->harness_.max_message_size();
    auto over = co_await link->client->send(Bytes(max + 1, std::byte{1}));
    P2P_CO_CHECK(!over);
    P2P_CO_CHECK(over.error().code() == P2PErrc::message_too_large);
    P2P_CO_CHECK(link->client->is_connected());
    auto ok = co_await link->client->send(as_bytes("still here"));
    P2P_CO_CHECK_OK(ok);
    auto got = co_await link->server->recv();
    P2P_CO_CHECK_OK(got);
    P2P_CO_CHECK(to_string(*got) == "still here");
    co_return std::nullopt;
  }(this));
}

TYPED_TEST_P(P2PConformance, TenThousandMessagesArriveInOrder) {
  this->check([](auto* f) -> asio::awaitable<Outcome> {
    using namespace boost::asio::experimental::awaitable_operators;
    using F = std::remove_pointer_t<decltype(f)>;
    using Conn = typename F::Connection;
    auto [client, server] = f->make_pair();
    auto listener = co_await f->listen(*server);
    P2P_CO_CHECK_OK(listener);
    auto link = co_await F::connect(*client, *server, *listener);
    P2P_CO_CHECK_OK(link);
    constexpr int kCount = 10'000;
    auto sender = [](Conn c) -> asio::awaitable<std::string> {
      for (int i = 0; i < kCount; ++i) {
        auto r = co_await c.send(as_bytes(fmt::format("message {}", i)));
        if (!r) co_return fmt::format("send {} failed: {}", i, r.error().message());
      }
      co_return std::string();
    };
    auto receiver = [](Conn c) -> asio::awaitable<std::string> {
      for (int i = 0; i < kCount; ++i) {
        auto m = co_await c.recv();
        if (!m) co_return fmt::format("recv {} failed: {}", i, m.error().message());
        if (to_string(*m) != fmt::format("message {}", i)) co_return fmt::format("message {} out of order", i);
      }
      co_return std::string();
    };
    auto [sent, received] = co_await (sender(*link->client) && receiver(*link->server));
    P2P_CO_CHECK(sent.empty());
    P2P_CO_CHECK(received.empty());
    const auto sstats = link->server->stats();
    const auto cstats = link->client->stats();
    P2P_CO_CHECK(cstats.messages_sent >= static_cast<std::uint64_t>(kCount));
    P2P_CO_CHECK(sstats.messages_received >= static_cast<std::uint64_t>(kCount));
    co_return std::nullopt;
  }(this));
}

TYPED_TEST_P(P2PConformance, MessagesFlowBothWaysAndIdentitiesMatch) {
  this->check([](auto* f) -> asio::awaitable<Outcome> {
    auto [client, server] = f->make_pair();
    auto listener = co_await f->listen(*server);
    P2P_CO_CHECK_OK(listener);
    auto link = co_await std::remove_pointer_t<decltype(f)>::connect(*client, *server, *listener);
    P2P_CO_CHECK_OK(link);
    P2P_CO_CHECK(link->client->remote_node_id() == server->local_node_id());
    P2P_CO_CHECK(link->server->remote_node_id() == client->local_node_id());
    P2P_CO_CHECK(link->client->is_connected());
    P2P_CO_CHECK(link->server->is_connected());
    for (int i = 0; i < 10; ++i) {
      P2P_CO_CHECK_OK(co_await link->client->send(as_bytes(fmt::format("ping {}", i))));
      auto ping = co_await link->server->recv();
      P2P_CO_CHECK_OK(ping);
      P2P_CO_CHECK(to_string(*ping) == fmt::format("ping {}", i));
      P2P_CO_CHECK_OK(co_await link->server->send(as_bytes(fmt::format("pong {}", i))));
      auto pong = co_await link->client->recv();
      P2P_CO_CHECK_OK(pong);
      P2P_CO_CHECK(to_string(*pong) == fmt::format("pong {}", i));
    }
    P2P_CO_CHECK(link->client->stats().messages_sent == 10);
    P2P_CO_CHECK(link->client->stats().messages_received == 10);
    P2P_CO_CHECK(link->server->stats().bytes_received == 60);
    co_return std::nullopt;
  }(this));
}

TYPED_TEST_P(P2PConformance, RecvWaitsForAMessageSentLater) {
  this->check([](auto* f) -> asio::awaitable<Outcome> {
    using namespace boost::asio::experimental::awaitable_operators;
    using F = std::remove_pointer_t<decltype(f)>;
    using Conn = typename F::Connection;
    auto [client, server] = f->make_pair();
    auto listener = co_await f->listen(*server);
    P2P_CO_CHECK_OK(listener);
    auto link = co_await F::connect(*client, *server, *listener);
    P2P_CO_CHECK_OK(link);
    // The server's recv starts before the client even knows it may send: it must wait, not fail.
    std::optional<P2PResult<Bytes>> early;
    auto server_side = [](Conn s, std::optional<P2PResult<Bytes>>* out) -> asio::awaitable<void> {
      using namespace boost::asio::experimental::awaitable_operators;
      co_await (into(s.recv(), out) &&
                    [](Conn s2) -> asio::awaitable<void> { (void)co_await s2.send(as_bytes("go")); }(s));
    };
    auto client_side = [](Conn c) -> asio::awaitable<void> {
      auto go = co_await c.recv();
      if (go) (void)co_await c.send(as_bytes("data"));
    };
    co_await (server_side(*link->server, &early) && client_side(*link->client));
    P2P_CO_CHECK(early.has_value());
    P2P_CO_CHECK_OK(*early);
    P2P_CO_CHECK(to_string(**early) == "data");
    co_return std::nullopt;
  }(this));
}

TYPED_TEST_P(P2PConformance, PeerCloseDeliversEverythingSentBeforeThenConnectionClosed) {
  this->check([](auto* f) -> asio::awaitable<Outcome> {
    auto [client, server] = f->make_pair();
    auto listener = co_await f->listen(*server);
    P2P_CO_CHECK_OK(listener);
    auto link = co_await std::remove_pointer_t<decltype(f)>::connect(*client, *server, *listener);
    P2P_CO_CHECK_OK(link);
    for (int i = 0; i < 100; ++i) P2P_CO_CHECK_OK(co_await link->client->send(as_bytes(fmt::format("m{}", i))));
    P2P_CO_CHECK_OK(co_await link->client->close());
    P2P_CO_CHECK(!link->client->is_connected());
    for (int i = 0; i < 100; ++i) {
      auto m = co_await link->server->recv();
      P2P_CO_CHECK_OK(m);
      P2P_CO_CHECK(to_string(*m) == fmt::format("m{}", i));
    }
    auto end = co_await link->server->recv();
    P2P_CO_CHECK(!end);
    P2P_CO_CHECK(end.error().code() == P2PErrc::connection_closed);
    P2P_CO_CHECK(!link->server->is_connected());
    auto reply = co_await link->server->send(as_bytes("after the close"));
    P2P_CO_CHECK(!reply);
    P2P_CO_CHECK(reply.error().code() == P2PErrc::connection_closed);
    co_return std::nullopt;
  }(this));
}

TYPED_TEST_P(P2PConformance, SendAndRecvAfterLocalCloseFailAndCloseIsIdempotent) {
  this->check([](auto* f) -> asio::awaitable<Outcome> {
    auto [client, server] = f->make_pair();
    auto listener = co_await f->listen(*server);
    P2P_CO_CHECK_OK(listener);
    auto link = co_await std::remove_pointer_t<decltype(f)>::connect(*client, *server, *listener);
    P2P_CO_CHECK_OK(link);
    P2P_CO_CHECK_OK(co_await link->client->close());
    P2P_CO_CHECK_OK(co_await link->client->close());
    auto sent = co_await link->client->send(as_bytes("x"));
    P2P_CO_CHECK(!sent);
    P2P_CO_CHECK(sent.error().code() == P2PErrc::connection_closed);
    auto got = co_await link->client->recv();
    P2P_CO_CHECK(!got);
    P2P_CO_CHECK(got.error().code() == P2PErrc::connection_closed);
    // The server learns of the close too.
    auto end = co_await link->server->recv();
    P2P_CO_CHECK(!end);
    P2P_CO_CHECK(end.error().code() == P2PErrc::connection_closed);
    co_return std::nullopt;
  }(this));
}

TYPED_TEST_P(P2PConformance, DroppingTheLastHandleClosesTheConnection) {
  this->check([](auto* f) -> asio::awaitable<Outcome> {
    auto [client, server] = f->make_pair();
    auto listener = co_await f->listen(*server);
    P2P_CO_CHECK_OK(listener);
    auto link = co_await std::remove_pointer_t<decltype(f)>::connect(*client, *server, *listener);
    P2P_CO_CHECK_OK(link);
    {
      auto copy = *link->client;  // a copy is a handle to the same connection
      P2P_CO_CHECK_OK(co_await copy.send(as_bytes("from a copy")));
    }
    P2P_CO_CHECK(link->client->is_connected());
    P2P_CO_CHECK_OK(co_await link->client->send(as_bytes("last words")));
    link->client.reset();
    auto m1 = co_await link->server->recv();
    P2P_CO_CHECK_OK(m1);
    P2P_CO_CHECK(to_string(*m1) == "from a copy");
    auto m2 = co_await link->server->recv();
    P2P_CO_CHECK_OK(m2);
    P2P_CO_CHECK(to_string(*m2) == "last words");
    auto end = co_await link->server->recv();
    P2P_CO_CHECK(!end);
    P2P_CO_CHECK(end.error().code() == P2PErrc::connection_closed);
    co_return std::nullopt;
  }(this));
}

TYPED_TEST_P(P2PConformance, ConnectingToASystemThatDoesNotListenFails) {
  this->check([](auto* f) -> asio::awaitable<Outcome> {
    auto [client, server] = f->make_pair();
    auto conn = co_await client->connect(server->local_node_id());
    P2P_CO_CHECK(!conn);
    P2P_CO_CHECK(is_one_of(conn.error().code(),
                           {P2PErrc::connection_failed, P2PErrc::timeout, P2PErrc::no_route, P2PErrc::node_not_found}));
    co_return std::nullopt;
  }(this));
}

TYPED_TEST_P(P2PConformance, ListeningTwiceFails) {
  this->check([](auto* f) -> asio::awaitable<Outcome> {
    auto& server = f->harness_.make_system("server");
    auto first = co_await f->listen(server);
    P2P_CO_CHECK_OK(first);
    auto second = co_await f->listen(server);
    P2P_CO_CHECK(!second);
    P2P_CO_CHECK(second.error().code() == P2PErrc::connection_failed);
    co_return std::nullopt;
  }(this));
}

TYPED_TEST_P(P2PConformance, ListenerAcceptsConnectionsInArrivalOrder) {
  this->check([](auto* f) -> asio::awaitable<Outcome> {
    using F = std::remove_pointer_t<decltype(f)>;
    using Conn = typename F::Connection;
    auto& server = f->harness_.make_system("server");
    auto listener = co_await f->listen(server);
    P2P_CO_CHECK_OK(listener);
    std::vector<typename F::System*> clients;
    std::vector<Conn> dialed;
    for (int i = 0; i < 5; ++i) {
      clients.push_back(&f->harness_.make_system(fmt::format("client{}", i)));
      auto c = co_await clients.back()->connect(server.local_node_id());
      P2P_CO_CHECK_OK(c);
      dialed.push_back(*c);
    }
    for (int i = 0; i < 5; ++i) {
      auto s = co_await listener->accept();
      P2P_CO_CHECK_OK(s);
      P2P_CO_CHECK(s->remote_node_id() == clients[static_cast<std::size_t>(i)]->local_node_id());
    }
    co_return std::nullopt;
  }(this));
}

TYPED_TEST_P(P2PConformance, ManyConcurrentConnectionsEachCarryTheirOwnMessages) {
  this->check([](auto* f) -> asio::awaitable<Outcome> {
    using namespace boost::asio::experimental::awaitable_operators;
    using F = std::remove_pointer_t<decltype(f)>;
    using Conn = typename F::Connection;
    using Sys = typename F::System;
    constexpr int kClients = 8;
    constexpr int kPerClient = 4;
    constexpr int kMessages = 20;
    auto& server = f->harness_.make_system("server");
    auto listener = co_await f->listen(server);
    P2P_CO_CHECK_OK(listener);
    // The server echoes every message on every connection it accepts.
    auto serve = [](typename F::Listener l) -> asio::awaitable<std::string> {
      auto echo = [](Conn c) -> asio::awaitable<std::string> {
        for (int i = 0; i < kMessages; ++i) {
          auto m = co_await c.recv();
          if (!m) co_return fmt::format("server recv: {}", m.error().message());
          if (auto r = co_await c.send(*m); !r) co_return fmt::format("server send: {}", r.error().message());
        }
        co_return std::string();
      };
      std::vector<Conn> accepted;
      for (int i = 0; i < kClients * kPerClient; ++i) {
        auto c = co_await l.accept();
        if (!c) co_return fmt::format("accept {}: {}", i, c.error().message());
        accepted.push_back(*c);
      }
      for (auto& c : accepted) {
        if (auto e = co_await echo(c); !e.empty()) co_return e;
      }
      co_return std::string();
    };
    auto client = [](Sys* sys, typename Sys::NodeId target, int index) -> asio::awaitable<std::string> {
      std::vector<Conn> conns;
      for (int k = 0; k < kPerClient; ++k) {
        auto c = co_await sys->connect(target);
        if (!c) co_return fmt::format("client {} connect: {}", index, c.error().message());
        conns.push_back(*c);
      }
      for (int i = 0; i < kMessages; ++i) {
        for (std::size_t k = 0; k < conns.size(); ++k) {
          auto r = co_await conns[k].send(as_bytes(fmt::format("{}/{}/{}", index, k, i)));
          if (!r) co_return fmt::format("client send: {}", r.error().message());
        }
      }
      for (int i = 0; i < kMessages; ++i) {
        for (std::size_t k = 0; k < conns.size(); ++k) {
          auto m = co_await conns[k].recv();
          if (!m) co_return fmt::format("client recv: {}", m.error().message());
          if (to_string(*m) != fmt::format("{}/{}/{}", index, k, i)) co_return "echo mismatch: " + to_string(*m);
        }
      }
      co_return std::string();
    };
    std::vector<Sys*> systems;
    for (int i = 0; i < kClients; ++i) systems.push_back(&f->harness_.make_system(fmt::format("client{}", i)));
    auto all_clients = [](std::vector<Sys*> sys, typename Sys::NodeId target,
                          decltype(client) one) -> asio::awaitable<std::string> {
      // Every client runs at once: a chain of && over a fixed count.
      auto results = co_await (one(sys[0], target, 0) && one(sys[1], target, 1) && one(sys[2], target, 2) &&
                               one(sys[3], target, 3) && one(sys[4], target, 4) && one(sys[5], target, 5) &&
                               one(sys[6], target, 6) && one(sys[7], target, 7));
      std::string errors;
      std::apply([&](const auto&... r) { ((errors += r), ...); }, results);
      co_return errors;
    };
    auto [served, clients_done] = co_await (serve(*listener) && all_clients(systems, server.local_node_id(), client));
    P2P_CO_CHECK(served.empty());
    P2P_CO_CHECK(clients_done.empty());
    co_return std::nullopt;
  }(this));
}

REGISTER_TYPED_TEST_SUITE_P(P2PConformance, EmptyMessageArrivesIntact, OneByteMessageArrivesIntact,
                            MaxSizeMessageArrivesIntact, OversizedMessageIsRejectedAndTheConnectionLives,
                            TenThousandMessagesArriveInOrder, MessagesFlowBothWaysAndIdentitiesMatch,
                            RecvWaitsForAMessageSentLater, PeerCloseDeliversEverythingSentBeforeThenConnectionClosed,
                            SendAndRecvAfterLocalCloseFailAndCloseIsIdempotent,
                            DroppingTheLastHandleClosesTheConnection, ConnectingToASystemThatDoesNotListenFails,
                            ListeningTwiceFails, ListenerAcceptsConnectionsInArrivalOrder,
                            ManyConcurrentConnectionsEachCarryTheirOwnMessages);

// ---- P2PStreamConformance ----------------------------------------------------------------------------

template <class H>
class P2PStreamConformance : public ConformanceBase<H> {
 protected:
  using BiStream = typename ConformanceBase<H>::Connection::BiStream;
  static_assert(P2PStreamConnection<typename ConformanceBase<H>::Connection>);

 public:
  /// read_to_end reads a stream until its end (or an error).
  static asio::awaitable<P2PResult<Bytes>> read_to_end(BiStream& s) {
    Bytes out;
    std::array<std::byte, 4096> buf{};
    while (true) {
      auto n = co_await s.read(buf);
      if (!n) co_return fail(n.error());
      if (*n == 0) co_return out;
      out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
    }
  }
  /// write_all writes `data` and finishes the stream.
  static asio::awaitable<P2PResult<void>> write_all(BiStream& s, ByteView data) {
    if (auto r = co_await s.write(data); !r) co_return r;
    co_return co_await s.finish();
  }
};

TYPED_TEST_SUITE_P(P2PStreamConformance);

TYPED_TEST_P(P2PStreamConformance, DataFlowsBothWaysThenEndOfStream) {
  this->check([](auto* f) -> asio::awaitable<Outcome> {
    using F = std::remove_pointer_t<decltype(f)>;
    auto [client, server] = f->make_pair();
    auto listener = co_await f->listen(*server);
    P2P_CO_CHECK_OK(listener);
    auto link = co_await F::connect(*client, *server, *listener);
    P2P_CO_CHECK_OK(link);
    auto out = co_await link->client->open_bi();
    P2P_CO_CHECK_OK(out);
    P2P_CO_CHECK_OK(co_await F::write_all(*out, as_bytes("request body")));
    auto in = co_await link->server->accept_bi();
    P2P_CO_CHECK_OK(in);
    P2P_CO_CHECK(in->id() == out->id());
    auto request = co_await F::read_to_end(*in);
    P2P_CO_CHECK_OK(request);
    P2P_CO_CHECK(to_string(*request) == "request body");
    P2P_CO_CHECK_OK(co_await F::write_all(*in, as_bytes("response body")));
    auto response = co_await F::read_to_end(*out);
    P2P_CO_CHECK_OK(response);
    P2P_CO_CHECK(to_string(*response) == "response body");
    // Reading past the end keeps returning 0.
    std::array<std::byte, 8> buf{};
    auto again = co_await out->read(buf);
    P2P_CO_CHECK_OK(again);
    P2P_CO_CHECK(*again == 0);
    co_return std::nullopt;
  }(this));
}

TYPED_TEST_P(P2PStreamConformance, ALargeBodyArrivesIntactThroughFlowControl) {
  this->check([](auto* f) -> asio::awaitable<Outcome> {
    using namespace boost::asio::experimental::awaitable_operators;
    using F = std::remove_pointer_t<decltype(f)>;
    auto [client, server] = f->make_pair();
    auto listener = co_await f->listen(*server);
    P2P_CO_CHECK_OK(listener);
    auto link = co_await F::connect(*client, *server, *listener);
    P2P_CO_CHECK_OK(link);
    auto out = co_await link->client->open_bi();
    P2P_CO_CHECK_OK(out);
    const Bytes body = pattern(8 << 20, 99);
    // Far more than any flow-control window: the writer must wait for the reader.
    std::optional<P2PResult<void>> written;
    std::optional<P2PResult<Bytes>> read;
    auto reader = [](typename F::Connection s, std::optional<P2PResult<Bytes>>* dst) -> asio::awaitable<void> {
      auto in = co_await s.accept_bi();
      if (!in) {
        dst->emplace(fail(in.error()));
        co_return;
      }
      dst->emplace(co_await F::read_to_end(*in));
    };
    co_await (into(F::write_all(*out, body), &written) && reader(*link->server, &read));
    P2P_CO_CHECK_OK(*written);
    P2P_CO_CHECK_OK(*read);
    P2P_CO_CHECK(**read == body);
    co_return std::nullopt;
  }(this));
}

TYPED_TEST_P(P2PStreamConformance, StreamsAreAcceptedInOpeningOrder) {
  this->check([](auto* f) -> asio::awaitable<Outcome> {
    using F = std::remove_pointer_t<decltype(f)>;
    auto [client, server] = f->make_pair();
    auto listener = co_await f->listen(*server);
    P2P_CO_CHECK_OK(listener);
    auto link = co_await F::connect(*client, *server, *listener);
    P2P_CO_CHECK_OK(link);
    std::vector<typename F::BiStream> opened;
    for (int i = 0; i < 4; ++i) {
      auto s = co_await link->client->open_bi();
      P2P_CO_CHECK_OK(s);
      P2P_CO_CHECK_OK(co_await s->write(as_bytes(fmt::format("stream {}", i))));
      opened.push_back(std::move(*s));
    }
    for (int i = 0; i < 4; ++i) {
      auto s = co_await link->server->accept_bi();
      P2P_CO_CHECK_OK(s);
      P2P_CO_CHECK(s->id() == opened[static_cast<std::size_t>(i)].id());
      std::array<std::byte, 64> buf{};
      auto n = co_await s->read(buf);
      P2P_CO_CHECK_OK(n);
      P2P_CO_CHECK(*n > 0);
    }
    co_return std::nullopt;
  }(this));
}

TYPED_TEST_P(P2PStreamConformance, ResetFailsThePeersReadWithTheCode) {
  this->check([](auto* f) -> asio::awaitable<Outcome> {
    using F = std::remove_pointer_t<decltype(f)>;
    auto [client, server] = f->make_pair();
    auto listener = co_await f->listen(*server);
    P2P_CO_CHECK_OK(listener);
    auto link = co_await F::connect(*client, *server, *listener);
    P2P_CO_CHECK_OK(link);
    auto out = co_await link->client->open_bi();
    P2P_CO_CHECK_OK(out);
    P2P_CO_CHECK_OK(co_await out->write(as_bytes("some data")));
    out->reset(77);
    auto in = co_await link->server->accept_bi();
    P2P_CO_CHECK_OK(in);
    auto body = co_await F::read_to_end(*in);
    P2P_CO_CHECK(!body);
    P2P_CO_CHECK(body.error().code() == P2PErrc::stream_reset);
    P2P_CO_CHECK(body.error().message().find("77") != std::string::npos);
    // The connection itself lives on.
    P2P_CO_CHECK_OK(co_await link->client->send(as_bytes("after reset")));
    auto m = co_await link->server->recv();
    P2P_CO_CHECK_OK(m);
    co_return std::nullopt;
  }(this));
}

TYPED_TEST_P(P2PStreamConformance, StopFailsThePeersWritesWithTheCode) {
  this->check([](auto* f) -> asio::awaitable<Outcome> {
    using F = std::remove_pointer_t<decltype(f)>;
    auto [client, server] = f->make_pair();
    auto listener = co_await f->listen(*server);
    P2P_CO_CHECK_OK(listener);
    auto link = co_await F::connect(*client, *server, *listener);
    P2P_CO_CHECK_OK(link);
    auto out = co_await link->client->open_bi();
    P2P_CO_CHECK_OK(out);
    P2P_CO_CHECK_OK(co_await out->write(as_bytes("hello")));
    auto in = co_await link->server->accept_bi();
    P2P_CO_CHECK_OK(in);
    in->stop(33);
    // Keep writing until the stop arrives; a stopped receiver grants no credit, so the writer
    // cannot run ahead of it for long.
    const Bytes chunk(64 * 1024, std::byte{5});
    std::optional<P2PError> error;
    for (int i = 0; i < 4096 && !error; ++i) {
      auto r = co_await out->write(chunk);
      if (!r) error = r.error();
    }
    P2P_CO_CHECK(error.has_value());
    P2P_CO_CHECK(error->code() == P2PErrc::stream_reset);
    P2P_CO_CHECK(error->message().find("33") != std::string::npos);
    co_return std::nullopt;
  }(this));
}

TYPED_TEST_P(P2PStreamConformance, StreamsDoNotBlockMessagesOrEachOther) {
  this->check([](auto* f) -> asio::awaitable<Outcome> {
    using F = std::remove_pointer_t<decltype(f)>;
    auto [client, server] = f->make_pair();
    auto listener = co_await f->listen(*server);
    P2P_CO_CHECK_OK(listener);
    auto link = co_await F::connect(*client, *server, *listener);
    P2P_CO_CHECK_OK(link);
    // An open stream that nobody reads, then a second stream and messages that must still flow.
    auto idle = co_await link->client->open_bi();
    P2P_CO_CHECK_OK(idle);
    P2P_CO_CHECK_OK(co_await idle->write(as_bytes("unread")));
    auto busy = co_await link->client->open_bi();
    P2P_CO_CHECK_OK(busy);
    P2P_CO_CHECK_OK(co_await F::write_all(*busy, as_bytes("read me")));
    P2P_CO_CHECK_OK(co_await link->client->send(as_bytes("a message")));
    auto first = co_await link->server->accept_bi();
    P2P_CO_CHECK_OK(first);
    auto second = co_await link->server->accept_bi();
    P2P_CO_CHECK_OK(second);
    auto body = co_await F::read_to_end(*second);
    P2P_CO_CHECK_OK(body);
    P2P_CO_CHECK(to_string(*body) == "read me");
    auto m = co_await link->server->recv();
    P2P_CO_CHECK_OK(m);
    P2P_CO_CHECK(to_string(*m) == "a message");
    co_return std::nullopt;
  }(this));
}

TYPED_TEST_P(P2PStreamConformance, ManyStreamsAtOnceEachCarryTheirBody) {
  this->check([](auto* f) -> asio::awaitable<Outcome> {
    using namespace boost::asio::experimental::awaitable_operators;
    using F = std::remove_pointer_t<decltype(f)>;
    using Conn = typename F::Connection;
    constexpr int kStreams = 32;
    auto [client, server] = f->make_pair();
    auto listener = co_await f->listen(*server);
    P2P_CO_CHECK_OK(listener);
    auto link = co_await F::connect(*client, *server, *listener);
    P2P_CO_CHECK_OK(link);
    // The server echoes each stream's body back on the same stream, one stream after the other.
    auto serve = [](Conn s) -> asio::awaitable<std::string> {
      for (int i = 0; i < kStreams; ++i) {
        auto in = co_await s.accept_bi();
        if (!in) co_return "accept: " + in.error().message();
        auto body = co_await F::read_to_end(*in);
        if (!body) co_return "read: " + body.error().message();
        if (auto w = co_await F::write_all(*in, *body); !w) co_return "write: " + w.error().message();
      }
      co_return std::string();
    };
    auto use = [](Conn c) -> asio::awaitable<std::string> {
      std::vector<typename F::BiStream> streams;
      for (int i = 0; i < kStreams; ++i) {
        auto s = co_await c.open_bi();
        if (!s) co_return "open: " + s.error().message();
        const Bytes body = pattern(20'000 + static_cast<std::size_t>(i), static_cast<std::uint32_t>(i));
        if (auto w = co_await F::write_all(*s, body); !w) co_return "write: " + w.error().message();
        streams.push_back(std::move(*s));
      }
      for (int i = 0; i < kStreams; ++i) {
        auto back = co_await F::read_to_end(streams[static_cast<std::size_t>(i)]);
        if (!back) co_return "read back: " + back.error().message();
        if (*back != pattern(20'000 + static_cast<std::size_t>(i), static_cast<std::uint32_t>(i))) {
          co_return fmt::format("stream {} body differs", i);
        }
      }
      co_return std::string();
    };
    auto [served, used] = co_await (serve(*link->server) && use(*link->client));
    P2P_CO_CHECK(served.empty());
    P2P_CO_CHECK(used.empty());
    co_return std::nullopt;
  }(this));
}

REGISTER_TYPED_TEST_SUITE_P(P2PStreamConformance, DataFlowsBothWaysThenEndOfStream,
                            ALargeBodyArrivesIntactThroughFlowControl, StreamsAreAcceptedInOpeningOrder,
                            ResetFailsThePeersReadWithTheCode, StopFailsThePeersWritesWithTheCode,
                            StreamsDoNotBlockMessagesOrEachOther, ManyStreamsAtOnceEachCarryTheirBody);

}  // namespace moosicbox::p2p::conformance
