// SPDX-License-Identifier: MIT OR Apache-2.0
// protocol_test.cpp: relay frames round-trip; malformed frames fail with messages that name the
// problem; unknown types are told apart; the handshake signature binds key, challenge and Host.
#include "relay/protocol.hpp"

#include <gtest/gtest.h>

namespace moosicbox::p2p::relay::proto {
namespace {

constexpr std::size_t kMax = 64 * 1024;

Bytes encoded(const Frame& f) {
  Bytes out;
  encode(out, f);
  return out;
}

Bytes packets(FrameType t, const RawId& peer, std::initializer_list<std::size_t> sizes) {
  Bytes out;
  begin_packets(out, t, peer);
  std::uint8_t fill = 1;
  for (auto n : sizes) {
    Bytes d(n, std::byte{fill++});
    append_datagram(out, d);
  }
  return out;
}

std::string decode_error(const Bytes& b, std::size_t max = kMax) {
  auto r = decode(b, max);
  if (r) return "decoded";
  return r.error().message();
}

TEST(RelayProtocol, ControlFramesRoundTrip) {
  Challenge c{};
  c[0] = 7;
  c[31] = 9;
  ClientAuth auth{raw_id(test_node_id("a")), {}};
  auth.signature[5] = 42;
  const Frame frames[] = {
      ServerChallenge{1, c},
      auth,
      ServerWelcome{SocketAddr::v4({10, 1, 2, 3}, 4567), 15000, 65536},
      ServerWelcome{SocketAddr::v6_loopback(9), 1, 2},
      Ping{{1, 2, 3, 4, 5, 6, 7, 8}},
      Pong{{8, 7, 6, 5, 4, 3, 2, 1}},
      PeerGone{raw_id(test_node_id("b")), 1},
      Health{1, "degraded: disk"},
      Health{0, ""},
      Restarting{500, 30000},
      StunInfo{{3478}},
      StunInfo{{3478, 3479, 1, 65535}},
  };
  for (const auto& f : frames) {
    const auto b = encoded(f);
    auto d = decode(b, kMax);
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_EQ(*d, f);
  }
}

TEST(RelayProtocol, PacketFramesRoundTripBatched) {
  const auto peer = raw_id(test_node_id("peer"));
  const auto b = packets(FrameType::send_packet, peer, {1200, 1, 1452, 65535 - 3000});
  auto d = decode(b, 128 * 1024);
  ASSERT_TRUE(d) << d.error().message();
  const auto* p = std::get_if<SendPacket>(&*d);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->peer, peer);
  DatagramIterator it(p->datagrams);
  std::vector<std::size_t> sizes;
  for (auto g = it.next(); !g.empty(); g = it.next()) sizes.push_back(g.size());
  EXPECT_EQ(sizes, (std::vector<std::size_t>{1200, 1, 1452, 65535 - 3000}));
  EXPECT_EQ(encoded(*d), b);

