// SPDX-License-Identifier: MIT OR Apache-2.0
// driver_suite.hpp: the router's driver suite, written once against a backend trait (see
// support/harness.hpp, MemBackend) and instantiated per backend: the in-memory stream double
// (unit), the simulator (sim) and QUIC over loopback (integration). It covers the wire protocol end
// to end: routing answers, bodies both ways, concurrency and per-peer limits, 100 MiB bodies with
// bounded memory, Range, aborts from either side, timeouts, hostile heads, limits, middleware and
// graceful shutdown.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include "moosicbox/p2p/router/client.hpp"
#include "moosicbox/p2p/router/middleware.hpp"
#include "moosicbox/p2p/router/server.hpp"
#include "router/async_event.hpp"
#include "router/support/harness.hpp"
#include "router/support/heap_meter.hpp"

namespace moosicbox::p2p::testing {

using namespace router;  // NOLINT(google-build-using-namespace): test code reads better with the router's names

template <class B>
class RouterDriverSuite : public ::testing::Test {};
TYPED_TEST_SUITE_P(RouterDriverSuite);

#define ROUTER_TRACE(b) \
  SCOPED_TRACE(fmt::format("backend {}: reproduce with P2P_SIM_SEED={}", TypeParam::kName, (b).seed()))

/// tick is the suite's unit of waiting: seconds in virtual time, much less on a real clock.
template <class B>
constexpr Duration tick() {
  if constexpr (B::kVirtualTime) {
    return std::chrono::seconds(1);
  } else {
    return std::chrono::milliseconds(100);
  }
}

/// sleep_on waits `d` on `env`'s clock.
template <class E>
asio::awaitable<void> sleep_on(E env, Duration d) {
  auto t = env.make_timer();
  (void)co_await t.wait_until(env.now() + d);
}

/// RawExchange is the answer to hand-written request bytes.
struct RawExchange {
  std::optional<P2PError> error;  // the stream failed before a complete response head
  HeadError head_error = HeadError::none;
  StatusCode status = StatusCode::ok;
  Headers headers;
  Bytes body;
  std::optional<P2PError> body_error;
};

/// raw_exchange writes `request` on a new stream (finishing it when `finish`) and reads the answer.
template <class C>
asio::awaitable<RawExchange> raw_exchange(C& conn, Bytes request, bool finish) {
  RawExchange out;
  auto s = co_await conn.open_bi();
  if (!s) {
    out.error = s.error();
    co_return out;
  }
  if (!request.empty()) {
    if (auto w = co_await s->write(request); !w) {
      out.error = w.error();
      co_return out;
    }
  }
  if (finish) (void)co_await s->finish();
  HeadDecoder dec(FrameType::response_head, {});
  std::array<std::byte, 4096> buf{};
  while (dec.state() == HeadDecoder::State::need_more) {
    auto n = co_await s->read(buf);
    if (!n) {
      out.error = n.error();
      co_return out;
    }
    if (*n == 0) {
      dec.finish();
      break;
    }
    const auto used = dec.feed(std::span(buf).first(*n));
    out.body.insert(out.body.end(), buf.begin() + static_cast<std::ptrdiff_t>(used),
                    buf.begin() + static_cast<std::ptrdiff_t>(*n));
  }
  if (dec.state() == HeadDecoder::State::failed) {
    out.head_error = dec.error();
    co_return out;
  }
  out.status = dec.response().status;
  out.headers = dec.response().headers;
  while (true) {
    auto n = co_await s->read(buf);
    if (!n) {
      out.body_error = n.error();
      break;
    }
    if (*n == 0) break;
    out.body.insert(out.body.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
  }
  co_return out;
}

/// request_frame encodes a request head with generous limits (a hostile client ignores ours).
inline Bytes request_frame(const RequestHead& head) {
  HeadLimits wide;
  wide.head_bytes_max = 1u << 20;
  wide.header_count_max = 100000;
  wide.target_bytes_max = 1u << 20;
  Bytes out;
  const auto r = encode_request_head(head, wide, out);
  EXPECT_TRUE(r.has_value());
  return out;
}

TYPED_TEST_P(RouterDriverSuite, AnswersGetWithParamsQueryAndRemote) {
  TypeParam b(test_seed());
  ROUTER_TRACE(b);
  P2PRouter r;
  ASSERT_TRUE(r.get("/tracks/:id", [](P2PRequest req) {
                 return P2PResponse::json(
                            StatusCode::ok,
                            fmt::format(R"({{"id":"{}","q":"{}","alice":{}}})", *req.param("id"),
                                        req.query_param("q").value_or(""), req.remote == TypeParam::client_id("alice")))
                     .with_header("x-route", req.route);
               }).has_value());
  ServerRun<TypeParam> server(b, std::move(r));
  std::optional<Fetched> got;
  start(b.executor(), [&]() -> asio::awaitable<void> {
    auto conn = co_await b.connect("alice");
    if (!conn) {
      got = Fetched{.error = conn.error()};
      co_return;
    }
    P2PClient client(*conn);
    got = co_await fetch(client, Method::GET, "/tracks/caf%C3%A9?q=a+b");
  });
  ASSERT_TRUE(b.run_until([&] { return got.has_value(); }));
  ASSERT_TRUE(got->ok()) << got->error->message();
  EXPECT_EQ(got->status, StatusCode::ok);
  EXPECT_EQ(got->text(), R"({"id":"café","q":"a b","alice":true})");
  EXPECT_EQ(got->headers.get("content-type"), "application/json");
  EXPECT_EQ(got->headers.get("x-route"), "/tracks/:id");
  EXPECT_EQ(got->headers.get("content-length"), std::to_string(got->body.size()));
  server.stop();
  ASSERT_EQ(server.records().size(), 1u);
  EXPECT_EQ(server.records()[0].outcome, RequestOutcome::completed);
  EXPECT_EQ(server.records()[0].remote, TypeParam::client_id("alice"));
  EXPECT_EQ(server.records()[0].path, "/tracks/caf%C3%A9");
  EXPECT_TRUE(server.result().has_value());
}

TYPED_TEST_P(RouterDriverSuite, EchoesRequestBodiesSmallAndLarge) {
  TypeParam b(test_seed());
  ROUTER_TRACE(b);
  P2PRouter r;
  ASSERT_TRUE(r.post("/echo", [](P2PRequest req) -> asio::awaitable<P2PResponse> {
                 auto body = co_await req.body.read_all();
                 if (!body) co_return P2PResponse::error(StatusCode::bad_request, body.error().message());
                 co_return P2PResponse::bytes(StatusCode::ok, std::move(*body));
               }).has_value());
  ServerRun<TypeParam> server(b, std::move(r));
  std::vector<Fetched> got;
  const std::vector<std::size_t> sizes = {0, 1, 1000, 64 * 1024, 64 * 1024 + 1, 700 * 1024};
  bool done = false;
  start(b.executor(), [&]() -> asio::awaitable<void> {
    auto conn = co_await b.connect("alice");
    if (!conn) co_return;
    P2PClient client(*conn);
    for (const auto n : sizes) got.push_back(co_await fetch(client, Method::POST, "/echo", {}, Body(pattern(n, n))));
    // A streamed body without a declared length.
    got.push_back(co_await fetch(client, Method::POST, "/echo", {}, Body::stream(pattern_source(300000, 7000))));
    done = true;
  });
  ASSERT_TRUE(b.run_until([&] { return done; }));
  ASSERT_EQ(got.size(), sizes.size() + 1);
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    ASSERT_TRUE(got[i].ok()) << sizes[i] << ": " << got[i].error->message();
    EXPECT_EQ(got[i].status, StatusCode::ok);
    EXPECT_EQ(got[i].body, pattern(sizes[i], sizes[i])) << sizes[i];
  }
  ASSERT_TRUE(got.back().ok());
  EXPECT_EQ(got.back().body, pattern(300000));
}

TYPED_TEST_P(RouterDriverSuite, Answers404405HeadAndOptionsOverTheWire) {
  TypeParam b(test_seed());
  ROUTER_TRACE(b);
  P2PRouter r;
  ASSERT_TRUE(r.get("/file", [](P2PRequest) {
                 return P2PResponse::stream(StatusCode::ok, pattern_source(5000), 5000);
               }).has_value());
  ASSERT_TRUE(r.post("/play", [](P2PRequest) { return P2PResponse(StatusCode::no_content); }).has_value());
  ServerRun<TypeParam> server(b, std::move(r));
  std::vector<Fetched> got;
  bool done = false;
  start(b.executor(), [&]() -> asio::awaitable<void> {
    auto conn = co_await b.connect("alice");
    if (!conn) co_return;
    P2PClient client(*conn);
    got.push_back(co_await fetch(client, Method::GET, "/nothing"));
    got.push_back(co_await fetch(client, Method::DELETE, "/file"));
    got.push_back(co_await fetch(client, Method::HEAD, "/file"));
    got.push_back(co_await fetch(client, Method::OPTIONS, "/play"));
    got.push_back(co_await fetch(client, Method::POST, "/play"));
    got.push_back(co_await fetch(client, Method::GET, "/file/%ff"));
    got.push_back(co_await fetch(client, Method::GET, "/file"));
    done = true;
  });
  ASSERT_TRUE(b.run_until([&] { return done; }));
  ASSERT_EQ(got.size(), 7u);
  for (const auto& f : got) ASSERT_TRUE(f.ok()) << f.error->message();
  EXPECT_EQ(got[0].status, StatusCode::not_found);
  EXPECT_EQ(got[1].status, StatusCode::method_not_allowed);
  EXPECT_EQ(got[1].headers.get("allow"), "GET, HEAD, OPTIONS");
  EXPECT_EQ(got[2].status, StatusCode::ok);
  EXPECT_EQ(got[2].headers.get("content-length"), "5000");
  EXPECT_TRUE(got[2].body.empty());
  EXPECT_EQ(got[3].status, StatusCode::no_content);
  EXPECT_EQ(got[3].headers.get("allow"), "POST, OPTIONS");
  EXPECT_EQ(got[4].status, StatusCode::no_content);
  EXPECT_EQ(got[5].status, StatusCode::bad_request);
  EXPECT_EQ(got[6].body, pattern(5000));
}

TYPED_TEST_P(RouterDriverSuite, ServesHundredConcurrentRequestsOnOneConnection) {
  TypeParam b(test_seed());
  ROUTER_TRACE(b);
  static constexpr int kCount = 100;
  router::detail::AsyncEvent arrived_event(b.executor());
  int arrived = 0;
  P2PRouter r;
  // Every handler waits until all 100 requests have arrived: served one after another, the first
  // would wait forever.
  ASSERT_TRUE(r.get("/n/:i", [&](P2PRequest req) -> asio::awaitable<P2PResponse> {
                 ++arrived;
                 arrived_event.notify_all();
                 while (arrived < kCount) {
                   if (auto awaited = co_await arrived_event.wait(); !awaited) break;
                 }
                 co_return P2PResponse::text(StatusCode::ok, std::string(*req.param("i")));
               }).has_value());
  ServeOptions opts;
  opts.peer_requests_max = kCount;
  ServerRun<TypeParam> server(b, std::move(r), opts);
  std::vector<std::string> answers(kCount);
  int finished = 0;
  std::optional<typename TypeParam::Connection> conn;
  start(b.executor(), [&]() -> asio::awaitable<void> {
    auto c = co_await b.connect("alice");
    if (!c) co_return;
    conn = std::move(*c);
    for (int i = 0; i < kCount; ++i) {
      start(b.executor(), [&, i]() -> asio::awaitable<void> {
        P2PClient client(*conn);
        auto f = co_await fetch(client, Method::GET, fmt::format("/n/{}", i));
        answers[static_cast<std::size_t>(i)] = f.ok() ? f.text() : "error: " + f.error->message();
        ++finished;
      });
    }
  });
  ASSERT_TRUE(b.run_until([&] { return finished == kCount; }));
  for (int i = 0; i < kCount; ++i) EXPECT_EQ(answers[static_cast<std::size_t>(i)], std::to_string(i));
  EXPECT_EQ(server.server().stats().peak_requests_active, static_cast<std::uint64_t>(kCount));
  conn.reset();
}

TYPED_TEST_P(RouterDriverSuite, BoundsRequestsInFlightPerPeer) {
  TypeParam b(test_seed());
  ROUTER_TRACE(b);
  int in_handler = 0;
  int max_in_handler = 0;
  P2PRouter r;
  const auto env = b.server_env();
  ASSERT_TRUE(r.get("/slow", [&, env](P2PRequest) -> asio::awaitable<P2PResponse> {
                 max_in_handler = std::max(max_in_handler, ++in_handler);
                 co_await sleep_on(env, tick<TypeParam>() / 10);
                 --in_handler;
                 co_return P2PResponse(StatusCode::ok);
               }).has_value());
  ServeOptions opts;
  opts.peer_requests_max = 4;
  ServerRun<TypeParam> server(b, std::move(r), opts);
  int ok = 0;
  int finished = 0;
  std::optional<typename TypeParam::Connection> conn;
  start(b.executor(), [&]() -> asio::awaitable<void> {
    auto c = co_await b.connect("alice");
    if (!c) co_return;
    conn = std::move(*c);
    for (int i = 0; i < 20; ++i) {
      start(b.executor(), [&]() -> asio::awaitable<void> {
        P2PClient client(*conn);
        auto f = co_await fetch(client, Method::GET, "/slow");
        if (f.ok() && f.status == StatusCode::ok) ++ok;
        ++finished;
      });
    }
  });
  ASSERT_TRUE(b.run_until([&] { return finished == 20; }));
  EXPECT_EQ(ok, 20);
  EXPECT_EQ(max_in_handler, 4);
  EXPECT_LE(server.server().stats().peak_requests_active, 4u);
  conn.reset();
}

TYPED_TEST_P(RouterDriverSuite, StreamsHundredMiBResponseWithBoundedMemory) {
  TypeParam b(test_seed());
  ROUTER_TRACE(b);
  static constexpr std::uint64_t kSize = std::uint64_t{100} << 20;
  P2PRouter r;
  ASSERT_TRUE(r.get("/big", [](P2PRequest) {
                 return P2PResponse::stream(StatusCode::ok, pattern_source(kSize), kSize, "audio/flac");
               }).has_value());
  ServerRun<TypeParam> server(b, std::move(r));
  std::uint64_t received = 0;
  bool intact = true;
  std::optional<P2PError> error;
  bool done = false;
  const auto baseline = heap_live_bytes();
  heap_reset_peak();
  start(b.executor(), [&]() -> asio::awaitable<void> {
    auto conn = co_await b.connect("alice");
    if (!conn) co_return;
    P2PClient client(*conn);
    auto resp = co_await client.get("/big");
    if (!resp) {
      error = resp.error();
      done = true;
      co_return;
    }
    EXPECT_EQ(resp->body.content_length(), kSize);
    Bytes buf(64 * 1024);
    while (true) {
      auto n = co_await resp->body.read(buf);
      if (!n) {
        error = n.error();
        break;
      }
      if (*n == 0) break;
      for (std::size_t k = 0; k < *n && intact; ++k) intact = buf[k] == pattern_byte(received + k);
      received += *n;
    }
    done = true;
  });
  ASSERT_TRUE(b.run_until([&] { return done; }));
  ASSERT_FALSE(error) << error->message();
  EXPECT_EQ(received, kSize);
  EXPECT_TRUE(intact);
  const auto growth = heap_peak_bytes() - baseline;
  EXPECT_LT(growth, 16 << 20) << "peak heap growth while streaming 100 MiB: " << growth;
}

TYPED_TEST_P(RouterDriverSuite, StreamsHundredMiBUploadWithBoundedMemory) {
  TypeParam b(test_seed());
  ROUTER_TRACE(b);
  static constexpr std::uint64_t kSize = std::uint64_t{100} << 20;
  P2PRouter r;
  ASSERT_TRUE(r.put(
                   "/upload",
                   [](P2PRequest req) -> asio::awaitable<P2PResponse> {
                     Bytes buf(32 * 1024);
                     std::uint64_t got = 0;
                     bool intact = true;
                     while (true) {
                       auto n = co_await req.body.read(buf);
                       if (!n) co_return P2PResponse::error(StatusCode::bad_request, n.error().message());
                       if (*n == 0) break;
                       for (std::size_t k = 0; k < *n && intact; ++k) intact = buf[k] == pattern_byte(got + k);
                       got += *n;
                     }
                     co_return P2PResponse::text(StatusCode::created, fmt::format("{} {}", got, intact));
                   },
                   RouteOptions{.body_bytes_max = kSize})
                  .has_value());
  ServerRun<TypeParam> server(b, std::move(r));
  std::optional<Fetched> got;
  const auto baseline = heap_live_bytes();
  heap_reset_peak();
  start(b.executor(), [&]() -> asio::awaitable<void> {
    auto conn = co_await b.connect("alice");
    if (!conn) co_return;
    P2PClient client(*conn);
    got = co_await fetch(client, Method::PUT, "/upload", {}, Body::stream(pattern_source(kSize), kSize));
  });
  ASSERT_TRUE(b.run_until([&] { return got.has_value(); }));
  ASSERT_TRUE(got->ok()) << got->error->message();
  EXPECT_EQ(got->status, StatusCode::created);
  EXPECT_EQ(got->text(), fmt::format("{} true", kSize));
  const auto growth = heap_peak_bytes() - baseline;
  EXPECT_LT(growth, 16 << 20) << "peak heap growth while uploading 100 MiB: " << growth;
}

TYPED_TEST_P(RouterDriverSuite, AnswersRangeRequests) {
  TypeParam b(test_seed());
  ROUTER_TRACE(b);
  static constexpr std::uint64_t kSize = 300000;
  P2PRouter r;
  ASSERT_TRUE(
      r.get("/track", [](P2PRequest req) {
         return range_response(
             req, kSize,
             [](std::uint64_t off, std::uint64_t len, BodyWriter& w) { return write_pattern(w, len, 16 * 1024, off); },
             "audio/flac");
       }).has_value());
  ServerRun<TypeParam> server(b, std::move(r));
  struct Case {
    std::string range;
    Method method;
    StatusCode status;
    std::string content_range;
    std::uint64_t first;
    std::uint64_t length;
  };
  const std::vector<Case> cases = {
      {"bytes=0-99", Method::GET, StatusCode::partial_content, "bytes 0-99/300000", 0, 100},
      {"bytes=100000-", Method::GET, StatusCode::partial_content, "bytes 100000-299999/300000", 100000, 200000},
      {"bytes=-5", Method::GET, StatusCode::partial_content, "bytes 299995-299999/300000", 299995, 5},
      {"bytes=299999-999999", Method::GET, StatusCode::partial_content, "bytes 299999-299999/300000", 299999, 1},
      {"bytes=300000-", Method::GET, StatusCode::range_not_satisfiable, "bytes */300000", 0, 0},
      {"bytes=0-1,5-6", Method::GET, StatusCode::ok, "", 0, kSize},
      {"", Method::GET, StatusCode::ok, "", 0, kSize},
      {"bytes=10-19", Method::HEAD, StatusCode::partial_content, "bytes 10-19/300000", 0, 0},
  };
  std::vector<Fetched> got;
  bool done = false;
  start(b.executor(), [&]() -> asio::awaitable<void> {
    auto conn = co_await b.connect("alice");
    if (!conn) co_return;
    P2PClient client(*conn);
    for (const auto& c : cases) {
      Headers h;
      if (!c.range.empty()) h.add("Range", c.range);
      got.push_back(co_await fetch(client, c.method, "/track", h));
    }
    done = true;
  });
  ASSERT_TRUE(b.run_until([&] { return done; }));
  ASSERT_EQ(got.size(), cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    SCOPED_TRACE(c.range);
    ASSERT_TRUE(got[i].ok()) << got[i].error->message();
    EXPECT_EQ(got[i].status, c.status);
    EXPECT_EQ(got[i].headers.get("content-range").value_or(""), c.content_range);
    EXPECT_EQ(got[i].headers.get("accept-ranges"), "bytes");
    EXPECT_EQ(got[i].body, pattern(static_cast<std::size_t>(c.length), c.first));
  }
  EXPECT_EQ(got.back().headers.get("content-length"), "10");
}

TYPED_TEST_P(RouterDriverSuite, ClientDroppingTheResponseAbortsTheServer) {
  TypeParam b(test_seed());
  ROUTER_TRACE(b);
  std::vector<P2PError> source_errors;
  P2PRouter r;
  ASSERT_TRUE(r.get("/endless", [&](P2PRequest) {
                 return P2PResponse::stream(
                     StatusCode::ok,
                     [&](BodyWriter& w) -> asio::awaitable<P2PResult<void>> {
                       const Bytes chunk = pattern(16 * 1024);
                       while (true) {
                         if (auto x = co_await w.write(chunk); !x) {
                           source_errors.push_back(x.error());
                           co_return x;
                         }
                       }
                     },
                     std::nullopt);
               }).has_value());
  ServerRun<TypeParam> server(b, std::move(r));
  std::uint64_t read_before_drop = 0;
  bool explicit_abort_done = false;
  bool client_done = false;  // the client task touches `server` to its end: the test outlives it
  start(b.executor(), [&]() -> asio::awaitable<void> {
    auto conn = co_await b.connect("alice");
    if (!conn) co_return;
    P2PClient client(*conn);
    {
      auto resp = co_await client.get("/endless");
      if (!resp) co_return;
      Bytes buf(64 * 1024);
      while (read_before_drop < (1u << 20)) {
        auto n = co_await resp->body.read(buf);
        if (!n || *n == 0) co_return;
        read_before_drop += *n;
      }
    }  // dropped here, before the end of the body
    auto again = co_await client.get("/endless");
    if (!again) co_return;
    again->abort();
    Bytes buf(1024);
    auto n = co_await again->body.read(buf);
    EXPECT_FALSE(n.has_value());
    explicit_abort_done = true;
    // Keep the connection until the server has seen both aborts: closing it would abort them too.
    while (server.records().size() < 2) co_await sleep_on(b.client_env(), tick<TypeParam>() / 20);
    client_done = true;
  });
  // Waiting for the task's end, not only for the records: a task still sleeping in the loop above
  // when the test returned would wake after `server` is gone.
  ASSERT_TRUE(b.run_until([&] { return server.records().size() == 2 && explicit_abort_done && client_done; }));
  EXPECT_GE(read_before_drop, 1u << 20);
  ASSERT_EQ(source_errors.size(), 2u);
  for (const auto& e : source_errors) EXPECT_EQ(e.code(), P2PErrc::stream_reset) << e.message();
  for (const auto& rec : server.records()) EXPECT_EQ(rec.outcome, RequestOutcome::aborted_by_peer);
  EXPECT_EQ(server.server().stats().requests_active, 0u);
}

TYPED_TEST_P(RouterDriverSuite, ClientCancellationAbortsTheRequest) {
  TypeParam b(test_seed());
  ROUTER_TRACE(b);
  P2PRouter r;
  const auto env = b.server_env();
  bool handler_done = false;
  ASSERT_TRUE(r.get("/slow", [&, env](P2PRequest) -> asio::awaitable<P2PResponse> {
                 co_await sleep_on(env, 2 * tick<TypeParam>());
                 handler_done = true;
                 co_return P2PResponse::stream(StatusCode::ok, pattern_source(10 << 20), 10 << 20);
               }).has_value());
  ServerRun<TypeParam> server(b, std::move(r));
  std::optional<P2PError> error;
  bool done = false;
  start(b.executor(), [&]() -> asio::awaitable<void> {
    using namespace asio::experimental::awaitable_operators;
    auto conn = co_await b.connect("alice");
    if (!conn) co_return;
    P2PClient client(*conn);
    auto cenv = b.client_env();
    auto raced = co_await (client.get("/slow") || sleep_on(cenv, tick<TypeParam>() / 2));
    EXPECT_EQ(raced.index(), 1u) << "the timer should win";
    done = true;
    co_await sleep_on(cenv, 3 * tick<TypeParam>());  // keep the connection while the server notices
  });
  ASSERT_TRUE(b.run_until([&] { return done && server.records().size() == 1; }));
  EXPECT_TRUE(handler_done);
  EXPECT_EQ(server.records()[0].outcome, RequestOutcome::aborted_by_peer);
  EXPECT_LT(server.records()[0].bytes_sent, 10u << 20);
}

TYPED_TEST_P(RouterDriverSuite, ServerSourceFailureResetsTheClientRead) {
  TypeParam b(test_seed());
  ROUTER_TRACE(b);
  P2PRouter r;
  ASSERT_TRUE(r.get("/broken", [](P2PRequest) {
                 return P2PResponse::stream(
                     StatusCode::ok,
                     [](BodyWriter& w) -> asio::awaitable<P2PResult<void>> {
                       if (auto x = co_await w.write(pattern(100000)); !x) co_return x;
                       co_return fail(P2PError::network("disk read failed"));
                     },
                     1000000);
               }).has_value());
  ServerRun<TypeParam> server(b, std::move(r));
  std::optional<Fetched> got;
  start(b.executor(), [&]() -> asio::awaitable<void> {
    auto conn = co_await b.connect("alice");
    if (!conn) co_return;
    P2PClient client(*conn);
    got = co_await fetch(client, Method::GET, "/broken");
  });
  ASSERT_TRUE(b.run_until([&] { return got.has_value() && server.records().size() == 1; }));
  ASSERT_TRUE(got->error.has_value());
  EXPECT_EQ(got->error->code(), P2PErrc::stream_reset);
  EXPECT_EQ(got->status, StatusCode::ok);
  EXPECT_EQ(server.records()[0].outcome, RequestOutcome::aborted_by_server);
}

TYPED_TEST_P(RouterDriverSuite, AnswersLateHeadsWith408AndLateHandlersWith503) {
  TypeParam b(test_seed());
  ROUTER_TRACE(b);
  P2PRouter r;
  const auto env = b.server_env();
  ASSERT_TRUE(r.get("/stuck", [env](P2PRequest) -> asio::awaitable<P2PResponse> {
                 co_await sleep_on(env, std::chrono::hours(1));
                 co_return P2PResponse(StatusCode::ok);
               }).has_value());
  ServeOptions opts;
  opts.head_timeout = 3 * tick<TypeParam>();
  opts.handler_timeout = 5 * tick<TypeParam>();
  ServerRun<TypeParam> server(b, std::move(r), opts);
  std::optional<RawExchange> late_head;
  std::optional<Fetched> late_handler;
  start(b.executor(), [&]() -> asio::awaitable<void> {
    auto conn = co_await b.connect("alice");
    if (!conn) co_return;
    // Two bytes of a head, then nothing: the server gives up on the head.
    auto frame = request_frame(RequestHead{Method::GET, "/stuck", "", {}});
    late_head = co_await raw_exchange(*conn, Bytes(frame.begin(), frame.begin() + 2), false);
    P2PClient client(*conn);
    late_handler = co_await fetch(client, Method::GET, "/stuck");
  });
  ASSERT_TRUE(b.run_until([&] { return late_handler.has_value(); }));
  ASSERT_FALSE(late_head->error) << late_head->error->message();
  EXPECT_EQ(late_head->status, StatusCode::request_timeout);
  ASSERT_TRUE(late_handler->ok()) << late_handler->error->message();
  EXPECT_EQ(late_handler->status, StatusCode::service_unavailable);
  ASSERT_EQ(server.records().size(), 2u);
  EXPECT_EQ(server.records()[0].outcome, RequestOutcome::timed_out);
  EXPECT_EQ(server.records()[1].outcome, RequestOutcome::timed_out);
  EXPECT_EQ(server.server().stats().requests_timed_out, 2u);
}

TYPED_TEST_P(RouterDriverSuite, ResetsAPeerThatStopsReading) {
  TypeParam b(test_seed());
  ROUTER_TRACE(b);
  static constexpr std::uint64_t kSize = std::uint64_t{200} << 20;
  P2PRouter r;
  ASSERT_TRUE(r.get("/big", [](P2PRequest) {
                 return P2PResponse::stream(StatusCode::ok, pattern_source(kSize), kSize);
               }).has_value());
  ServeOptions opts;
  opts.idle_timeout = 3 * tick<TypeParam>();
  ServerRun<TypeParam> server(b, std::move(r), opts);
  std::optional<P2PError> late_read;
  bool got_head = false;
  const auto baseline = heap_live_bytes();
  heap_reset_peak();
  start(b.executor(), [&]() -> asio::awaitable<void> {
    auto conn = co_await b.connect("alice");
    if (!conn) co_return;
    P2PClient client(*conn);
    auto resp = co_await client.get("/big");
    if (!resp) co_return;
    got_head = true;
    // Hold the response without reading it until the server has given up on us.
    co_await sleep_on(b.client_env(), 10 * tick<TypeParam>());
    Bytes buf(1 << 20);
    while (true) {
      auto n = co_await resp->body.read(buf);
      if (!n) {
        late_read = n.error();
        break;
      }
      if (*n == 0) break;
    }
  });
  ASSERT_TRUE(b.run_until([&] { return late_read.has_value() && server.records().size() == 1; }));
  EXPECT_TRUE(got_head);
  EXPECT_EQ(late_read->code(), P2PErrc::stream_reset);
  EXPECT_EQ(server.records()[0].outcome, RequestOutcome::timed_out);
  EXPECT_LT(server.records()[0].bytes_sent, kSize / 4);
  EXPECT_LT(heap_peak_bytes() - baseline, 16 << 20);
}

TYPED_TEST_P(RouterDriverSuite, RefusesHostileHeads) {
  TypeParam b(test_seed());
  ROUTER_TRACE(b);
  P2PRouter r;
  ASSERT_TRUE(r.get("/*any", [](P2PRequest) { return P2PResponse::text(StatusCode::ok, "fine"); }).has_value());
  ServerRun<TypeParam> server(b, std::move(r));
  struct Case {
    std::string name;
    Bytes bytes;
    bool finish;
    StatusCode status;
  };
  std::vector<Case> cases;
  const auto good = request_frame(RequestHead{Method::GET, "/ok", "", {}});
  cases.push_back({"truncated", Bytes(good.begin(), good.begin() + 5), true, StatusCode::bad_request});
  {
    Bytes huge{std::byte{kProtocolVersion}, std::byte{0x01}};
    append_varint(huge, 1u << 20);  // a 1 MiB head is announced; only the prefix is sent
    cases.push_back({"oversized head", huge, false, StatusCode::request_header_fields_too_large});
  }
  {
    RequestHead many{Method::GET, "/ok", "", {}};
    for (int i = 0; i < 500; ++i) many.headers.add("x-h", "v");
    cases.push_back({"too many headers", request_frame(many), true, StatusCode::request_header_fields_too_large});
  }
  {
    RequestHead big{Method::GET, "/ok", "", {}};
    big.headers.add("x-big", std::string(20000, 'a'));
    cases.push_back({"oversized header", request_frame(big), true, StatusCode::request_header_fields_too_large});
  }
  cases.push_back(
      {"invalid utf8 path", request_frame(RequestHead{Method::GET, "/caf%C3", "", {}}), true, StatusCode::bad_request});
  cases.push_back({"raw invalid utf8 path", request_frame(RequestHead{Method::GET, "/\xff\xfe", "", {}}), true,
                   StatusCode::bad_request});
  cases.push_back(
      {"dot segments", request_frame(RequestHead{Method::GET, "/a/../../etc", "", {}}), true, StatusCode::bad_request});
  {
    auto unknown = good;
    unknown[3] = std::byte{42};  // the method code
    cases.push_back({"unknown method", unknown, true, StatusCode::not_implemented});
  }
  {
    auto version = good;
    version[0] = std::byte{9};
    cases.push_back({"unknown version", version, true, StatusCode::bad_request});
  }
  cases.push_back({"garbage", to_bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), true, StatusCode::bad_request});
  cases.push_back({"bad content-length",
                   request_frame(RequestHead{Method::GET, "/ok", "", Headers{{"content-length", "-1"}}}), true,
                   StatusCode::bad_request});
  cases.push_back(
      {"bad query escape", request_frame(RequestHead{Method::GET, "/ok", "a=%zz", {}}), true, StatusCode::bad_request});
  cases.push_back({"empty stream", {}, true, StatusCode::bad_request});
  std::vector<RawExchange> got;
  std::optional<Fetched> after;
  start(b.executor(), [&]() -> asio::awaitable<void> {
    auto conn = co_await b.connect("mallory");
    if (!conn) co_return;
    for (const auto& c : cases) got.push_back(co_await raw_exchange(*conn, c.bytes, c.finish));
    P2PClient client(*conn);
    after = co_await fetch(client, Method::GET, "/still/alive");
  });
  ASSERT_TRUE(b.run_until([&] { return after.has_value(); }));
  ASSERT_EQ(got.size(), cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    ASSERT_FALSE(got[i].error) << got[i].error->message();
    EXPECT_EQ(got[i].status, cases[i].status);
  }
  ASSERT_TRUE(after->ok());
  EXPECT_EQ(after->text(), "fine");
  // Three paths are well-formed heads that the router itself answers with 400; the rest are refused
  // before routing.
  EXPECT_EQ(server.server().stats().requests_refused, cases.size() - 3);
}

