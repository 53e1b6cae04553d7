// SPDX-License-Identifier: MIT OR Apache-2.0
// router_bench.cpp: `moosicbox-p2p bench router`: the router over the QUIC backend on loopback,
// and the same requests over HTTP/1.1 (Boost.Beast) on loopback TCP as a baseline. In both cases
// the server runs on its own thread and io_context and the client on the calling thread, so the two
// ends use the machine's two cores as two processes would. Every run is bounded in time.
// Layer: tools.
#include "router_commands.hpp"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "moosicbox/p2p/core/secret_key.hpp"
#include "moosicbox/p2p/endpoint/endpoint.hpp"
#include "moosicbox/p2p/env/asio_env.hpp"
#include "moosicbox/p2p/router/client.hpp"
#include "moosicbox/p2p/router/server.hpp"
#include "server_thread.hpp"

namespace moosicbox::p2p::cli {

namespace {

namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr Duration kRunLimit = std::chrono::seconds(120);
constexpr std::size_t kSmallBody = 64;

// Latencies collects request latencies and turns them into figures.
struct Latencies {
  std::vector<double> ms;
  LoadFigures figures(Duration elapsed) {
    LoadFigures f;
    f.requests = ms.size();
    if (ms.empty()) return f;
    std::ranges::sort(ms);
    f.p50_ms = ms[ms.size() / 2];
    f.p99_ms = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)];
    f.per_s = static_cast<double>(ms.size()) / std::chrono::duration<double>(elapsed).count();
    return f;
  }
};

double ms_between(TimePoint a, TimePoint b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

// run_client runs `task` on a fresh io_context on this thread until it finishes, within kRunLimit.
template <class F>
P2PResult<void> run_client(asio::io_context& io, F task) {
  bool done = false;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e) {
    error = e;
    done = true;
  });
  env::AsioEnv clock(io.get_executor());
  const auto end = clock.now() + kRunLimit;
  while (!done && clock.now() < end) {
    if (io.stopped()) io.restart();
    io.run_one_for(std::chrono::milliseconds(100));
  }
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      return fail(P2PError::network(e.what()));
    }
  }
  if (!done) return fail(P2PError::timeout(kRunLimit));
  return {};
}

// ---- the router over QUIC -------------------------------------------------------------------------

router::P2PRouter bench_router() {
  router::P2PRouter r;
  const std::string small(kSmallBody, 'x');
  (void)r.get("/ping", [small](const router::P2PRequest&) {
    return router::P2PResponse::bytes(router::StatusCode::ok, to_bytes(small), "text/plain");
  });
  (void)r.get("/stream/:bytes", [](const router::P2PRequest& req) {
    const auto size = std::stoull(std::string(*req.param("bytes")));
    return router::P2PResponse::stream(
        router::StatusCode::ok,
        [size](router::BodyWriter& w) -> asio::awaitable<P2PResult<void>> {
          // The captures live in the BodySource, which the server keeps until this completes.
          const Bytes chunk(64 * 1024, std::byte{0x5a});
          std::uint64_t left = size;
          while (left > 0) {
            const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk.size()));
            if (auto x = co_await w.write(ByteView(chunk).first(n)); !x) co_return x;
            left -= n;
          }
          co_return P2PResult<void>{};
        },
        size);
  });
  return r;
}

template <class C>
asio::awaitable<void> router_worker(router::P2PClient<C>& client, env::AsioEnv clock, TimePoint end, Latencies& lat,
                                    std::optional<P2PError>& failure) {
  while (!failure && clock.now() < end) {
    const auto t0 = clock.now();
    auto resp = co_await client.get("/ping");
    if (!resp) {
      failure = resp.error();
      co_return;
    }
    auto body = co_await resp->body.read_all(1024);
    if (!body || body->size() != kSmallBody) {
      failure = body ? P2PError::protocol("short body") : body.error();
      co_return;
    }
    lat.ms.push_back(ms_between(t0, clock.now()));
  }
}

template <class C>
asio::awaitable<LoadFigures> router_load(router::P2PClient<C>& client, int concurrency, Duration run) {
  env::AsioEnv clock(co_await asio::this_coro::executor);
  Latencies lat;
  std::optional<P2PError> failure;
  const auto start = clock.now();
  const auto end = start + run;
  int running = concurrency - 1;
  for (int i = 1; i < concurrency; ++i) {
    asio::co_spawn(co_await asio::this_coro::executor, router_worker(client, clock, end, lat, failure),
                   [&running](std::exception_ptr) { --running; });
  }
  // One worker runs here, so a run at concurrency 1 has no other work on the executor.
  co_await router_worker(client, clock, end, lat, failure);
  auto timer = clock.make_timer();
  while (running > 0) (void)co_await timer.wait_until(clock.now() + std::chrono::milliseconds(1));
  if (failure) throw std::runtime_error(failure->message());
  co_return lat.figures(clock.now() - start);
}

