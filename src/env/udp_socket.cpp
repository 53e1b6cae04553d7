// SPDX-License-Identifier: MIT OR Apache-2.0
// udp_socket.cpp: UdpSocket on POSIX systems. Socket options at bind, then one of two I/O paths:
// the Linux fast path (sendmmsg with UDP_SEGMENT (GSO), recvmmsg with UDP_GRO) and the portable
// path (one sendmsg / recvmsg per datagram), both with packet info (IP_PKTINFO on Linux,
// IP_RECVDSTADDR / IP_SENDSRCADDR on the BSDs and macOS, IPV6_PKTINFO everywhere) and ECN control
// messages. A fast socket falls back at run time where the kernel refuses GSO, GRO, sendmmsg or
// recvmmsg. Readiness waits go through asio's reactor (async_wait on the native socket; the I/O
// itself is our own system calls). Every Linux-only name is behind a preprocessor guard.
// Layer: env. A socket and its scratch buffers belong to the executor's thread.

// Apple hides the RFC 3542 IPv6 packet-info API (IPV6_RECVPKTINFO) unless this comes first. The
// build defines it too, for the precompiled header.
#if defined(__APPLE__) && !defined(__APPLE_USE_RFC_3542)
#define __APPLE_USE_RFC_3542 1
#endif

#include "moosicbox/p2p/env/udp_socket.hpp"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstring>
#include <system_error>

#include "core/log.hpp"
#include "env/sockaddr.hpp"
#include "env/udp_socket_faults.hpp"

// The fast path: sendmmsg / recvmmsg (Linux, and Android's bionic). GSO and GRO need their socket
// options in the C library's headers as well.
#if defined(__linux__)
#define MOOSICBOX_P2P_UDP_FAST_PATH 1
#else
#define MOOSICBOX_P2P_UDP_FAST_PATH 0
#endif
#if MOOSICBOX_P2P_UDP_FAST_PATH && defined(UDP_SEGMENT)
#define MOOSICBOX_P2P_UDP_GSO 1
#else
#define MOOSICBOX_P2P_UDP_GSO 0
#endif
#if MOOSICBOX_P2P_UDP_FAST_PATH && defined(UDP_GRO)
#define MOOSICBOX_P2P_UDP_GRO 1
#else
#define MOOSICBOX_P2P_UDP_GRO 0
#endif

// IPv4 packet info. Receive: IP_PKTINFO (struct in_pktinfo) on Linux, IP_RECVDSTADDR (struct
// in_addr) on the BSDs and macOS. Send: IP_PKTINFO on Linux, IP_SENDSRCADDR (struct in_addr) where
// it exists, else IP_PKTINFO's ipi_spec_dst.
#if defined(__linux__) && defined(IP_PKTINFO)
#define MOOSICBOX_P2P_UDP_V4_RECV_PKTINFO 1
#define MOOSICBOX_P2P_UDP_V4_RECV_DSTADDR 0
#elif defined(IP_RECVDSTADDR)
#define MOOSICBOX_P2P_UDP_V4_RECV_PKTINFO 0
#define MOOSICBOX_P2P_UDP_V4_RECV_DSTADDR 1
#else
#define MOOSICBOX_P2P_UDP_V4_RECV_PKTINFO 0
#define MOOSICBOX_P2P_UDP_V4_RECV_DSTADDR 0
#endif
#if defined(__linux__) && defined(IP_PKTINFO)
#define MOOSICBOX_P2P_UDP_V4_SEND_PKTINFO 1
#define MOOSICBOX_P2P_UDP_V4_SEND_SRCADDR 0
#elif defined(IP_SENDSRCADDR)
#define MOOSICBOX_P2P_UDP_V4_SEND_PKTINFO 0
#define MOOSICBOX_P2P_UDP_V4_SEND_SRCADDR 1
#elif defined(IP_PKTINFO)
#define MOOSICBOX_P2P_UDP_V4_SEND_PKTINFO 1
#define MOOSICBOX_P2P_UDP_V4_SEND_SRCADDR 0
#else
#define MOOSICBOX_P2P_UDP_V4_SEND_PKTINFO 0
#define MOOSICBOX_P2P_UDP_V4_SEND_SRCADDR 0
#endif

