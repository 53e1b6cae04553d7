// SPDX-License-Identifier: MIT OR Apache-2.0
// udp_socket.hpp: UdpSocket, the real datagram I/O seam. A non-blocking UDP socket (IPv4, IPv6 or
// dual-stack) with batched sends (sendmmsg, UDP GSO when the kernel has it) and batched receives
// (recvmmsg, UDP GRO), the local destination address of every datagram (IP_PKTINFO /
// IPV6_RECVPKTINFO) and ECN marks. Readiness waits run on an asio executor, so a driver drains many
// datagrams per wakeup: `co_await wait_readable()`, then try_receive_batch until it returns 0.
// Layer: env (Linux). A UdpSocket belongs to its executor: call it from that executor's thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "moosicbox/p2p/core/asio.hpp"
#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/env/concepts.hpp"
#include "moosicbox/p2p/env/datagram.hpp"
#include "moosicbox/p2p/env/socket_addr.hpp"

namespace moosicbox::p2p::env {

/// UdpSocketOptions tunes UdpSocket::bind. The defaults suit a QUIC endpoint.
struct UdpSocketOptions {
  /// v6_only makes an IPv6 socket IPv6-only (IPV6_V6ONLY=1). By default an IPv6 socket is dual-stack
  /// (bound to [::] it also receives IPv4, and IPv4 destinations are accepted).
  bool v6_only = false;
  /// gso enables UDP generic segmentation offload when the kernel supports it.
  bool gso = true;
  /// gro enables UDP generic receive offload (coalesced receives) when the kernel supports it.
  bool gro = true;
  /// receive_buffer_bytes sets SO_RCVBUF (0 keeps the system default).
  int receive_buffer_bytes = 0;
  /// send_buffer_bytes sets SO_SNDBUF (0 keeps the system default).
  int send_buffer_bytes = 0;
};

/// UdpSocketStats counts what a socket did since it was bound. Counters only grow.
struct UdpSocketStats {
  std::uint64_t send_calls = 0;          ///< sendmmsg system calls made
  std::uint64_t messages_sent = 0;       ///< messages the kernel accepted (one GSO send counts 1)
  std::uint64_t datagrams_sent = 0;      ///< datagrams the kernel accepted (one GSO send of N counts N)
  std::uint64_t bytes_sent = 0;          ///< payload bytes the kernel accepted
  std::uint64_t datagrams_dropped = 0;   ///< datagrams not sent: per-datagram errors, or the unsent rest
                                         ///< of a transmit the socket had to split
  std::uint64_t receive_calls = 0;       ///< recvmmsg system calls made
  std::uint64_t messages_received = 0;   ///< receive buffers filled (one GRO read counts 1)
  std::uint64_t datagrams_received = 0;  ///< whole datagrams received (one GRO read of N counts N)
  std::uint64_t bytes_received = 0;      ///< bytes written into receive buffers
  std::uint64_t truncated_received = 0;  ///< receives cut by a too-small buffer (MSG_TRUNC)
};

/// UdpSocket is a bound, non-blocking UDP socket. Move-only; destroying or closing it ends pending
/// waits with P2PErrc::cancelled.
class UdpSocket {
 public:
  /// kBatchMax is the number of messages one sendmmsg / recvmmsg call carries at most.
  static constexpr std::size_t kBatchMax = 32;
  /// kGsoSegmentsMax is the most segments one GSO send carries: UDP_MAX_SEGMENTS of every kernel with
  /// GSO (newer kernels accept 128).
  static constexpr std::size_t kGsoSegmentsMax = 64;

  /// bind opens a UDP socket of the address's family, sets it up (dual-stack unless
  /// options.v6_only, don't-fragment, packet info, ECN, GSO and GRO where available) and binds it to
  /// `addr` (port 0 picks a free port; see local_addr()). Its waits run on `ex`.
  /// Errors: network_error naming the call, the address and the system's reason, e.g.
  /// "bind 127.0.0.1:9: Permission denied", "bind [::1]:4433: Address already in use";
  /// invalid_configuration for a negative buffer size.
  [[nodiscard]] static P2PResult<UdpSocket> bind(asio::any_io_executor ex, const SocketAddr& addr,
                                                 const UdpSocketOptions& options = {});

