// SPDX-License-Identifier: MIT OR Apache-2.0
// stun_test.cpp: the STUN Binding subset: requests and responses round-trip (IPv4, IPv6), the
// RFC 5769 sample response and client-style requests parse, and every malformed input (each
// truncation, bad cookie, length, FINGERPRINT, family, class or method, a comprehension-required
// unknown attribute) fails with a protocol error that names the problem.
#include "relay/stun.hpp"

#include <gtest/gtest.h>

#include <initializer_list>

namespace moosicbox::p2p::stun {
namespace {

Bytes bytes(std::initializer_list<unsigned> v) {
  Bytes out;
  for (auto b : v) out.push_back(std::byte{static_cast<std::uint8_t>(b)});
  return out;
}

TxId tx_of(std::uint8_t start) {
  TxId tx{};
  for (std::size_t i = 0; i < tx.size(); ++i) tx[i] = std::byte{static_cast<std::uint8_t>(start + i)};
  return tx;
}

template <class R>
std::string error_of(const R& r) {
  if (r) return "parsed";
  EXPECT_EQ(r.error().code(), P2PErrc::protocol_error);
  return r.error().context();
}

bool contains(const std::string& s, std::string_view what) { return s.find(what) != std::string::npos; }

// crc32_bitwise is CRC-32/ISO-HDLC computed bit by bit (independent of the codec's table).
std::uint32_t crc32_bitwise(ByteView data) {
  std::uint32_t c = 0xFFFFFFFFU;
  for (auto b : data) {
    c ^= std::to_integer<std::uint32_t>(b);
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320U & (0U - (c & 1U)));
  }
  return ~c;
}

// The RFC 5769 section 2.2 sample IPv4 response (SOFTWARE, XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY,
// FINGERPRINT): 192.0.2.1:32853.
const Bytes kRfc5769Ipv4Response = bytes({
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
    0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9,
    0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
});

TEST(Stun, RequestRoundTripsAndLooksLikeStun) {
  const auto tx = tx_of(1);
  const Bytes req = binding_request(tx);
  EXPECT_EQ(req.size(), kHeaderSize + 8);  // header + FINGERPRINT
  EXPECT_TRUE(looks_like_stun(req));
  auto parsed = parse_binding_request(req);
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(*parsed, tx);
  // A request is not a response, and the reverse.
  EXPECT_TRUE(contains(error_of(parse_binding_response(req)), "not a Binding success response"));
  const Bytes res = binding_response(tx, SocketAddr::v4({198, 51, 100, 7}, 41641));
  EXPECT_TRUE(contains(error_of(parse_binding_request(res)), "not a Binding request"));
}

TEST(Stun, ResponseRoundTripsV4AndV6) {
  std::array<std::uint8_t, 16> v6{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef};
  for (const auto& addr :
       {SocketAddr::v4({203, 0, 113, 9}, 3478), SocketAddr::v4({0, 0, 0, 0}, 1),
        SocketAddr::v4({255, 255, 255, 255}, 65535), SocketAddr::v6(v6, 41641), SocketAddr::v6_loopback(9)}) {
    const auto tx = tx_of(0x40);
    const Bytes res = binding_response(tx, addr);
    EXPECT_TRUE(looks_like_stun(res));
    auto parsed = parse_binding_response(res);
    ASSERT_TRUE(parsed) << addr.to_string() << ": " << parsed.error().message();
    EXPECT_EQ(parsed->tx, tx);
    EXPECT_EQ(parsed->mapped, addr);
  }
}

TEST(Stun, ResponseReportsV4MappedAddressesAsV4) {
  const auto mapped = SocketAddr::v4({192, 0, 2, 44}, 5000).to_v6_mapped();
  ASSERT_TRUE(mapped.is_v6());
  auto parsed = parse_binding_response(binding_response(tx_of(3), mapped));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->mapped, SocketAddr::v4({192, 0, 2, 44}, 5000));
}