TYPED_TEST_P(RouterDriverSuite, Answers413ForBodiesOverTheLimit) {
  TypeParam b(test_seed());
  ROUTER_TRACE(b);
  P2PRouter r;
  ASSERT_TRUE(r.post("/small", [](P2PRequest req) -> asio::awaitable<P2PResponse> {
                 auto body = co_await req.body.read_all();
                 co_return P2PResponse::text(StatusCode::ok, std::to_string(body ? body->size() : 0));
               }).has_value());
  ServeOptions opts;
  opts.body_bytes_max = 100000;
  ServerRun<TypeParam> server(b, std::move(r), opts);
  std::vector<Fetched> got;
  bool done = false;
  start(b.executor(), [&]() -> asio::awaitable<void> {
    auto conn = co_await b.connect("alice");
    if (!conn) co_return;
    P2PClient client(*conn);
    got.push_back(co_await fetch(client, Method::POST, "/small", {}, Body(pattern(100000))));
    got.push_back(co_await fetch(client, Method::POST, "/small", {}, Body(pattern(100001))));
    got.push_back(co_await fetch(client, Method::POST, "/small", {}, Body::stream(pattern_source(5 << 20))));
    got.push_back(co_await fetch(client, Method::POST, "/small", {}, Body::stream(pattern_source(300000), 300000)));
    done = true;
  });
  ASSERT_TRUE(b.run_until([&] { return done; }));
  ASSERT_EQ(got.size(), 4u);
  for (const auto& f : got) ASSERT_TRUE(f.ok()) << f.error->message();
  EXPECT_EQ(got[0].status, StatusCode::ok);
  EXPECT_EQ(got[0].text(), "100000");
  EXPECT_EQ(got[1].status, StatusCode::content_too_large);
  EXPECT_EQ(got[2].status, StatusCode::content_too_large);  // no length declared: caught while reading
  EXPECT_EQ(got[3].status, StatusCode::content_too_large);
  for (const auto& rec : server.records()) EXPECT_LT(rec.bytes_received, std::uint64_t{2} << 20);
}

