// SPDX-License-Identifier: MIT OR Apache-2.0
// route_table_test.cpp: pattern parsing, precedence, 404 / 405 / HEAD / OPTIONS, conflicts.
#include "moosicbox/p2p/router/route_table.hpp"

#include <gtest/gtest.h>

namespace moosicbox::p2p::router {
namespace {

RouteTable table_of(std::initializer_list<std::pair<Method, std::string_view>> routes) {
  RouteTable t;
  RouteId id = 0;
  for (const auto& [m, p] : routes) {
    auto r = t.add(m, p, id++);
    EXPECT_TRUE(r.has_value()) << p << ": " << (r ? "" : r.error().message());
  }
  return t;
}

TEST(RoutePattern, ParsesLiteralsParamsAndWildcards) {
  const auto p = RoutePattern::parse("/tracks/:id/files/*rest");
  ASSERT_TRUE(p.has_value());
  ASSERT_EQ(p->segments().size(), 4u);
  EXPECT_EQ(p->segments()[1], (RoutePattern::Segment{RoutePattern::SegmentKind::param, "id"}));
  EXPECT_EQ(p->segments()[3], (RoutePattern::Segment{RoutePattern::SegmentKind::wildcard, "rest"}));
  EXPECT_EQ(p->shape(), "/tracks/:/files/*");
  EXPECT_TRUE(RoutePattern::parse("/")->segments().empty());
}

TEST(RoutePattern, RejectsMalformedPatterns) {
  for (const auto* bad : {"", "tracks", "/tracks/", "//", "/a//b", "/:", "/*", "/:a/:a", "/*rest/more", "/:bad-name",
                          "/a/..", "/./a", "/\xc3"}) {
    const auto r = RoutePattern::parse(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code(), P2PErrc::invalid_configuration);
  }
}

TEST(RouteTable, FindsExactRoutesAndCapturesParams) {
  const auto t = table_of({{Method::GET, "/"}, {Method::GET, "/tracks"}, {Method::GET, "/tracks/:id/stream"}});
  EXPECT_EQ(t.match(Method::GET, "/").route, 0u);
  EXPECT_EQ(t.match(Method::GET, "/tracks").route, 1u);
  const auto m = t.match(Method::GET, "/tracks/42/stream");
  ASSERT_EQ(m.kind, MatchKind::found);
  EXPECT_EQ(m.route, 2u);
  EXPECT_EQ(m.params.get("id"), "42");
  EXPECT_EQ(m.pattern, "/tracks/:id/stream");
}

TEST(RouteTable, DecodesParamsAndWildcards) {
  const auto t = table_of({{Method::GET, "/tracks/:id"}, {Method::GET, "/files/*path"}});
  EXPECT_EQ(t.match(Method::GET, "/tracks/caf%C3%A9%20au%20lait").params.get("id"), "caf\xc3\xa9 au lait");
  const auto m = t.match(Method::GET, "/files/music/a%20b/c.flac");
  ASSERT_EQ(m.kind, MatchKind::found);
  EXPECT_EQ(m.params.get("path"), "music/a b/c.flac");
}

TEST(RouteTable, PrefersExactOverParamOverWildcard) {
  const auto t = table_of({{Method::GET, "/a/*rest"}, {Method::GET, "/a/:x"}, {Method::GET, "/a/b"}});
  EXPECT_EQ(t.match(Method::GET, "/a/b").route, 2u);
  EXPECT_EQ(t.match(Method::GET, "/a/c").route, 1u);
  EXPECT_EQ(t.match(Method::GET, "/a/c/d").route, 0u);
  EXPECT_EQ(t.match(Method::GET, "/a/c/d").params.get("rest"), "c/d");
}

TEST(RouteTable, BacktracksWhenALiteralBranchDeadEnds) {
  const auto t = table_of({{Method::GET, "/a/b/d"}, {Method::GET, "/a/:x/c"}, {Method::GET, "/*all"}});
  const auto m = t.match(Method::GET, "/a/b/c");
  ASSERT_EQ(m.kind, MatchKind::found);
  EXPECT_EQ(m.route, 1u);
  EXPECT_EQ(m.params.get("x"), "b");
  EXPECT_EQ(t.match(Method::GET, "/a/b/e").route, 2u);
  EXPECT_EQ(t.match(Method::GET, "/a/b/e").params.get("all"), "a/b/e");
}

TEST(RouteTable, Returns404ForUnknownPaths) {
  const auto t = table_of({{Method::GET, "/tracks/:id"}, {Method::GET, "/files/*p"}});
  for (const auto* path : {"/", "/tracks", "/tracks/", "/tracks/1/2", "/files", "/files/", "/other"}) {
    EXPECT_EQ(t.match(Method::GET, path).kind, MatchKind::not_found) << path;
  }
}

TEST(RouteTable, Returns405WithAllowForOtherMethods) {
  const auto t = table_of({{Method::GET, "/tracks/:id"}, {Method::DELETE, "/tracks/:track"}});
  const auto m = t.match(Method::POST, "/tracks/7");
  EXPECT_EQ(m.kind, MatchKind::method_not_allowed);
  EXPECT_EQ(format_allow(m.allowed), "GET, HEAD, DELETE, OPTIONS");
  const auto del = t.match(Method::DELETE, "/tracks/7");
  EXPECT_EQ(del.kind, MatchKind::found);
  EXPECT_EQ(del.params.get("track"), "7");
}

TEST(RouteTable, AnswersHeadFromGetUnlessHeadIsRegistered) {
  auto t = table_of({{Method::GET, "/a"}, {Method::GET, "/b"}, {Method::HEAD, "/b"}, {Method::POST, "/c"}});
  const auto a = t.match(Method::HEAD, "/a");
  EXPECT_EQ(a.kind, MatchKind::found);
  EXPECT_TRUE(a.head_from_get);
  EXPECT_EQ(a.route, 0u);
  const auto b = t.match(Method::HEAD, "/b");
  EXPECT_FALSE(b.head_from_get);
  EXPECT_EQ(b.route, 2u);
  EXPECT_EQ(t.match(Method::HEAD, "/c").kind, MatchKind::method_not_allowed);
}

TEST(RouteTable, AnswersOptionsWithTheAllowedMethods) {
  auto t = table_of({{Method::POST, "/play"}, {Method::OPTIONS, "/custom"}, {Method::GET, "/custom"}});
  const auto m = t.match(Method::OPTIONS, "/play");
  EXPECT_EQ(m.kind, MatchKind::options);
  EXPECT_EQ(format_allow(m.allowed), "POST, OPTIONS");
  EXPECT_EQ(t.match(Method::OPTIONS, "/custom").kind, MatchKind::found);
  EXPECT_EQ(t.match(Method::OPTIONS, "/nothing").kind, MatchKind::not_found);
}

TEST(RouteTable, RefusesConflictingRegistrations) {
  RouteTable t;
  ASSERT_TRUE(t.add(Method::GET, "/tracks/:id", 0).has_value());
  const auto r = t.add(Method::GET, "/tracks/:track_id", 1);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), P2PErrc::invalid_configuration);
  EXPECT_NE(r.error().message().find("/tracks/:id"), std::string::npos) << r.error().message();
  EXPECT_FALSE(t.add(Method::GET, "/tracks/:id", 2).has_value());
  EXPECT_TRUE(t.add(Method::PUT, "/tracks/:track_id", 3).has_value());
  EXPECT_TRUE(t.add(Method::GET, "/tracks/:id/stream", 4).has_value());
  EXPECT_EQ(t.route_count(), 3u);
  EXPECT_EQ(t.match(Method::GET, "/tracks/9").route, 0u);
}