  const auto r = packets(FrameType::recv_packet, peer, {3});
  auto dr = decode(r, kMax);
  ASSERT_TRUE(dr);
  EXPECT_TRUE(std::holds_alternative<RecvPacket>(*dr));
}

TEST(RelayProtocol, MalformedFramesFailWithClearMessages) {
  const auto peer = raw_id(test_node_id("peer"));
  EXPECT_EQ(decode_error({}), "Protocol error: relay frame: empty message");

  // Truncated and oversize fixed-size frames.
  auto ping = encoded(Ping{});
  ping.pop_back();
  EXPECT_EQ(decode_error(ping), "Protocol error: relay frame: truncated Ping: body of 7 bytes, expected 8");
  ping.push_back(std::byte{0});
  ping.push_back(std::byte{0});
  EXPECT_EQ(decode_error(ping), "Protocol error: relay frame: oversize Ping: body of 9 bytes, expected 8");
  auto auth = encoded(ClientAuth{});
  auth.resize(40);
  EXPECT_NE(decode_error(auth).find("truncated ClientAuth"), std::string::npos);
  auto gone = encoded(PeerGone{peer, 0});
  gone.back() = std::byte{9};
  EXPECT_NE(decode_error(gone).find("reason 9"), std::string::npos);

  // Oversize message.
  const auto big = packets(FrameType::send_packet, peer, {2000});
  EXPECT_EQ(decode_error(big, 1024), "Protocol error: relay frame: oversize: 2035 bytes exceeds max 1024");

  // Empty SendPacket, zero-length and overrunning datagrams, a cut length.
  Bytes empty;
  begin_packets(empty, FrameType::send_packet, peer);
  EXPECT_EQ(decode_error(empty), "Protocol error: relay frame: empty SendPacket: no datagram");
  Bytes header_only(10, std::byte{0x10});
  EXPECT_NE(decode_error(header_only).find("truncated SendPacket: 10 bytes, the header needs 33"), std::string::npos);
  Bytes zero = empty;
  zero.push_back(std::byte{0});
  zero.push_back(std::byte{0});
  EXPECT_EQ(decode_error(zero), "Protocol error: relay frame: SendPacket: zero-length datagram at offset 33");
  Bytes over = packets(FrameType::send_packet, peer, {200 - 35});
  over[33] = std::byte{0x05};
  over[34] = std::byte{0x78};  // 1400
  EXPECT_EQ(decode_error(over),
            "Protocol error: relay frame: truncated SendPacket: datagram of 1400 bytes at offset 33 overruns the "
            "200-byte frame");
  Bytes cut = packets(FrameType::recv_packet, peer, {5});
  cut.push_back(std::byte{0});
  EXPECT_NE(decode_error(cut).find("datagram length at offset 40 cut"), std::string::npos);

  // Health message too long, bad address family.
  Bytes health = encoded(Health{0, ""});
  health.resize(2 + 256, std::byte{'x'});
  EXPECT_NE(decode_error(health).find("exceeds max 255"), std::string::npos);
  auto welcome = encoded(ServerWelcome{SocketAddr::v4_loopback(1), 1, 1});
  welcome[1] = std::byte{5};
  EXPECT_NE(decode_error(welcome).find("address family 5"), std::string::npos);
  welcome[1] = std::byte{6};
  EXPECT_NE(decode_error(welcome).find("truncated ServerWelcome"), std::string::npos);
}

TEST(RelayProtocol, UnknownTypeIsADistinctError) {
  const Bytes unknown{std::byte{0x7e}, std::byte{1}, std::byte{2}};
  auto r = decode(unknown, kMax);
  ASSERT_FALSE(r);
  EXPECT_TRUE(is_unknown_type(r.error()));
  EXPECT_EQ(r.error().message(), "Protocol error: relay frame: unknown type 0x7e (3 bytes)");
  auto malformed = decode(Bytes{std::byte{0x20}}, kMax);
  ASSERT_FALSE(malformed);
  EXPECT_FALSE(is_unknown_type(malformed.error()));
}

TEST(RelayProtocol, StunInfoWireFormatAndMalformedInput) {
  EXPECT_EQ(encoded(StunInfo{{3478, 3479}}),
            (Bytes{std::byte{0x33}, std::byte{2}, std::byte{0x0d}, std::byte{0x96}, std::byte{0x0d}, std::byte{0x97}}));
  EXPECT_EQ(decode_error(Bytes{std::byte{0x33}}), "Protocol error: relay frame: truncated StunInfo: no count");
  EXPECT_EQ(decode_error(Bytes{std::byte{0x33}, std::byte{0}}),
            "Protocol error: relay frame: StunInfo: 0 ports (expected 1..4)");
  Bytes five{std::byte{0x33}, std::byte{5}};
  five.resize(2 + 10, std::byte{1});
  EXPECT_EQ(decode_error(five), "Protocol error: relay frame: StunInfo: 5 ports (expected 1..4)");
  auto b = encoded(StunInfo{{3478, 3479}});
  b.pop_back();
  EXPECT_EQ(decode_error(b), "Protocol error: relay frame: truncated StunInfo: body of 4 bytes, expected 5");
  b.push_back(std::byte{0x97});
  b.push_back(std::byte{0});
  EXPECT_EQ(decode_error(b), "Protocol error: relay frame: oversize StunInfo: body of 6 bytes, expected 5");
  const Bytes zero{std::byte{0x33}, std::byte{1}, std::byte{0}, std::byte{0}};
  EXPECT_EQ(decode_error(zero), "Protocol error: relay frame: StunInfo: port 0");
  // A malformed StunInfo is not an unknown type (older clients ignore the type, newer ones check it).
  auto r = decode(zero, kMax);
  ASSERT_FALSE(r);
  EXPECT_FALSE(is_unknown_type(r.error()));
}

TEST(RelayProtocol, StunHeaderFormatsAndParses) {
  const std::vector<std::uint16_t> ports{3478, 3479};
  EXPECT_EQ(format_stun_header(ports), "3478,3479");
  EXPECT_EQ(parse_stun_header("3478,3479"), ports);
  EXPECT_EQ(parse_stun_header(" 3478 , 3479"), ports);
  EXPECT_EQ(parse_stun_header("3478"), (std::vector<std::uint16_t>{3478}));
  EXPECT_EQ(parse_stun_header("1,2,3,4,5"), (std::vector<std::uint16_t>{1, 2, 3, 4}));
  for (const char* bad : {"", ",", "0", "65536", "3478,x", "-1", "34 78", "999999", "3478,,3479"}) {
    EXPECT_TRUE(parse_stun_header(bad).empty()) << bad;
  }
}

TEST(RelayHandshake, VerifiesAGoodSignature) {
  const auto key = test_secret_key("alice");
  Challenge c{};
  c.fill(3);
  auto auth = make_auth(key, "relay.example.org", c);
  ASSERT_TRUE(auth);
  auto who = verify_auth(*auth, "relay.example.org", c);
  ASSERT_TRUE(who) << who.error().message();
  EXPECT_EQ(*who, key.public_key());
  // The signed message is context || len(host) || host || challenge.
  auto m = auth_message("h", c);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->size(), kAuthContext.size() + 1 + 1 + kChallengeSize);
  EXPECT_EQ((*m)[27], std::byte{0});
  EXPECT_EQ((*m)[28], std::byte{1});
}

