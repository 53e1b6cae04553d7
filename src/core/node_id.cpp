// SPDX-License-Identifier: MIT OR Apache-2.0
// node_id.cpp: NodeId validation (libsodium point checks) and its text encodings (z-base-32, hex).
// Layer: core. Stateless; thread-safe.
#include "moosicbox/p2p/core/node_id.hpp"

#include <sodium.h>

#include <algorithm>
#include <cctype>

#include "core/sodium_init.hpp"
#include "core/zbase32.hpp"
#include "moosicbox/p2p/core/assert.hpp"
#include "moosicbox/p2p/core/secret_key.hpp"

namespace moosicbox::p2p {
namespace {

constexpr std::string_view kHexAlphabet = "0123456789abcdef";

int hex_value(char c) noexcept {
  const auto pos = kHexAlphabet.find(c);
  return pos == std::string_view::npos ? -1 : static_cast<int>(pos);
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string printable(char c) {
  if (std::isprint(static_cast<unsigned char>(c))) return fmt::format("'{}'", c);
  return fmt::format("byte 0x{:02x}", static_cast<unsigned char>(c));
}

}  // namespace

P2PResult<NodeId> NodeId::from_bytes(std::span<const std::uint8_t> bytes) {
  if (bytes.size() != kSize) {
    return fail(P2PError::invalid_node_id(fmt::format("expected {} bytes, got {}", kSize, bytes.size())));
  }
  detail::ensure_sodium();
  // Rejects non-canonical encodings, points off the curve and small-order points: none of them can be
  // the public key of a real ed25519 key pair.
  if (crypto_core_ed25519_is_valid_point(bytes.data()) != 1) {
    return fail(P2PError::invalid_node_id("not a valid ed25519 public key"));
  }
  std::array<std::uint8_t, kSize> out{};
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return NodeId(out);
}

P2PResult<NodeId> NodeId::from_bytes(std::span<const std::byte> bytes) {
  return from_bytes(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

P2PResult<NodeId> NodeId::parse(std::string_view text) {
  text = trim(text);
  std::string lower(text);
  std::ranges::transform(lower, lower.begin(),
                         [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });

  std::array<std::uint8_t, kSize> out{};
  if (lower.size() == kHexLength) {
    for (std::size_t i = 0; i < kHexLength; ++i) {
      const int v = hex_value(lower[i]);
      if (v < 0) {
        return fail(
            P2PError::invalid_node_id(fmt::format("bad hex character {} at position {}", printable(text[i]), i)));
      }
      out[i / 2] = static_cast<std::uint8_t>(out[i / 2] | (v << ((i % 2 == 0) ? 4 : 0)));
    }
  } else if (lower.size() == kZBase32Length) {
    const auto decoded = detail::zbase32_decode(lower);
    if (decoded.bad_position >= 0) {
      const auto i = static_cast<std::size_t>(decoded.bad_position);
      return fail(
          P2PError::invalid_node_id(fmt::format("bad z-base-32 character {} at position {}", printable(text[i]), i)));
    }
    MOOSICBOX_P2P_ASSERT(decoded.bytes.size() == kSize && decoded.leftover_bits == 4);
    // 52 characters carry 260 bits; the last 4 must be zero, or two texts would name one key.
    if (decoded.leftover != 0) return fail(P2PError::invalid_node_id("non-canonical z-base-32 (trailing bits set)"));
    std::ranges::copy(decoded.bytes, out.begin());
  } else {
    return fail(P2PError::invalid_node_id(
        fmt::format("expected {} z-base-32 or {} hex characters, got {}", kZBase32Length, kHexLength, text.size())));
  }
  return from_bytes(std::span<const std::uint8_t>(out));
}

std::string NodeId::to_string() const {
  std::string out = detail::zbase32_encode(bytes_);
  MOOSICBOX_P2P_ASSERT(out.size() == kZBase32Length);
  return out;
}

std::string NodeId::to_hex() const {
  std::string out;
  out.reserve(kHexLength);
  for (const auto b : bytes_) {
    out.push_back(kHexAlphabet[b >> 4]);
    out.push_back(kHexAlphabet[b & 15]);
  }
  return out;
}

std::string NodeId::fmt_short() const { return to_hex().substr(0, 10); }

NodeId test_node_id(std::string_view name) { return test_secret_key(name).public_key(); }

}  // namespace moosicbox::p2p
