// SPDX-License-Identifier: MIT OR Apache-2.0
// disco_test.cpp: the path-discovery codec: message round trips and the pinned plaintext layout,
// every malformed plaintext, the packet layout, every refused packet (short, bad magic, unknown
// version, oversize, invalid sender, forged, replayed, own), the replay window, the peer table
// bound, and a seeded mutation loop. Deterministic: the random source is a counter or a seeded Rng.
#include "endpoint/magicsock/disco.hpp"

#include <gtest/gtest.h>

#include <sodium.h>

#include <algorithm>
#include <memory>
#include <string>

#include "moosicbox/p2p/env/rng.hpp"

namespace moosicbox::p2p::magicsock::disco {
namespace {

// counter_random fills buffers from a byte counter: deterministic and never repeating a nonce tail
// in a short test.
Codec::RandomFn counter_random() {
  auto next = std::make_shared<std::uint8_t>(0);
  return [next](std::span<std::byte> out) {
    for (auto& b : out) b = std::byte{(*next)++};
  };
}

Codec make_codec(std::string_view name, std::uint64_t counter_start = 1000, std::size_t peers_max = 4096) {
  return Codec(test_secret_key(name), counter_start, counter_random(), peers_max);
}

TxId tx_of(std::uint8_t first) {
  TxId t{};
  for (std::size_t i = 0; i < t.size(); ++i) t[i] = std::byte{static_cast<std::uint8_t>(first + i)};
  return t;
}

SocketAddr addr(std::string_view text) {
  auto a = SocketAddr::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(SocketAddr{});
}

CallMeMaybe full_call_me_maybe() {
  CallMeMaybe m;
  for (std::size_t i = 0; i < kCandidatesMax; ++i) {
    m.candidates.push_back(i % 2 == 0 ? addr(fmt::format("10.0.{}.1:{}", i, 4000 + i))
                                      : addr(fmt::format("[2001:db8::{:x}]:{}", i, 5000 + i)));
  }
  return m;
}

std::vector<Message> sample_messages() {
  return {Ping{tx_of(1)},
          Pong{tx_of(2), addr("192.0.2.7:41641")},
          Pong{tx_of(3), addr("[2001:db8::7]:41641")},
          Pong{tx_of(4), SocketAddr::v6_any()},
          CallMeMaybe{},
          full_call_me_maybe()};
}

Bytes bytes_of(std::initializer_list<int> v) {
  Bytes out;
  for (const int b : v) out.push_back(static_cast<std::byte>(b));
  return out;
}

// x25519_keys derives the X25519 pair of test node `name` as the specification says.
void x25519_keys(std::string_view name, std::array<unsigned char, 32>& pk, std::array<unsigned char, 32>& sk) {
  const auto key = test_secret_key(name);
  std::array<unsigned char, crypto_sign_PUBLICKEYBYTES> ed_pk{};
  std::array<unsigned char, crypto_sign_SECRETKEYBYTES> ed_sk{};
  ASSERT_EQ(
      crypto_sign_seed_keypair(ed_pk.data(), ed_sk.data(), reinterpret_cast<const unsigned char*>(key.seed().data())),
      0);
  ASSERT_EQ(crypto_sign_ed25519_pk_to_curve25519(pk.data(), ed_pk.data()), 0);
  ASSERT_EQ(crypto_sign_ed25519_sk_to_curve25519(sk.data(), ed_sk.data()), 0);
}

// spec_nonce is the box nonce of the specification: BLAKE2b-192(header (62 bytes) | recipient id).
std::array<unsigned char, kNonceSize> spec_nonce(const Bytes& packet, const NodeId& to) {
  Bytes input(packet.begin(), packet.begin() + static_cast<std::ptrdiff_t>(kHeaderSize));
  for (const auto b : to.as_bytes()) input.push_back(std::byte{b});
  std::array<unsigned char, kNonceSize> out{};
  crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(input.data()), input.size(),
                     nullptr, 0);
  return out;
}

// seal_raw builds a packet from the specification alone (crypto_box_easy, no Codec): sender
// `from` (a test key name), counter `counter`, random part all 0xaa, any plaintext.
Bytes seal_raw(std::string_view from, const NodeId& to, std::uint64_t counter, const Bytes& plaintext) {
  std::array<unsigned char, 32> pk{};
  std::array<unsigned char, 32> sk{};
  x25519_keys(from, pk, sk);
  std::array<unsigned char, 32> to_pk{};
  EXPECT_EQ(crypto_sign_ed25519_pk_to_curve25519(to_pk.data(), to.as_bytes().data()), 0);
  Bytes out(kMagic.begin(), kMagic.end());
  out.push_back(std::byte{1});
  const auto from_id = test_node_id(from);
  for (const auto b : from_id.as_bytes()) out.push_back(std::byte{b});
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<std::byte>(counter >> (8 * i)));
  out.resize(kHeaderSize, std::byte{0xaa});
  out.resize(kHeaderSize + kTagSize + plaintext.size());
  EXPECT_EQ(crypto_box_easy(reinterpret_cast<unsigned char*>(out.data() + kHeaderSize),
                            reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(),
                            spec_nonce(out, to).data(), to_pk.data(), sk.data()),
            0);
  return out;
}

