// SPDX-License-Identifier: MIT OR Apache-2.0
// router_test.cpp: in-process dispatch: handler forms, services, middleware, routing answers,
// HEAD, limits and failures, without any transport.
#include "moosicbox/p2p/router/router.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "moosicbox/p2p/router/middleware.hpp"
#include "router/support/run.hpp"

namespace moosicbox::p2p::router {
namespace {

using testing::run_sync;

const NodeId kAlice = test_node_id("alice");
const NodeId kMallory = test_node_id("mallory");

P2PRequest make(Method m, std::string_view target, Bytes body = {}, Headers headers = {}, NodeId from = kAlice) {
  auto r = P2PRequest::create(from, m, target, std::move(headers),
                              body.empty() ? BodyReader{} : BodyReader::from_bytes(std::move(body)));
  EXPECT_TRUE(r.has_value());
  return std::move(*r);
}

struct Answer {
  StatusCode status;
  Headers headers;
  std::string body;
  bool streamed;
};

Answer dispatch(const P2PRouter& router, P2PRequest req) {
  return run_sync([&]() -> asio::awaitable<Answer> {
    auto resp = co_await router.handle(std::move(req));
    const bool streamed = resp.body.is_streamed();
    auto bytes = co_await collect(std::move(resp.body));
    co_return Answer{resp.status, std::move(resp.headers), bytes ? to_string(*bytes) : "<collect failed>", streamed};
  });
}

struct StructHandler {
  int calls = 0;
  P2PResponse handle(const P2PRequest& req) {
    ++calls;
    return P2PResponse::text(StatusCode::ok, fmt::format("struct {} {}", calls, req.path));
  }
};

struct CoroutineStruct {
  asio::awaitable<P2PResult<P2PResponse>> handle(P2PRequest req) {
    auto body = co_await req.body.read_text();
    if (!body) co_return fail(std::move(body.error()));
    co_return P2PResponse::text(StatusCode::created, "got " + *body);
  }
};

TEST(Router, AcceptsEveryHandlerForm) {
  P2PRouter router;
  ASSERT_TRUE(router.get("/plain", [](P2PRequest) { return P2PResponse::text(StatusCode::ok, "plain"); }).has_value());
  ASSERT_TRUE(
      router.get("/cref", [](const P2PRequest& r) { return P2PResponse::text(StatusCode::ok, r.path); }).has_value());
  ASSERT_TRUE(router.get("/ref", [](P2PRequest& r) { return P2PResponse::text(StatusCode::ok, r.route); }).has_value());
  ASSERT_TRUE(router.get("/struct", StructHandler{}).has_value());
  ASSERT_TRUE(router.post("/coro", CoroutineStruct{}).has_value());
  ASSERT_TRUE(router
                  .get("/async",
                       [](P2PRequest r) -> asio::awaitable<P2PResponse> {
                         co_return P2PResponse::text(StatusCode::ok, std::string(r.query_param("q").value_or("-")));
                       })
                  .has_value());
  ASSERT_TRUE(
      router.get("/result", [](P2PRequest) -> P2PResult<P2PResponse> { return fail(P2PError::protocol("bad")); })
          .has_value());

  EXPECT_EQ(dispatch(router, make(Method::GET, "/plain")).body, "plain");
  EXPECT_EQ(dispatch(router, make(Method::GET, "/cref")).body, "/cref");
  EXPECT_EQ(dispatch(router, make(Method::GET, "/ref")).body, "/ref");
  EXPECT_EQ(dispatch(router, make(Method::GET, "/struct")).body, "struct 1 /struct");
  EXPECT_EQ(dispatch(router, make(Method::GET, "/struct")).body, "struct 2 /struct");  // one instance, kept
  const auto coro = dispatch(router, make(Method::POST, "/coro", to_bytes("payload")));
  EXPECT_EQ(coro.status, StatusCode::created);
  EXPECT_EQ(coro.body, "got payload");
  EXPECT_EQ(dispatch(router, make(Method::GET, "/async?q=a+b")).body, "a b");
  EXPECT_EQ(dispatch(router, make(Method::GET, "/result")).status, StatusCode::bad_request);
}

TEST(Router, PassesParamsRouteAndRemote) {
  P2PRouter router;
  ASSERT_TRUE(router
                  .get("/tracks/:id/files/*rest",
                       [](P2PRequest r) {
                         return P2PResponse::text(
                             StatusCode::ok,
                             fmt::format("{}|{}|{}|{}", *r.param("id"), *r.param("rest"), r.route, r.remote == kAlice));
                       })
                  .has_value());
  EXPECT_EQ(dispatch(router, make(Method::GET, "/tracks/7/files/a/b%20c")).body,
            "7|a/b c|/tracks/:id/files/*rest|true");
}

TEST(Router, Answers404405OptionsAnd400) {
  P2PRouter router;
  ASSERT_TRUE(router.get("/a", [](P2PRequest) { return P2PResponse(StatusCode::ok); }).has_value());
  ASSERT_TRUE(router.del("/a", [](P2PRequest) { return P2PResponse(StatusCode::no_content); }).has_value());
  EXPECT_EQ(dispatch(router, make(Method::GET, "/b")).status, StatusCode::not_found);
  const auto m = dispatch(router, make(Method::PUT, "/a"));
  EXPECT_EQ(m.status, StatusCode::method_not_allowed);
  EXPECT_EQ(m.headers.get("allow"), "GET, HEAD, DELETE, OPTIONS");
  const auto o = dispatch(router, make(Method::OPTIONS, "/a"));
  EXPECT_EQ(o.status, StatusCode::no_content);
  EXPECT_EQ(o.headers.get("Allow"), "GET, HEAD, DELETE, OPTIONS");
  EXPECT_EQ(dispatch(router, make(Method::GET, "/a/%ff")).status, StatusCode::bad_request);
  EXPECT_EQ(dispatch(router, make(Method::GET, "/a/../a")).status, StatusCode::bad_request);
}

TEST(Router, AnswersHeadFromGetWithoutBody) {
  P2PRouter router;
  bool saw_head = false;
  ASSERT_TRUE(router
                  .get("/file",
                       [&saw_head](P2PRequest r) {
                         saw_head = r.method == Method::HEAD;
                         return P2PResponse::text(StatusCode::ok, "twelve bytes");
                       })
                  .has_value());
  ASSERT_TRUE(router
                  .get("/stream",
                       [](P2PRequest) {
                         return P2PResponse::stream(
                             StatusCode::ok,
                             [](BodyWriter&) -> asio::awaitable<P2PResult<void>> {
                               ADD_FAILURE() << "a HEAD answer must not run the body source";
                               co_return P2PResult<void>{};
                             },
                             1000);
                       })
                  .has_value());
  const auto h = dispatch(router, make(Method::HEAD, "/file"));
  EXPECT_TRUE(saw_head);
  EXPECT_EQ(h.status, StatusCode::ok);
  EXPECT_EQ(h.body, "");
  EXPECT_EQ(h.headers.get("content-length"), "12");
  const auto s = dispatch(router, make(Method::HEAD, "/stream"));
  EXPECT_FALSE(s.streamed);
  EXPECT_EQ(s.headers.get("content-length"), "1000");
}

TEST(Router, RefusesConflictsAndKeepsServicesAtomic) {
  struct Music {
    int* calls;
    P2PResult<void> register_routes(P2PRouter& r) {
      if (auto a = r.get("/tracks",
                         [this](P2PRequest) {
                           ++*calls;
                           return P2PResponse(StatusCode::ok);
                         });
          !a) {
        return a;
      }
      return r.get("/tracks/:id", [](P2PRequest) { return P2PResponse(StatusCode::ok); });
    }
  };
  int calls = 0;
  P2PRouter router;
  ASSERT_TRUE(router.get("/tracks/:other", [](P2PRequest) { return P2PResponse(StatusCode::accepted); }).has_value());
  const auto r = router.register_service(Music{&calls});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), P2PErrc::invalid_configuration);
  EXPECT_NE(r.error().message().find("/tracks/:other"), std::string::npos) << r.error().message();
  EXPECT_EQ(router.route_count(), 1u);
  EXPECT_EQ(dispatch(router, make(Method::GET, "/tracks")).status, StatusCode::not_found);  // rolled back