TYPED_TEST_P(RouterDriverSuite, SurvivesRandomHostileStreams) {
  for (std::uint64_t seed = test_seed(); seed < test_seed() + 3; ++seed) {
    TypeParam b(seed);
    ROUTER_TRACE(b);
    P2PRouter r;
    ASSERT_TRUE(r.get("/*any", [](P2PRequest) { return P2PResponse::text(StatusCode::ok, "fine"); }).has_value());
    ServerRun<TypeParam> server(b, std::move(r));
    env::Rng rng(seed);
    std::vector<Bytes> inputs;
    const auto good = request_frame(RequestHead{Method::GET, "/ok", "x=1", Headers{{"a", "b"}}});
    for (int i = 0; i < 40; ++i) {
      Bytes in = good;
      const auto mode = rng.uniform(3);
      if (mode == 0) {  // flip bytes
        for (int k = 0; k < 3; ++k) in[rng.uniform(in.size())] = static_cast<std::byte>(rng.uniform(256));
      } else if (mode == 1) {  // random bytes after a valid prefix
        in.resize(2 + rng.uniform(in.size()));
        for (std::size_t k = 2; k < in.size(); ++k) in[k] = static_cast<std::byte>(rng.uniform(256));
      } else {  // random length
        in.resize(rng.uniform(in.size() + 1));
      }
      inputs.push_back(std::move(in));
    }
    std::size_t answered = 0;
    std::optional<Fetched> after;
    start(b.executor(), [&]() -> asio::awaitable<void> {
      auto conn = co_await b.connect("mallory");
      if (!conn) co_return;
      for (const auto& in : inputs) {
        auto x = co_await raw_exchange(*conn, in, true);
        if (!x.error && x.head_error == HeadError::none) ++answered;
      }
      P2PClient client(*conn);
      after = co_await fetch(client, Method::GET, "/still/alive");
    });
    ASSERT_TRUE(b.run_until([&] { return after.has_value(); }));
    EXPECT_EQ(answered, inputs.size());
    ASSERT_TRUE(after->ok());
    EXPECT_EQ(after->text(), "fine");
  }
}