// open_raw opens a packet for test node `to` from the specification alone; empty when it fails.
Bytes open_raw(std::string_view to, const Bytes& packet) {
  std::array<unsigned char, 32> pk{};
  std::array<unsigned char, 32> sk{};
  x25519_keys(to, pk, sk);
  std::array<unsigned char, 32> from_pk{};
  if (packet.size() < kHeaderSize + kTagSize) return {};
  if (crypto_sign_ed25519_pk_to_curve25519(from_pk.data(), reinterpret_cast<const unsigned char*>(packet.data() + 6)) !=
      0) {
    return {};
  }
  Bytes plain(packet.size() - kHeaderSize - kTagSize);
  if (crypto_box_open_easy(reinterpret_cast<unsigned char*>(plain.data()),
                           reinterpret_cast<const unsigned char*>(packet.data() + kHeaderSize),
                           packet.size() - kHeaderSize, spec_nonce(packet, test_node_id(to)).data(), from_pk.data(),
                           sk.data()) != 0) {
    return {};
  }
  return plain;
}

void expect_decode_error(const Bytes& plaintext, std::string_view needle) {
  const auto r = decode_plaintext(plaintext);
  ASSERT_FALSE(r.has_value()) << "decoded " << plaintext.size() << " bytes";
  EXPECT_EQ(r.error().code(), P2PErrc::protocol_error);
  EXPECT_NE(r.error().message().find(needle), std::string::npos) << r.error().message();
}

// --- Plaintext ---

TEST(DiscoPlaintext, RoundTripsEveryMessage) {
  for (const auto& m : sample_messages()) {
    const auto encoded = encode_plaintext(m);
    const auto decoded = decode_plaintext(encoded);
    ASSERT_TRUE(decoded.has_value()) << decoded.error().message();
    EXPECT_EQ(*decoded, m);
  }
}

TEST(DiscoPlaintext, LayoutIsPinned) {
  Bytes ping = bytes_of({0x01});
  for (int i = 1; i <= 12; ++i) ping.push_back(static_cast<std::byte>(i));
  EXPECT_EQ(encode_plaintext(Ping{tx_of(1)}), ping);

  Bytes pong = bytes_of({0x02});
  for (int i = 1; i <= 12; ++i) pong.push_back(static_cast<std::byte>(i));
  const Bytes pong_addr = bytes_of({4, 192, 0, 2, 7, 0xa2, 0xa9});
  pong.insert(pong.end(), pong_addr.begin(), pong_addr.end());
  EXPECT_EQ(encode_plaintext(Pong{tx_of(1), addr("192.0.2.7:41641")}), pong);

  const Bytes cmm = encode_plaintext(CallMeMaybe{{addr("[::1]:258")}});
  EXPECT_EQ(cmm, bytes_of({3, 1, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2}));
  EXPECT_EQ(encode_plaintext(CallMeMaybe{}), bytes_of({3, 0}));
}

