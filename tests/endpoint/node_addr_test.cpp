// SPDX-License-Identifier: MIT OR Apache-2.0
// node_addr_test.cpp: NodeAddr invariants, the ticket format (round trips, a pinned golden ticket,
// the documented sizes) and a parse error for every kind of malformed ticket and readable address.
#include "moosicbox/p2p/endpoint/node_addr.hpp"

#include <gtest/gtest.h>

#include <cctype>

#include "endpoint/ticket_encoder.hpp"

namespace moosicbox::p2p {
namespace {

using test::BodyBuilder;
using test::make_ticket;

SocketAddr addr(std::string_view text) {
  auto a = SocketAddr::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(SocketAddr{});
}

NodeAddr full_addr() {
  const std::array addrs{addr("1.2.3.4:5"), addr("[2001:db8::1]:443")};
  return *NodeAddr::create(test_node_id("alice"), "https://relay.example.com/", addrs);
}

BodyBuilder body_with_id(const NodeId& id) {
  BodyBuilder b;
  b.raw_range(id.as_bytes());
  return b;
}

void expect_error(const P2PResult<NodeAddr>& r, std::string_view needle) {
  ASSERT_FALSE(r.has_value()) << "parsed as " << r->to_string();
  EXPECT_EQ(r.error().code(), P2PErrc::invalid_node_id);
  EXPECT_NE(r.error().message().find(needle), std::string::npos) << r.error().message();
}

void expect_ticket_error(std::string_view ticket, std::string_view needle) {
  SCOPED_TRACE(std::string(ticket));
  expect_error(NodeAddr::from_ticket(ticket), needle);
  expect_error(NodeAddr::parse(ticket), needle);
}

// --- NodeAddr values ---

TEST(NodeAddr, StartsWithIdOnly) {
  const NodeAddr a(test_node_id("alice"));
  EXPECT_EQ(a.node_id(), test_node_id("alice"));
  EXPECT_FALSE(a.relay_url().has_value());
  EXPECT_TRUE(a.direct_addresses().empty());
}

TEST(NodeAddr, AddDirectAddressCanonicalisesAndDeduplicates) {
  NodeAddr a(test_node_id("alice"));
  ASSERT_TRUE(a.add_direct_address(addr("[::ffff:10.0.0.1]:7")).has_value());
  ASSERT_TRUE(a.add_direct_address(addr("10.0.0.1:7")).has_value());  // the same address
  ASSERT_TRUE(a.add_direct_address(addr("[fe80::1%4]:7")).has_value());
  ASSERT_EQ(a.direct_addresses().size(), 2U);
  EXPECT_EQ(*a.direct_addresses().begin(), addr("10.0.0.1:7"));
  EXPECT_EQ(*a.direct_addresses().rbegin(), addr("[fe80::1]:7"));  // scope id dropped
  EXPECT_TRUE(a.remove_direct_address(addr("[::ffff:10.0.0.1]:7")));
  EXPECT_FALSE(a.remove_direct_address(addr("10.0.0.1:7")));
  EXPECT_EQ(a.direct_addresses().size(), 1U);
}

TEST(NodeAddr, AddDirectAddressRejectsUnusableAddresses) {
  NodeAddr a(test_node_id("alice"));
  for (const auto* bad : {"1.2.3.4:0", "0.0.0.0:5", "[::]:5", "224.0.0.1:5", "[ff02::1]:5", "[::ffff:0.0.0.0]:5"}) {
    const auto r = a.add_direct_address(addr(bad));
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().code(), P2PErrc::invalid_configuration) << bad;
  }
  EXPECT_TRUE(a.direct_addresses().empty());
}

TEST(NodeAddr, AddDirectAddressStopsAtTheMaximum) {
  NodeAddr a(test_node_id("alice"));
  for (std::uint16_t port = 1; port <= NodeAddr::kDirectAddressCountMax; ++port) {
    ASSERT_TRUE(a.add_direct_address(SocketAddr::v4_loopback(port)).has_value());
  }
  const auto r = a.add_direct_address(SocketAddr::v4_loopback(999));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("at most 16"), std::string::npos) << r.error().message();
  EXPECT_TRUE(a.add_direct_address(SocketAddr::v4_loopback(1)).has_value());  // present already: fine
  EXPECT_EQ(a.direct_addresses().size(), NodeAddr::kDirectAddressCountMax);
}

