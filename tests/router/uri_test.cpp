// SPDX-License-Identifier: MIT OR Apache-2.0
// uri_test.cpp: target splitting, percent-encoding, UTF-8 validation and query parsing.
#include "moosicbox/p2p/router/uri.hpp"

#include <gtest/gtest.h>

namespace moosicbox::p2p::router {
namespace {

TEST(RouterTarget, SplitsPathAndQuery) {
  EXPECT_EQ(split_target("/tracks?limit=10&x"), (Target{"/tracks", "limit=10&x"}));
  EXPECT_EQ(split_target("/"), (Target{"/", ""}));
  EXPECT_EQ(split_target("/a?"), (Target{"/a", ""}));
  EXPECT_EQ(split_target("/a?b?c"), (Target{"/a", "b?c"}));
}

TEST(RouterTarget, RejectsMalformedTargets) {
  for (const auto* bad : {"", "tracks", "http://x/", "/a b", "/a#frag", "/a\n", "/\x7f"}) {
    const auto r = split_target(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code(), P2PErrc::protocol_error);
  }
}

TEST(RouterUtf8, AcceptsWellFormedText) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("caf\xc3\xa9"));
  EXPECT_TRUE(is_valid_utf8("\xe2\x82\xac"));
  EXPECT_TRUE(is_valid_utf8("\xf0\x9f\x8e\xb5"));
  EXPECT_TRUE(is_valid_utf8("\xf4\x8f\xbf\xbf"));
}

TEST(RouterUtf8, RejectsMalformedText) {
  EXPECT_FALSE(is_valid_utf8("\x80"));              // lone continuation
  EXPECT_FALSE(is_valid_utf8("\xc3"));              // truncated
  EXPECT_FALSE(is_valid_utf8("\xc3\x28"));          // bad continuation
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xff"));
}

TEST(RouterPercent, DecodesAndEncodes) {
  EXPECT_EQ(percent_decode("a%20b%2Fc"), "a b/c");
  EXPECT_EQ(percent_decode("a+b"), "a+b");
  EXPECT_EQ(percent_decode("a+b", true), "a b");
  EXPECT_EQ(percent_decode("%e2%82%ac"), "\xe2\x82\xac");
  EXPECT_FALSE(percent_decode("%").has_value());
  EXPECT_FALSE(percent_decode("%2").has_value());
  EXPECT_FALSE(percent_decode("%zz").has_value());
  EXPECT_EQ(percent_encode("a b/c~\xe2\x82\xac"), "a%20b%2Fc~%E2%82%AC");
  const std::string all = [] {
    std::string s;
    for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
    return s;
  }();
  EXPECT_EQ(percent_decode(percent_encode(all)), all);
}

TEST(RouterQuery, ParsesPairsInOrder) {
  const auto q = QueryParams::parse("a=1&b=two+words&a=3&flag&&c=%26%3D");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->get("a"), "1");
  EXPECT_EQ(q->get_all("a"), (std::vector<std::string_view>{"1", "3"}));
  EXPECT_EQ(q->get("b"), "two words");
  EXPECT_EQ(q->get("flag"), "");
  EXPECT_EQ(q->get("c"), "&=");
  EXPECT_FALSE(q->get("missing").has_value());
  EXPECT_EQ(q->size(), 5u);
  const auto again = QueryParams::parse(q->encode());
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, *q);
}

TEST(RouterQuery, RejectsBadEscapesAndInvalidUtf8) {
  EXPECT_FALSE(QueryParams::parse("a=%").has_value());
  EXPECT_FALSE(QueryParams::parse("a=%g1").has_value());
  EXPECT_FALSE(QueryParams::parse("a=%ff").has_value());
  EXPECT_FALSE(QueryParams::parse("%c0%af=1").has_value());
  EXPECT_TRUE(QueryParams::parse("").has_value());
}

}  // namespace
}  // namespace moosicbox::p2p::router
