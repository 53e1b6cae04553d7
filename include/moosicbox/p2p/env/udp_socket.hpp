// SPDX-License-Identifier: MIT OR Apache-2.0
// udp_socket.hpp: UdpSocket, the real datagram I/O seam. A non-blocking UDP socket (IPv4, IPv6 or
// dual-stack) with two I/O paths: the Linux fast path (batched sends with sendmmsg and UDP GSO,
// batched receives with recvmmsg and UDP GRO, where the kernel has them) and the portable POSIX path
// (one sendmsg / recvmsg per datagram). Both report the local destination address of every datagram
// (packet info) and carry ECN marks. Readiness waits run on an asio executor, so a driver drains many
// datagrams per wakeup: `co_await wait_readable()`, then try_receive_batch until it returns 0.
// Layer: env (POSIX; the fast path on Linux). A UdpSocket belongs to its executor: call it from that
// executor's thread only.
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

namespace detail {
struct UdpSocketAccess;
}  // namespace detail

/// UdpIoPath selects how a UdpSocket talks to the kernel.
enum class UdpIoPath : std::uint8_t {
  /// automatic is the build's default: `fast` on Linux, `portable` when the library was configured
  /// with MOOSICBOX_P2P_PORTABLE_SOCKETS=ON or for a platform other than Linux (see
  /// UdpSocket::default_io_path()).
  automatic,
  /// fast batches system calls (sendmmsg / recvmmsg, up to UdpSocket::kBatchMax messages each) and
  /// uses UDP GSO and GRO where the kernel has them; where it refuses them at run time the socket
  /// falls back by itself (see UdpSocketStats). Linux only: elsewhere it means `portable`.
  fast,
  /// portable sends and receives one datagram per system call (sendmsg / recvmsg), never uses GSO or
  /// GRO, and needs only POSIX sockets with RFC 3542 IPv6 packet info.
  portable,
};

/// UdpSocketOptions tunes UdpSocket::bind. The defaults suit a QUIC endpoint.
struct UdpSocketOptions {
  /// v6_only makes an IPv6 socket IPv6-only (IPV6_V6ONLY=1). By default an IPv6 socket is dual-stack
  /// (bound to [::] it also receives IPv4, and IPv4 destinations are accepted).
  bool v6_only = false;
  /// io_path selects the fast (batched, GSO / GRO) or the portable (one datagram per system call)
  /// I/O path; `automatic` takes the build's default.
  UdpIoPath io_path = UdpIoPath::automatic;
  /// gso enables UDP generic segmentation offload when the kernel supports it (fast path only).
  bool gso = true;
  /// gro enables UDP generic receive offload (coalesced receives) when the kernel supports it (fast
  /// path only).
  bool gro = true;
  /// receive_buffer_bytes sets SO_RCVBUF (0 keeps the system default).
  int receive_buffer_bytes = 0;
  /// send_buffer_bytes sets SO_SNDBUF (0 keeps the system default).
  int send_buffer_bytes = 0;
};

/// UdpSocketStats counts what a socket did since it was bound. Counters only grow.
/// The fallback counters tell a socket that asked for the fast path but runs (partly) without it:
/// all zero means it got everything it asked for (or it was bound with the portable path, which
/// falls back from nothing).
struct UdpSocketStats {
  std::uint64_t send_calls = 0;          ///< send system calls made (sendmmsg, or sendmsg per datagram)
  std::uint64_t messages_sent = 0;       ///< messages the kernel accepted (one GSO send counts 1)
  std::uint64_t datagrams_sent = 0;      ///< datagrams the kernel accepted (one GSO send of N counts N)
  std::uint64_t bytes_sent = 0;          ///< payload bytes the kernel accepted
  std::uint64_t datagrams_dropped = 0;   ///< datagrams not sent: per-datagram errors, or the unsent rest
                                         ///< of a transmit the socket had to split
  std::uint64_t receive_calls = 0;       ///< receive system calls made (recvmmsg, or recvmsg per datagram)
  std::uint64_t messages_received = 0;   ///< receive buffers filled (one GRO read counts 1)
  std::uint64_t datagrams_received = 0;  ///< whole datagrams received (one GRO read of N counts N)
  std::uint64_t bytes_received = 0;      ///< bytes written into receive buffers
  std::uint64_t truncated_received = 0;  ///< receives cut by a too-small buffer (MSG_TRUNC)
  std::uint64_t gso_fallbacks = 0;       ///< GSO asked for but refused: by the kernel at bind (no
                                         ///< UDP_SEGMENT), or by a send (EIO, EINVAL, EOPNOTSUPP: e.g.
                                         ///< a device without checksum offload); the refused
                                         ///< datagrams were resent one by one. At most 1.
  std::uint64_t gro_fallbacks = 0;       ///< GRO asked for but the kernel refused UDP_GRO at bind. At most 1.
  std::uint64_t batch_fallbacks = 0;     ///< sendmmsg or recvmmsg missing (ENOSYS): that direction now
                                         ///< makes one system call per datagram. At most 2.
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