namespace moosicbox::p2p::env {
namespace {

// What UdpIoPath::automatic means in this build (MOOSICBOX_P2P_PORTABLE_SOCKETS is the CMake option
// of that name, set on this target only).
#if !MOOSICBOX_P2P_UDP_FAST_PATH || defined(MOOSICBOX_P2P_PORTABLE_SOCKETS)
constexpr UdpIoPath kDefaultIoPath = UdpIoPath::portable;
#else
constexpr UdpIoPath kDefaultIoPath = UdpIoPath::fast;
#endif

// The socket is non-blocking; MSG_DONTWAIT (not POSIX, but on every target) only says so again.
#if defined(MSG_DONTWAIT)
constexpr int kDontWait = MSG_DONTWAIT;
#else
constexpr int kDontWait = 0;
#endif

// Message is one entry of a batch: a msghdr and the bytes the kernel moved. On Linux it is the
// kernel's own mmsghdr, so a batch goes to sendmmsg / recvmmsg as it is.
#if MOOSICBOX_P2P_UDP_FAST_PATH
using Message = ::mmsghdr;
#else
struct Message {
  ::msghdr msg_hdr;
  unsigned int msg_len;
};
#endif

// The field types of msghdr and cmsghdr differ between C libraries (size_t on glibc, socklen_t on
// the BSDs).
using ControlLength = decltype(::msghdr{}.msg_controllen);
using CmsgLength = decltype(::cmsghdr{}.cmsg_len);

// Room for the largest set of control messages of one datagram: on send UDP_SEGMENT, a PKTINFO and
// a TOS / traffic class; on receive PKTINFO from both families, TOS, traffic class and UDP_GRO.
constexpr std::size_t kControlBytes = 256;

struct alignas(::cmsghdr) ControlBuffer {
  std::array<std::byte, kControlBytes> bytes;
};

std::string errno_text(int err) { return std::generic_category().message(err); }

P2PError sys_error(std::string_view call, int err) {
  return P2PError::network(fmt::format("{}: {}", call, errno_text(err)));
}

bool is_link_local_v6(const std::array<std::uint8_t, 16>& ip) noexcept {
  return ip[0] == 0xfe && (ip[1] & 0xc0) == 0x80;
}

// buffer_bytes returns the size of socket buffer `name` (SO_RCVBUF or SO_SNDBUF) in effect, 0 on
// error. Linux reports it with its bookkeeping doubled in; this is the size as asked for.
int buffer_bytes(int fd, int name) noexcept {
  int got = 0;
  socklen_t len = sizeof(got);
  if (::getsockopt(fd, SOL_SOCKET, name, &got, &len) != 0) return 0;
#if defined(__linux__)
  return got / 2;
#else
  return got;
#endif
}

// set_int_option sets an int socket option; returns errno on failure, 0 on success.
int set_int_option(int fd, int level, int name, int value) noexcept {
  return ::setsockopt(fd, level, name, &value, sizeof(value)) == 0 ? 0 : errno;
}

// open_socket makes a non-blocking, close-on-exec UDP socket: in one call where the system has the
// socket type flags, with fcntl elsewhere (macOS). Returns -1 with errno set on failure.
int open_socket(int family) noexcept {
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
  return ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
#else
  const int fd = ::socket(family, SOCK_DGRAM, IPPROTO_UDP);
  if (fd < 0) return -1;
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 || ::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    const int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
#endif
}

// FdGuard closes a descriptor unless released: bind's early returns must not leak it.
class FdGuard {
 public:
  explicit FdGuard(int fd) noexcept : fd_(fd) {}
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  ~FdGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  int release() noexcept { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Errors that concern the socket itself rather than one datagram: after them no send or receive
// can succeed, so the caller must hear about them.
bool is_socket_error(int err) noexcept { return err == EBADF || err == ENOTSOCK || err == EFAULT || err == EOPNOTSUPP; }

// is_gso_refusal is true for the errors with which a kernel or device turns down a GSO send: EIO
// (no checksum offload on the device, e.g. some tunnels), EINVAL (a segment larger than the
// device's MTU, an old kernel's limits) and EOPNOTSUPP / ENOTSUP.
bool is_gso_refusal(int err) noexcept {
#if ENOTSUP != EOPNOTSUPP
  if (err == ENOTSUP) return true;
#endif
  return err == EIO || err == EINVAL || err == EOPNOTSUPP;
}

// Fallback logging: a refusal matters once per host, not once per socket, so the first of each
// kind in the process is logged at `first` level and the rest at debug level.
enum class Fallback : std::uint8_t { gso_bind, gro_bind, gso_send, sendmmsg, recvmmsg, count };
std::array<std::atomic<bool>, static_cast<std::size_t>(Fallback::count)> g_fallback_logged{};

void log_fallback(Fallback kind, spdlog::level::level_enum first, const std::string& text) {
  const bool seen = g_fallback_logged[static_cast<std::size_t>(kind)].exchange(true, std::memory_order_relaxed);
  logger().log(seen ? spdlog::level::debug : first, "{}", text);
}

void put_cmsg(::msghdr& msg, std::size_t& used, int level, int type, const void* data, std::size_t len) noexcept {
  // Filling in order: the next header starts at the aligned end of the previous one.
  const std::size_t space = CMSG_SPACE(len);
  MOOSICBOX_P2P_ASSERT(used + space <= msg.msg_controllen);
  auto* base = static_cast<unsigned char*>(msg.msg_control);
  ::cmsghdr hdr{};
  hdr.cmsg_level = level;
  hdr.cmsg_type = type;
  hdr.cmsg_len = static_cast<CmsgLength>(CMSG_LEN(len));
  std::memcpy(base + used, &hdr, sizeof(hdr));
  std::memcpy(base + used + (CMSG_LEN(0)), data, len);
  used += space;
}

// IoResult is what one send or receive step did: `done` messages moved, and the errno that stopped
// it before all were moved (0 when all were, or when the kernel reports the stop on the next call).
struct IoResult {
  std::size_t done = 0;
  int err = 0;
};

}  // namespace

struct UdpSocket::Impl {
  explicit Impl(asio::any_io_executor ex) : socket(std::move(ex)) {}

  // One planned message of a send batch: which transmit and which bytes of it.
  struct SendSlot {
    std::size_t transmit = 0;
    std::size_t begin = 0;
    std::size_t end = 0;
    std::size_t datagrams = 0;
    bool gso = false;
  };

  static P2PResult<UdpSocket> bind(asio::any_io_executor ex, const SocketAddr& addr, const UdpSocketOptions& options,
                                   const detail::UdpFaults* faults);
  static asio::awaitable<P2PResult<void>> wait(Impl* self, asio::socket_base::wait_type type);

  // Per-transmit routing: the destination as the socket's family wants it, and which IP-level
  // control messages apply (IPv4 ones for IPv4 destinations even on a dual-stack socket).
  struct Route {
    ::sockaddr_storage name{};
    socklen_t name_len = 0;
    bool v4 = false;
  };
  [[nodiscard]] std::optional<Route> route(const Transmit& tx, std::string& why) const;
  void add_messages(const Transmit& tx, std::size_t index, const Route& r, std::size_t segments_max,
                    std::size_t& offset, std::size_t& n);
  void drop(const Transmit& tx, std::size_t offset, std::string_view why);
  void parse_received(Message& m, RecvMeta& meta);
  IoResult send_messages(std::size_t n);
  IoResult receive_messages(std::size_t n);
  IoResult send_with_faults(std::size_t n);
  void stop_gso(int err);

