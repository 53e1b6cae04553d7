// SPDX-License-Identifier: MIT OR Apache-2.0
// run.hpp: helpers for router tests: running a coroutine to completion on a fresh io_context, and
// deterministic byte patterns for body checks.
// Layer: tests.
#pragma once

#include <cstdint>
#include <exception>
#include <optional>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "moosicbox/p2p/core/asio.hpp"
#include "moosicbox/p2p/core/bytes.hpp"

namespace moosicbox::p2p::testing {

/// run_sync runs the coroutine `make()` returns on a private io_context and returns its value.
template <class F>
auto run_sync(F make) {
  using T = typename decltype(make())::value_type;
  asio::io_context io;
  std::optional<T> out;
  std::exception_ptr error;
  asio::co_spawn(io, make(), [&](std::exception_ptr e, T v) {
    error = e;
    if (!e) out.emplace(std::move(v));
  });
  io.run();
  if (error) std::rethrow_exception(error);
  return std::move(*out);
}

/// pattern_byte is byte `i` of the test pattern: never periodic at a power of two, so an offset
/// error shows.
inline std::byte pattern_byte(std::uint64_t i) noexcept { return static_cast<std::byte>((i * 31 + i / 251) % 251); }

/// pattern returns `n` bytes of the pattern from `offset`.
inline Bytes pattern(std::size_t n, std::uint64_t offset = 0) {
  Bytes out(n);
  for (std::size_t k = 0; k < n; ++k) out[k] = pattern_byte(offset + k);
  return out;
}

}  // namespace moosicbox::p2p::testing