TEST(Stun, ParsesTheRfc5769SampleResponse) {
  EXPECT_TRUE(looks_like_stun(kRfc5769Ipv4Response));
  auto parsed = parse_binding_response(kRfc5769Ipv4Response);
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_EQ(parsed->mapped, SocketAddr::v4({192, 0, 2, 1}, 32853));
  EXPECT_EQ(parsed->tx[0], std::byte{0xb7});
  EXPECT_EQ(parsed->tx[11], std::byte{0xae});
  // One flipped bit anywhere before the FINGERPRINT breaks it.
  Bytes flipped = kRfc5769Ipv4Response;
  flipped[30] ^= std::byte{0x01};
  EXPECT_EQ(error_of(parse_binding_response(flipped)), "stun: bad FINGERPRINT");
}

TEST(Stun, ParsesClientStyleRequests) {
  // A bare RFC 5389 request (what minimal clients send): header only, no attributes.
  const Bytes bare = bytes({0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 0x01, 0x02,
                            0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c});
  auto a = parse_binding_request(bare);
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(*a, tx_of(1));
  // SOFTWARE "tailnode" (comprehension-optional, skipped) and a FINGERPRINT.
  const Bytes software = bytes({0x00, 0x01, 0x00, 0x14, 0x21, 0x12, 0xa4, 0x42, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
                                0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x80, 0x22, 0x00, 0x08, 't',  'a',  'i',  'l',
                                'n',  'o',  'd',  'e',  0x80, 0x28, 0x00, 0x04, 0xb3, 0x2c, 0x37, 0x0f});
  EXPECT_TRUE(looks_like_stun(software));
  auto b = parse_binding_request(software);
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ(*b, tx_of(1));
  // An RFC 3489 request (no magic cookie) is refused.
  Bytes classic = bare;
  classic[4] = std::byte{0x5a};
  EXPECT_FALSE(looks_like_stun(classic));
  EXPECT_TRUE(contains(error_of(parse_binding_request(classic)), "bad magic cookie"));
}

TEST(Stun, EveryTruncationFails) {
  const Bytes req = binding_request(tx_of(7));
  const Bytes res = binding_response(tx_of(7), SocketAddr::v6_loopback(4000));
  for (std::size_t n = 0; n < req.size(); ++n) {
    const ByteView cut = ByteView(req).first(n);
    EXPECT_FALSE(looks_like_stun(cut)) << n;
    EXPECT_FALSE(parse_binding_request(cut)) << n;
  }
  for (std::size_t n = 0; n < res.size(); ++n) {
    const ByteView cut = ByteView(res).first(n);
    EXPECT_FALSE(looks_like_stun(cut)) << n;
    EXPECT_FALSE(parse_binding_response(cut)) << n;
  }
  EXPECT_TRUE(contains(error_of(parse_binding_request(ByteView(req).first(19))), "truncated: 19 bytes"));
}

TEST(Stun, TruncatedAttributesFailEvenWithAMatchingLength) {
  // The header's length matches the datagram, so only the attribute walk can catch this: an
  // attribute header announcing 8 bytes of which none follow.
  Bytes req = binding_request(tx_of(2));
  req.resize(kHeaderSize);
  for (auto b : bytes({0x80, 0x22, 0x00, 0x08})) req.push_back(b);
  req[3] = std::byte{4};
  EXPECT_TRUE(looks_like_stun(req));
  EXPECT_TRUE(contains(error_of(parse_binding_request(req)), "overruns"));
}

