// SPDX-License-Identifier: MIT OR Apache-2.0
// random.hpp: the RandomSource concept: anything that fills a buffer with random bytes. Library code
// draws every random byte through one, so the simulator can make randomness a function of its seed.
// Layer: core.
#pragma once

#include <concepts>
#include <cstddef>
#include <span>

namespace moosicbox::p2p {

/// RandomSource fills buffers with random bytes: env::OsRandom (the OS CSPRNG) in production, the
/// seeded generator of a simulated environment in tests.
template <class R>
concept RandomSource = requires(R& r, std::span<std::byte> out) {
  { r.fill_random(out) }
  noexcept;
};

}  // namespace moosicbox::p2p

namespace moosicbox::p2p {
/// os_random_bytes fills `out` from the operating system's CSPRNG. Only env::OsRandom calls it; other
/// library code draws randomness through its environment (scripts/lint.sh enforces this).
void os_random_bytes(std::span<std::byte> out) noexcept;
}  // namespace moosicbox::p2p