TYPED_TEST_P(RouterDriverSuite, ShutdownFinishesRequestsInFlight) {
  TypeParam b(test_seed());
  ROUTER_TRACE(b);
  P2PRouter r;
  const auto env = b.server_env();
  ASSERT_TRUE(r.get("/work", [env](P2PRequest) -> asio::awaitable<P2PResponse> {
                 co_await sleep_on(env, 2 * tick<TypeParam>());
                 co_return P2PResponse::stream(StatusCode::ok, pattern_source(1 << 20), 1 << 20);
               }).has_value());
  ServeOptions opts;
  opts.shutdown_grace = 30 * tick<TypeParam>();
  ServerRun<TypeParam> server(b, std::move(r), opts);
  std::vector<Fetched> got;
  std::optional<typename TypeParam::Connection> conn;
  start(b.executor(), [&]() -> asio::awaitable<void> {
    auto c = co_await b.connect("alice");
    if (!c) co_return;
    conn = std::move(*c);
    for (int i = 0; i < 3; ++i) {
      start(b.executor(), [&]() -> asio::awaitable<void> {
        P2PClient client(*conn);
        got.push_back(co_await fetch(client, Method::GET, "/work"));
      });
    }
  });
  ASSERT_TRUE(b.run_until([&] { return server.server().stats().requests_active == 3; }));
  server.server().shutdown();
  ASSERT_TRUE(b.run_until([&] { return server.finished() && got.size() == 3; }));
  for (const auto& f : got) {
    ASSERT_TRUE(f.ok()) << f.error->message();
    EXPECT_EQ(f.status, StatusCode::ok);
    EXPECT_EQ(f.body.size(), 1u << 20);
  }
  EXPECT_TRUE(server.result().has_value());
  EXPECT_EQ(server.server().stats().requests_completed, 3u);
  EXPECT_EQ(server.server().stats().connections_active, 0u);
  std::optional<Fetched> refused;
  start(b.executor(), [&]() -> asio::awaitable<void> {
    P2PClient client(*conn);
    refused = co_await fetch(client, Method::GET, "/work");
  });
  ASSERT_TRUE(b.run_until([&] { return refused.has_value(); }));
  EXPECT_FALSE(refused->ok());  // the server closed the connection after draining
  conn.reset();
}

