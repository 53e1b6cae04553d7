// SPDX-License-Identifier: MIT OR Apache-2.0
// relay_faults.hpp: a fault-injection hook for tests: when set, every datagram that arrives through
// a relay passes through it (and may be altered) before the endpoint sees it, as if the relay
// tampered with it. Unset (the default) it costs one test of an empty std::function per datagram.
// Layer: endpoint (path layer), tests only. Set it before the endpoints run; not thread-safe.
#pragma once

#include <cstddef>
#include <functional>
#include <span>

namespace moosicbox::p2p::magicsock {

/// RelayReceiveFault alters one received datagram in place.
using RelayReceiveFault = std::function<void(std::span<std::byte> datagram)>;

/// relay_receive_fault is the process-wide hook (empty: no fault).
inline RelayReceiveFault& relay_receive_fault() {
  static RelayReceiveFault hook;
  return hook;
}

}  // namespace moosicbox::p2p::magicsock