TEST(RouteTable, RefusedRegistrationLeavesTheTableUnchanged) {
  RouteTable t;
  ASSERT_TRUE(t.add(Method::GET, "/a/:x", 0).has_value());
  const RouteTable before = t;
  EXPECT_FALSE(t.add(Method::GET, "/a/:y", 1).has_value());
  EXPECT_FALSE(t.add(Method::GET, "/b//c", 2).has_value());
  EXPECT_EQ(t.route_count(), before.route_count());
  EXPECT_EQ(t.match(Method::GET, "/b/c").kind, MatchKind::not_found);
}

TEST(RouteTable, RejectsInvalidRequestPaths) {
  const auto t = table_of({{Method::GET, "/files/*p"}, {Method::GET, "/:x"}});
  const std::pair<const char*, PathError> cases[] = {
      {"/files/%", PathError::malformed},          {"/files/%zz", PathError::malformed},
      {"/files/%C3", PathError::invalid_utf8},     {"/files/\xff", PathError::invalid_utf8},
      {"/files/%C0%AF", PathError::invalid_utf8},  {"/files/../etc", PathError::forbidden},
      {"/files/%2e%2E/etc", PathError::forbidden}, {"/files/a%2Fb", PathError::forbidden},
      {"/files/a%00b", PathError::forbidden},      {"files", PathError::malformed},
  };
  for (const auto& [path, why] : cases) {
    const auto m = t.match(Method::GET, path);
    EXPECT_EQ(m.kind, MatchKind::bad_path) << path;
    EXPECT_EQ(m.path_error, why) << path;
  }
}

}  // namespace
}  // namespace moosicbox::p2p::router
