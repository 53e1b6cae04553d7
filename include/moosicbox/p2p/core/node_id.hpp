// SPDX-License-Identifier: MIT OR Apache-2.0
// node_id.hpp: NodeId, a node's identity: its 32-byte ed25519 public key. Text forms are z-base-32
// (52 characters, the default) and hex (64 characters); parse() accepts both.
// Layer: core. Immutable value type; thread-safe.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "moosicbox/p2p/core/error.hpp"

namespace moosicbox::p2p {

/// NodeId is the identity of a node: its ed25519 public key. Always a valid curve point.
class NodeId {
 public:
  /// kSize is the length of a node id in bytes.
  static constexpr std::size_t kSize = 32;
  /// kZBase32Length is the length of the z-base-32 text form.
  static constexpr std::size_t kZBase32Length = 52;
  /// kHexLength is the length of the hex text form.
  static constexpr std::size_t kHexLength = 64;

  /// from_bytes builds a NodeId from 32 bytes.
  /// Errors: invalid_node_id when the length is not 32 or the bytes are not a valid ed25519 point
  /// (including small-order points).
  [[nodiscard]] static P2PResult<NodeId> from_bytes(std::span<const std::byte> bytes);
  /// from_bytes builds a NodeId from 32 unsigned bytes. Errors: as above.
  [[nodiscard]] static P2PResult<NodeId> from_bytes(std::span<const std::uint8_t> bytes);

  /// parse reads a node id written in z-base-32 (52 characters) or hex (64 characters); case is
  /// ignored and surrounding whitespace is trimmed.
  /// Errors: invalid_node_id naming the wrong length, the first bad character and its position, or an
  /// invalid curve point.
  [[nodiscard]] static P2PResult<NodeId> parse(std::string_view text);

  /// as_bytes returns the 32 key bytes.
  [[nodiscard]] const std::array<std::uint8_t, kSize>& as_bytes() const noexcept { return bytes_; }
  /// to_string returns the z-base-32 form (52 lowercase characters).
  [[nodiscard]] std::string to_string() const;
  /// to_hex returns the hex form (64 lowercase characters).
  [[nodiscard]] std::string to_hex() const;
  /// fmt_short returns the first 5 bytes as 10 hex characters, for logs.
  [[nodiscard]] std::string fmt_short() const;

  /// Node ids compare by their key bytes (lexicographically), so they can key ordered containers.
  ///@{
  friend auto operator<=>(const NodeId&, const NodeId&) = default;
  friend bool operator==(const NodeId&, const NodeId&) = default;
  ///@}

 private:
  friend class SecretKey;
  explicit NodeId(const std::array<std::uint8_t, kSize>& bytes) noexcept : bytes_(bytes) {}
  std::array<std::uint8_t, kSize> bytes_{};
};

/// test_node_id returns a deterministic node id for `name`: the same name always gives the same id,
/// different names give different ids. For tests and examples; its secret key is test_secret_key(name).
[[nodiscard]] NodeId test_node_id(std::string_view name);

}  // namespace moosicbox::p2p

template <>
struct std::hash<moosicbox::p2p::NodeId> {
  std::size_t operator()(const moosicbox::p2p::NodeId& id) const noexcept {
    // The key is uniformly distributed already; its first 8 bytes are a good hash.
    std::size_t h = 0;
    for (std::size_t i = 0; i < sizeof(h); ++i) h = (h << 8) | id.as_bytes()[i];
    return h;
  }
};

/// @cond
/// fmt::formatter for NodeId prints the z-base-32 form; "{:s}" prints fmt_short().
template <>
struct fmt::formatter<moosicbox::p2p::NodeId> {
  bool short_ = false;
  constexpr auto parse(fmt::format_parse_context& ctx) {
    auto it = ctx.begin();
    if (it != ctx.end() && *it == 's') {
      short_ = true;
      ++it;
    }
    return it;
  }
  template <class Ctx>
  auto format(const moosicbox::p2p::NodeId& id, Ctx& ctx) const {
    const auto text = short_ ? id.fmt_short() : id.to_string();
    return fmt::format_to(ctx.out(), "{}", text);
  }
};
/// @endcond