  /// Move-only: moving transfers the socket, and the moved-from object may only be destroyed or
  /// assigned to. Assigning over a socket first closes the one it held.
  ///@{
  UdpSocket(UdpSocket&&) noexcept;
  UdpSocket& operator=(UdpSocket&&) noexcept;
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;
  ///@}
  /// ~UdpSocket closes the socket.
  ~UdpSocket();

  /// local_addr returns the bound address, with the port the kernel picked for port 0.
  [[nodiscard]] SocketAddr local_addr() const noexcept;
  /// gso_segments_max returns how many segments one transmit should carry for a single system call:
  /// kGsoSegmentsMax with GSO, 1 without (transmits with more segments are still accepted and split).
  [[nodiscard]] std::size_t gso_segments_max() const noexcept;
  /// gro_enabled is true when receives may coalesce several datagrams into one buffer.
  [[nodiscard]] bool gro_enabled() const noexcept;
  /// is_dual_stack is true for an IPv6 socket that also carries IPv4.
  [[nodiscard]] bool is_dual_stack() const noexcept;
  /// receive_buffer_bytes returns the kernel's effective receive buffer (after its cap at
  /// net.core.rmem_max, unless the process may exceed it), or 0 on error.
  [[nodiscard]] int receive_buffer_bytes() const noexcept;
  /// is_open is false after close().
  [[nodiscard]] bool is_open() const noexcept;
  /// stats returns the counters.
  [[nodiscard]] const UdpSocketStats& stats() const noexcept;
  /// executor returns the executor the waits run on.
  [[nodiscard]] asio::any_io_executor executor() const;

  /// try_send_batch sends transmits in order without blocking, with as few system calls as possible
  /// (up to kBatchMax messages per sendmmsg; one message per transmit with GSO). It returns how many
  /// transmits it consumed: all of them, or fewer when the socket's send buffer is full (would block:
  /// wait_writable, then send the rest). 0 therefore means "would block, nothing sent".
  /// A transmit that fails on its own (too large, unreachable destination, a source address that is
  /// not local, an IPv6 destination on an IPv4 socket...) is dropped like a lost datagram: it counts
  /// as consumed and in stats().datagrams_dropped, and the batch goes on. A transmit the socket split
  /// (no GSO, or more segments than one send carries) whose first part went out before the buffer
  /// filled also counts as consumed; its unsent segments are dropped.
  /// Errors: network_error when the socket itself fails (closed, bad descriptor); the transmits
  /// before it were sent.
  [[nodiscard]] P2PResult<std::size_t> try_send_batch(std::span<const Transmit> transmits);

  /// try_receive_batch receives into up to min(buffers.size(), metas.size()) buffers without
  /// blocking (up to kBatchMax per recvmmsg) and describes each filled buffer in metas[i]. It returns
  /// the number of buffers filled; 0 means would block (nothing queued). A buffer may hold several
  /// GRO-coalesced datagrams: iterate Segments(buffers[i], metas[i]).
  /// Errors: network_error when the socket itself fails (closed, bad descriptor).
  [[nodiscard]] P2PResult<std::size_t> try_receive_batch(std::span<const std::span<std::byte>> buffers,
                                                         std::span<RecvMeta> metas);

  /// wait_readable completes when a datagram is queued (or an error is pending). It may complete
  /// spuriously; try_receive_batch then returns 0. Errors: cancelled when cancel() or close() is
  /// called, the socket is destroyed, or the awaiting operation is cancelled (the losing side of
  /// `co_await (a || b)`); network_error when the socket is closed or the reactor fails.
  [[nodiscard]] asio::awaitable<P2PResult<void>> wait_readable();
  /// wait_writable completes when the send buffer has room again. Errors: as wait_readable.
  [[nodiscard]] asio::awaitable<P2PResult<void>> wait_writable();

  /// cancel ends pending waits with P2PErrc::cancelled. The socket stays open.
  void cancel() noexcept;
  /// close cancels pending waits and closes the socket; later calls fail with network_error.
  void close() noexcept;

 private:
  struct Impl;
  explicit UdpSocket(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

static_assert(DatagramSocket<UdpSocket>);

}  // namespace moosicbox::p2p::env
