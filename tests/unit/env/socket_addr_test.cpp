// SPDX-License-Identifier: MIT OR Apache-2.0
// socket_addr_test.cpp: SocketAddr text forms (well-formed and malformed), classification, ordering
// and the v4-mapped conversions.
#include "moosicbox/p2p/env/socket_addr.hpp"

#include <gtest/gtest.h>

#include <set>
#include <unordered_set>

namespace moosicbox::p2p::env {
namespace {

void expect_parse_error(std::string_view text, std::string_view needle) {
  SCOPED_TRACE(std::string(text));
  const auto r = SocketAddr::parse(text);
  ASSERT_FALSE(r.has_value()) << "parsed as " << r->to_string();
  EXPECT_EQ(r.error().code(), P2PErrc::invalid_configuration);
  EXPECT_NE(r.error().message().find(needle), std::string::npos) << r.error().message();
}

TEST(SocketAddr, DefaultIsUnspecifiedV4PortZero) {
  const SocketAddr a;
  EXPECT_TRUE(a.is_v4());
  EXPECT_TRUE(a.is_unspecified());
  EXPECT_EQ(a.port(), 0);
  EXPECT_EQ(a.to_string(), "0.0.0.0:0");
}

TEST(SocketAddr, ParsesAndFormatsIpv4) {
  const auto a = SocketAddr::parse("1.2.3.4:5");
  ASSERT_TRUE(a.has_value()) << a.error().message();
  EXPECT_TRUE(a->is_v4());
  EXPECT_EQ(a->v4_bytes(), (std::array<std::uint8_t, 4>{1, 2, 3, 4}));
  EXPECT_EQ(a->port(), 5);
  EXPECT_EQ(a->to_string(), "1.2.3.4:5");
  EXPECT_EQ(SocketAddr::parse("255.255.255.255:65535")->to_string(), "255.255.255.255:65535");
  EXPECT_EQ(SocketAddr::parse("0.0.0.0:0")->to_string(), "0.0.0.0:0");
  EXPECT_EQ(SocketAddr::parse("  127.0.0.1:4433\n")->to_string(), "127.0.0.1:4433");
}

TEST(SocketAddr, ParsesAndFormatsIpv6) {
  const auto a = SocketAddr::parse("[::1]:5");
  ASSERT_TRUE(a.has_value()) << a.error().message();
  EXPECT_TRUE(a->is_v6());
  EXPECT_EQ(*a, SocketAddr::v6_loopback(5));
  EXPECT_EQ(a->to_string(), "[::1]:5");
  // RFC 5952: lower case, longest zero run compressed, leading zeros dropped.
  EXPECT_EQ(SocketAddr::parse("[2001:DB8:0:0:0:0:0:1]:443")->to_string(), "[2001:db8::1]:443");
  EXPECT_EQ(SocketAddr::parse("[2001:db8:0:0:1:0:0:1]:1")->to_string(), "[2001:db8::1:0:0:1]:1");
  EXPECT_EQ(SocketAddr::parse("[::]:0")->to_string(), "[::]:0");
  EXPECT_EQ(SocketAddr::parse("[::ffff:10.0.0.1]:7")->to_string(), "[::ffff:10.0.0.1]:7");
}

TEST(SocketAddr, ParsesScopeId) {
  const auto a = SocketAddr::parse("[fe80::1%3]:5");
  ASSERT_TRUE(a.has_value()) << a.error().message();
  EXPECT_EQ(a->scope_id(), 3U);
  EXPECT_EQ(a->to_string(), "[fe80::1%3]:5");
  EXPECT_EQ(a->without_scope().to_string(), "[fe80::1]:5");
}

TEST(SocketAddr, ParseIpTakesAddressWithoutPort) {
  EXPECT_EQ(SocketAddr::parse_ip("127.0.0.1", 9)->to_string(), "127.0.0.1:9");
  EXPECT_EQ(SocketAddr::parse_ip("::1", 9)->to_string(), "[::1]:9");
  EXPECT_EQ(SocketAddr::parse_ip("[::1]", 9)->to_string(), "[::1]:9");
  EXPECT_EQ(SocketAddr::parse_ip("fe80::2%7", 1)->to_string(), "[fe80::2%7]:1");
  EXPECT_FALSE(SocketAddr::parse_ip("127.0.0.1:9", 9).has_value());
  EXPECT_FALSE(SocketAddr::parse_ip("[::1", 9).has_value());
  EXPECT_FALSE(SocketAddr::parse_ip("", 9).has_value());
}

TEST(SocketAddr, RejectsMalformedText) {
  expect_parse_error("", "empty");
  expect_parse_error("   ", "empty");
  expect_parse_error("1.2.3.4", "missing port");
  expect_parse_error("1.2.3.4:", "missing port");
  expect_parse_error("1.2.3.4:65536", "out of range");
  expect_parse_error("1.2.3.4:99999999999", "out of range");
  expect_parse_error("1.2.3.4:-1", "not a decimal number");
  expect_parse_error("1.2.3.4:+1", "not a decimal number");
  expect_parse_error("1.2.3.4:0x10", "not a decimal number");
  expect_parse_error("1.2.3.4:080", "leading zero");
  expect_parse_error("1.2.3.4:5 6", "not a decimal number");
  expect_parse_error("1.2.3:5", "3 octets");
  expect_parse_error("1.2.3.4.5:6", "more than 4 octets");
  expect_parse_error("1.2..4:5", "octet 3 is empty");
  expect_parse_error(".1.2.3:5", "octet 1 is empty");
  expect_parse_error("1.2.3.:5", "octet 4 is empty");
  expect_parse_error("256.0.0.1:5", "out of range");
  expect_parse_error("01.2.3.4:5", "leading zero");
  expect_parse_error("1.2.3.a:5", "not a decimal number");
  expect_parse_error("localhost:80", "not a decimal number");
  expect_parse_error("::1:5", "needs brackets");
  expect_parse_error("[::1]", "missing port");
  expect_parse_error("[::1]:", "missing port");
  expect_parse_error("[::1:5", "without matching ']'");
  expect_parse_error("::1]:5", "without matching '['");
  expect_parse_error("[::1]5", "expected ':' after ']'");
  expect_parse_error("[]:5", "empty IPv6 address");
  expect_parse_error("[:::1]:5", "not a valid IPv6 address");
  expect_parse_error("[1:2:3:4:5:6:7:8:9]:5", "not a valid IPv6 address");
  expect_parse_error("[::g]:5", "bad character");
  expect_parse_error("[1.2.3.4]:5", "not a valid IPv6 address");
  expect_parse_error("[fe80::1%]:5", "empty scope id");
  expect_parse_error("[fe80::1%eth0]:5", "scope id");
  expect_parse_error("[fe80::1%99999999999]:5", "scope id");
  expect_parse_error(std::string(100, '1'), "longer than");
  expect_parse_error(std::string("1.2.3.4\0:5", 10), "not a decimal number");
}

TEST(SocketAddr, ErrorMessagesEscapeHostileBytes) {
  const auto r = SocketAddr::parse(std::string("\x1b[31m\xff:1", 8));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message().find('\x1b'), std::string::npos);
  EXPECT_NE(r.error().message().find("\\x1b"), std::string::npos) << r.error().message();
}

TEST(SocketAddr, ClassifiesAddresses) {
  EXPECT_TRUE(SocketAddr::v4_loopback().is_loopback());
  EXPECT_TRUE(SocketAddr::parse("127.9.8.7:1")->is_loopback());
  EXPECT_TRUE(SocketAddr::v6_loopback().is_loopback());
  EXPECT_TRUE(SocketAddr::parse("[::ffff:127.0.0.2]:1")->is_loopback());
  EXPECT_FALSE(SocketAddr::parse("[::2]:1")->is_loopback());
  EXPECT_FALSE(SocketAddr::parse("10.0.0.1:1")->is_loopback());
  EXPECT_TRUE(SocketAddr::v4_any().is_unspecified());
  EXPECT_TRUE(SocketAddr::v6_any().is_unspecified());
  EXPECT_FALSE(SocketAddr::v6_loopback().is_unspecified());
  EXPECT_TRUE(SocketAddr::parse("224.0.0.1:1")->is_multicast());
  EXPECT_TRUE(SocketAddr::parse("239.255.255.255:1")->is_multicast());
  EXPECT_FALSE(SocketAddr::parse("240.0.0.1:1")->is_multicast());
  EXPECT_TRUE(SocketAddr::parse("[ff02::1]:1")->is_multicast());
  EXPECT_FALSE(SocketAddr::parse("[fe80::1]:1")->is_multicast());
}

TEST(SocketAddr, ConvertsV4Mapped) {
  const auto mapped = *SocketAddr::parse("[::ffff:192.0.2.1]:80");
  EXPECT_TRUE(mapped.is_v4_mapped());
  EXPECT_EQ(mapped.canonical(), *SocketAddr::parse("192.0.2.1:80"));
  EXPECT_EQ(SocketAddr::parse("192.0.2.1:80")->to_v6_mapped(), mapped);
  EXPECT_FALSE(SocketAddr::v6_loopback().is_v4_mapped());
  EXPECT_EQ(SocketAddr::v6_loopback(3).canonical(), SocketAddr::v6_loopback(3));
  EXPECT_EQ(SocketAddr::v4_loopback(3).to_v6_mapped().canonical(), SocketAddr::v4_loopback(3));
}

TEST(SocketAddr, OrdersV4BeforeV6ThenBytesThenPort) {
  const std::set<SocketAddr> s{*SocketAddr::parse("[::1]:1"), *SocketAddr::parse("2.0.0.0:1"),
                               *SocketAddr::parse("1.0.0.0:2"), *SocketAddr::parse("1.0.0.0:1"),
                               *SocketAddr::parse("[::]:9")};
  std::vector<std::string> order;
  for (const auto& a : s) order.push_back(a.to_string());
  EXPECT_EQ(order, (std::vector<std::string>{"1.0.0.0:1", "1.0.0.0:2", "2.0.0.0:1", "[::]:9", "[::1]:1"}));
}

TEST(SocketAddr, HashesEqualAddressesEqually) {
  std::unordered_set<SocketAddr> s;
  s.insert(*SocketAddr::parse("1.2.3.4:5"));
  s.insert(*SocketAddr::parse("1.2.3.4:5"));
  s.insert(*SocketAddr::parse("1.2.3.4:6"));
  s.insert(*SocketAddr::parse("[::1]:5"));
  EXPECT_EQ(s.size(), 3U);
  EXPECT_EQ(fmt::format("{}", *SocketAddr::parse("[::1]:5")), "[::1]:5");
}

}  // namespace
}  // namespace moosicbox::p2p::env