TYPED_TEST_P(RouterDriverSuite, ShutdownAbortsRequestsAfterTheGrace) {
  TypeParam b(test_seed());
  ROUTER_TRACE(b);
  P2PRouter r;
  const auto env = b.server_env();
  ASSERT_TRUE(r.get("/forever", [env](P2PRequest) -> asio::awaitable<P2PResponse> {
                 co_await sleep_on(env, std::chrono::hours(1));
                 co_return P2PResponse(StatusCode::ok);
               }).has_value());
  ServeOptions opts;
  opts.shutdown_grace = 2 * tick<TypeParam>();
  opts.handler_timeout = std::chrono::hours(2);
  ServerRun<TypeParam> server(b, std::move(r), opts);
  std::optional<Fetched> got;
  start(b.executor(), [&]() -> asio::awaitable<void> {
    auto conn = co_await b.connect("alice");
    if (!conn) co_return;
    P2PClient client(*conn);
    got = co_await fetch(client, Method::GET, "/forever");
  });
  ASSERT_TRUE(b.run_until([&] { return server.server().stats().requests_active == 1; }));
  server.server().shutdown();
  ASSERT_TRUE(b.run_until([&] { return server.finished() && got.has_value(); }, 60 * tick<TypeParam>()));
  EXPECT_FALSE(got->ok());
  ASSERT_EQ(server.records().size(), 1u);
  EXPECT_EQ(server.records()[0].outcome, RequestOutcome::shut_down);
}

