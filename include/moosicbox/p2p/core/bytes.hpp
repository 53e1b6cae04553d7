// SPDX-License-Identifier: MIT OR Apache-2.0
// bytes.hpp: the byte vocabulary of the library (owned buffers, views, conversions from text).
// Layer: core. Plain value types; no threading rule.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moosicbox::p2p {

/// Bytes is an owned, contiguous byte buffer: the type of every message.
using Bytes = std::vector<std::byte>;
/// ByteView is a read-only view of bytes owned by someone else.
using ByteView = std::span<const std::byte>;

/// as_bytes views the characters of `text` as bytes (no copy).
[[nodiscard]] inline ByteView as_bytes(std::string_view text) noexcept {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}

/// to_bytes copies the characters of `text` into an owned buffer.
[[nodiscard]] inline Bytes to_bytes(std::string_view text) {
  const auto view = as_bytes(text);
  return {view.begin(), view.end()};
}

/// to_string copies `bytes` into a string, byte for byte.
[[nodiscard]] inline std::string to_string(ByteView bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace moosicbox::p2p
