// SPDX-License-Identifier: MIT OR Apache-2.0
// node_id_prop.cpp: properties of NodeId text forms, test ids and signatures.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "moosicbox/p2p/core/node_id.hpp"
#include "moosicbox/p2p/core/secret_key.hpp"

namespace moosicbox::p2p {
namespace {

SecretKey key_from(const std::array<std::uint8_t, 32>& raw) {
  std::array<std::byte, 32> seed{};
  for (std::size_t i = 0; i < 32; ++i) seed[i] = std::byte{raw[i]};
  return SecretKey::from_seed(seed);
}

RC_GTEST_PROP(NodeIdProp, TextFormsRoundTrip, (std::array<std::uint8_t, 32> seed)) {
  const auto id = key_from(seed).public_key();
  RC_ASSERT(*NodeId::parse(id.to_string()) == id);
  RC_ASSERT(*NodeId::parse(id.to_hex()) == id);
  RC_ASSERT(id.fmt_short().size() == 10U);
  RC_ASSERT(id.to_hex().starts_with(id.fmt_short()));
}

RC_GTEST_PROP(NodeIdProp, ParseNeverCrashesOnArbitraryText, (std::string text)) {
  auto r = NodeId::parse(text);
  if (r)
    RC_ASSERT(NodeId::parse(r->to_string()).has_value());
  else
    RC_ASSERT(r.error().code() == P2PErrc::invalid_node_id);
}

RC_GTEST_PROP(NodeIdProp, ParseOfRightLengthGarbageFailsCleanly, ()) {
  const auto len = *rc::gen::element<std::size_t>(52, 64);
  const auto text = *rc::gen::container<std::string>(len, rc::gen::inRange<char>(0x20, 0x7f));
  auto r = NodeId::parse(text);
  if (!r) RC_ASSERT(r.error().code() == P2PErrc::invalid_node_id);
}

RC_GTEST_PROP(TestNodeIdProp, SameNameSameIdDifferentNamesDifferentIds, (std::string a, std::string b)) {
  RC_ASSERT(test_node_id(a) == test_node_id(a));
  if (a != b) RC_ASSERT(test_node_id(a) != test_node_id(b));
}

RC_GTEST_PROP(SignatureProp, VerifiesOnlyWithTheRightKey,
              (std::array<std::uint8_t, 32> s1, std::array<std::uint8_t, 32> s2, std::string msg)) {
  RC_PRE(s1 != s2);
  const auto k1 = key_from(s1);
  const auto k2 = key_from(s2);
  const auto sig = k1.sign(as_bytes(msg));
  RC_ASSERT(verify(k1.public_key(), as_bytes(msg), sig));
  RC_ASSERT(!verify(k2.public_key(), as_bytes(msg), sig));
}

}  // namespace
}  // namespace moosicbox::p2p
