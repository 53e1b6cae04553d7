// SPDX-License-Identifier: MIT OR Apache-2.0
// sodium_init.hpp: one-time libsodium initialisation. Layer: core (internal). Thread-safe.
#pragma once

namespace moosicbox::p2p::detail {
/// ensure_sodium initialises libsodium once; aborts if it cannot (no usable CSPRNG).
void ensure_sodium() noexcept;
}  // namespace moosicbox::p2p::detail
