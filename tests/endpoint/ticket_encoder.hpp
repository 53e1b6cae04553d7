// SPDX-License-Identifier: MIT OR Apache-2.0
// ticket_encoder.hpp: an independent encoder of the ticket envelope, written from the format in
// node_addr.hpp (not from node_addr.cpp), so tests can build well-framed tickets with any body,
// version, length field or checksum, including ones the library itself never writes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace moosicbox::p2p::test {

/// crc32_bitwise computes CRC-32/ISO-HDLC one bit at a time (the textbook definition).
inline std::uint32_t crc32_bitwise(const std::vector<std::uint8_t>& data) {
  std::uint32_t crc = 0xffffffffU;
  for (const auto byte : data) {
    crc ^= byte;
    for (int k = 0; k < 8; ++k) crc = (crc & 1U) != 0 ? (crc >> 1) ^ 0xedb88320U : crc >> 1;
  }
  return crc ^ 0xffffffffU;
}

/// zbase32 encodes bytes most significant bit first, zero-padding the last character.
inline std::string zbase32(const std::vector<std::uint8_t>& bytes) {
  static constexpr char kAlphabet[] = "ybndrfg8ejkmcpqxot1uwisza345h769";
  std::string out;
  std::size_t bit = 0;
  const std::size_t bits = bytes.size() * 8;
  while (bit < bits) {
    unsigned v = 0;
    for (std::size_t k = 0; k < 5; ++k, ++bit) {
      const unsigned b = bit < bits ? (static_cast<unsigned>(bytes[bit / 8]) >> (7 - bit % 8)) & 1U : 0U;
      v = (v << 1) | b;
    }
    out.push_back(kAlphabet[v]);
  }
  return out;
}

/// EnvelopeOptions overrides parts of the envelope to build damaged tickets.
struct EnvelopeOptions {
  unsigned version = 1;
  std::optional<std::uint16_t> length;    ///< the length field (default: the true length)
  std::optional<std::uint32_t> checksum;  ///< the checksum (default: the true checksum)
};

/// make_ticket wraps `body` in the ticket envelope: "p2p" VERSION zbase32(length body checksum).
inline std::string make_ticket(const std::vector<std::uint8_t>& body, const EnvelopeOptions& o = {}) {
  const std::size_t total = 2 + body.size() + 4;
  const std::uint16_t length = o.length.value_or(static_cast<std::uint16_t>(total));
  std::vector<std::uint8_t> signed_part;
  signed_part.push_back(static_cast<std::uint8_t>(o.version));
  signed_part.push_back(static_cast<std::uint8_t>(length >> 8));
  signed_part.push_back(static_cast<std::uint8_t>(length & 0xff));
  signed_part.insert(signed_part.end(), body.begin(), body.end());
  const std::uint32_t crc = o.checksum.value_or(crc32_bitwise(signed_part));
  std::vector<std::uint8_t> payload(signed_part.begin() + 1, signed_part.end());
  for (int shift = 24; shift >= 0; shift -= 8) payload.push_back(static_cast<std::uint8_t>(crc >> shift));
  return "p2p" + std::to_string(o.version) + zbase32(payload);
}

/// BodyBuilder writes a version-1 body field by field.
struct BodyBuilder {
  std::vector<std::uint8_t> bytes;

  BodyBuilder& raw(std::initializer_list<std::uint8_t> b) {
    bytes.insert(bytes.end(), b.begin(), b.end());
    return *this;
  }
  template <class Range>
  BodyBuilder& raw_range(const Range& r) {
    for (const auto b : r) bytes.push_back(static_cast<std::uint8_t>(b));
    return *this;
  }
  BodyBuilder& u8(unsigned v) {
    bytes.push_back(static_cast<std::uint8_t>(v));
    return *this;
  }
  BodyBuilder& u16(unsigned v) {
    bytes.push_back(static_cast<std::uint8_t>(v >> 8));
    bytes.push_back(static_cast<std::uint8_t>(v & 0xff));
    return *this;
  }
  BodyBuilder& relay(const std::string& url) {
    u8(static_cast<unsigned>(url.size()));
    return raw_range(url);
  }
  BodyBuilder& v4(std::initializer_list<std::uint8_t> ip, unsigned port) {
    u8(4);
    raw(ip);
    return u16(port);
  }
  BodyBuilder& v6(std::initializer_list<std::uint8_t> ip, unsigned port) {
    u8(6);
    raw(ip);
    return u16(port);
  }
};

}  // namespace moosicbox::p2p::test
