// SPDX-License-Identifier: MIT OR Apache-2.0
// zbase32.cpp: the z-base-32 codec shared by node ids and tickets.
// Layer: core (internal). Stateless; thread-safe.
#include "core/zbase32.hpp"

namespace moosicbox::p2p::detail {

int zbase32_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  const auto pos = kZBase32Alphabet.find(c);
  return pos == std::string_view::npos ? -1 : static_cast<int>(pos);
}

std::string zbase32_encode(std::span<const std::uint8_t> bytes) {
  std::string out;
  out.reserve((bytes.size() * 8 + 4) / 5);
  std::uint32_t acc = 0;
  int bits = 0;
  for (const auto b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out.push_back(kZBase32Alphabet[(acc >> bits) & 31U]);
    }
    acc &= (1U << bits) - 1U;
  }
  if (bits > 0) out.push_back(kZBase32Alphabet[(acc << (5 - bits)) & 31U]);
  return out;
}

ZBase32Decoded zbase32_decode(std::string_view text) {
  ZBase32Decoded out;
  out.bytes.reserve(text.size() * 5 / 8);
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const int v = zbase32_value(text[i]);
    if (v < 0) {
      out.bad_position = static_cast<std::ptrdiff_t>(i);
      break;
    }
    acc = (acc << 5) | static_cast<std::uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.bytes.push_back(static_cast<std::uint8_t>(acc >> bits));
      acc &= (1U << bits) - 1U;
    }
  }
  out.leftover_bits = bits;
  out.leftover = acc;
  return out;
}

}  // namespace moosicbox::p2p::detail
