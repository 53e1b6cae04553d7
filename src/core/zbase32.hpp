// SPDX-License-Identifier: MIT OR Apache-2.0
// zbase32.hpp: the z-base-32 codec shared by node ids and tickets (most significant bit first,
// the last character padded with zero bits).
// Layer: core (internal). Stateless; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moosicbox::p2p::detail {

/// kZBase32Alphabet is z-base-32's alphabet: the value of a character is its position.
inline constexpr std::string_view kZBase32Alphabet = "ybndrfg8ejkmcpqxot1uwisza345h769";

/// zbase32_value returns the value of a character (upper case accepted), or -1 outside the alphabet.
[[nodiscard]] int zbase32_value(char c) noexcept;

/// zbase32_encode writes `bytes` as z-base-32; the last character's unused low bits are zero.
[[nodiscard]] std::string zbase32_encode(std::span<const std::uint8_t> bytes);

/// ZBase32Decoded is what zbase32_decode read.
struct ZBase32Decoded {
  std::vector<std::uint8_t> bytes;  ///< the whole bytes the text carries
  int leftover_bits = 0;            ///< bits after the last whole byte (0 to 7)
  std::uint32_t leftover = 0;       ///< their value: a canonical encoder leaves them zero
  /// bad_position is the index of the first character outside the alphabet, when there is one
  /// (then `bytes` holds what came before it).
  std::ptrdiff_t bad_position = -1;
};

/// zbase32_decode reads `text` (upper case accepted). Callers judge the leftover bits, which
/// depend on the length they expect.
[[nodiscard]] ZBase32Decoded zbase32_decode(std::string_view text);

}  // namespace moosicbox::p2p::detail