template <class C>
asio::awaitable<double> router_stream(router::P2PClient<C>& client, std::uint64_t bytes) {
  env::AsioEnv clock(co_await asio::this_coro::executor);
  const auto t0 = clock.now();
  auto resp = co_await client.get(fmt::format("/stream/{}", bytes));
  if (!resp) throw std::runtime_error(resp.error().message());
  Bytes buf(256 * 1024);
  std::uint64_t got = 0;
  while (true) {
    auto n = co_await resp->body.read(buf);
    if (!n) throw std::runtime_error(n.error().message());
    if (*n == 0) break;
    got += *n;
  }
  if (got != bytes) throw std::runtime_error("stream truncated");
  co_return static_cast<double>(got) / 1e6 / std::chrono::duration<double>(clock.now() - t0).count();
}

// router_small_during_bulk times 64-byte GETs, one at a time, while a response of `bytes` streams on
// the same connection; the stream runs to its end either way.
template <class C>
asio::awaitable<LoadFigures> router_small_during_bulk(router::P2PClient<C>& client, std::uint64_t bytes) {
  const auto ex = co_await asio::this_coro::executor;
  env::AsioEnv clock(ex);
  bool streaming = true;
  std::optional<std::string> stream_failure;
  asio::co_spawn(ex, router_stream(client, bytes), [&](std::exception_ptr e, double) {
    streaming = false;
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      stream_failure = x.what();
    }
  });
  Latencies lat;
  const auto start = clock.now();
  // Let the body get going first: the figure is about GETs behind a body in flight.
  auto timer = clock.make_timer();
  (void)co_await timer.wait_until(clock.now() + std::chrono::milliseconds(20));
  while (streaming) {
    const auto t0 = clock.now();
    auto resp = co_await client.get("/ping");
    if (!resp) throw std::runtime_error(resp.error().message());
    auto body = co_await resp->body.read_all(1024);
    if (!body || body->size() != kSmallBody) throw std::runtime_error("small GET during bulk failed");
    if (streaming) lat.ms.push_back(ms_between(t0, clock.now()));
  }
  if (stream_failure) throw std::runtime_error(*stream_failure);
  co_return lat.figures(clock.now() - start);
}

P2PResult<void> bench_router_quic(const RouterBenchOptions& o, RouterBenchResult& out) {
  env::OsRandom rng;
  auto cfg = [&rng, &o] {
    EndpointConfig c(SecretKey::generate(rng));
    c.bind_addrs = {SocketAddr::v4_loopback(0)};
    c.initial_rtt = std::chrono::milliseconds(1);
    if (o.busy_poll) {
      c.busy_poll = *o.busy_poll;
      c.busy_poll_handshake = *o.busy_poll;
    }
    return c;
  };
  ServerThread server_thread;
  auto server_ep = Endpoint::bind(server_thread.io().get_executor(), cfg());
  if (!server_ep) return fail(std::move(server_ep.error()));
  auto listener = server_ep->listen(router::kAlpn);
  if (!listener) return fail(std::move(listener.error()));
  router::ServeOptions serve_options;
  serve_options.peer_requests_max = static_cast<std::size_t>(o.concurrency) * 2;
  auto http = std::make_shared<router::Server<env::AsioEnv>>(env::AsioEnv(server_thread.io().get_executor()),
                                                             bench_router(), serve_options);
  asio::post(server_thread.io(), [&] {
    asio::co_spawn(server_thread.io(), http->serve(*listener), [](std::exception_ptr, P2PResult<void>) {});
  });

  asio::io_context client_io(1);
  auto client_ep = Endpoint::bind(client_io.get_executor(), cfg());
  if (!client_ep) return fail(std::move(client_ep.error()));
  auto ran = run_client(client_io, [&]() -> asio::awaitable<void> {
    auto conn = co_await client_ep->connect(server_ep->addr(), router::kAlpn);
    if (!conn) throw std::runtime_error(conn.error().message());
    router::P2PClient client(*conn);
    (void)co_await router_load(client, 4, std::chrono::milliseconds(200));  // warm up
    out.router_c1 = co_await router_load(client, 1, o.run);
    out.router_c64 = co_await router_load(client, o.concurrency, o.run);
    out.router_stream_mb_per_s = co_await router_stream(client, o.stream_bytes);
    out.router_during_bulk = co_await router_small_during_bulk(client, o.stream_bytes);
    co_await client_ep->close();
  });
  // Shut the server down on its own thread, then stop it.
  bool closed = false;
  asio::post(server_thread.io(), [&] {
    http->shutdown();
    asio::co_spawn(
        server_thread.io(),
        [&]() -> asio::awaitable<void> {
          co_await server_ep->close();
          closed = true;
        },
        [](std::exception_ptr) {});
  });
  env::AsioEnv clock(client_io.get_executor());
  const auto end = clock.now() + std::chrono::seconds(10);
  while (!closed && clock.now() < end) client_io.run_one_for(std::chrono::milliseconds(10));
  server_thread.stop();
  out.backend = "quic-loopback";
  return ran;
}

