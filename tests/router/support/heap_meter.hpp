// SPDX-License-Identifier: MIT OR Apache-2.0
// heap_meter.hpp: counts the bytes live on the heap (operator new / delete are replaced in
// heap_meter.cpp), so a test can show that a transfer's memory stays bounded.
// Layer: tests. Thread-safe (relaxed atomics).
#pragma once

#include <cstdint>

namespace moosicbox::p2p::testing {

/// heap_live_bytes returns the bytes currently allocated through operator new.
std::int64_t heap_live_bytes() noexcept;
/// heap_peak_bytes returns the largest heap_live_bytes() since the last heap_reset_peak().
std::int64_t heap_peak_bytes() noexcept;
/// heap_reset_peak starts a new peak measurement at the current live bytes.
void heap_reset_peak() noexcept;

}  // namespace moosicbox::p2p::testing