TEST(DiscoPlaintext, PongDropsTheScopeId) {
  const auto scoped = SocketAddr::v6({0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 7, 3);
  const auto decoded = decode_plaintext(encode_plaintext(Pong{tx_of(1), scoped}));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(std::get<Pong>(*decoded).src, scoped.without_scope());
}

TEST(DiscoPlaintext, RefusesEmpty) { expect_decode_error({}, "empty"); }

TEST(DiscoPlaintext, RefusesUnknownType) {
  for (const int t : {0x00, 0x04, 0x7f, 0xff}) {
    Bytes p = bytes_of({t});
    p.resize(13);
    expect_decode_error(p, fmt::format("unknown message type 0x{:02x}", t));
  }
}

TEST(DiscoPlaintext, RefusesTruncationAtEveryLength) {
  for (const auto& m : sample_messages()) {
    const auto encoded = encode_plaintext(m);
    for (std::size_t n = 1; n < encoded.size(); ++n) {
      SCOPED_TRACE(fmt::format("type {} cut to {} of {}", std::to_integer<int>(encoded[0]), n, encoded.size()));
      expect_decode_error(Bytes(encoded.begin(), encoded.begin() + static_cast<std::ptrdiff_t>(n)), "truncated");
    }
  }
}

TEST(DiscoPlaintext, RefusesTrailingBytes) {
  for (const auto& m : sample_messages()) {
    auto encoded = encode_plaintext(m);
    encoded.push_back(std::byte{0});
    expect_decode_error(encoded, "1 trailing bytes");
  }
}

TEST(DiscoPlaintext, RefusesBadFamily) {
  for (const int family : {0, 5, 46, 255}) {
    auto pong = encode_plaintext(Pong{tx_of(1), addr("192.0.2.7:1")});
    pong[13] = static_cast<std::byte>(family);
    expect_decode_error(pong, fmt::format("bad address family {}", family));

    auto cmm = encode_plaintext(CallMeMaybe{{addr("192.0.2.7:1"), addr("192.0.2.8:1")}});
    cmm[2 + 7] = static_cast<std::byte>(family);  // the second candidate
    expect_decode_error(cmm, fmt::format("bad address family {}", family));
  }
}

TEST(DiscoPlaintext, RefusesMoreThanSixteenCandidates) {
  auto m = full_call_me_maybe();
  m.candidates.push_back(addr("10.9.9.9:9"));
  ASSERT_EQ(m.candidates.size(), kCandidatesMax + 1);
  expect_decode_error(encode_plaintext(m), "too many candidates: 17 exceeds 16");
  // The count alone is refused, before any address is read.
  expect_decode_error(bytes_of({3, 17}), "too many candidates");
  expect_decode_error(bytes_of({3, 255}), "too many candidates");
}

TEST(DiscoPlaintext, RefusesUnspecifiedCandidates) {
  for (const auto* text : {"0.0.0.0:5", "[::]:5", "192.0.2.1:0", "[2001:db8::1]:0"}) {
    SCOPED_TRACE(text);
    expect_decode_error(encode_plaintext(CallMeMaybe{{addr("192.0.2.9:9"), addr(text)}}), "unspecified candidate");
  }
}

// --- Packets ---

class DiscoCodec : public ::testing::Test {
 protected:
  Codec alice = make_codec("alice", 1000);
  Codec bob = make_codec("bob", 5);
  NodeId alice_id = test_node_id("alice");
  NodeId bob_id = test_node_id("bob");

  Bytes seal_to_bob(const Message& m = Ping{tx_of(9)}) {
    auto p = alice.seal(bob_id, m);
    EXPECT_TRUE(p.has_value()) << p.error().message();
    return p.value_or(Bytes{});
  }

  static void expect_refused(const P2PResult<Opened>& r, P2PErrc code, std::string_view needle) {
    ASSERT_FALSE(r.has_value()) << "opened";
    EXPECT_EQ(r.error().code(), code) << r.error().message();
    EXPECT_NE(r.error().message().find(needle), std::string::npos) << r.error().message();
  }
};

TEST_F(DiscoCodec, SealsAndOpensEveryMessage) {
  std::uint64_t n = 0;
  for (const auto& m : sample_messages()) {
    const auto packet = seal_to_bob(m);
    EXPECT_TRUE(looks_like_disco(packet));
    const auto opened = bob.open(packet);
    ASSERT_TRUE(opened.has_value()) << opened.error().message();
    EXPECT_EQ(opened->from, alice_id);
    EXPECT_EQ(opened->message, m);
    ++n;
  }
  EXPECT_EQ(alice.stats().sealed, n);
  EXPECT_EQ(bob.stats().opened, n);
  EXPECT_EQ(bob.stats().malformed + bob.stats().forged + bob.stats().replayed + bob.stats().own, 0U);
  // The answer goes the other way with the keys cached on both sides.
  const auto back = bob.seal(alice_id, Pong{tx_of(9), addr("198.51.100.1:7")});
  ASSERT_TRUE(back.has_value());
  const auto opened = alice.open(*back);
  ASSERT_TRUE(opened.has_value()) << opened.error().message();
  EXPECT_EQ(opened->from, bob_id);
}

TEST_F(DiscoCodec, PacketLayout) {
  const auto plaintext = encode_plaintext(Ping{tx_of(9)});
  const auto p0 = seal_to_bob();
  const auto p1 = seal_to_bob();
  ASSERT_EQ(p0.size(), kHeaderSize + kTagSize + plaintext.size());
  EXPECT_EQ(kHeaderSize, 62U);
  EXPECT_TRUE(std::equal(kMagic.begin(), kMagic.end(), p0.begin()));
  EXPECT_EQ(p0[0], std::byte{0x2d});
  EXPECT_EQ(std::to_integer<int>(p0[0]) & 0xc0, 0);  // never a QUIC v1 packet (fixed bit 0x40 clear)
  EXPECT_EQ(p0[5], std::byte{kVersion});
  EXPECT_TRUE(std::equal(alice_id.as_bytes().begin(), alice_id.as_bytes().end(),
                         reinterpret_cast<const std::uint8_t*>(p0.data()) + 6));
  // The nonce counter: big-endian, starting at counter_start (1000 = 0x3e8), then one more.
  EXPECT_EQ(Bytes(p0.begin() + 38, p0.begin() + 46), bytes_of({0, 0, 0, 0, 0, 0, 0x03, 0xe8}));
  EXPECT_EQ(Bytes(p1.begin() + 38, p1.begin() + 46), bytes_of({0, 0, 0, 0, 0, 0, 0x03, 0xe9}));
  // Then 16 bytes from the random source (the counter source: 0, 1, ..., then 16, 17, ...).
  EXPECT_EQ(p0[46], std::byte{0});
  EXPECT_EQ(p0[61], std::byte{15});
  EXPECT_EQ(p1[46], std::byte{16});
  // The largest packet fits the limit.
  auto big = full_call_me_maybe();
  for (auto& a : big.candidates) a = addr("[2001:db8::1]:1");
  EXPECT_LE(seal_to_bob(big).size(), kPacketSizeMax);
}

TEST_F(DiscoCodec, LooksLikeDisco) {
  EXPECT_FALSE(looks_like_disco({}));
  EXPECT_FALSE(looks_like_disco(Bytes(kMagic.begin(), kMagic.end() - 1)));
  EXPECT_TRUE(looks_like_disco(Bytes(kMagic.begin(), kMagic.end())));
  EXPECT_FALSE(looks_like_disco(bytes_of({0xc0, 'D', 'S', 'C', 'O'})));            // a QUIC long header
  EXPECT_FALSE(looks_like_disco(bytes_of({0x00, 0x01, 0x00, 0x00, 0x21, 0x12})));  // a STUN request
}

TEST_F(DiscoCodec, SealRefusesWhatNoReceiverAccepts) {
  auto many = full_call_me_maybe();
  many.candidates.push_back(addr("10.9.9.9:9"));
  const auto r = alice.seal(bob_id, many);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), P2PErrc::protocol_error);
  EXPECT_NE(r.error().message().find("exceeds 16"), std::string::npos) << r.error().message();
  const auto u = alice.seal(bob_id, CallMeMaybe{{addr("192.0.2.1:0")}});
  ASSERT_FALSE(u.has_value());
  EXPECT_NE(u.error().message().find("unspecified candidate"), std::string::npos) << u.error().message();
  EXPECT_EQ(alice.stats().sealed, 0U);
}

