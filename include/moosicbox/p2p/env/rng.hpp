// SPDX-License-Identifier: MIT OR Apache-2.0
// rng.hpp: Rng, the deterministic random generator of simulations (xoshiro256**, seeded through
// splitmix64), and derive_seed, which gives every node and link its own stream from one root seed.
// Layer: env. An Rng is not thread-safe; each belongs to one simulation.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace moosicbox::p2p::env {

/// derive_seed returns the seed of the stream named `name` under `root`: a pure function, so the
/// same root always gives every node and link the same stream, whatever else the simulation adds.
[[nodiscard]] std::uint64_t derive_seed(std::uint64_t root, std::string_view name) noexcept;

/// Rng is a fast, seedable, non-cryptographic generator. Its output is a pure function of its seed.
class Rng {
 public:
  /// Rng starts the stream of `seed`.
  explicit Rng(std::uint64_t seed) noexcept;

  /// next_u64 returns 64 random bits.
  std::uint64_t next_u64() noexcept;
  /// uniform returns a value in [0, n); n must be positive.
  std::uint64_t uniform(std::uint64_t n) noexcept;
  /// next_double returns a value in [0, 1).
  double next_double() noexcept;
  /// chance returns true with probability `p` (p <= 0: never, p >= 1: always).
  bool chance(double p) noexcept;
  /// fill_random fills `out` with random bytes (a RandomSource).
  void fill_random(std::span<std::byte> out) noexcept;

 private:
  std::array<std::uint64_t, 4> s_{};
};

}  // namespace moosicbox::p2p::env