TYPED_TEST_P(RouterDriverSuite, EnforcesAllowlistsAndRateLimitsPerPeer) {
  TypeParam b(test_seed());
  ROUTER_TRACE(b);
  P2PRouter r;
  ASSERT_TRUE(r.get(
                   "/private", [](P2PRequest) { return P2PResponse::text(StatusCode::ok, "secret"); },
                   RouteOptions{.allow = Allowlist{TypeParam::client_id("alice")}})
                  .has_value());
  ASSERT_TRUE(r.get("/public", [](P2PRequest) { return P2PResponse::text(StatusCode::ok, "hi"); }).has_value());
  r.use(rate_limit(b.server_env(), RateLimit{.requests_per_second = 1, .burst = 3}));
  ServerRun<TypeParam> server(b, std::move(r));
  std::vector<StatusCode> alice;
  std::vector<StatusCode> mallory;
  std::optional<std::string> retry_after;
  bool done = false;
  start(b.executor(), [&]() -> asio::awaitable<void> {
    auto a = co_await b.connect("alice");
    auto m = co_await b.connect("mallory");
    if (!a || !m) co_return;
    P2PClient ca(*a);
    P2PClient cm(*m);
    auto a1 = co_await fetch(ca, Method::GET, "/private");
    alice.push_back(a1.status);
    auto m1 = co_await fetch(cm, Method::GET, "/private");
    mallory.push_back(m1.status);
    for (int i = 0; i < 3; ++i) {
      auto f = co_await fetch(cm, Method::GET, "/public");
      mallory.push_back(f.status);
      if (f.status == StatusCode::too_many_requests)
        retry_after = std::string(f.headers.get("retry-after").value_or(""));
    }
    auto a2 = co_await fetch(ca, Method::GET, "/public");  // alice has her own bucket
    alice.push_back(a2.status);
    co_await sleep_on(b.client_env(), 2 * std::chrono::seconds(1));
    auto m2 = co_await fetch(cm, Method::GET, "/public");
    mallory.push_back(m2.status);
    done = true;
  });
  ASSERT_TRUE(b.run_until([&] { return done; }));
  EXPECT_EQ(alice, (std::vector<StatusCode>{StatusCode::ok, StatusCode::ok}));
  EXPECT_EQ(mallory, (std::vector<StatusCode>{StatusCode::forbidden, StatusCode::ok, StatusCode::ok,
                                              StatusCode::too_many_requests, StatusCode::ok}));
  EXPECT_EQ(retry_after, "1");
}

REGISTER_TYPED_TEST_SUITE_P(RouterDriverSuite, AnswersGetWithParamsQueryAndRemote, EchoesRequestBodiesSmallAndLarge,
                            Answers404405HeadAndOptionsOverTheWire, ServesHundredConcurrentRequestsOnOneConnection,
                            BoundsRequestsInFlightPerPeer, StreamsHundredMiBResponseWithBoundedMemory,
                            StreamsHundredMiBUploadWithBoundedMemory, AnswersRangeRequests,
                            ClientDroppingTheResponseAbortsTheServer, ClientCancellationAbortsTheRequest,
                            ServerSourceFailureResetsTheClientRead, AnswersLateHeadsWith408AndLateHandlersWith503,
                            ResetsAPeerThatStopsReading, RefusesHostileHeads, Answers413ForBodiesOverTheLimit,
                            SurvivesRandomHostileStreams, ShutdownFinishesRequestsInFlight,
                            ShutdownAbortsRequestsAfterTheGrace, EnforcesAllowlistsAndRateLimitsPerPeer);

}  // namespace moosicbox::p2p::testing
