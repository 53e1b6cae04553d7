// SPDX-License-Identifier: MIT OR Apache-2.0
// endpoint_fixture.hpp: helpers for the endpoint's integration tests: run a test coroutine on an
// io_context with a wall-time bound, bind loopback endpoints, and race an operation against a timer.
// Real sockets on loopback only.
// Layer: tests (endpoint).
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <optional>
#include <sstream>
#include <string>

#include "moosicbox/p2p/endpoint/endpoint.hpp"
#include "moosicbox/p2p/env/asio_env.hpp"

namespace moosicbox::p2p::testing {

using namespace std::chrono_literals;

/// Fatal is thrown by CO_ASSERT inside test coroutines (gtest's ASSERT_* return, which a coroutine
/// cannot); run_test reports it as a test failure at the assertion's line.
struct Fatal {
  const char* file;
  int line;
  std::string text;
  template <class T>
  Fatal& operator<<(const T& v) {
    std::ostringstream os;
    os << v;
    text += os.str();
    return *this;
  }
};

/// Skip is thrown by CO_SKIP inside test coroutines.
struct Skip {
  std::string text;
};

/// run_test runs `body` on a fresh io_context until it finishes and the endpoints it created have
/// closed, failing the test when that takes longer than `limit`.
inline void run_test(const std::function<asio::awaitable<void>(asio::any_io_executor)>& body,
                     std::chrono::seconds limit = std::chrono::seconds(60)) {
  asio::io_context io(1);
  bool done = false;
  std::exception_ptr error;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await body(io.get_executor());
        done = true;
      },
      [&](std::exception_ptr e) { error = e; });
  io.run_for(limit);
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const Fatal& f) {
      ADD_FAILURE_AT(f.file, f.line) << f.text;
      return;
    } catch (const Skip& s) {
      GTEST_SKIP() << s.text;
    }
  }
  ASSERT_TRUE(done) << "the test did not finish within " << limit.count() << "s";
}

/// loopback_config returns an endpoint configuration bound to 127.0.0.1 on a free port.
inline EndpointConfig loopback_config(std::string_view name, std::vector<std::string> alpns = {}) {
  EndpointConfig cfg(test_secret_key(name));
  cfg.bind_addrs = {SocketAddr::v4_loopback(0)};
  cfg.alpns = std::move(alpns);
  cfg.keep_alive_interval = std::chrono::seconds(1);
  cfg.close_timeout = std::chrono::seconds(2);
  return cfg;
}

/// bind_or_fail binds an endpoint, failing the test when it cannot.
inline Endpoint bind_or_fail(asio::any_io_executor ex, EndpointConfig cfg) {
  auto ep = Endpoint::bind(std::move(ex), std::move(cfg));
  if (!ep) throw std::runtime_error("bind failed: " + ep.error().message());
  return std::move(*ep);
}

/// with_timeout runs `op` and returns its result, or nullopt when `limit` passes first.
template <class T>
asio::awaitable<std::optional<T>> with_timeout(asio::any_io_executor ex, asio::awaitable<T> op, Duration limit) {
  using namespace boost::asio::experimental::awaitable_operators;
  env::AsioEnv env(ex);
  auto timer = env.make_timer();
  auto r = co_await (std::move(op) || timer.wait_until(env.now() + limit));
  if (r.index() == 0) co_return std::optional<T>(std::move(std::get<0>(r)));
  co_return std::nullopt;
}

/// Pair holds two connected endpoints: `client` dialed `server` for `alpn`.
struct ConnectedPair {
  Endpoint server_ep;
  Endpoint client_ep;
  Listener listener;
  Connection server;
  Connection client;
};

/// connect_pair binds two loopback endpoints and connects them.
inline asio::awaitable<ConnectedPair> connect_pair(asio::any_io_executor ex, EndpointConfig server_cfg,
                                                   EndpointConfig client_cfg, std::string alpn = "test/1") {
  auto server_ep = bind_or_fail(ex, std::move(server_cfg));
  auto client_ep = bind_or_fail(ex, std::move(client_cfg));
  auto listener = server_ep.listen(alpn);
  if (!listener) throw std::runtime_error("listen failed: " + listener.error().message());
  auto client = co_await client_ep.connect(server_ep.addr(), alpn);
  if (!client) throw std::runtime_error("connect failed: " + client.error().message());
  auto server = co_await listener->accept();
  if (!server) throw std::runtime_error("accept failed: " + server.error().message());
  co_return ConnectedPair{std::move(server_ep), std::move(client_ep), std::move(*listener), std::move(*server),
                          std::move(*client)};
}

/// payload returns `size` deterministic bytes.
inline Bytes payload(std::size_t size, std::uint8_t seed = 1) {
  Bytes b(size);
  std::uint32_t x = seed * 2654435761U + 1;
  for (auto& v : b) {
    x = x * 1664525U + 1013904223U;
    v = static_cast<std::byte>(x >> 24);
  }
  return b;
}

}  // namespace moosicbox::p2p::testing

/// CO_ASSERT(cond) << "context" fails the test and ends the test coroutine when `cond` is false.
#define CO_ASSERT(cond) \
  if (cond) {           \
  } else                \
    throw ::moosicbox::p2p::testing::Fatal { __FILE__, __LINE__, "Assertion failed: " #cond ". " }
/// CO_SKIP(text) skips the test from inside a test coroutine.
#define CO_SKIP(text) \
  throw ::moosicbox::p2p::testing::Skip { text }
