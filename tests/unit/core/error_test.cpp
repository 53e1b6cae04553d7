// SPDX-License-Identifier: MIT OR Apache-2.0
// error_test.cpp: P2PError messages, codes and the std::error_code category.
#include "moosicbox/p2p/core/error.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace moosicbox::p2p {
namespace {

TEST(P2PError, MessagesMatchTheSpec) {
  using namespace std::chrono_literals;
  EXPECT_EQ(P2PError::connection_failed("refused").message(), "Connection failed: refused");
  EXPECT_EQ(P2PError::node_not_found("alice").message(), "Node not found: alice");
  EXPECT_EQ(P2PError::network("socket closed").message(), "Network error: socket closed");
  EXPECT_EQ(P2PError::invalid_node_id("bad").message(), "Invalid node ID: bad");
  EXPECT_EQ(P2PError::timeout(30s).message(), "Operation timed out after 30s");
  EXPECT_EQ(P2PError::timeout(1500ms).message(), "Operation timed out after 1.5s");
  EXPECT_EQ(P2PError::connection_closed("peer").message(), "Connection closed by peer");
  EXPECT_EQ(P2PError::no_route("abc").message(), "No route to destination abc");
  EXPECT_EQ(P2PError::discovery_failed("dns").message(), "Discovery failed: dns");
  EXPECT_EQ(P2PError::protocol("bad frame").message(), "Protocol error: bad frame");
  EXPECT_EQ(P2PError::message_too_large(2000000, 1048576).message(),
            "Message too large: 2000000 bytes exceeds max 1048576");
  EXPECT_EQ(P2PError::authentication_failed("xyz").message(), "Authentication failed for peer xyz");
  EXPECT_EQ(P2PError::invalid_configuration("x").message(), "Invalid configuration: x");
}

TEST(P2PError, CodeConvertsToErrorCodeOfP2PCategory) {
  const auto e = P2PError::timeout(std::chrono::seconds(1));
  EXPECT_EQ(e.code(), P2PErrc::timeout);
  const std::error_code ec = e.error_code();
  EXPECT_EQ(&ec.category(), &p2p_category());
  EXPECT_STREQ(ec.category().name(), "p2p");
  EXPECT_EQ(ec.message(), "Operation timed out after");
  EXPECT_EQ(ec, P2PErrc::timeout);
  EXPECT_NE(ec, P2PErrc::no_route);
}

TEST(P2PError, ResultCarriesValueOrError) {
  P2PResult<int> ok = 4;
  P2PResult<int> bad = fail(P2PError::protocol("x"));
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(*ok, 4);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), P2PErrc::protocol_error);
}

TEST(P2PError, FormatsWithFmt) { EXPECT_EQ(fmt::format("{}", P2PError::no_route("n")), "No route to destination n"); }

TEST(FormatDuration, RendersUnitsForPeople) {
  using namespace std::chrono_literals;
  EXPECT_EQ(format_duration(30s), "30s");
  EXPECT_EQ(format_duration(250ms), "250ms");
  EXPECT_EQ(format_duration(1250us), "1.25ms");
  EXPECT_EQ(format_duration(12us), "12us");
  EXPECT_EQ(format_duration(80ns), "80ns");
  EXPECT_EQ(format_duration(0ns), "0ns");
  EXPECT_EQ(format_duration(-2s), "-2s");
}

}  // namespace
}  // namespace moosicbox::p2p