  auto built = P2PRouter{}.with_service(Music{&calls});
  ASSERT_TRUE(built.has_value());
  EXPECT_EQ(dispatch(*built, make(Method::GET, "/tracks")).status, StatusCode::ok);
  EXPECT_EQ(calls, 1);
}

TEST(Router, EnforcesRouteAndServiceAllowlists) {
  struct Admin {
    P2PResult<void> register_routes(P2PRouter& r) {
      return r.get("/admin", [](P2PRequest) { return P2PResponse(StatusCode::ok); });
    }
  };
  P2PRouter router;
  ASSERT_TRUE(router.register_service(Admin{}, ServiceOptions{.allow = Allowlist{kAlice}}).has_value());
  ASSERT_TRUE(router
                  .get(
                      "/mallory-only", [](P2PRequest) { return P2PResponse(StatusCode::ok); },
                      RouteOptions{.allow = Allowlist{kMallory}})
                  .has_value());
  EXPECT_EQ(dispatch(router, make(Method::GET, "/admin", {}, {}, kAlice)).status, StatusCode::ok);
  EXPECT_EQ(dispatch(router, make(Method::GET, "/admin", {}, {}, kMallory)).status, StatusCode::forbidden);
  EXPECT_EQ(dispatch(router, make(Method::GET, "/mallory-only", {}, {}, kAlice)).status, StatusCode::forbidden);
  EXPECT_EQ(dispatch(router, make(Method::GET, "/mallory-only", {}, {}, kMallory)).status, StatusCode::ok);

  P2PRouter guarded;
  ASSERT_TRUE(guarded.get("/x", [](P2PRequest) { return P2PResponse(StatusCode::ok); }).has_value());
  guarded.use(allow_only({kAlice}));
  EXPECT_EQ(dispatch(guarded, make(Method::GET, "/x", {}, {}, kMallory)).status, StatusCode::forbidden);
  EXPECT_EQ(dispatch(guarded, make(Method::GET, "/nothing", {}, {}, kMallory)).status, StatusCode::forbidden);
  EXPECT_EQ(dispatch(guarded, make(Method::GET, "/x", {}, {}, kAlice)).status, StatusCode::ok);
}