TEST(NodeAddr, ValidatesRelayUrls) {
  EXPECT_TRUE(NodeAddr::validate_relay_url("https://relay.example.com/").has_value());
  EXPECT_TRUE(NodeAddr::validate_relay_url("http://127.0.0.1:3340").has_value());
  EXPECT_TRUE(NodeAddr::validate_relay_url("https://" + std::string(247, 'a')).has_value());
  const std::pair<std::string, std::string_view> bad[] = {
      {"", "empty"},
      {"https://" + std::string(248, 'a'), "256 bytes long, max 255"},
      {"https://relay example.com", "' ' at position 13"},
      {"https://relay.example.com/\xc3\xa9", "byte 0xc3 at position 26"},
      {"ftp://relay.example.com", "must start with"},
      {"relay.example.com", "must start with"},
      {"https://", "no host"},
      {"https:///path", "no host"},
  };
  for (const auto& [url, needle] : bad) {
    const auto r = NodeAddr::validate_relay_url(url);
    ASSERT_FALSE(r.has_value()) << url;
    EXPECT_EQ(r.error().code(), P2PErrc::invalid_configuration);
    EXPECT_NE(r.error().message().find(needle), std::string::npos) << r.error().message();
  }
  NodeAddr a(test_node_id("alice"));
  EXPECT_FALSE(a.set_relay_url("ftp://x").has_value());
  EXPECT_FALSE(a.relay_url().has_value());
  ASSERT_TRUE(a.set_relay_url("https://r.example/").has_value());
  EXPECT_EQ(a.relay_url(), "https://r.example/");
  a.clear_relay_url();
  EXPECT_FALSE(a.relay_url().has_value());
}

TEST(NodeAddr, CreateReportsTheFirstBadPart) {
  const std::array good{addr("1.2.3.4:5")};
  const std::array bad{addr("1.2.3.4:5"), addr("1.2.3.4:0")};
  EXPECT_FALSE(NodeAddr::create(test_node_id("a"), "nope", good).has_value());
  const auto r = NodeAddr::create(test_node_id("a"), std::nullopt, bad);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("port 0"), std::string::npos) << r.error().message();
}

// --- Tickets: well-formed ---

TEST(NodeAddrTicket, RoundTripsEveryPart) {
  const auto a = full_addr();
  const auto ticket = a.to_ticket();
  EXPECT_TRUE(ticket.starts_with("p2p1")) << ticket;
  const auto back = NodeAddr::from_ticket(ticket);
  ASSERT_TRUE(back.has_value()) << back.error().message();
  EXPECT_EQ(*back, a);
  EXPECT_EQ(NodeAddr::parse(ticket).value(), a);
}

TEST(NodeAddrTicket, HasTheDocumentedSizes) {
  NodeAddr a(test_node_id("alice"));
  EXPECT_EQ(a.to_ticket().size(), 68U);  // 4 + ceil(40 bytes * 8 / 5)
  ASSERT_TRUE(a.add_direct_address(addr("1.2.3.4:5")).has_value());
  ASSERT_TRUE(a.add_direct_address(addr("[2001:db8::1]:443")).has_value());
  EXPECT_EQ(a.to_ticket().size(), 110U);
  NodeAddr largest(test_node_id("bob"));
  ASSERT_TRUE(largest.set_relay_url("https://" + std::string(247, 'r')).has_value());
  for (std::uint16_t port = 1; port <= NodeAddr::kDirectAddressCountMax; ++port) {
    ASSERT_TRUE(largest.add_direct_address(addr(fmt::format("[2001:db8::{}]:{}", port, port))).has_value());
  }
  const auto ticket = largest.to_ticket();
  EXPECT_EQ(ticket.size(), NodeAddr::kTicketLengthMax);
  EXPECT_EQ(NodeAddr::from_ticket(ticket).value(), largest);
}

TEST(NodeAddrTicket, MatchesTheIndependentEncoder) {
  // The ticket the library writes equals the one built from the documented format.
  const auto a = full_addr();
  const auto body = body_with_id(a.node_id())
                        .relay("https://relay.example.com/")
                        .u8(2)
                        .v4({1, 2, 3, 4}, 5)
                        .v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 443);
  EXPECT_EQ(a.to_ticket(), make_ticket(body.bytes));
}

