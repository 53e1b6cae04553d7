// SPDX-License-Identifier: MIT OR Apache-2.0
// sockaddr.hpp: conversions between SocketAddr and the kernel's sockaddr structures.
// Layer: env (internal to src/env). Stateless; thread-safe.
#pragma once

#include <sys/socket.h>

#include <optional>

#include "moosicbox/p2p/env/socket_addr.hpp"

namespace moosicbox::p2p::env::detail {

/// to_sockaddr writes `addr` as a sockaddr_in or sockaddr_in6 into `out` and returns its length.
socklen_t to_sockaddr(const SocketAddr& addr, ::sockaddr_storage& out) noexcept;

/// from_sockaddr reads a sockaddr_in or sockaddr_in6; nullopt for any other family or a short length.
std::optional<SocketAddr> from_sockaddr(const ::sockaddr_storage& in, socklen_t len) noexcept;

}  // namespace moosicbox::p2p::env::detail
