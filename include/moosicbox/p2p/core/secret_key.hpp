// SPDX-License-Identifier: MIT OR Apache-2.0
// secret_key.hpp: SecretKey, a node's ed25519 signing key, and Signature. The key material is wiped on
// destruction and never formatted or logged.
// Layer: core (the only layer that includes libsodium). A SecretKey is immutable after creation.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

#include "moosicbox/p2p/core/bytes.hpp"
#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/node_id.hpp"
#include "moosicbox/p2p/core/random.hpp"

namespace moosicbox::p2p {

/// Signature is a 64-byte ed25519 signature.
using Signature = std::array<std::uint8_t, 64>;

/// SecretKey is an ed25519 key pair derived from a 32-byte seed.
class SecretKey {
 public:
  /// kSeedSize is the length of a seed in bytes.
  static constexpr std::size_t kSeedSize = 32;

  /// generate draws a new seed from `rng` (env::OsRandom in production; a seeded source in
  /// simulation, so simulated identities are reproducible).
  template <RandomSource R>
  [[nodiscard]] static SecretKey generate(R& rng) {
    std::array<std::byte, kSeedSize> seed{};
    rng.fill_random(seed);
    auto key = from_seed(seed);
    wipe(seed);
    return key;
  }

  /// from_seed derives the key pair from a 32-byte seed (RFC 8032).
  [[nodiscard]] static SecretKey from_seed(std::span<const std::byte, kSeedSize> seed);

  /// load reads a key file written by save().
  /// Errors: invalid_configuration when the file is missing or unreadable, when group or others may
  /// read or write it (mode must be 0600 or stricter), or when its content is malformed.
  [[nodiscard]] static P2PResult<SecretKey> load(const std::filesystem::path& path);

  /// save writes the key to `path` with mode 0600 (atomically: a temporary file renamed over).
  /// Refuses to replace an existing file unless `overwrite` is true.
  /// Errors: invalid_configuration when the file exists (and !overwrite) or cannot be written.
  [[nodiscard]] P2PResult<void> save(const std::filesystem::path& path, bool overwrite = false) const;

  /// public_key returns this key's NodeId.
  [[nodiscard]] const NodeId& public_key() const noexcept { return public_; }
  /// seed returns the 32 secret seed bytes (for the TLS layer). Handle with care.
  [[nodiscard]] std::span<const std::byte, kSeedSize> seed() const noexcept { return seed_; }

  /// sign returns the ed25519 signature of `message`.
  [[nodiscard]] Signature sign(std::span<const std::byte> message) const;

  /// Copies hold their own copy of the key material (each copy wipes its own on destruction).
  ///@{
  SecretKey(const SecretKey&) = default;
  SecretKey& operator=(const SecretKey&) = default;
  ///@}
  ~SecretKey();

 private:
  SecretKey(const std::array<std::byte, kSeedSize>& seed, const std::array<std::uint8_t, 64>& expanded,
            NodeId pub) noexcept
      : seed_(seed), expanded_(expanded), public_(pub) {}
  static void wipe(std::span<std::byte> bytes) noexcept;

  std::array<std::byte, kSeedSize> seed_{};
  std::array<std::uint8_t, 64> expanded_{};  // libsodium's secret key: seed || public key
  NodeId public_;
};

/// verify reports whether `signature` is `signer`'s ed25519 signature of `message`.
[[nodiscard]] bool verify(const NodeId& signer, std::span<const std::byte> message,
                          const Signature& signature) noexcept;

/// test_secret_key returns the deterministic key behind test_node_id(name). For tests and examples.
[[nodiscard]] SecretKey test_secret_key(std::string_view name);

}  // namespace moosicbox::p2p