TEST(NodeAddrTicket, GoldenTicketStaysReadable) {
  // Written by version 1; a change of the format that breaks old tickets fails here.
  constexpr std::string_view kGolden =
      "p2p1yyzhog3hw3oc4k3scxruckuepce4enqki94nry8kaddqjenyf5hi75yyyrn86yyyyreid94dzrho";
  NodeAddr expected(test_node_id("golden"));
  ASSERT_TRUE(expected.add_direct_address(addr("127.0.0.1:4433")).has_value());
  const auto parsed = NodeAddr::from_ticket(kGolden);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message() << "\nthis build writes " << expected.to_ticket();
  EXPECT_EQ(*parsed, expected);
  EXPECT_EQ(expected.to_ticket(), kGolden);
}

TEST(NodeAddrTicket, ParseIgnoresCaseAndSurroundingWhitespace) {
  const auto a = full_addr();
  std::string upper = a.to_ticket();
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(NodeAddr::from_ticket(upper).value(), a);
  EXPECT_EQ(NodeAddr::parse(" \t" + a.to_ticket() + "\r\n").value(), a);
}

TEST(NodeAddrTicket, AcceptsAddressesInAnyOrder) {
  const auto id = test_node_id("alice");
  const auto body =
      body_with_id(id).u8(0).u8(2).v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 9).v4({127, 0, 0, 1}, 9);
  const auto r = NodeAddr::from_ticket(make_ticket(body.bytes));
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->direct_addresses().size(), 2U);
}

// --- Tickets: malformed, one test per kind of damage ---

TEST(NodeAddrTicket, RejectsEmptyText) { expect_error(NodeAddr::from_ticket("  "), "ticket: empty"); }

TEST(NodeAddrTicket, RejectsTooLongText) {
  expect_ticket_error("p2p1" + std::string(NodeAddr::kTicketLengthMax, 'y'), "too long: 967 characters, max 963");
}

TEST(NodeAddrTicket, RejectsWrongPrefix) {
  expect_error(NodeAddr::from_ticket("iroh1abcdef"),
               "wrong prefix: a ticket starts with \"p2p\", this starts with \"iro\"");
  expect_error(NodeAddr::from_ticket("p2"), "wrong prefix");
}

TEST(NodeAddrTicket, RejectsMissingVersionDigit) {
  expect_ticket_error("p2p", "missing version digit");
  expect_ticket_error("p2pybndrf", "missing version digit");
}

TEST(NodeAddrTicket, RejectsBadCharacterNamingItsPosition) {
  std::string t = full_addr().to_ticket();
  t[20] = '0';  // '0' is not in the z-base-32 alphabet
  expect_ticket_error(t, "bad character '0' at position 20");
  t[20] = '\x01';
  expect_ticket_error(t, "bad character byte 0x01 at position 20");
  expect_ticket_error("p2p1 yy", "bad character ' ' at position 4");
}

TEST(NodeAddrTicket, ReportsEveryCutAsTruncated) {
  const std::string t = full_addr().to_ticket();
  for (std::size_t keep = 4; keep < t.size(); ++keep) {
    SCOPED_TRACE(keep);
    expect_error(NodeAddr::from_ticket(t.substr(0, keep)), "truncated");
  }
}

TEST(NodeAddrTicket, RejectsDataAfterTheEnd) {
  const std::string t = full_addr().to_ticket();
  expect_ticket_error(t + "yyyyyyyy", "unexpected data after the end");
  // A node-id-only ticket fills its last character exactly, so one more makes 5 spare bits.
  const std::string exact = NodeAddr(test_node_id("alice")).to_ticket();
  ASSERT_EQ((exact.size() - 4) * 5 % 8, 0U);
  expect_ticket_error(exact + "y", "stray character");
}

TEST(NodeAddrTicket, RejectsMistypedCharacterByChecksum) {
  std::string t = full_addr().to_ticket();
  t[30] = t[30] == 'y' ? 'b' : 'y';
  expect_ticket_error(t, "checksum mismatch");
}

TEST(NodeAddrTicket, RejectsMistypedVersionDigitByChecksum) {
  std::string t = full_addr().to_ticket();
  t[3] = '2';
  expect_ticket_error(t, "checksum mismatch");
}

TEST(NodeAddrTicket, RejectsStrayBitsInTheLastCharacter) {
  std::string t = full_addr().to_ticket();
  const std::size_t payload_bits = (t.size() - 4) * 5;
  ASSERT_NE(payload_bits % 8, 0U) << "choose a ticket whose last character has spare bits";
  t.back() = '9';  // the last alphabet letter: every bit set
  expect_ticket_error(t, "stray bits");
}

