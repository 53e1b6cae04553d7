// SPDX-License-Identifier: MIT OR Apache-2.0
// asio.hpp: the Boost.Asio names the public API uses (awaitable, executors), under p2p::asio.
// Layer: core. Header-only aliases.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

namespace moosicbox::p2p {
/// asio is Boost.Asio: `p2p::asio::awaitable<T>` is the return type of every operation that waits.
namespace asio = boost::asio;
}  // namespace moosicbox::p2p
