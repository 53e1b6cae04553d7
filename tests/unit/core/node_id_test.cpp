// SPDX-License-Identifier: MIT OR Apache-2.0
// node_id_test.cpp: NodeId validation, text forms and malformed input.
#include "moosicbox/p2p/core/node_id.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <unordered_set>

#include "moosicbox/p2p/core/secret_key.hpp"

namespace moosicbox::p2p {
namespace {

NodeId alice() { return test_node_id("alice"); }

TEST(NodeId, RoundTripsThroughZBase32AndHex) {
  const auto id = alice();
  const auto z = id.to_string();
  const auto h = id.to_hex();
  EXPECT_EQ(z.size(), NodeId::kZBase32Length);
  EXPECT_EQ(h.size(), NodeId::kHexLength);
  ASSERT_TRUE(NodeId::parse(z).has_value());
  ASSERT_TRUE(NodeId::parse(h).has_value());
  EXPECT_EQ(*NodeId::parse(z), id);
  EXPECT_EQ(*NodeId::parse(h), id);
}

TEST(NodeId, ParseIgnoresCaseAndSurroundingWhitespace) {
  const auto id = alice();
  std::string upper = id.to_hex();
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(*NodeId::parse("  " + upper + "\n"), id);
}

TEST(NodeId, FmtShortIsFirstFiveBytesInHex) {
  const auto id = alice();
  EXPECT_EQ(id.fmt_short(), id.to_hex().substr(0, 10));
  EXPECT_EQ(fmt::format("{:s}", id), id.fmt_short());
  EXPECT_EQ(fmt::format("{}", id), id.to_string());
}

TEST(NodeId, RejectsWrongLengthWithPreciseMessage) {
  auto r = NodeId::parse("abc");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), P2PErrc::invalid_node_id);
  EXPECT_EQ(r.error().message(), "Invalid node ID: expected 52 z-base-32 or 64 hex characters, got 3");
  EXPECT_FALSE(NodeId::parse(""));
  EXPECT_FALSE(NodeId::parse(alice().to_hex() + "0"));
}

TEST(NodeId, RejectsBadHexCharacterNamingPosition) {
  auto text = alice().to_hex();
  text[7] = 'g';
  auto r = NodeId::parse(text);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "Invalid node ID: bad hex character 'g' at position 7");
}

TEST(NodeId, RejectsBadZBase32Character) {
  auto text = alice().to_string();
  text[3] = 'l';  // not in the z-base-32 alphabet
  auto r = NodeId::parse(text);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "Invalid node ID: bad z-base-32 character 'l' at position 3");
  text[3] = '\x01';
  EXPECT_NE(NodeId::parse(text).error().message().find("byte 0x01"), std::string::npos);
}

TEST(NodeId, RejectsNonCanonicalZBase32TrailingBits) {
  auto text = alice().to_string();
  // The last character carries 1 data bit and 4 padding bits; setting a padding bit must fail.
  const std::string_view alphabet = "ybndrfg8ejkmcpqxot1uwisza345h769";
  const auto v = alphabet.find(text.back());
  text.back() = alphabet[v ^ 1U];
  auto r = NodeId::parse(text);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("non-canonical"), std::string::npos);
}

TEST(NodeId, RejectsInvalidCurvePoints) {
  std::array<std::uint8_t, 32> zeros{};
  auto r = NodeId::from_bytes(std::span<const std::uint8_t>(zeros));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "Invalid node ID: not a valid ed25519 public key");
  // The identity point (small order) and a y >= p encoding are both refused.
  std::array<std::uint8_t, 32> identity{};
  identity[0] = 1;
  EXPECT_FALSE(NodeId::from_bytes(std::span<const std::uint8_t>(identity)));
  std::array<std::uint8_t, 32> all_ff{};
  all_ff.fill(0xff);
  EXPECT_FALSE(NodeId::from_bytes(std::span<const std::uint8_t>(all_ff)));
  EXPECT_FALSE(NodeId::parse(std::string(64, 'f')));
}

TEST(NodeId, RejectsWrongByteLength) {
  std::array<std::uint8_t, 31> short_key{};
  auto r = NodeId::from_bytes(std::span<const std::uint8_t>(short_key));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "Invalid node ID: expected 32 bytes, got 31");
}

TEST(NodeId, IsOrderedHashableAndUsableAsKey) {
  const auto a = test_node_id("a");
  const auto b = test_node_id("b");
  EXPECT_NE(a, b);
  EXPECT_TRUE((a < b) != (b < a));
  std::map<NodeId, int> ordered{{a, 1}, {b, 2}};
  std::unordered_set<NodeId> hashed{a, b, a};
  EXPECT_EQ(ordered.at(b), 2);
  EXPECT_EQ(hashed.size(), 2U);
}

TEST(TestNodeId, IsDeterministicPerName) {
  EXPECT_EQ(test_node_id("alice"), test_node_id("alice"));
  std::set<NodeId> ids;
  for (int i = 0; i < 100; ++i) ids.insert(test_node_id("node" + std::to_string(i)));
  EXPECT_EQ(ids.size(), 100U);
  EXPECT_EQ(test_secret_key("alice").public_key(), test_node_id("alice"));
}

}  // namespace
}  // namespace moosicbox::p2p