TEST(Stun, BadHeaderFieldsFail) {
  const Bytes req = binding_request(tx_of(9));
  Bytes cookie = req;
  cookie[7] = std::byte{0x43};
  EXPECT_EQ(error_of(parse_binding_request(cookie)), "stun: bad magic cookie 0x2112a443");
  Bytes top = req;
  top[0] = std::byte{0x80};
  EXPECT_FALSE(looks_like_stun(top));
  EXPECT_TRUE(contains(error_of(parse_binding_request(top)), "top bits"));
  Bytes odd = req;
  odd[3] = std::byte{0x07};
  EXPECT_FALSE(looks_like_stun(odd));
  EXPECT_EQ(error_of(parse_binding_request(odd)), "stun: length 7 is not a multiple of 4");
  Bytes longer = req;
  longer[3] = std::byte{0x0c};
  EXPECT_FALSE(looks_like_stun(longer));
  EXPECT_EQ(error_of(parse_binding_request(longer)), "stun: length 12 does not match the 8 bytes after the header");
  Bytes extra = req;
  extra.resize(req.size() + 4);
  EXPECT_FALSE(looks_like_stun(extra));
  EXPECT_FALSE(parse_binding_request(extra));
  Bytes huge(kMessageSizeMax + 4);
  EXPECT_TRUE(contains(error_of(parse_binding_request(huge)), "oversize"));
}

TEST(Stun, WrongClassOrMethodFails) {
  Bytes req = binding_request(tx_of(1));
  // An indication (class 01) of Binding, an Allocate request (method 3), an error response.
  for (auto [hi, lo] : {std::pair{0x00, 0x11}, std::pair{0x00, 0x03}, std::pair{0x01, 0x11}}) {
    Bytes m = req;
    m[0] = std::byte{static_cast<std::uint8_t>(hi)};
    m[1] = std::byte{static_cast<std::uint8_t>(lo)};
    EXPECT_TRUE(looks_like_stun(m));
    EXPECT_TRUE(contains(error_of(parse_binding_request(m)), "not a Binding request"));
    EXPECT_FALSE(parse_binding_response(m));
  }
  Bytes err = req;
  err[0] = std::byte{0x01};
  err[1] = std::byte{0x11};
  EXPECT_EQ(error_of(parse_binding_response(err)), "stun: a Binding error response");
}

TEST(Stun, BadFingerprintFails) {
  Bytes req = binding_request(tx_of(5));
  req.back() ^= std::byte{0xff};
  EXPECT_TRUE(looks_like_stun(req));  // cheap check only
  EXPECT_EQ(error_of(parse_binding_request(req)), "stun: bad FINGERPRINT");
  Bytes res = binding_response(tx_of(5), SocketAddr::v4({192, 0, 2, 1}, 1));
  res[kHeaderSize + 6] ^= std::byte{0x01};  // the port, covered by the FINGERPRINT
  EXPECT_EQ(error_of(parse_binding_response(res)), "stun: bad FINGERPRINT");
  // FINGERPRINT must be last: a valid one (over a header whose length counts what follows) then
  // an empty SOFTWARE attribute.
  Bytes after = binding_request(tx_of(5));
  after.resize(kHeaderSize);
  after[3] = std::byte{12};
  const std::uint32_t fp = crc32_bitwise(after) ^ 0x5354554eU;
  for (auto b : bytes({0x80, 0x28, 0x00, 0x04, fp >> 24, (fp >> 16) & 0xff, (fp >> 8) & 0xff, fp & 0xff, 0x80, 0x22,
                       0x00, 0x00})) {
    after.push_back(b);
  }
  EXPECT_EQ(error_of(parse_binding_request(after)), "stun: an attribute follows FINGERPRINT");
  // The codec's FINGERPRINT is the standard CRC-32 xor 0x5354554e.
  const Bytes req2 = binding_request(tx_of(6));
  const std::uint32_t want = crc32_bitwise(ByteView(req2).first(kHeaderSize)) ^ 0x5354554eU;
  const auto got = (std::to_integer<std::uint32_t>(req2[24]) << 24) | (std::to_integer<std::uint32_t>(req2[25]) << 16) |
                   (std::to_integer<std::uint32_t>(req2[26]) << 8) | std::to_integer<std::uint32_t>(req2[27]);
  EXPECT_EQ(got, want);
}

