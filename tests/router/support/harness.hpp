// SPDX-License-Identifier: MIT OR Apache-2.0
// harness.hpp: what the router driver suite needs from a backend, and the helpers it shares:
// starting coroutines, a server running in the background, fetching a whole response, and the
// in-memory backend (MemBackend) on the stream double.
// Layer: tests. Single-threaded on the backend's executor.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>

#include "moosicbox/p2p/core/node_id.hpp"
#include "moosicbox/p2p/env/sim_env.hpp"
#include "moosicbox/p2p/router/client.hpp"
#include "moosicbox/p2p/router/server.hpp"
#include "router/support/mem_transport.hpp"
#include "router/support/run.hpp"

namespace moosicbox::p2p::testing {

/// test_seed returns P2P_SIM_SEED when set, otherwise `fallback`.
inline std::uint64_t test_seed(std::uint64_t fallback = 1) {
  if (const char* s = std::getenv("P2P_SIM_SEED")) return std::strtoull(s, nullptr, 10);
  return fallback;
}

/// start runs `f()` (a coroutine function object, kept alive by co_spawn) on `ex`; an escaping
/// exception fails the test.
template <class F>
void start(const asio::any_io_executor& ex, F f) {
  asio::co_spawn(ex, std::move(f), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      ADD_FAILURE() << "background task threw: " << x.what();
    }
  });
}

/// MemBackend runs the router on the in-memory stream double in virtual time.
class MemBackend {
 public:
  static constexpr std::string_view kName = "mem";
  static constexpr bool kVirtualTime = true;
  using Env = env::SimEnv;
  using Listener = MemListener;
  using Connection = MemConnection;

  explicit MemBackend(std::uint64_t seed, MemLinkConfig config = {})
      : rt_(seed), net_(rt_, config), server_env_(rt_, "server"), client_env_(rt_, "client") {}

  [[nodiscard]] std::uint64_t seed() const noexcept { return rt_.seed(); }
  [[nodiscard]] Env server_env() const { return server_env_; }
  [[nodiscard]] Env client_env() const { return client_env_; }
  [[nodiscard]] asio::any_io_executor executor() { return rt_.executor(); }
  [[nodiscard]] static NodeId server_id() { return test_node_id("server"); }
  [[nodiscard]] static NodeId client_id(std::string_view name) { return test_node_id(name); }
  asio::awaitable<P2PResult<Listener>> listen() { co_return net_.listen(server_id()); }
  asio::awaitable<P2PResult<Connection>> connect(std::string_view name) {
    return net_.connect(client_id(name), server_id());
  }
  /// run_until runs until `done()` holds or `limit` of virtual time passed; returns done().
  bool run_until(const std::function<bool()>& done, Duration limit = std::chrono::minutes(10)) {
    rt_.run_while([&] { return !done(); }, rt_.now() + limit);
    return done();
  }
  /// run_for lets `d` of virtual time pass.
  void run_for(Duration d) { rt_.run_for(d); }
  [[nodiscard]] MemNetwork& net() noexcept { return net_; }
  [[nodiscard]] env::SimRuntime& runtime() noexcept { return rt_; }

 private:
  env::SimRuntime rt_;
  MemNetwork net_;
  env::SimEnv server_env_;
  env::SimEnv client_env_;
};

/// ServerRun serves a router on backend B in the background; its destructor shuts the server down
/// and waits for serve() to return.
template <class B>
class ServerRun {
 public:
  ServerRun(B& b, router::P2PRouter r, router::ServeOptions options = {})
      : b_(b), server_(b.server_env(), std::move(r), with_hook(std::move(options))) {
    start(b.executor(), [this]() -> asio::awaitable<void> {
      auto listener = co_await b_.listen();
      if (!listener) {
        ADD_FAILURE() << "listen: " << listener.error().message();
        finished_ = true;
        co_return;
      }
      listening_ = true;
      result_ = co_await server_.serve(*listener);
      finished_ = true;
    });
    EXPECT_TRUE(b_.run_until([this] { return listening_ || finished_; }));
  }
  ServerRun(const ServerRun&) = delete;
  ServerRun& operator=(const ServerRun&) = delete;
  ~ServerRun() { stop(); }

  /// stop shuts the server down and runs until serve() returned.
  void stop() {
    if (finished_) return;
    server_.shutdown();
    EXPECT_TRUE(b_.run_until([this] { return finished_; }));
  }

  [[nodiscard]] router::Server<typename B::Env>& server() noexcept { return server_; }
  [[nodiscard]] bool finished() const noexcept { return finished_; }
  [[nodiscard]] const P2PResult<void>& result() const noexcept { return result_; }
  [[nodiscard]] const std::vector<router::RequestRecord>& records() const noexcept { return *records_; }

 private:
  router::ServeOptions with_hook(router::ServeOptions o) {
    auto user = std::move(o.on_request);
    o.on_request = [records = records_, user](const router::RequestRecord& r) {
      records->push_back(r);
      if (user) user(r);
    };
    return o;
  }

  B& b_;
  std::shared_ptr<std::vector<router::RequestRecord>> records_ = std::make_shared<std::vector<router::RequestRecord>>();
  router::Server<typename B::Env> server_;
  bool listening_ = false;
  bool finished_ = false;
  P2PResult<void> result_;
};

/// Fetched is a whole response (or the error that ended the request).
struct Fetched {
  std::optional<P2PError> error;
  router::StatusCode status = router::StatusCode::ok;
  router::Headers headers;
  Bytes body;
  [[nodiscard]] std::string text() const { return to_string(body); }
  [[nodiscard]] bool ok() const { return !error.has_value(); }
};

/// fetch performs a request and reads its whole body.
template <class C>
asio::awaitable<Fetched> fetch(router::P2PClient<C>& client, router::Method method, std::string target,
                               router::Headers headers = {}, router::Body body = {}) {
  Fetched f;
  auto r = co_await client.request(method, target, std::move(headers), std::move(body));
  if (!r) {
    f.error = r.error();
    co_return f;
  }
  f.status = r->status;
  f.headers = r->headers;
  auto all = co_await r->body.read_all(std::size_t{1} << 30);
  if (!all) {
    f.error = all.error();
    co_return f;
  }
  f.body = std::move(*all);
  co_return f;
}

/// write_pattern writes `size` bytes of the pattern from `offset` in `chunk`-byte writes. A plain
/// coroutine function: its parameters live in its frame, whatever happens to the caller.
inline asio::awaitable<P2PResult<void>> write_pattern(router::BodyWriter& w, std::uint64_t size, std::size_t chunk,
                                                      std::uint64_t offset) {
  Bytes buf(chunk);
  std::uint64_t done = 0;
  while (done < size) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, size - done));
    for (std::size_t k = 0; k < n; ++k) buf[k] = pattern_byte(offset + done + k);
    if (auto r = co_await w.write(ByteView(buf).first(n)); !r) co_return r;
    done += n;
  }
  co_return P2PResult<void>{};
}

/// pattern_source streams `size` bytes of the pattern in `chunk`-byte writes.
inline router::BodySource pattern_source(std::uint64_t size, std::size_t chunk = 64 * 1024, std::uint64_t offset = 0) {
  return [size, chunk, offset](router::BodyWriter& w) { return write_pattern(w, size, chunk, offset); };
}

}  // namespace moosicbox::p2p::testing
