// SPDX-License-Identifier: MIT OR Apache-2.0
// beast.hpp: what Boost.Beast needs to run on a simulated TcpStream: the websocket teardown hooks
// (found by argument-dependent lookup) and beast_close_socket (for beast::close_socket). A TcpStream
// has no next layer, so beast::get_lowest_layer(stream) is the stream itself, and
// websocket::stream<simnet::TcpStream> works like websocket::stream<tcp_stream>.
// Layer: simnet. Single-threaded like the stream.
#pragma once

#include <utility>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/role.hpp>

#include "moosicbox/p2p/simnet/network.hpp"

namespace moosicbox::p2p::simnet {

namespace detail {
/// start_teardown sends end of file, reads until the peer's, closes, then completes `handler`.
void start_teardown(boost::beast::role_type role, TcpStream& stream,
                    asio::any_completion_handler<void(boost::system::error_code)> handler);
}  // namespace detail

/// teardown ends a WebSocket's stream synchronously: it sends end of file and closes at once (a
/// simulated stream cannot block the thread stepping the simulation). Never fails.
void teardown(boost::beast::role_type role, TcpStream& stream, boost::beast::error_code& ec);

/// async_teardown ends a WebSocket's stream: end of file to the peer, then read until the peer's end of
/// file, then close. Completes through the handler's executor. Errors: connection_reset when the
/// stream was reset, operation_aborted when it was closed meanwhile.
template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, TcpStream& stream, TeardownHandler&& handler) {
  detail::start_teardown(
      role, stream,
      asio::any_completion_handler<void(boost::system::error_code)>(std::forward<TeardownHandler>(handler)));
}

/// beast_close_socket closes the stream (what beast::close_socket calls).
inline void beast_close_socket(TcpStream& stream) { stream.close(); }

}  // namespace moosicbox::p2p::simnet