TEST_F(DiscoCodec, RefusesTruncationAtEveryLength) {
  const auto packet = seal_to_bob(full_call_me_maybe());
  for (std::size_t n = 0; n < packet.size(); ++n) {
    SCOPED_TRACE(n);
    const auto r = bob.open(ByteView(packet.data(), n));
    ASSERT_FALSE(r.has_value());
    if (n < kHeaderSize + kTagSize) {
      EXPECT_EQ(r.error().code(), P2PErrc::protocol_error);
      EXPECT_NE(r.error().message().find("short packet"), std::string::npos) << r.error().message();
    } else {
      EXPECT_EQ(r.error().code(), P2PErrc::authentication_failed);  // the tag does not match
    }
  }
  EXPECT_EQ(bob.stats().malformed, kHeaderSize + kTagSize);
  EXPECT_EQ(bob.stats().forged, packet.size() - kHeaderSize - kTagSize);
  EXPECT_TRUE(bob.open(packet).has_value());  // refusals left no state behind
}

TEST_F(DiscoCodec, RefusesBadMagic) {
  const auto packet = seal_to_bob();
  for (std::size_t i = 0; i < kMagic.size(); ++i) {
    auto bad = packet;
    bad[i] ^= std::byte{0x20};
    EXPECT_FALSE(looks_like_disco(bad));
    expect_refused(bob.open(bad), P2PErrc::protocol_error, "bad magic");
  }
  EXPECT_EQ(bob.stats().malformed, kMagic.size());
}