// ---- the HTTP/1.1 baseline (Boost.Beast) ----------------------------------------------------------

asio::awaitable<void> beast_session(tcp::socket socket, std::shared_ptr<const std::string> big) {
  socket.set_option(tcp::no_delay(true));
  boost::beast::flat_buffer buffer;
  const std::string small(kSmallBody, 'x');
  while (true) {
    http::request<http::empty_body> req;
    auto [ec, n] = co_await http::async_read(socket, buffer, req, kTuple);
    if (ec) co_return;
    if (req.target() == "/ping") {
      http::response<http::string_body> res{http::status::ok, req.version()};
      res.set(http::field::content_type, "text/plain");
      res.body() = small;
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      auto [wec, wn] = co_await http::async_write(socket, res, kTuple);
      if (wec) co_return;
    } else {
      http::response<http::span_body<const char>> res{http::status::ok, req.version()};
      res.body() = {big->data(), big->size()};
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      auto [wec, wn] = co_await http::async_write(socket, res, kTuple);
      if (wec) co_return;
    }
  }
}

asio::awaitable<void> beast_accept(tcp::acceptor& acceptor, std::shared_ptr<const std::string> big) {
  while (true) {
    auto [ec, socket] = co_await acceptor.async_accept(kTuple);
    if (ec) co_return;
    asio::co_spawn(acceptor.get_executor(), beast_session(std::move(socket), big), [](std::exception_ptr) {});
  }
}

asio::awaitable<tcp::socket> beast_connect(tcp::endpoint server) {
  tcp::socket s(co_await asio::this_coro::executor);
  auto [ec] = co_await s.async_connect(server, kTuple);
  if (ec) throw std::runtime_error("connect: " + ec.message());
  s.set_option(tcp::no_delay(true));
  co_return s;
}

asio::awaitable<void> beast_worker(tcp::endpoint server, env::AsioEnv clock, TimePoint end, Latencies& lat) {
  auto s = co_await beast_connect(server);
  boost::beast::flat_buffer buffer;
  http::request<http::empty_body> req{http::verb::get, "/ping", 11};
  req.set(http::field::host, "127.0.0.1");
  while (clock.now() < end) {
    const auto t0 = clock.now();
    auto [wec, wn] = co_await http::async_write(s, req, kTuple);
    if (wec) throw std::runtime_error("write: " + wec.message());
    http::response<http::string_body> res;
    auto [rec, rn] = co_await http::async_read(s, buffer, res, kTuple);
    if (rec || res.body().size() != kSmallBody) throw std::runtime_error("read: " + rec.message());
    lat.ms.push_back(ms_between(t0, clock.now()));
  }
}

asio::awaitable<LoadFigures> beast_load(tcp::endpoint server, int connections, Duration run) {
  env::AsioEnv clock(co_await asio::this_coro::executor);
  Latencies lat;
  const auto start = clock.now();
  const auto end = start + run;
  int running = connections - 1;
  std::exception_ptr failure;
  for (int i = 1; i < connections; ++i) {
    asio::co_spawn(co_await asio::this_coro::executor, beast_worker(server, clock, end, lat),
                   [&](std::exception_ptr e) {
                     if (e) failure = e;
                     --running;
                   });
  }
  co_await beast_worker(server, clock, end, lat);
  auto timer = clock.make_timer();
  while (running > 0) (void)co_await timer.wait_until(clock.now() + std::chrono::milliseconds(1));
  if (failure) std::rethrow_exception(failure);
  co_return lat.figures(clock.now() - start);
}

asio::awaitable<double> beast_stream(tcp::endpoint server, std::uint64_t bytes) {
  env::AsioEnv clock(co_await asio::this_coro::executor);
  auto s = co_await beast_connect(server);
  const auto t0 = clock.now();
  http::request<http::empty_body> req{http::verb::get, "/stream", 11};
  req.set(http::field::host, "127.0.0.1");
  auto [wec, wn] = co_await http::async_write(s, req, kTuple);
  if (wec) throw std::runtime_error("write: " + wec.message());
  boost::beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  auto [hec, hn] = co_await http::async_read_header(s, buffer, parser, kTuple);
  if (hec) throw std::runtime_error("read header: " + hec.message());
  std::vector<char> chunk(256 * 1024);
  std::uint64_t got = 0;
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    auto [ec, n] = co_await http::async_read(s, buffer, parser, kTuple);
    if (ec && ec != http::error::need_buffer) throw std::runtime_error("read: " + ec.message());
    got += chunk.size() - parser.get().body().size;
  }
  if (got != bytes) throw std::runtime_error("stream truncated");
  co_return static_cast<double>(got) / 1e6 / std::chrono::duration<double>(clock.now() - t0).count();
}