  /// default_io_path returns what UdpIoPath::automatic means in this build: UdpIoPath::fast or
  /// UdpIoPath::portable.
  [[nodiscard]] static UdpIoPath default_io_path() noexcept;

  /// local_addr returns the bound address, with the port the kernel picked for port 0.
  [[nodiscard]] SocketAddr local_addr() const noexcept;
  /// io_path returns the path the socket was bound with: UdpIoPath::fast or UdpIoPath::portable
  /// (never automatic). A fast socket may since have fallen back in part; gso_enabled(),
  /// gro_enabled(), send_batching_enabled() and receive_batching_enabled() tell what it uses now.
  [[nodiscard]] UdpIoPath io_path() const noexcept;
  /// gso_segments_max returns how many segments one transmit should carry for a single system call:
  /// kGsoSegmentsMax with GSO, 1 without (transmits with more segments are still accepted and split).
  /// It drops to 1 when the kernel refuses a GSO send.
  [[nodiscard]] std::size_t gso_segments_max() const noexcept;
  /// gso_enabled is true while sends use UDP GSO (gso_segments_max() > 1).
  [[nodiscard]] bool gso_enabled() const noexcept;
  /// gro_enabled is true when receives may coalesce several datagrams into one buffer.
  [[nodiscard]] bool gro_enabled() const noexcept;
  /// send_batching_enabled is true while one system call sends several messages (sendmmsg).
  [[nodiscard]] bool send_batching_enabled() const noexcept;
  /// receive_batching_enabled is true while one system call receives several messages (recvmmsg).
  [[nodiscard]] bool receive_batching_enabled() const noexcept;
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
  /// (fast path: up to kBatchMax messages per sendmmsg, one message per transmit with GSO; portable
  /// path: one sendmsg per datagram). It returns how many
  /// transmits it consumed: all of them, or fewer when the socket's send buffer is full (would block:
  /// wait_writable, then send the rest). 0 therefore means "would block, nothing sent".
  /// When the kernel refuses a GSO send, its datagrams are resent one by one and the socket stops
  /// using GSO (stats().gso_fallbacks); nothing is lost to the fallback itself.
  /// A transmit that fails on its own (too large, unreachable destination, a source address that is
  /// not local, an IPv6 destination on an IPv4 socket...) is dropped like a lost datagram: it counts
  /// as consumed and in stats().datagrams_dropped, and the batch goes on. A transmit the socket split
  /// (no GSO, or more segments than one send carries) whose first part went out before the buffer
  /// filled also counts as consumed; its unsent segments are dropped.
  /// Errors: network_error when the socket itself fails (closed, bad descriptor); the transmits
  /// before it were sent.
  [[nodiscard]] P2PResult<std::size_t> try_send_batch(std::span<const Transmit> transmits);

  /// try_receive_batch receives into up to min(buffers.size(), metas.size()) buffers without
  /// blocking (fast path: up to kBatchMax per recvmmsg; portable path: one recvmsg per buffer) and
  /// describes each filled buffer in metas[i]. It returns
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
  friend struct detail::UdpSocketAccess;
  struct Impl;
  explicit UdpSocket(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

static_assert(DatagramSocket<UdpSocket>);

}  // namespace moosicbox::p2p::env