TEST_F(DiscoCodec, RefusesUnknownVersionNamingIt) {
  const auto packet = seal_to_bob();
  for (const int v : {0, 2, 255}) {
    auto bad = packet;
    bad[5] = static_cast<std::byte>(v);
    expect_refused(bob.open(bad), P2PErrc::protocol_error,
                   fmt::format("unsupported version {} (this node speaks version 1)", v));
  }
  EXPECT_EQ(bob.stats().malformed, 3U);
}

TEST_F(DiscoCodec, RefusesOversizePackets) {
  auto packet = seal_to_bob();
  packet.resize(kPacketSizeMax + 1);
  expect_refused(bob.open(packet), P2PErrc::protocol_error, "513 bytes exceeds 512");
  packet.resize(64 * 1024);
  expect_refused(bob.open(packet), P2PErrc::protocol_error, "exceeds 512");
  EXPECT_EQ(bob.stats().malformed, 2U);
  // At the limit the size is fine; the box is what fails.
  packet.resize(kPacketSizeMax);
  expect_refused(bob.open(packet), P2PErrc::authentication_failed, "does not open");
  EXPECT_EQ(bob.stats().forged, 1U);
}

TEST_F(DiscoCodec, RefusesAnInvalidSenderId) {
  const std::array<std::uint8_t, 32> zero{};  // a small-order point
  ASSERT_FALSE(NodeId::from_bytes(std::span<const std::uint8_t>(zero)).has_value());
  auto packet = seal_to_bob();
  std::fill(packet.begin() + 6, packet.begin() + 38, std::byte{0});
  expect_refused(bob.open(packet), P2PErrc::authentication_failed, "invalid sender id");
  EXPECT_EQ(bob.stats().forged, 1U);
}

TEST_F(DiscoCodec, RefusesEveryFlippedBit) {
  const auto packet = seal_to_bob(Pong{tx_of(1), addr("192.0.2.7:41641")});
  std::uint64_t flips = 0;
  for (std::size_t i = kMagic.size() + 1; i < packet.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      auto bad = packet;
      bad[i] ^= static_cast<std::byte>(1 << bit);
      SCOPED_TRACE(fmt::format("byte {} bit {}", i, bit));
      const auto r = bob.open(bad);
      ASSERT_FALSE(r.has_value());
      EXPECT_EQ(r.error().code(), P2PErrc::authentication_failed) << r.error().message();
      ++flips;
    }
  }
  EXPECT_EQ(bob.stats().forged, flips);
  EXPECT_EQ(bob.stats().opened, 0U);
  EXPECT_TRUE(bob.open(packet).has_value());
}

