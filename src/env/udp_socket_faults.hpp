// SPDX-License-Identifier: MIT OR Apache-2.0
// udp_socket_faults.hpp: kernel refusals a UdpSocket can be made to see on purpose, so the run-time
// fallbacks (no GSO, no GRO, no sendmmsg / recvmmsg) are testable on a kernel that has everything.
// Layer: env (internal to src/env and its tests). Value types; a socket's faults belong to it.
#pragma once

#include "moosicbox/p2p/env/udp_socket.hpp"

namespace moosicbox::p2p::env::detail {

/// UdpFaults lists the refusals to fake. Each stands in for the kernel's answer; everything else
/// still goes to the real kernel.
struct UdpFaults {
  /// gso_send_errno, when non-zero, makes every send message carrying a UDP_SEGMENT control message
  /// fail with this errno (EIO is what a device without checksum offload answers), as the kernel
  /// would: sendmmsg sends the messages before it and reports the failure on the next call.
  int gso_send_errno = 0;
  /// gso_option_refused makes the bind-time UDP_SEGMENT probe fail (an old kernel).
  bool gso_option_refused = false;
  /// gro_option_refused makes setsockopt(UDP_GRO) fail at bind (an old kernel).
  bool gro_option_refused = false;
  /// no_sendmmsg makes sendmmsg fail with ENOSYS.
  bool no_sendmmsg = false;
  /// no_recvmmsg makes recvmmsg fail with ENOSYS.
  bool no_recvmmsg = false;
};

/// UdpSocketAccess reaches the socket's internals for tests.
struct UdpSocketAccess {
  /// bind_with_faults is UdpSocket::bind on a socket that sees `faults`.
  [[nodiscard]] static P2PResult<UdpSocket> bind_with_faults(asio::any_io_executor ex, const SocketAddr& addr,
                                                             const UdpSocketOptions& options, const UdpFaults& faults);
};

}  // namespace moosicbox::p2p::env::detail