TEST(Router, Answers413ForDeclaredAndReadOverruns) {
  P2PRouter router;
  router.set_default_body_limit(10);
  bool ran = false;
  ASSERT_TRUE(router
                  .post("/small",
                        [&ran](P2PRequest r) -> asio::awaitable<P2PResponse> {
                          ran = true;
                          auto body = co_await r.body.read_all();
                          co_return P2PResponse::text(StatusCode::ok, body ? "read" : body.error().message());
                        })
                  .has_value());
  ASSERT_TRUE(
      router
          .post(
              "/big", [](P2PRequest) { return P2PResponse(StatusCode::ok); }, RouteOptions{.body_bytes_max = 100})
          .has_value());
  EXPECT_EQ(dispatch(router, make(Method::POST, "/small", Bytes(11))).status, StatusCode::content_too_large);
  EXPECT_FALSE(ran);  // refused on the declared length, before the handler
  EXPECT_EQ(dispatch(router, make(Method::POST, "/small", Bytes(10))).status, StatusCode::ok);
  EXPECT_EQ(dispatch(router, make(Method::POST, "/big", Bytes(100))).status, StatusCode::ok);
  EXPECT_EQ(dispatch(router, make(Method::POST, "/big", Bytes(101))).status, StatusCode::content_too_large);
}

TEST(Router, TurnsHandlerFailuresInto500) {
  P2PRouter router;
  ASSERT_TRUE(
      router.get("/throws", [](P2PRequest) -> P2PResponse { throw std::runtime_error("handler bug"); }).has_value());
  ASSERT_TRUE(router
                  .get("/fails",
                       [](P2PRequest) -> asio::awaitable<P2PResult<P2PResponse>> {
                         co_return fail(P2PError::network("backend down"));
                       })
                  .has_value());
  EXPECT_EQ(dispatch(router, make(Method::GET, "/throws")).status, StatusCode::internal_server_error);
  EXPECT_EQ(dispatch(router, make(Method::GET, "/fails")).status, StatusCode::internal_server_error);
}

TEST(Router, RunsMiddlewareInOrderAroundRouting) {
  P2PRouter router;
  std::string trace;
  ASSERT_TRUE(router
                  .get("/x",
                       [&trace](P2PRequest) {
                         trace += "h";
                         return P2PResponse(StatusCode::ok);
                       })
                  .has_value());
  router.use([&trace](P2PRequest req, Next next) -> asio::awaitable<P2PResponse> {
    trace += "1";
    auto r = co_await next(std::move(req));
    trace += "1";
    co_return std::move(r).with_header("x-one", "yes");
  });
  router.use([&trace](P2PRequest req, Next next) -> asio::awaitable<P2PResponse> {
    trace += "2";
    co_return co_await next(std::move(req));
  });
  const auto a = dispatch(router, make(Method::GET, "/x"));
  EXPECT_EQ(trace, "12h1");
  EXPECT_EQ(a.headers.get("x-one"), "yes");
  trace.clear();
  EXPECT_EQ(dispatch(router, make(Method::GET, "/missing")).status, StatusCode::not_found);
  EXPECT_EQ(trace, "121");  // middleware also sees 404s
}