  asio::ip::udp::socket socket;
  int fd = -1;
  SocketAddr local;
  UdpIoPath path = UdpIoPath::portable;
  bool v6 = false;
  bool dual_stack = false;
  std::size_t gso_segments = 1;
  bool gro = false;
  bool batch_send = false;
  bool batch_receive = false;
  bool open = true;
  bool drop_logged = false;
  bool ctrunc_logged = false;
  bool faulty = false;  // faults holds something to fake: checked once per system call
  detail::UdpFaults faults;
  UdpSocketStats stats;

  // Scratch for one system call, reused: no allocation per batch.
  std::array<Message, kBatchMax> msgs{};
  std::array<::iovec, kBatchMax> iovs{};
  std::array<::sockaddr_storage, kBatchMax> names{};
  std::array<ControlBuffer, kBatchMax> controls{};
  std::array<SendSlot, kBatchMax> slots{};
};

UdpIoPath UdpSocket::default_io_path() noexcept { return kDefaultIoPath; }

P2PResult<UdpSocket> UdpSocket::bind(asio::any_io_executor ex, const SocketAddr& addr,
                                     const UdpSocketOptions& options) {
  return Impl::bind(std::move(ex), addr, options, nullptr);
}

P2PResult<UdpSocket> detail::UdpSocketAccess::bind_with_faults(asio::any_io_executor ex, const SocketAddr& addr,
                                                               const UdpSocketOptions& options,
                                                               const UdpFaults& faults) {
  return UdpSocket::Impl::bind(std::move(ex), addr, options, &faults);
}

P2PResult<UdpSocket> UdpSocket::Impl::bind(asio::any_io_executor ex, const SocketAddr& addr,
                                           const UdpSocketOptions& options, const detail::UdpFaults* faults) {
  if (options.receive_buffer_bytes < 0 || options.send_buffer_bytes < 0) {
    return fail(P2PError::invalid_configuration("UDP socket buffer sizes must not be negative"));
  }
  const bool v6 = addr.is_v6();
  const int family = v6 ? AF_INET6 : AF_INET;
  const int fd = open_socket(family);
  if (fd < 0) return fail(sys_error(fmt::format("socket for {}", addr), errno));
  FdGuard guard(fd);

  auto impl = std::make_unique<Impl>(std::move(ex));
  impl->fd = fd;
  impl->v6 = v6;
  if (faults != nullptr) {
    impl->faults = *faults;
    impl->faulty = true;
  }
  impl->path = options.io_path == UdpIoPath::automatic ? kDefaultIoPath : options.io_path;
#if !MOOSICBOX_P2P_UDP_FAST_PATH
  impl->path = UdpIoPath::portable;  // nothing else is built here
#endif
  const auto must = [&](int level, int name, int value, std::string_view what) -> P2PResult<void> {
    if (const int err = set_int_option(fd, level, name, value); err != 0) {
      return fail(sys_error(fmt::format("setsockopt {} on {}", what, addr), err));
    }
    return {};
  };
  // Improvements, not requirements: a kernel without them still carries QUIC, so failures are
  // logged and ignored.
  const auto may = [&](int level, int name, int value, std::string_view what) {
    if (const int err = set_int_option(fd, level, name, value); err != 0) {
      logger().debug("udp {}: setsockopt {} failed: {}", addr, what, errno_text(err));
    }
  };
  if (v6) {
    if (auto r = must(IPPROTO_IPV6, IPV6_V6ONLY, options.v6_only ? 1 : 0, "IPV6_V6ONLY"); !r) return fail(r.error());
    impl->dual_stack = !options.v6_only;
  }
  // The kernel silently caps SO_RCVBUF / SO_SNDBUF at net.core.{r,w}mem_max (212992 bytes on a
  // default Debian system): far below what absorbs a burst at gigabit rates. On Linux a process with
  // CAP_NET_ADMIN may go past the cap (the *FORCE options); otherwise the capped size is what we get,
  // and the effective size is read back and logged (UdpSocket::receive_buffer_bytes reports it).
  const auto set_buffer = [&](int name, int value, std::string_view what) -> P2PResult<void> {
#if defined(SO_RCVBUFFORCE) && defined(SO_SNDBUFFORCE)
    const int force_name = name == SO_RCVBUF ? SO_RCVBUFFORCE : SO_SNDBUFFORCE;
    if (set_int_option(fd, SOL_SOCKET, force_name, value) == 0) return {};
#endif
    if (auto r = must(SOL_SOCKET, name, value, what); !r) return r;
    if (const int got = buffer_bytes(fd, name); got < value) {
      logger().debug("udp {}: {} capped at {} bytes (asked for {}; raise the system's {} buffer limit)", addr, what,
                     got, value, name == SO_RCVBUF ? "receive" : "send");
    }
    return {};
  };
  if (options.receive_buffer_bytes > 0) {
    if (auto r = set_buffer(SO_RCVBUF, options.receive_buffer_bytes, "SO_RCVBUF"); !r) return fail(r.error());
  }
  if (options.send_buffer_bytes > 0) {
    if (auto r = set_buffer(SO_SNDBUF, options.send_buffer_bytes, "SO_SNDBUF"); !r) return fail(r.error());
  }
  // The local address of every datagram: a socket bound to a wildcard address on a multi-homed host
  // must answer from the address it was reached at, or the peer's NAT and path checks reject it.
  const bool carries_v4 = !v6 || impl->dual_stack;
  if (carries_v4) {
#if MOOSICBOX_P2P_UDP_V4_RECV_PKTINFO
    if (auto r = must(IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO"); !r) return fail(r.error());
#elif MOOSICBOX_P2P_UDP_V4_RECV_DSTADDR
    // An IPv6 socket reports its IPv4 datagrams through IPV6_PKTINFO (as v4-mapped addresses), and
    // the BSDs may refuse IPv4 options on it.
    if (v6) {
      may(IPPROTO_IP, IP_RECVDSTADDR, 1, "IP_RECVDSTADDR");
    } else if (auto r = must(IPPROTO_IP, IP_RECVDSTADDR, 1, "IP_RECVDSTADDR"); !r) {
      return fail(r.error());
    }
#endif
  }
  if (v6) {
    if (auto r = must(IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO"); !r) return fail(r.error());
  }
  if (carries_v4) {
#if defined(IP_RECVTOS)
    may(IPPROTO_IP, IP_RECVTOS, 1, "IP_RECVTOS");
#endif
    // QUIC datagrams must not be fragmented (RFC 9000 section 14). Linux: PROBE sets DF and leaves
    // path MTU discovery to QUIC instead of the kernel's cache; elsewhere IP_DONTFRAG sets DF.
#if defined(IP_MTU_DISCOVER) && defined(IP_PMTUDISC_PROBE)
    may(IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE, "IP_MTU_DISCOVER");
#elif defined(IP_DONTFRAG)
    may(IPPROTO_IP, IP_DONTFRAG, 1, "IP_DONTFRAG");
#endif
  }
  if (v6) {
#if defined(IPV6_RECVTCLASS)
    may(IPPROTO_IPV6, IPV6_RECVTCLASS, 1, "IPV6_RECVTCLASS");
#endif
#if defined(IPV6_MTU_DISCOVER) && defined(IPV6_PMTUDISC_PROBE)
    may(IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_PROBE, "IPV6_MTU_DISCOVER");
#elif defined(IPV6_DONTFRAG)
    may(IPPROTO_IPV6, IPV6_DONTFRAG, 1, "IPV6_DONTFRAG");
#endif
  }
  if (impl->path == UdpIoPath::fast) {
    impl->batch_send = true;
    impl->batch_receive = true;
    if (options.gso) {
      int err = ENOPROTOOPT;
#if MOOSICBOX_P2P_UDP_GSO
      // Reading UDP_SEGMENT succeeds exactly on kernels that accept the UDP_SEGMENT control message.
      int size = 0;
      socklen_t len = sizeof(size);
      if (!impl->faults.gso_option_refused) {
        err = ::getsockopt(fd, IPPROTO_UDP, UDP_SEGMENT, &size, &len) == 0 ? 0 : errno;
      }
#endif
      if (err == 0) {
        impl->gso_segments = kGsoSegmentsMax;
      } else {
        ++impl->stats.gso_fallbacks;
        log_fallback(Fallback::gso_bind, spdlog::level::info,
                     fmt::format("udp {}: no UDP GSO ({}); sending one datagram per message", addr, errno_text(err)));
      }
    }
    if (options.gro) {
      int err = ENOPROTOOPT;
#if MOOSICBOX_P2P_UDP_GRO
      err = impl->faults.gro_option_refused ? ENOPROTOOPT : set_int_option(fd, IPPROTO_UDP, UDP_GRO, 1);
#endif
      if (err == 0) {
        impl->gro = true;
      } else {
        ++impl->stats.gro_fallbacks;
        log_fallback(Fallback::gro_bind, spdlog::level::info,
                     fmt::format("udp {}: no UDP GRO ({}); receiving one datagram per buffer", addr, errno_text(err)));
      }
    }
  }

  ::sockaddr_storage ss{};
  const socklen_t ss_len = detail::to_sockaddr(addr, ss);
  if (::bind(fd, reinterpret_cast<const ::sockaddr*>(&ss), ss_len) != 0) {
    return fail(sys_error(fmt::format("bind {}", addr), errno));
  }
  ::sockaddr_storage bound{};
  socklen_t bound_len = sizeof(bound);
  if (::getsockname(fd, reinterpret_cast<::sockaddr*>(&bound), &bound_len) != 0) {
    return fail(sys_error(fmt::format("getsockname after bind {}", addr), errno));
  }
  const auto local = detail::from_sockaddr(bound, bound_len);
  if (!local) return fail(P2PError::network(fmt::format("getsockname after bind {}: unexpected address family", addr)));
  impl->local = *local;

  boost::system::error_code ec;
  impl->socket.assign(v6 ? asio::ip::udp::v6() : asio::ip::udp::v4(), fd, ec);
  if (ec) return fail(P2PError::network(fmt::format("register {} with the reactor: {}", addr, ec.message())));
  guard.release();  // the asio socket owns the descriptor now
  logger().debug("udp {}: bound ({} path, gso {}, gro {}, dual-stack {})", impl->local,
                 impl->path == UdpIoPath::fast ? "fast" : "portable", impl->gso_segments > 1, impl->gro,
                 impl->dual_stack);
  return UdpSocket(std::move(impl));
}

UdpSocket::UdpSocket(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
UdpSocket::UdpSocket(UdpSocket&&) noexcept = default;
UdpSocket& UdpSocket::operator=(UdpSocket&&) noexcept = default;
UdpSocket::~UdpSocket() = default;

SocketAddr UdpSocket::local_addr() const noexcept {
  MOOSICBOX_P2P_ASSERT(impl_);
  return impl_->local;
}

UdpIoPath UdpSocket::io_path() const noexcept {
  MOOSICBOX_P2P_ASSERT(impl_);
  return impl_->path;
}

int UdpSocket::receive_buffer_bytes() const noexcept {
  MOOSICBOX_P2P_ASSERT(impl_);
  return buffer_bytes(impl_->fd, SO_RCVBUF);
}

std::size_t UdpSocket::gso_segments_max() const noexcept {
  MOOSICBOX_P2P_ASSERT(impl_);
  return impl_->gso_segments;
}

bool UdpSocket::gso_enabled() const noexcept {
  MOOSICBOX_P2P_ASSERT(impl_);
  return impl_->gso_segments > 1;
}

bool UdpSocket::gro_enabled() const noexcept {
  MOOSICBOX_P2P_ASSERT(impl_);
  return impl_->gro;
}

bool UdpSocket::send_batching_enabled() const noexcept {
  MOOSICBOX_P2P_ASSERT(impl_);
  return impl_->batch_send;
}

bool UdpSocket::receive_batching_enabled() const noexcept {
  MOOSICBOX_P2P_ASSERT(impl_);
  return impl_->batch_receive;
}

bool UdpSocket::is_dual_stack() const noexcept {
  MOOSICBOX_P2P_ASSERT(impl_);
  return impl_->dual_stack;
}

bool UdpSocket::is_open() const noexcept { return impl_ && impl_->open; }

const UdpSocketStats& UdpSocket::stats() const noexcept {
  MOOSICBOX_P2P_ASSERT(impl_);
  return impl_->stats;
}

asio::any_io_executor UdpSocket::executor() const {
  MOOSICBOX_P2P_ASSERT(impl_);
  return impl_->socket.get_executor();
}

std::optional<UdpSocket::Impl::Route> UdpSocket::Impl::route(const Transmit& tx, std::string& why) const {
  Route r;
  SocketAddr dest = tx.destination.canonical();
  r.v4 = dest.is_v4();
  if (r.v4 && v6) {
    if (!dual_stack) {
      why = "IPv4 destination on an IPv6-only socket";
      return std::nullopt;
    }
    dest = dest.to_v6_mapped();
  } else if (!r.v4 && !v6) {
    why = "IPv6 destination on an IPv4 socket";
    return std::nullopt;
  }
  if (tx.source && tx.source->canonical().is_v4() != r.v4) {
    why = fmt::format("source {} and destination differ in address family", *tx.source);
    return std::nullopt;
  }
  r.name_len = detail::to_sockaddr(dest, r.name);
  return r;
}

void UdpSocket::Impl::add_messages(const Transmit& tx, std::size_t index, const Route& r, std::size_t segments_max,
                                   std::size_t& offset, std::size_t& n) {
  const std::size_t size = tx.contents.size();
  const bool single = tx.segment_count() == 1;
  MOOSICBOX_P2P_ASSERT(!single || offset == 0);
  do {
    std::size_t len = size - offset;
    std::size_t datagrams = 1;
    bool gso = false;
    if (!single) {
      const std::size_t seg = tx.segment_size;
      const std::size_t left = (len + seg - 1) / seg;
      // One GSO send carries at most segments_max segments and one IP packet's worth of payload.
      const std::size_t fit = std::min({left, segments_max, std::max<std::size_t>(1, kDatagramBytesMax / seg)});
      len = std::min(len, fit * seg);
      datagrams = fit;
      gso = fit > 1;
    }
    auto& slot = slots[n];
    slot = SendSlot{index, offset, offset + len, datagrams, gso};
    names[n] = r.name;
    iovs[n].iov_base = const_cast<std::byte*>(tx.contents.data() + offset);
    iovs[n].iov_len = len;
    ::msghdr& h = msgs[n].msg_hdr;
    h = ::msghdr{};
    h.msg_name = &names[n];
    h.msg_namelen = r.name_len;
    h.msg_iov = &iovs[n];
    h.msg_iovlen = 1;
    h.msg_control = controls[n].bytes.data();
    h.msg_controllen = static_cast<ControlLength>(kControlBytes);
    std::size_t used = 0;
#if MOOSICBOX_P2P_UDP_GSO
    if (gso) {
      const auto seg = static_cast<std::uint16_t>(tx.segment_size);
      put_cmsg(h, used, IPPROTO_UDP, UDP_SEGMENT, &seg, sizeof(seg));
    }
#endif
    if (tx.source) {
      const SocketAddr src = tx.source->canonical();
      if (r.v4) {
#if MOOSICBOX_P2P_UDP_V4_SEND_PKTINFO
        ::in_pktinfo pi{};
        std::memcpy(&pi.ipi_spec_dst, src.ip_bytes().data(), 4);
        put_cmsg(h, used, IPPROTO_IP, IP_PKTINFO, &pi, sizeof(pi));
#elif MOOSICBOX_P2P_UDP_V4_SEND_SRCADDR
        // The BSDs accept IP_SENDSRCADDR on wildcard-bound IPv4 sockets only; a socket bound to one
        // address sends from it anyway.
        if (!v6 && local.is_unspecified()) {
          ::in_addr a{};
          std::memcpy(&a, src.ip_bytes().data(), 4);
          put_cmsg(h, used, IPPROTO_IP, IP_SENDSRCADDR, &a, sizeof(a));
        }
#endif
      } else {
        ::in6_pktinfo pi{};
        std::memcpy(&pi.ipi6_addr, src.ip_bytes().data(), 16);
        pi.ipi6_ifindex = src.scope_id();
        put_cmsg(h, used, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof(pi));
      }
    }
    if (tx.ecn != Ecn::not_ect) {
      if (r.v4) {
#if defined(__linux__)
        const int tos = static_cast<int>(tx.ecn);
#else
        const auto tos = static_cast<unsigned char>(tx.ecn);  // the BSDs take IP_TOS as one byte
#endif
        put_cmsg(h, used, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
      } else {
        const int tclass = static_cast<int>(tx.ecn);
        put_cmsg(h, used, IPPROTO_IPV6, IPV6_TCLASS, &tclass, sizeof(tclass));
      }
    }
    h.msg_controllen = static_cast<ControlLength>(used);
    if (used == 0) h.msg_control = nullptr;
    msgs[n].msg_len = 0;
    ++n;
    offset += len;
  } while (offset < size && n < kBatchMax);
}

void UdpSocket::Impl::drop(const Transmit& tx, std::size_t offset, std::string_view why) {
  std::size_t datagrams = 1;
  if (tx.segment_count() > 1) datagrams = (tx.contents.size() - offset + tx.segment_size - 1) / tx.segment_size;
  stats.datagrams_dropped += datagrams;
  // The first drop is worth a warning (a misconfigured route or MTU shows up here); repeating it for
  // every datagram would flood the log, so the rest go to debug.
  if (!drop_logged) {
    drop_logged = true;
    logger().warn("udp {}: dropped {} datagram(s) to {}: {} (further drops are logged at debug level)", local,
                  datagrams, tx.destination, why);
  } else {
    logger().debug("udp {}: dropped {} datagram(s) to {}: {}", local, datagrams, tx.destination, why);
  }
}

void UdpSocket::Impl::stop_gso(int err) {
  gso_segments = 1;
  ++stats.gso_fallbacks;
  log_fallback(Fallback::gso_send, spdlog::level::warn,
               fmt::format("udp {}: the kernel refused a GSO send ({}); this socket now sends one datagram per "
                           "message",
                           local, errno_text(err)));
}

IoResult UdpSocket::Impl::send_messages(std::size_t n) {
  if (faulty) [[unlikely]]
    return send_with_faults(n);
#if MOOSICBOX_P2P_UDP_FAST_PATH
  if (batch_send) {
    ++stats.send_calls;
    const int sent = ::sendmmsg(fd, msgs.data(), static_cast<unsigned>(n), kDontWait);
    if (sent < 0) return {0, errno};
    // Fewer than n: the kernel reports what stopped it on the next call.
    return {static_cast<std::size_t>(sent), sent == 0 ? EAGAIN : 0};
  }
#endif
  for (std::size_t i = 0; i < n; ++i) {
    ++stats.send_calls;
    const ssize_t sent = ::sendmsg(fd, &msgs[i].msg_hdr, kDontWait);
    if (sent < 0) return {i, errno};
    msgs[i].msg_len = static_cast<unsigned>(sent);
  }
  return {n, 0};
}

// send_with_faults is send_messages with the refusals of `faults` in front of the kernel.
IoResult UdpSocket::Impl::send_with_faults(std::size_t n) {
  if (faults.no_sendmmsg && batch_send) {
    ++stats.send_calls;
    return {0, ENOSYS};
  }
  if (faults.gso_send_errno != 0) {
    std::size_t first_gso = 0;
    while (first_gso < n && !slots[first_gso].gso) ++first_gso;
    if (first_gso == 0 && n > 0) {
      ++stats.send_calls;
      return {0, faults.gso_send_errno};
    }
    n = first_gso;  // the kernel sends those before the refused one and reports it next time
  }
  faulty = false;
  const IoResult r = send_messages(n);
  faulty = true;
  return r;
}

P2PResult<std::size_t> UdpSocket::try_send_batch(std::span<const Transmit> transmits) {
  MOOSICBOX_P2P_ASSERT(impl_);
  Impl& s = *impl_;
  if (!s.open) return fail(P2PError::network(fmt::format("send on closed socket {}", s.local)));
  // Cursor: transmit t, byte offset within it (non-zero only while a split transmit is half sent).
  std::size_t t = 0;
  std::size_t off = 0;
  const auto advance_to = [&](std::size_t transmit, std::size_t offset) {
    t = transmit;
    off = offset;
    if (t < transmits.size() && off >= transmits[t].contents.size() && (off > 0 || transmits[t].contents.empty())) {
      ++t;
      off = 0;
    }
  };
  // After the kernel refused a GSO send, the rest of that transmit goes out one datagram per
  // message. If that works, GSO was what the kernel refused and the socket stops using it; if the
  // datagram fails on its own too (EMSGSIZE, say), the transmit is dropped and GSO stays on.
  constexpr std::size_t kNoProbe = static_cast<std::size_t>(-1);
  std::size_t gso_probe = kNoProbe;
  int gso_probe_err = 0;
  while (t < transmits.size()) {
    std::size_t n = 0;
    std::size_t bt = t;
    std::size_t boff = off;
    std::string why;
    while (n < kBatchMax && bt < transmits.size()) {
      const auto r = s.route(transmits[bt], why);
      if (!r) {
        if (n > 0) break;  // send what is planned first, so consumption stays in order
        s.drop(transmits[bt], boff, why);
        ++bt;
        boff = 0;
        t = bt;
        off = 0;
        continue;
      }
      s.add_messages(transmits[bt], bt, *r, bt == gso_probe ? 1 : s.gso_segments, boff, n);
      if (boff >= transmits[bt].contents.size()) {
        ++bt;
        boff = 0;
      }
    }
    if (n == 0) continue;

    const IoResult sent = s.send_messages(n);
    const std::size_t k = sent.done;
    if (k > 0) {
      for (std::size_t i = 0; i < k; ++i) {
        ++s.stats.messages_sent;
        s.stats.datagrams_sent += s.slots[i].datagrams;
        s.stats.bytes_sent += s.slots[i].end - s.slots[i].begin;
      }
      if (s.slots[0].transmit == gso_probe) {
        s.stop_gso(gso_probe_err);
        gso_probe = kNoProbe;
      }
      advance_to(s.slots[k - 1].transmit, s.slots[k - 1].end);
    }
    const int err = sent.err;
    if (err == 0 || err == EINTR) continue;
    // Message k failed, and the cursor is at it.
    const Impl::SendSlot& failed = s.slots[k];
    MOOSICBOX_P2P_ASSERT(failed.transmit == t && failed.begin == off);
    if (err == EAGAIN || err == EWOULDBLOCK) {
      if (off > 0) {
        // Half of a split transmit went out; resending it would duplicate those segments.
        s.drop(transmits[t], off, "send buffer full after part of a split transmit");
        ++t;
        off = 0;
      }
      return t;
    }
    if (failed.gso && is_gso_refusal(err)) {
      // Resend from the same place without GSO; nothing of this message went out.
      gso_probe = t;
      gso_probe_err = err;
      logger().debug("udp {}: GSO send to {} failed ({}); resending its datagrams one by one", s.local,
                     transmits[t].destination, errno_text(err));
      continue;
    }
#if MOOSICBOX_P2P_UDP_FAST_PATH
    if (err == ENOSYS && s.batch_send) {
      // A kernel without sendmmsg: one sendmsg per message from now on, resending from here.
      s.batch_send = false;
      ++s.stats.batch_fallbacks;
      log_fallback(Fallback::sendmmsg, spdlog::level::warn,
                   fmt::format("udp {}: no sendmmsg ({}); this socket now makes one send call per message", s.local,
                               errno_text(err)));
      continue;
    }
#endif
    if (is_socket_error(err)) {
      return fail(sys_error(fmt::format("{} on {}", s.batch_send ? "sendmmsg" : "sendmsg", s.local), err));
    }
    // The message failed on its own (EMSGSIZE, unreachable, bad source, or ENOBUFS: a full device
    // queue, which drops packets rather than making the socket wait): drop the rest of its
    // transmit, as a router dropping it would, and go on with the next one.
    if (t == gso_probe) gso_probe = kNoProbe;  // the datagram was at fault, not GSO
    s.drop(transmits[t], off, errno_text(err));
    ++t;
    off = 0;
  }
  return t;
}

void UdpSocket::Impl::parse_received(Message& m, RecvMeta& meta) {
  ::msghdr& h = m.msg_hdr;
  meta = RecvMeta{};
  const auto* name = static_cast<const ::sockaddr_storage*>(h.msg_name);
  if (auto src = detail::from_sockaddr(*name, h.msg_namelen)) meta.source = src->canonical();
  meta.length = m.msg_len;
  meta.stride = m.msg_len;
  meta.truncated = (h.msg_flags & MSG_TRUNC) != 0;
  if ((h.msg_flags & MSG_CTRUNC) != 0 && !ctrunc_logged) {
    ctrunc_logged = true;
    logger().warn("udp {}: control data truncated; destination, ECN or GRO information may be missing", local);
  }
  for (::cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
    const unsigned char* data = CMSG_DATA(c);
    const std::size_t len = c->cmsg_len - CMSG_LEN(0);
    if (c->cmsg_level == IPPROTO_IP) {
#if MOOSICBOX_P2P_UDP_V4_RECV_PKTINFO
      if (c->cmsg_type == IP_PKTINFO && len >= sizeof(::in_pktinfo)) {
        ::in_pktinfo pi{};
        std::memcpy(&pi, data, sizeof(pi));
        std::array<std::uint8_t, 4> ip{};
        std::memcpy(ip.data(), &pi.ipi_addr, 4);
        meta.destination = SocketAddr::v4(ip, local.port());
        meta.interface_index = static_cast<std::uint32_t>(pi.ipi_ifindex);
        continue;
      }
#elif MOOSICBOX_P2P_UDP_V4_RECV_DSTADDR
      if (c->cmsg_type == IP_RECVDSTADDR && len >= sizeof(::in_addr)) {
        std::array<std::uint8_t, 4> ip{};
        std::memcpy(ip.data(), data, 4);
        meta.destination = SocketAddr::v4(ip, local.port());
        continue;
      }
#endif
      // Linux reports the TOS byte as IP_TOS, the BSDs and macOS as IP_RECVTOS.
      bool tos = c->cmsg_type == IP_TOS;
#if defined(IP_RECVTOS)
      tos = tos || c->cmsg_type == IP_RECVTOS;
#endif
      if (tos && len >= 1) meta.ecn = static_cast<Ecn>(data[0] & 0b11);
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO && len >= sizeof(::in6_pktinfo)) {
      ::in6_pktinfo pi{};
      std::memcpy(&pi, data, sizeof(pi));
      std::array<std::uint8_t, 16> ip{};
      std::memcpy(ip.data(), &pi.ipi6_addr, 16);
      const std::uint32_t scope = is_link_local_v6(ip) ? pi.ipi6_ifindex : 0;
      // Both PKTINFO kinds may arrive for an IPv4 datagram on a dual-stack socket; they agree.
      meta.destination = SocketAddr::v6(ip, local.port(), scope).canonical();
      meta.interface_index = pi.ipi6_ifindex;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS && len >= sizeof(int)) {
      int tclass = 0;
      std::memcpy(&tclass, data, sizeof(tclass));
      meta.ecn = static_cast<Ecn>(tclass & 0b11);
#if MOOSICBOX_P2P_UDP_GRO
    } else if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO && len >= sizeof(int)) {
      int gso_size = 0;
      std::memcpy(&gso_size, data, sizeof(gso_size));
      if (gso_size > 0) meta.stride = std::min(static_cast<std::size_t>(gso_size), meta.length);
#endif
    }
  }
  if (meta.stride == 0) meta.stride = meta.length;
  ++stats.messages_received;
  stats.bytes_received += meta.length;
  stats.datagrams_received += meta.segment_count();
  if (meta.truncated) ++stats.truncated_received;
}

IoResult UdpSocket::Impl::receive_messages(std::size_t n) {
#if MOOSICBOX_P2P_UDP_FAST_PATH
  if (batch_receive) {
    ++stats.receive_calls;
    if (faulty && faults.no_recvmmsg) [[unlikely]]
      return {0, ENOSYS};
    const int got = ::recvmmsg(fd, msgs.data(), static_cast<unsigned>(n), kDontWait, nullptr);
    if (got < 0) return {0, errno};
    // Fewer than n: the queue is empty (another call would only return EAGAIN).
    const auto k = static_cast<std::size_t>(got);
    return {k, k < n ? EAGAIN : 0};
  }
#endif
  for (std::size_t i = 0; i < n; ++i) {
    ++stats.receive_calls;
    const ssize_t got = ::recvmsg(fd, &msgs[i].msg_hdr, kDontWait);
    if (got < 0) return {i, errno};
    msgs[i].msg_len = static_cast<unsigned>(got);
  }
  return {n, 0};
}

P2PResult<std::size_t> UdpSocket::try_receive_batch(std::span<const std::span<std::byte>> buffers,
                                                    std::span<RecvMeta> metas) {
  MOOSICBOX_P2P_ASSERT(impl_);
  Impl& s = *impl_;
  if (!s.open) return fail(P2PError::network(fmt::format("receive on closed socket {}", s.local)));
  const std::size_t want = std::min(buffers.size(), metas.size());
  std::size_t got = 0;
  // Errors left over from ICMP messages belong to one earlier datagram, not to the socket; skip a
  // bounded number of them so a flood of ICMP cannot keep this loop busy.
  constexpr int kTransientErrorsMax = 16;
  int transient = 0;
  while (got < want) {
    const std::size_t n = std::min(want - got, kBatchMax);
    for (std::size_t i = 0; i < n; ++i) {
      const auto buf = buffers[got + i];
      s.iovs[i].iov_base = buf.data();
      s.iovs[i].iov_len = buf.size();
      ::msghdr& h = s.msgs[i].msg_hdr;
      h = ::msghdr{};
      h.msg_name = &s.names[i];
      h.msg_namelen = sizeof(::sockaddr_storage);
      h.msg_iov = &s.iovs[i];
      h.msg_iovlen = 1;
      h.msg_control = s.controls[i].bytes.data();
      h.msg_controllen = static_cast<ControlLength>(kControlBytes);
      s.msgs[i].msg_len = 0;
    }
    const IoResult r = s.receive_messages(n);
    for (std::size_t i = 0; i < r.done; ++i) s.parse_received(s.msgs[i], metas[got + i]);
    got += r.done;
    const int err = r.err;
    if (err == 0 || err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) break;
#if MOOSICBOX_P2P_UDP_FAST_PATH
    if (err == ENOSYS && s.batch_receive) {
      // A kernel without recvmmsg: one recvmsg per buffer from now on.
      s.batch_receive = false;
      ++s.stats.batch_fallbacks;
      log_fallback(Fallback::recvmmsg, spdlog::level::warn,
                   fmt::format("udp {}: no recvmmsg ({}); this socket now makes one receive call per datagram", s.local,
                               errno_text(err)));
      continue;
    }
#endif
    if (is_socket_error(err)) {
      if (got > 0) break;  // report what arrived; the error repeats on the next call
      return fail(sys_error(fmt::format("{} on {}", s.batch_receive ? "recvmmsg" : "recvmsg", s.local), err));
    }
    if (++transient > kTransientErrorsMax) break;
    logger().debug("udp {}: receive skipped a pending error: {}", s.local, errno_text(err));
  }
  return got;
}

asio::awaitable<P2PResult<void>> UdpSocket::Impl::wait(Impl* self, asio::socket_base::wait_type type) {
  if (!self->open) co_return fail(P2PError::network(fmt::format("wait on closed socket {}", self->local)));
  auto [ec] = co_await self->socket.async_wait(type, asio::as_tuple(asio::use_awaitable));
  // After operation_aborted the socket may already be destroyed: do not touch `self`.
  if (ec == asio::error::operation_aborted) co_return fail(P2PError::cancelled("UDP socket wait"));
  if (ec) co_return fail(P2PError::network(fmt::format("wait on UDP socket: {}", ec.message())));
  co_return P2PResult<void>{};
}

asio::awaitable<P2PResult<void>> UdpSocket::wait_readable() {
  MOOSICBOX_P2P_ASSERT(impl_);
  return Impl::wait(impl_.get(), asio::socket_base::wait_read);
}

asio::awaitable<P2PResult<void>> UdpSocket::wait_writable() {
  MOOSICBOX_P2P_ASSERT(impl_);
  return Impl::wait(impl_.get(), asio::socket_base::wait_write);
}

void UdpSocket::cancel() noexcept {
  if (!impl_) return;
  boost::system::error_code ec;
  impl_->socket.cancel(ec);
}

void UdpSocket::close() noexcept {
  if (!impl_ || !impl_->open) return;
  boost::system::error_code ec;
  impl_->socket.close(ec);  // cancels pending waits and closes the descriptor
  impl_->open = false;
  impl_->fd = -1;
}

}  // namespace moosicbox::p2p::env