TEST(RelayHandshake, RefusesBadSignatureWrongKeyReplayAndWrongHost) {
  const auto alice = test_secret_key("alice");
  const auto mallory = test_secret_key("mallory");
  Challenge c{};
  c.fill(3);
  auto good = make_auth(alice, "relay-a", c);
  ASSERT_TRUE(good);

  auto bad = *good;
  bad.signature[10] ^= 1;
  auto r1 = verify_auth(bad, "relay-a", c);
  ASSERT_FALSE(r1);
  EXPECT_EQ(r1.error().code(), P2PErrc::authentication_failed);
  EXPECT_EQ(r1.error().context(), "bad signature");

  // Signed by another key for the claimed id.
  auto forged = make_auth(mallory, "relay-a", c);
  ASSERT_TRUE(forged);
  forged->node_id = raw_id(alice.public_key());
  EXPECT_FALSE(verify_auth(*forged, "relay-a", c));

  // Replay: a signature over an old challenge.
  Challenge fresh{};
  fresh.fill(4);
  EXPECT_FALSE(verify_auth(*good, "relay-a", fresh));

  // Forwarded from another relay: the Host differs.
  EXPECT_FALSE(verify_auth(*good, "relay-b", c));

  // Not a curve point.
  auto garbage = *good;
  garbage.node_id.fill(0xff);
  auto r2 = verify_auth(garbage, "relay-a", c);
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().context(), "invalid node id");

  EXPECT_FALSE(make_auth(alice, "", c));
  EXPECT_FALSE(make_auth(alice, std::string(256, 'h'), c));
}

}  // namespace
}  // namespace moosicbox::p2p::relay::proto