TEST(NodeAddrTicket, RejectsBadChecksum) {
  const auto body = body_with_id(test_node_id("alice")).u8(0).u8(0);
  expect_ticket_error(make_ticket(body.bytes, {.checksum = 0x12345678}), "checksum mismatch");
}

TEST(NodeAddrTicket, RejectsUnknownVersion) {
  const auto body = body_with_id(test_node_id("alice")).u8(0).u8(0);
  expect_ticket_error(make_ticket(body.bytes, {.version = 2}), "unknown version 2 (this build reads version 1)");
  expect_ticket_error(make_ticket(body.bytes, {.version = 0}), "unknown version 0");
}

TEST(NodeAddrTicket, RejectsCorruptLengthField) {
  const auto body = body_with_id(test_node_id("alice")).u8(0).u8(0);
  expect_ticket_error(make_ticket(body.bytes, {.length = 3}), "corrupt length field 3");
  expect_ticket_error(make_ticket(body.bytes, {.length = 0xffff}), "truncated: has 40 of 65535 bytes");
  expect_ticket_error(make_ticket(body.bytes, {.length = 20}),
                      "unexpected data after the end: 40 bytes, the ticket says 20");
}

TEST(NodeAddrTicket, RejectsInvalidNodeId) {
  BodyBuilder b;
  for (int i = 0; i < 32; ++i) b.u8(0xff);  // not a canonical curve point
  b.u8(0).u8(0);
  expect_ticket_error(make_ticket(b.bytes), "ticket: invalid node id");
  BodyBuilder zero;
  for (int i = 0; i < 32; ++i) zero.u8(0);  // a small-order point
  zero.u8(0).u8(0);
  expect_ticket_error(make_ticket(zero.bytes), "ticket: invalid node id");
}

TEST(NodeAddrTicket, RejectsBodyTooShortForTheNodeId) {
  BodyBuilder b;
  b.raw({1, 2, 3});
  expect_ticket_error(make_ticket(b.bytes), "no room for the node id");
}

TEST(NodeAddrTicket, RejectsBodyEndingBeforeItsFields) {
  const auto id = test_node_id("alice");
  expect_ticket_error(make_ticket(body_with_id(id).bytes), "no relay URL length");
  expect_ticket_error(make_ticket(body_with_id(id).u8(10).raw({'h', 't'}).bytes), "relay URL of 10 bytes does not fit");
  expect_ticket_error(make_ticket(body_with_id(id).u8(0).bytes), "no address count");
  expect_ticket_error(make_ticket(body_with_id(id).u8(0).u8(2).v4({1, 2, 3, 4}, 5).bytes),
                      "truncated body in address 2");
  expect_ticket_error(make_ticket(body_with_id(id).u8(0).u8(1).u8(6).raw({1, 2, 3}).bytes),
                      "truncated body in address 1");
}

TEST(NodeAddrTicket, RejectsBadRelayUrl) {
  const auto id = test_node_id("alice");
  expect_ticket_error(make_ticket(body_with_id(id).relay("ftp://relay").u8(0).bytes), "bad relay URL");
  expect_ticket_error(make_ticket(body_with_id(id).relay("https://a b").u8(0).bytes), "bad relay URL");
}

TEST(NodeAddrTicket, RejectsTooManyAddresses) {
  auto b = body_with_id(test_node_id("alice")).u8(0).u8(17);
  for (unsigned port = 1; port <= 17; ++port) b.v4({10, 0, 0, 1}, port);
  expect_ticket_error(make_ticket(b.bytes), "too many addresses: 17, max 16");
}