TEST_F(DiscoCodec, RefusesAPacketSealedForAnotherNode) {
  auto carol = make_codec("carol");
  const auto to_carol = alice.seal(test_node_id("carol"), Ping{tx_of(1)});
  ASSERT_TRUE(to_carol.has_value());
  expect_refused(bob.open(*to_carol), P2PErrc::authentication_failed, "does not open");
  EXPECT_EQ(bob.stats().forged, 1U);
  EXPECT_TRUE(carol.open(*to_carol).has_value());
}

TEST_F(DiscoCodec, RefusesAReplay) {
  const auto packet = seal_to_bob();
  ASSERT_TRUE(bob.open(packet).has_value());
  expect_refused(bob.open(packet), P2PErrc::protocol_error, "replayed");
  expect_refused(bob.open(packet), P2PErrc::protocol_error, "replayed");
  EXPECT_EQ(bob.stats().opened, 1U);
  EXPECT_EQ(bob.stats().replayed, 2U);
}

TEST_F(DiscoCodec, AcceptsOutOfOrderWithinTheWindowOnce) {
  std::vector<Bytes> packets;
  for (int i = 0; i < 10; ++i) packets.push_back(seal_to_bob());
  ASSERT_TRUE(bob.open(packets[9]).has_value());
  for (int i : {3, 0, 8, 1, 2, 7, 4, 6, 5}) {
    SCOPED_TRACE(i);
    EXPECT_TRUE(bob.open(packets[static_cast<std::size_t>(i)]).has_value());
  }
  for (const auto& p : packets) expect_refused(bob.open(p), P2PErrc::protocol_error, "replayed");
  EXPECT_EQ(bob.stats().opened, 10U);
  EXPECT_EQ(bob.stats().replayed, 10U);
}

TEST_F(DiscoCodec, RefusesCountersOlderThanTheWindow) {
  std::vector<Bytes> packets;
  for (std::uint64_t i = 0; i <= kReplayWindow; ++i) packets.push_back(seal_to_bob());
  ASSERT_TRUE(bob.open(packets.back()).has_value());                          // counter start + 256
  expect_refused(bob.open(packets[0]), P2PErrc::protocol_error, "replayed");  // 256 below: outside
  EXPECT_TRUE(bob.open(packets[1]).has_value());                              // 255 below: inside
  EXPECT_EQ(bob.stats().replayed, 1U);
  // A far higher counter slides the whole window past everything seen so far.
  auto far = Codec(test_secret_key("alice"), 1000 + 10 * kReplayWindow, counter_random());
  const auto jump = far.seal(bob_id, Ping{tx_of(1)});
  ASSERT_TRUE(jump.has_value());
  ASSERT_TRUE(bob.open(*jump).has_value());
  expect_refused(bob.open(packets[2]), P2PErrc::protocol_error, "replayed");
}

TEST_F(DiscoCodec, DropsOwnPackets) {
  const auto own = alice.seal(alice_id, Ping{tx_of(1)});
  ASSERT_TRUE(own.has_value());
  expect_refused(alice.open(*own), P2PErrc::protocol_error, "own packet");
  EXPECT_EQ(alice.stats().own, 1U);
  EXPECT_EQ(alice.stats().opened, 0U);
}

TEST_F(DiscoCodec, AnAuthenticPacketThatDoesNotDecodeIsMalformed) {
  // seal() never produces one; a peer of a later version might (a new message type).
  std::uint64_t counter = 7;
  for (const auto& plaintext : {bytes_of({0x09, 1, 2, 3}), Bytes{}, bytes_of({0x01, 1}), bytes_of({0x03, 17})}) {
    const auto packet = seal_raw("alice", bob_id, counter++, plaintext);
    const auto r = bob.open(packet);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code(), P2PErrc::protocol_error) << r.error().message();
  }
  EXPECT_EQ(bob.stats().malformed, 4U);
  EXPECT_EQ(bob.stats().forged, 0U);
}

