// SPDX-License-Identifier: MIT OR Apache-2.0
// types_test.cpp: methods, statuses and header fields.
#include "moosicbox/p2p/router/types.hpp"

#include <gtest/gtest.h>

#include "moosicbox/p2p/router/headers.hpp"

namespace moosicbox::p2p::router {
namespace {

TEST(RouterMethod, NamesRoundTripThroughParse) {
  for (std::uint8_t code = 1; code <= kMethodCount; ++code) {
    const auto m = method_from_code(code);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(parse_method(method_name(*m)), m);
  }
  EXPECT_EQ(method_name(Method::DELETE), "DELETE");
  EXPECT_EQ(fmt::format("{}", Method::OPTIONS), "OPTIONS");
}

TEST(RouterMethod, RejectsUnknownTokensAndCodes) {
  EXPECT_FALSE(parse_method("get").has_value());
  EXPECT_FALSE(parse_method("CONNECT").has_value());
  EXPECT_FALSE(parse_method("").has_value());
  EXPECT_FALSE(method_from_code(0).has_value());
  EXPECT_FALSE(method_from_code(kMethodCount + 1).has_value());
  EXPECT_FALSE(method_from_code(255).has_value());
}

TEST(RouterStatus, HasReasonPhrasesForTheCommonSet) {
  for (const auto s : {StatusCode::ok,
                       StatusCode::created,
                       StatusCode::no_content,
                       StatusCode::partial_content,
                       StatusCode::moved_permanently,
                       StatusCode::not_modified,
                       StatusCode::bad_request,
                       StatusCode::unauthorized,
                       StatusCode::forbidden,
                       StatusCode::not_found,
                       StatusCode::method_not_allowed,
                       StatusCode::request_timeout,
                       StatusCode::conflict,
                       StatusCode::content_too_large,
                       StatusCode::range_not_satisfiable,
                       StatusCode::too_many_requests,
                       StatusCode::request_header_fields_too_large,
                       StatusCode::internal_server_error,
                       StatusCode::not_implemented,
                       StatusCode::service_unavailable}) {
    EXPECT_FALSE(status_text(s).empty()) << status_value(s);
  }
  EXPECT_EQ(fmt::format("{}", StatusCode::not_found), "404 Not Found");
  EXPECT_EQ(fmt::format("{}", static_cast<StatusCode>(299)), "299");
  EXPECT_TRUE(is_success(StatusCode::partial_content));
  EXPECT_FALSE(is_success(StatusCode::not_modified));
  EXPECT_FALSE(allows_body(StatusCode::no_content));
}

TEST(RouterHeaders, LookupIgnoresCase) {
  Headers h{{"Content-Type", "text/plain"}, {"X-Tag", "a"}};
  h.add("x-TAG", "b");
  EXPECT_EQ(h.get("content-type"), "text/plain");
  EXPECT_EQ(h.get("CONTENT-TYPE"), "text/plain");
  EXPECT_EQ(h.get_all("X-Tag"), (std::vector<std::string_view>{"a", "b"}));
  EXPECT_EQ(h.begin()->first, "content-type");
  h.set("X-TAG", "c");
  EXPECT_EQ(h.get_all("x-tag"), (std::vector<std::string_view>{"c"}));
  EXPECT_EQ(h.remove("X-Tag"), 1u);
  EXPECT_FALSE(h.contains("x-tag"));
  EXPECT_EQ(h.size(), 1u);
}

TEST(RouterHeaders, ValidatesNamesAndValues) {
  EXPECT_TRUE(is_valid_header_name("x-custom_header.1"));
  EXPECT_FALSE(is_valid_header_name(""));
  EXPECT_FALSE(is_valid_header_name("bad name"));
  EXPECT_FALSE(is_valid_header_name("colon:"));
  EXPECT_FALSE(is_valid_header_name("caf\xc3\xa9"));
  EXPECT_TRUE(is_valid_header_value(""));
  EXPECT_TRUE(is_valid_header_value("a b\tc \xff"));
  EXPECT_FALSE(is_valid_header_value("a\r\nx-injected: 1"));
  EXPECT_FALSE(is_valid_header_value(std::string("a\0b", 3)));
  EXPECT_FALSE(is_valid_header_value(" leading"));
  EXPECT_FALSE(is_valid_header_value("trailing\t"));
}

}  // namespace
}  // namespace moosicbox::p2p::router