TEST(NodeAddrTicket, RejectsBadAddresses) {
  const auto id = test_node_id("alice");
  const auto one = [&](const BodyBuilder& tail) {
    auto b = body_with_id(id).u8(0).u8(1);
    b.bytes.insert(b.bytes.end(), tail.bytes.begin(), tail.bytes.end());
    return make_ticket(b.bytes);
  };
  expect_ticket_error(one(BodyBuilder{}.u8(5).raw({1, 2, 3, 4}).u16(5)), "bad address 1: unknown family tag 5");
  expect_ticket_error(one(BodyBuilder{}.v4({1, 2, 3, 4}, 0)), "bad address 1 (1.2.3.4:0): port 0");
  expect_ticket_error(one(BodyBuilder{}.v4({0, 0, 0, 0}, 5)), "unspecified address");
  expect_ticket_error(one(BodyBuilder{}.v4({239, 1, 1, 1}, 5)), "multicast address");
  expect_ticket_error(one(BodyBuilder{}.v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 5)),
                      "unspecified address");
  expect_ticket_error(one(BodyBuilder{}.v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4}, 5)),
                      "IPv4 written as IPv6");
  auto dup = body_with_id(id).u8(0).u8(2).v4({1, 2, 3, 4}, 5).v4({1, 2, 3, 4}, 5);
  expect_ticket_error(make_ticket(dup.bytes), "bad address 2: duplicate 1.2.3.4:5");
}

TEST(NodeAddrTicket, RejectsBytesAfterTheAddresses) {
  const auto b = body_with_id(test_node_id("alice")).u8(0).u8(1).v4({1, 2, 3, 4}, 5).raw({9, 9, 9});
  expect_ticket_error(make_ticket(b.bytes), "unexpected 3 bytes after the addresses");
}

// --- Readable form ---

TEST(NodeAddrReadable, ParsesBareNodeIdInBothEncodings) {
  const auto id = test_node_id("alice");
  EXPECT_EQ(NodeAddr::parse(id.to_string()).value(), NodeAddr(id));
  EXPECT_EQ(NodeAddr::parse(id.to_hex()).value(), NodeAddr(id));
}

TEST(NodeAddrReadable, ParsesAddressesAndFormatsBack) {
  const auto id = test_node_id("alice");
  const auto text = id.to_string() + "@127.0.0.1:4433,[::1]:4433";
  const auto r = NodeAddr::parse(text);
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->direct_addresses().size(), 2U);
  EXPECT_EQ(r->to_string(), text);
  EXPECT_EQ(fmt::format("{}", *r), text);
  // Spaces around addresses are fine, and the order does not matter.
  EXPECT_EQ(NodeAddr::parse(id.to_string() + "@ [::1]:4433 , 127.0.0.1:4433").value(), *r);
}

TEST(NodeAddrReadable, ToStringShowsTheRelay) {
  EXPECT_EQ(full_addr().to_string(),
            test_node_id("alice").to_string() + "@1.2.3.4:5,[2001:db8::1]:443 relay https://relay.example.com/");
}

TEST(NodeAddrReadable, RejectsMalformedText) {
  const auto id = test_node_id("alice").to_string();
  expect_error(NodeAddr::parse(""), "empty");
  expect_error(NodeAddr::parse("hello"), "not a ticket (\"p2p...\") nor a node id: expected 52 z-base-32 or 64 hex");
  expect_error(NodeAddr::parse(id.substr(1) + "@1.2.3.4:5"), "nor a node id");
  expect_error(NodeAddr::parse(id + "@"), "no address after '@'");
  expect_error(NodeAddr::parse(id + "@  "), "no address after '@'");
  expect_error(NodeAddr::parse(id + "@1.2.3.4:5,,[::1]:6"), "empty address 2");
  expect_error(NodeAddr::parse(id + "@1.2.3.4:5,"), "empty address 2");
  expect_error(NodeAddr::parse(id + "@1.2.3.4"), "bad address 1: bad socket address \"1.2.3.4\": missing port");
  expect_error(NodeAddr::parse(id + "@1.2.3.4:5,[::1"), "bad address 2");
  expect_error(NodeAddr::parse(id + "@1.2.3.4:0"), "bad address 1 (1.2.3.4:0): port 0");
  expect_error(NodeAddr::parse(id + "@0.0.0.0:5"), "unspecified address");
  expect_error(NodeAddr::parse(id + "@224.0.0.1:5"), "multicast address");
  expect_error(NodeAddr::parse(id + "@1.2.3.4:5,[::ffff:1.2.3.4]:5"), "duplicate address 2");
  std::string many = id + "@";
  for (int port = 1; port <= 17; ++port) many += fmt::format("{}10.0.0.1:{}", port == 1 ? "" : ",", port);
  expect_error(NodeAddr::parse(many), "too many addresses: more than 16");
  expect_error(NodeAddr::parse(id + "@" + std::string(2000, '1')), "too long");
}

}  // namespace
}  // namespace moosicbox::p2p