TEST(RateLimiter, RefillsOnTheClockPerPeer) {
  TimePoint now{};
  RateLimiter limiter([&now] { return now; }, RateLimit{.requests_per_second = 2, .burst = 3, .peers_max = 2});
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(limiter.try_acquire(kAlice).has_value());
  const auto wait = limiter.try_acquire(kAlice);
  ASSERT_TRUE(wait.has_value());
  EXPECT_EQ(*wait, std::chrono::milliseconds(500));
  EXPECT_FALSE(limiter.try_acquire(kMallory).has_value());  // buckets are per peer
  now += std::chrono::milliseconds(500);
  EXPECT_FALSE(limiter.try_acquire(kAlice).has_value());
  EXPECT_TRUE(limiter.try_acquire(kAlice).has_value());
  EXPECT_FALSE(limiter.try_acquire(test_node_id("third")).has_value());
  EXPECT_EQ(limiter.tracked_peers(), 2u);  // bounded: one bucket was forgotten
}

TEST(RateLimiter, AnswersTooManyRequestsWithRetryAfter) {
  TimePoint now{};
  auto limiter =
      std::make_shared<RateLimiter>([&now] { return now; }, RateLimit{.requests_per_second = 0.5, .burst = 1});
  P2PRouter router;
  ASSERT_TRUE(router.get("/x", [](P2PRequest) { return P2PResponse(StatusCode::ok); }).has_value());
  router.use(rate_limit_with(limiter));
  EXPECT_EQ(dispatch(router, make(Method::GET, "/x")).status, StatusCode::ok);
  const auto limited = dispatch(router, make(Method::GET, "/x"));
  EXPECT_EQ(limited.status, StatusCode::too_many_requests);
  EXPECT_EQ(limited.headers.get("retry-after"), "2");
  now += std::chrono::seconds(2);
  EXPECT_EQ(dispatch(router, make(Method::GET, "/x")).status, StatusCode::ok);
}

TEST(RangeResponse, AnswersPartialFullAndUnsatisfiable) {
  const Bytes file = testing::pattern(1000);
  P2PRouter router;
  ASSERT_TRUE(router
                  .get("/f",
                       [&file](P2PRequest r) {
                         return range_response(
                             r, file.size(),
                             [&file](std::uint64_t off, std::uint64_t len, BodyWriter& w) {
                               return w.write(ByteView(file).subspan(off, len));
                             },
                             "audio/flac");
                       })
                  .has_value());
  const auto part = dispatch(router, make(Method::GET, "/f", {}, Headers{{"range", "bytes=10-19"}}));
  EXPECT_EQ(part.status, StatusCode::partial_content);
  EXPECT_EQ(part.headers.get("content-range"), "bytes 10-19/1000");
  EXPECT_EQ(part.headers.get("content-type"), "audio/flac");
  EXPECT_EQ(part.body, to_string(ByteView(file).subspan(10, 10)));
  const auto suffix = dispatch(router, make(Method::GET, "/f", {}, Headers{{"range", "bytes=-3"}}));
  EXPECT_EQ(suffix.body, to_string(ByteView(file).subspan(997, 3)));
  const auto full = dispatch(router, make(Method::GET, "/f"));
  EXPECT_EQ(full.status, StatusCode::ok);
  EXPECT_EQ(full.headers.get("accept-ranges"), "bytes");
  EXPECT_EQ(full.body.size(), 1000u);
  const auto bad = dispatch(router, make(Method::GET, "/f", {}, Headers{{"range", "bytes=1000-"}}));
  EXPECT_EQ(bad.status, StatusCode::range_not_satisfiable);
  EXPECT_EQ(bad.headers.get("content-range"), "bytes */1000");
  EXPECT_EQ(bad.body, "");
}

TEST(Body, ReadAllStopsAtTheBound) {
  auto r = run_sync([]() -> asio::awaitable<P2PResult<Bytes>> {
    auto reader = BodyReader::from_bytes(Bytes(100));
    co_return co_await reader.read_all(99);
  });
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), P2PErrc::message_too_large);
}

TEST(Body, CollectChecksTheDeclaredLength) {
  auto r = run_sync([]() -> asio::awaitable<P2PResult<Bytes>> {
    co_return co_await collect(Body::stream(
        [](BodyWriter& w) -> asio::awaitable<P2PResult<void>> { co_return co_await w.write(as_bytes("abc")); }, 5));
  });
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), P2PErrc::protocol_error);
}

}  // namespace
}  // namespace moosicbox::p2p::router
