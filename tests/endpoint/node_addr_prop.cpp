// SPDX-License-Identifier: MIT OR Apache-2.0
// node_addr_prop.cpp: properties of NodeAddr tickets: every NodeAddr round-trips; parsing never
// crashes on arbitrary text, ticket-shaped text or well-framed garbage bodies; every single mistyped
// character and every swap of two neighbouring characters is rejected.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "endpoint/ticket_encoder.hpp"
#include "moosicbox/p2p/core/secret_key.hpp"
#include "moosicbox/p2p/endpoint/node_addr.hpp"

namespace moosicbox::p2p {
namespace {

constexpr std::string_view kZBase32Alphabet = "ybndrfg8ejkmcpqxot1uwisza345h769";

NodeId gen_node_id() {
  const auto raw = *rc::gen::arbitrary<std::array<std::uint8_t, 32>>();
  std::array<std::byte, 32> seed{};
  for (std::size_t i = 0; i < 32; ++i) seed[i] = std::byte{raw[i]};
  return SecretKey::from_seed(seed).public_key();
}

// gen_direct_address draws a usable direct address (unicast, specified, port 1-65535).
SocketAddr gen_direct_address() {
  const auto port = *rc::gen::inRange<std::uint32_t>(1, 65536);
  if (*rc::gen::arbitrary<bool>()) {
    auto ip = *rc::gen::arbitrary<std::array<std::uint8_t, 4>>();
    ip[0] = *rc::gen::inRange<std::uint8_t>(1, 224);  // not 0.x (may be unspecified), not multicast
    return SocketAddr::v4(ip, static_cast<std::uint16_t>(port));
  }
  auto ip = *rc::gen::arbitrary<std::array<std::uint8_t, 16>>();
  ip[0] = *rc::gen::inRange<std::uint8_t>(1, 0xff);  // not ::/8 (unspecified, v4-mapped), not ff00::/8
  return SocketAddr::v6(ip, static_cast<std::uint16_t>(port));
}

std::string gen_relay_url() {
  const std::string scheme = *rc::gen::element<std::string>("http://", "https://");
  const auto first = *rc::gen::inRange<char>('a', 'z' + 1);
  const auto max_rest = NodeAddr::kRelayUrlLengthMax - scheme.size() - 1;
  const auto rest_len = *rc::gen::inRange<std::size_t>(0, max_rest + 1);
  const auto rest = *rc::gen::container<std::string>(rest_len, rc::gen::inRange<char>(0x21, 0x7f));
  return scheme + first + rest;
}

NodeAddr gen_node_addr() {
  NodeAddr a(gen_node_id());
  if (*rc::gen::arbitrary<bool>()) RC_ASSERT(a.set_relay_url(gen_relay_url()).has_value());
  const auto count = *rc::gen::inRange<std::size_t>(0, NodeAddr::kDirectAddressCountMax + 1);
  for (std::size_t i = 0; i < count; ++i) RC_ASSERT(a.add_direct_address(gen_direct_address()).has_value());
  return a;
}

// check_parse_result holds for any parse result: an error with the right code, or a NodeAddr whose
// own ticket reads back equal.
void check_parse_result(const P2PResult<NodeAddr>& r) {
  if (!r) {
    RC_ASSERT(r.error().code() == P2PErrc::invalid_node_id);
    RC_ASSERT(!r.error().context().empty());
    return;
  }
  const auto again = NodeAddr::from_ticket(r->to_ticket());
  RC_ASSERT(again.has_value());
  RC_ASSERT(*again == *r);
}

RC_GTEST_PROP(NodeAddrProp, TicketRoundTripsAnyNodeAddr, ()) {
  const auto a = gen_node_addr();
  const auto ticket = a.to_ticket();
  RC_ASSERT(ticket.size() <= NodeAddr::kTicketLengthMax);
  RC_ASSERT(ticket.starts_with("p2p1"));
  const auto back = NodeAddr::from_ticket(ticket);
  RC_ASSERT(back.has_value());
  RC_ASSERT(*back == a);
  RC_ASSERT(NodeAddr::parse(ticket).value() == a);
}

RC_GTEST_PROP(NodeAddrProp, ReadableFormRoundTripsWithoutRelay, ()) {
  auto a = gen_node_addr();
  a.clear_relay_url();
  const auto back = NodeAddr::parse(a.to_string());
  RC_ASSERT(back.has_value());
  RC_ASSERT(*back == a);
}

RC_GTEST_PROP(NodeAddrProp, ParseNeverCrashesOnArbitraryText, (const std::string& text)) {
  check_parse_result(NodeAddr::parse(text));
  check_parse_result(NodeAddr::from_ticket(text));
}

RC_GTEST_PROP(NodeAddrProp, ParseNeverCrashesOnTicketShapedText, ()) {
  const auto version = *rc::gen::inRange<char>('0', '9' + 1);
  const auto len = *rc::gen::inRange<std::size_t>(0, NodeAddr::kTicketLengthMax);
  const auto data = *rc::gen::container<std::string>(len, rc::gen::elementOf(kZBase32Alphabet));
  const auto r = NodeAddr::from_ticket(std::string("p2p") + version + data);
  check_parse_result(r);
}

RC_GTEST_PROP(NodeAddrProp, ParseNeverCrashesOnWellFramedGarbage, (const std::vector<std::uint8_t>& tail)) {
  // A valid checksum carries arbitrary bytes past the envelope checks into the body parser.
  std::vector<std::uint8_t> body;
  if (*rc::gen::arbitrary<bool>()) {
    const auto id = gen_node_id();
    body.assign(id.as_bytes().begin(), id.as_bytes().end());
  }
  body.insert(body.end(), tail.begin(), tail.end());
  if (body.size() > 550) body.resize(550);
  check_parse_result(NodeAddr::from_ticket(test::make_ticket(body)));
}

RC_GTEST_PROP(NodeAddrProp, AnyMistypedCharacterIsRejected, ()) {
  const auto ticket = gen_node_addr().to_ticket();
  const auto pos = *rc::gen::inRange<std::size_t>(3, ticket.size());
  auto damaged = ticket;
  if (pos == 3) {
    damaged[pos] = *rc::gen::suchThat(rc::gen::inRange<char>('0', '9' + 1), [&](char c) { return c != ticket[pos]; });
  } else {
    damaged[pos] = *rc::gen::suchThat(rc::gen::elementOf(kZBase32Alphabet), [&](char c) { return c != ticket[pos]; });
  }
  const auto r = NodeAddr::from_ticket(damaged);
  RC_ASSERT(!r.has_value());
  RC_ASSERT(r.error().code() == P2PErrc::invalid_node_id);
}

RC_GTEST_PROP(NodeAddrProp, AnySwapOfNeighbouringCharactersIsRejected, ()) {
  const auto ticket = gen_node_addr().to_ticket();
  const auto pos = *rc::gen::inRange<std::size_t>(4, ticket.size() - 1);
  RC_PRE(ticket[pos] != ticket[pos + 1]);
  auto swapped = ticket;
  std::swap(swapped[pos], swapped[pos + 1]);
  RC_ASSERT(!NodeAddr::from_ticket(swapped).has_value());
}

}  // namespace
}  // namespace moosicbox::p2p