P2PResult<void> bench_beast(const RouterBenchOptions& o, RouterBenchResult& out) {
  ServerThread server_thread;
  auto big = std::make_shared<const std::string>(static_cast<std::size_t>(o.stream_bytes), 'Z');
  tcp::acceptor acceptor(server_thread.io());
  boost::system::error_code ec;
  const tcp::endpoint loopback(asio::ip::address_v4::loopback(), 0);
  acceptor.open(loopback.protocol(), ec);
  if (!ec) acceptor.bind(loopback, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail(P2PError::network(fmt::format("beast listen: {}", ec.message())));
  const auto server = acceptor.local_endpoint();
  asio::post(server_thread.io(),
             [&] { asio::co_spawn(server_thread.io(), beast_accept(acceptor, big), [](std::exception_ptr) {}); });
  asio::io_context client_io(1);
  auto ran = run_client(client_io, [&]() -> asio::awaitable<void> {
    (void)co_await beast_load(server, 4, std::chrono::milliseconds(200));  // warm up
    out.beast_c1 = co_await beast_load(server, 1, o.run);
    out.beast_c64 = co_await beast_load(server, o.concurrency, o.run);
    out.beast_stream_mb_per_s = co_await beast_stream(server, o.stream_bytes);
  });
  asio::post(server_thread.io(), [&] { acceptor.close(); });
  server_thread.stop();
  return ran;
}

std::string load_json(std::string_view prefix, const LoadFigures& c1, const LoadFigures& c64) {
  return fmt::format(R"("{0}_get_per_s_c1": {1:.0f}, "{0}_get_per_s_c64": {2:.0f}, "{0}_p50_ms": {3:.3f}, )"
                     R"("{0}_p99_ms": {4:.3f}, "{0}_p50_ms_c1": {5:.3f}, )",
                     prefix, c1.per_s, c64.per_s, c64.p50_ms, c64.p99_ms, c1.p50_ms);
}

}  // namespace

P2PResult<RouterBenchResult> run_router_bench(const RouterBenchOptions& options) {
  RouterBenchResult r;
  if (auto q = bench_router_quic(options, r); !q) return fail(std::move(q.error()));
  if (auto b = bench_beast(options, r); !b) return fail(std::move(b.error()));
  return r;
}

std::string to_json(const RouterBenchResult& r) {
  return "{" + fmt::format(R"("backend": "{}", )", r.backend) + load_json("router", r.router_c1, r.router_c64) +
         fmt::format(R"("router_stream_mb_per_s": {:.1f}, )", r.router_stream_mb_per_s) +
         fmt::format(R"("small_get_p50_during_bulk_us": {:.0f}, "small_get_p99_during_bulk_us": {:.0f}, )",
                     r.router_during_bulk.p50_ms * 1e3, r.router_during_bulk.p99_ms * 1e3) +
         load_json("beast_http11", r.beast_c1, r.beast_c64) +
         fmt::format(R"("beast_http11_stream_mb_per_s": {:.1f}, "tunnel_pattern": null}})", r.beast_stream_mb_per_s);
}

int router_bench(bool json, const RouterBenchOptions& options) {
  auto r = run_router_bench(options);
  if (!r) {
    std::fprintf(stderr, "bench router: %s\n", r.error().message().c_str());
    return 1;
  }
  if (json) {
    std::printf("%s\n", to_json(*r).c_str());
    return 0;
  }
  std::printf("%-34s %12s %12s\n", "64-byte GET, loopback", "router/QUIC", "HTTP/1.1");
  std::printf("%-34s %12.0f %12.0f\n", "requests/s, concurrency 1", r->router_c1.per_s, r->beast_c1.per_s);
  std::printf("%-34s %12.0f %12.0f\n", "requests/s, concurrency 64", r->router_c64.per_s, r->beast_c64.per_s);
  std::printf("%-34s %12.3f %12.3f\n", "p50 ms, concurrency 64", r->router_c64.p50_ms, r->beast_c64.p50_ms);
  std::printf("%-34s %12.3f %12.3f\n", "p99 ms, concurrency 64", r->router_c64.p99_ms, r->beast_c64.p99_ms);
  std::printf("%-34s %12.1f %12.1f\n", "one streamed response, MB/s", r->router_stream_mb_per_s,
              r->beast_stream_mb_per_s);
  std::printf("%-34s %12.0f %12s\n", "GET p99 us during that response", r->router_during_bulk.p99_ms * 1e3, "-");
  return 0;
}

}  // namespace moosicbox::p2p::cli