TEST_F(DiscoCodec, TheBoxBindsTheSenderIdAndTheRecipient) {
  // An ed25519 key and its negation (the sign bit, bit 7 of the last byte) share one X25519 key;
  // the header hashed into the box nonce keeps a packet from passing as the negated sender.
  auto packet = seal_to_bob();
  packet[6 + 31] ^= std::byte{0x80};
  ASSERT_TRUE(NodeId::from_bytes(ByteView(packet).subspan(6, 32)).has_value());
  expect_refused(bob.open(packet), P2PErrc::authentication_failed, "does not open");
  // A packet sealed for bob's negated key does not open at bob either.
  auto negated = bob_id.as_bytes();
  negated[31] ^= 0x80;
  const auto neg_id = NodeId::from_bytes(std::span<const std::uint8_t>(negated));
  ASSERT_TRUE(neg_id.has_value());
  const auto to_neg = alice.seal(*neg_id, Ping{tx_of(1)});
  ASSERT_TRUE(to_neg.has_value());
  expect_refused(bob.open(*to_neg), P2PErrc::authentication_failed, "does not open");
  EXPECT_EQ(bob.stats().forged, 2U);
}

TEST_F(DiscoCodec, MatchesAnIndependentSealOfTheSpecifiedLayout) {
  // A packet built from the specification alone (seal_raw) opens, and one the codec seals opens
  // with the specified keys.
  const auto m = Pong{tx_of(1), addr("[2001:db8::7]:41641")};
  const auto raw = seal_raw("alice", bob_id, 42, encode_plaintext(m));
  const auto opened = bob.open(raw);
  ASSERT_TRUE(opened.has_value()) << opened.error().message();
  EXPECT_EQ(opened->from, alice_id);
  EXPECT_EQ(opened->message, Message{m});
  const auto sealed = seal_to_bob(m);
  EXPECT_EQ(open_raw("bob", sealed), encode_plaintext(m));
}

TEST(DiscoPeers, TableBoundedByPeersMaxStillWorks) {
  auto bob = make_codec("bob", 1, 2);
  const auto bob_id = test_node_id("bob");
  auto alice = make_codec("alice");
  auto carol = make_codec("carol");
  auto dave = make_codec("dave");
  const auto seal = [&](Codec& from) {
    auto p = from.seal(bob_id, Ping{tx_of(1)});
    EXPECT_TRUE(p.has_value());
    return p.value_or(Bytes{});
  };
  const auto a0 = seal(alice);
  ASSERT_TRUE(bob.open(a0).has_value());           // table: alice
  ASSERT_TRUE(bob.open(seal(carol)).has_value());  // carol, alice
  ASSERT_TRUE(bob.open(seal(dave)).has_value());   // dave, carol: alice evicted
  EXPECT_TRUE(bob.open(seal(alice)).has_value());  // alice, dave: her key derived again
  EXPECT_TRUE(bob.open(seal(carol)).has_value());  // carol, alice
  EXPECT_TRUE(bob.open(seal(dave)).has_value());   // dave, carol
  // The documented replay case: alice was evicted, so her window starts afresh and her first
  // packet, seen before the eviction, opens once more (its counter is within the new window).
  const auto a2 = seal(alice);
  ASSERT_TRUE(bob.open(a2).has_value());
  EXPECT_TRUE(bob.open(a0).has_value());
  EXPECT_FALSE(bob.open(a0).has_value());  // once
  EXPECT_FALSE(bob.open(a2).has_value());  // a sender still in the table keeps its window
  EXPECT_EQ(bob.stats().opened, 8U);
  EXPECT_EQ(bob.stats().replayed, 2U);
  // Sealing to more peers than the table holds works too, and every one of them opens.
  for (auto* to : {&alice, &carol, &dave, &alice}) {
    const auto p = bob.seal(to->node_id(), Ping{tx_of(5)});
    ASSERT_TRUE(p.has_value());
    const auto opened = to->open(*p);
    ASSERT_TRUE(opened.has_value()) << opened.error().message();
    EXPECT_EQ(opened->from, bob_id);
  }
}

