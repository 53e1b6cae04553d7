// SPDX-License-Identifier: MIT OR Apache-2.0
// assert.hpp: MOOSICBOX_P2P_ASSERT, the check for programmer errors (broken invariants), never for bad input.
// Layer: core. Thread-safe: it only reads its arguments and aborts.
#pragma once

namespace moosicbox::p2p::detail {
/// assert_fail prints the failed expression with its location to stderr and aborts.
[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const char* func) noexcept;
}  // namespace moosicbox::p2p::detail

/// MOOSICBOX_P2P_ASSERT(cond) aborts with the expression and its location when `cond` is false. It stays on in
/// release builds: a broken invariant in a network library must stop the process, not corrupt state.
#define MOOSICBOX_P2P_ASSERT(cond)                                                                          \
  do {                                                                                                      \
    if (!(cond)) [[unlikely]] {                                                                             \
      ::moosicbox::p2p::detail::assert_fail(#cond, __FILE__, __LINE__, static_cast<const char*>(__func__)); \
    }                                                                                                       \
  } while (false)
