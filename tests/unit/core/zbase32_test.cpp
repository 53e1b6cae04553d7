// SPDX-License-Identifier: MIT OR Apache-2.0
// zbase32_test.cpp: the z-base-32 codec shared by node ids and tickets: known vectors, padding,
// round trips, and malformed text.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/zbase32.hpp"

namespace moosicbox::p2p::detail {
namespace {

std::vector<std::uint8_t> bytes(std::initializer_list<int> v) {
  std::vector<std::uint8_t> out;
  for (const int b : v) out.push_back(static_cast<std::uint8_t>(b));
  return out;
}

TEST(ZBase32, EncodesKnownVectors) {
  EXPECT_EQ(zbase32_encode({}), "");
  // 0x00 -> 00000|000 -> "yy"; 0xff -> 11111|111(00) -> "9h".
  EXPECT_EQ(zbase32_encode(bytes({0x00})), "yy");
  EXPECT_EQ(zbase32_encode(bytes({0xff})), "9h");
  // Five bytes fill eight characters exactly, with no padding.
  EXPECT_EQ(zbase32_encode(bytes({0x00, 0x44, 0x32, 0x14, 0xc7})), "ybndrfg8");
}

TEST(ZBase32, DecodesWhatItEncodes) {
  for (std::size_t n = 0; n < 40; ++n) {
    std::vector<std::uint8_t> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(i * 37 + n);
    const auto text = zbase32_encode(v);
    const auto back = zbase32_decode(text);
    EXPECT_EQ(back.bad_position, -1);
    EXPECT_EQ(back.bytes, v) << "length " << n;
    EXPECT_LT(back.leftover_bits, 5);
    EXPECT_EQ(back.leftover, 0U);
  }
}

TEST(ZBase32, AcceptsUpperCase) {
  EXPECT_EQ(zbase32_decode("YBNDRFG8").bytes, zbase32_decode("ybndrfg8").bytes);
  EXPECT_EQ(zbase32_value('Y'), 0);
  EXPECT_EQ(zbase32_value('9'), 31);
}

TEST(ZBase32, ReportsTheFirstCharacterOutsideTheAlphabet) {
  // 'l', 'v', '0' and '2' are not in the alphabet; neither are spaces or bytes above 0x7f.
  for (const std::string& bad : std::vector<std::string>{"l", "yyv", "ybn0", "ybnd2", "yb d", "yy\xc3\xa9"}) {
    const auto d = zbase32_decode(bad);
    EXPECT_GE(d.bad_position, 0) << bad;
    EXPECT_LT(static_cast<std::size_t>(d.bad_position), bad.size()) << bad;
  }
  EXPECT_EQ(zbase32_decode("yyv").bad_position, 2);
  EXPECT_EQ(zbase32_value('\0'), -1);
}

TEST(ZBase32, ReportsLeftoverBitsForTheCallerToJudge) {
  // "9h" decodes 0xff with two zero pad bits; "99" sets them.
  const auto canonical = zbase32_decode("9h");
  EXPECT_EQ(canonical.bytes, bytes({0xff}));
  EXPECT_EQ(canonical.leftover_bits, 2);
  EXPECT_EQ(canonical.leftover, 0U);
  const auto stray = zbase32_decode("99");
  EXPECT_EQ(stray.bytes, bytes({0xff}));
  EXPECT_EQ(stray.leftover, 3U);
  // One character carries no whole byte.
  const auto lone = zbase32_decode("y");
  EXPECT_TRUE(lone.bytes.empty());
  EXPECT_EQ(lone.leftover_bits, 5);
}

}  // namespace
}  // namespace moosicbox::p2p::detail