// with_attribute returns a bare Binding message of `type` carrying one attribute (no FINGERPRINT).
Bytes with_attribute(std::uint16_t msg_type, std::uint16_t attr, std::initializer_list<unsigned> value) {
  Bytes m = bytes({0, 0, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  m[0] = std::byte{static_cast<std::uint8_t>(msg_type >> 8)};
  m[1] = std::byte{static_cast<std::uint8_t>(msg_type)};
  m.push_back(std::byte{static_cast<std::uint8_t>(attr >> 8)});
  m.push_back(std::byte{static_cast<std::uint8_t>(attr)});
  m.push_back(std::byte{0});
  m.push_back(std::byte{static_cast<std::uint8_t>(value.size())});
  for (auto v : value) m.push_back(std::byte{static_cast<std::uint8_t>(v)});
  while (m.size() % 4 != 0) m.push_back(std::byte{0});
  m[3] = std::byte{static_cast<std::uint8_t>(m.size() - kHeaderSize)};
  return m;
}

TEST(Stun, ComprehensionRequiredUnknownAttributesFail) {
  // USERNAME (0x0006) needs credentials this subset does not have; 0x7fff is unassigned.
  EXPECT_EQ(error_of(parse_binding_request(with_attribute(0x0001, 0x0006, {'u', 's', 'e', 'r'}))),
            "stun: unknown comprehension-required attribute 0x0006 in a request");
  EXPECT_TRUE(contains(error_of(parse_binding_response(with_attribute(0x0101, 0x7fff, {1, 2, 3, 4}))),
                       "comprehension-required attribute 0x7fff"));
  // Comprehension-optional unknown ones are skipped.
  EXPECT_TRUE(parse_binding_request(with_attribute(0x0001, 0x8123, {1, 2, 3})));
}

TEST(Stun, AddressAttributesAreChecked) {
  // XOR-MAPPED-ADDRESS with family 3, a short IPv4 value, a short IPv6 value; none at all.
  EXPECT_EQ(error_of(parse_binding_response(with_attribute(0x0101, 0x0020, {0, 3, 0, 1, 1, 2, 3, 4}))),
            "stun: XOR-MAPPED-ADDRESS: address family 0x03 (expected 0x01 or 0x02)");
  EXPECT_EQ(error_of(parse_binding_response(with_attribute(0x0101, 0x0020, {0, 1, 0, 1, 1, 2}))),
            "stun: XOR-MAPPED-ADDRESS (IPv4) of 6 bytes (expected 8)");
  EXPECT_EQ(error_of(parse_binding_response(with_attribute(0x0101, 0x0020, {0, 2, 0, 1, 1, 2, 3, 4}))),
            "stun: XOR-MAPPED-ADDRESS (IPv6) of 8 bytes (expected 20)");
  EXPECT_EQ(error_of(parse_binding_response(with_attribute(0x0101, 0x0020, {0, 1}))),
            "stun: truncated XOR-MAPPED-ADDRESS: 2 bytes");
  EXPECT_EQ(error_of(parse_binding_response(with_attribute(0x0101, 0x8022, {'s'}))),
            "stun: the response has no (XOR-)MAPPED-ADDRESS");
  // An old server's plain MAPPED-ADDRESS is read as is.
  auto old = parse_binding_response(with_attribute(0x0101, 0x0001, {0, 1, 0x0d, 0x96, 192, 0, 2, 5}));
  ASSERT_TRUE(old) << old.error().message();
  EXPECT_EQ(old->mapped, SocketAddr::v4({192, 0, 2, 5}, 3478));
}

TEST(Stun, GarbageIsNotStun) {
  EXPECT_FALSE(looks_like_stun({}));
  Bytes quic(1200, std::byte{0xc3});
  EXPECT_FALSE(looks_like_stun(quic));
  Bytes zeros(20);
  EXPECT_FALSE(looks_like_stun(zeros));
  EXPECT_FALSE(parse_binding_request(zeros));
}

}  // namespace
}  // namespace moosicbox::p2p::stun