TEST(DiscoPeers, ForgedPacketsDoNotEvictAPeer) {
  auto bob = make_codec("bob", 1, 1);
  const auto bob_id = test_node_id("bob");
  auto alice = make_codec("alice");
  const auto a0 = alice.seal(bob_id, Ping{tx_of(1)});
  ASSERT_TRUE(a0.has_value());
  ASSERT_TRUE(bob.open(*a0).has_value());
  // Carol floods bob with packets that do not open: alice keeps her table slot and window.
  auto carol = make_codec("carol");
  for (int i = 0; i < 10; ++i) {
    auto forged = carol.seal(bob_id, Ping{tx_of(2)});
    ASSERT_TRUE(forged.has_value());
    forged->back() ^= std::byte{1};
    EXPECT_FALSE(bob.open(*forged).has_value());
  }
  EXPECT_EQ(bob.stats().forged, 10U);
  const auto replay = bob.open(*a0);
  ASSERT_FALSE(replay.has_value());
  EXPECT_NE(replay.error().message().find("replayed"), std::string::npos);
}

// --- Mutation ---

TEST(DiscoMutation, NoMutatedPacketEverOpens) {
  constexpr std::uint64_t kSeed = 0xd15c0;
  constexpr int kIterations = 5000;
  env::Rng rng(kSeed);
  auto alice = make_codec("alice");
  auto bob = make_codec("bob", 1);
  const auto bob_id = test_node_id("bob");
  std::vector<Bytes> originals;
  for (const auto& m : sample_messages()) {
    auto p = alice.seal(bob_id, m);
    ASSERT_TRUE(p.has_value());
    originals.push_back(std::move(*p));
  }
  int tried = 0;
  for (int it = 0; it < kIterations; ++it) {
    SCOPED_TRACE(fmt::format("seed {:#x} iteration {}", kSeed, it));
    const auto& original = originals[rng.uniform(originals.size())];
    Bytes mutated = original;
    const auto rounds = 1 + rng.uniform(4);
    for (std::uint64_t r = 0; r < rounds; ++r) {
      switch (rng.uniform(5)) {
        case 0:  // flip a bit
          if (!mutated.empty()) {
            mutated[rng.uniform(mutated.size())] ^= static_cast<std::byte>(1U << rng.uniform(8));
          }
          break;
        case 1:  // overwrite a byte
          if (!mutated.empty()) mutated[rng.uniform(mutated.size())] = static_cast<std::byte>(rng.uniform(256));
          break;
        case 2:  // truncate
          mutated.resize(rng.uniform(mutated.size() + 1));
          break;
        case 3: {  // append random bytes (sometimes past the size limit)
          const auto n = 1 + rng.uniform(rng.chance(0.1) ? 1024 : 16);
          for (std::uint64_t i = 0; i < n; ++i) mutated.push_back(static_cast<std::byte>(rng.uniform(256)));
          break;
        }
        default: {  // splice in the sender and nonce of another packet
          const auto& other = originals[rng.uniform(originals.size())];
          if (mutated.size() >= kHeaderSize)
            std::copy(other.begin() + 6, other.begin() + kHeaderSize, mutated.begin() + 6);
          break;
        }
      }
    }
    if (std::find(originals.begin(), originals.end(), mutated) != originals.end()) continue;
    ++tried;
    const auto r = bob.open(mutated);
    ASSERT_FALSE(r.has_value()) << "a mutated packet opened";
  }
  EXPECT_GT(tried, kIterations * 9 / 10);
  EXPECT_EQ(bob.stats().opened, 0U);
  const auto& s = bob.stats();
  EXPECT_EQ(s.malformed + s.forged + s.replayed + s.own, static_cast<std::uint64_t>(tried));
  // The refusals left bob's state intact: every original still opens once.
  for (const auto& p : originals) EXPECT_TRUE(bob.open(p).has_value());
}

}  // namespace
}  // namespace moosicbox::p2p::magicsock::disco
