// SPDX-License-Identifier: MIT OR Apache-2.0
// udp_socket.cpp: UdpSocket on Linux: socket options at bind, sendmmsg with UDP_SEGMENT (GSO),
// recvmmsg with UDP_GRO, IP_PKTINFO / IPV6_PKTINFO and ECN control messages, and readiness waits
// through asio's reactor (async_wait on the native socket; the I/O itself is our own system calls).
// Layer: env. A socket and its scratch buffers belong to the executor's thread.
#include "moosicbox/p2p/env/udp_socket.hpp"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstring>
#include <system_error>

#include "core/log.hpp"
#include "env/sockaddr.hpp"

namespace moosicbox::p2p::env {
namespace {

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
  return got / 2;
}

// set_int_option sets an int socket option; returns errno on failure, 0 on success.
int set_int_option(int fd, int level, int name, int value) noexcept {
  return ::setsockopt(fd, level, name, &value, sizeof(value)) == 0 ? 0 : errno;
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

void put_cmsg(::msghdr& msg, std::size_t& used, int level, int type, const void* data, std::size_t len) noexcept {
  // Filling in order: the next header starts at the aligned end of the previous one.
  const std::size_t space = CMSG_SPACE(len);
  MOOSICBOX_P2P_ASSERT(used + space <= msg.msg_controllen);
  auto* base = static_cast<unsigned char*>(msg.msg_control);
  ::cmsghdr hdr{};
  hdr.cmsg_level = level;
  hdr.cmsg_type = type;
  hdr.cmsg_len = CMSG_LEN(len);
  std::memcpy(base + used, &hdr, sizeof(hdr));
  std::memcpy(base + used + (CMSG_LEN(0)), data, len);
  used += space;
}

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

  static asio::awaitable<P2PResult<void>> wait(Impl* self, asio::socket_base::wait_type type);

  // Per-transmit routing: the destination as the socket's family wants it, and which IP-level
  // control messages apply (IPv4 ones for IPv4 destinations even on a dual-stack socket).
  struct Route {
    ::sockaddr_storage name{};
    socklen_t name_len = 0;
    bool v4 = false;
  };
  [[nodiscard]] std::optional<Route> route(const Transmit& tx, std::string& why) const;
  void add_messages(const Transmit& tx, std::size_t index, const Route& r, std::size_t& offset, std::size_t& n);
  void drop(const Transmit& tx, std::size_t offset, std::string_view why);
  void parse_received(::mmsghdr& m, RecvMeta& meta);

  asio::ip::udp::socket socket;
  int fd = -1;
  SocketAddr local;
  bool v6 = false;
  bool dual_stack = false;
  std::size_t gso_segments = 1;
  bool gro = false;
  bool open = true;
  bool drop_logged = false;
  bool ctrunc_logged = false;
  UdpSocketStats stats;

  // Scratch for one system call, reused: no allocation per batch.
  std::array<::mmsghdr, kBatchMax> msgs{};
  std::array<::iovec, kBatchMax> iovs{};
  std::array<::sockaddr_storage, kBatchMax> names{};
  std::array<ControlBuffer, kBatchMax> controls{};
  std::array<SendSlot, kBatchMax> slots{};
};

P2PResult<UdpSocket> UdpSocket::bind(asio::any_io_executor ex, const SocketAddr& addr,
                                     const UdpSocketOptions& options) {
  if (options.receive_buffer_bytes < 0 || options.send_buffer_bytes < 0) {
    return fail(P2PError::invalid_configuration("UDP socket buffer sizes must not be negative"));
  }
  const bool v6 = addr.is_v6();
  const int family = v6 ? AF_INET6 : AF_INET;
  const int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) return fail(sys_error(fmt::format("socket for {}", addr), errno));
  FdGuard guard(fd);

  auto impl = std::make_unique<Impl>(std::move(ex));
  impl->fd = fd;
  impl->v6 = v6;
  const auto must = [&](int level, int name, int value, std::string_view what) -> P2PResult<void> {
    if (const int err = set_int_option(fd, level, name, value); err != 0) {
      return fail(sys_error(fmt::format("setsockopt {} on {}", what, addr), err));
    }
    return {};
  };
  if (v6) {
    if (auto r = must(IPPROTO_IPV6, IPV6_V6ONLY, options.v6_only ? 1 : 0, "IPV6_V6ONLY"); !r) return fail(r.error());
    impl->dual_stack = !options.v6_only;
  }
  // The kernel silently caps SO_RCVBUF / SO_SNDBUF at net.core.{r,w}mem_max (212992 bytes on a
  // default Debian system): far below what absorbs a burst at gigabit rates. A process with
  // CAP_NET_ADMIN may go past the cap (the *FORCE options); otherwise the capped size is what we get,
  // and the effective size is read back and logged (UdpSocket::receive_buffer_bytes reports it).
  const auto set_buffer = [&](int force_name, int name, int value, std::string_view what) -> P2PResult<void> {
    if (set_int_option(fd, SOL_SOCKET, force_name, value) == 0) return {};
    if (auto r = must(SOL_SOCKET, name, value, what); !r) return r;
    if (const int got = buffer_bytes(fd, name); got < value) {
      logger().debug("udp {}: {} capped at {} bytes (asked for {}; raise net.core.{}mem_max)", addr, what, got, value,
                     name == SO_RCVBUF ? "r" : "w");
    }
    return {};
  };
  if (options.receive_buffer_bytes > 0) {
    if (auto r = set_buffer(SO_RCVBUFFORCE, SO_RCVBUF, options.receive_buffer_bytes, "SO_RCVBUF"); !r) {
      return fail(r.error());
    }
  }
  if (options.send_buffer_bytes > 0) {
    if (auto r = set_buffer(SO_SNDBUFFORCE, SO_SNDBUF, options.send_buffer_bytes, "SO_SNDBUF"); !r) {
      return fail(r.error());
    }
  }
  // The local address of every datagram: a socket bound to a wildcard address on a multi-homed host
  // must answer from the address it was reached at, or the peer's NAT and path checks reject it.
  const bool carries_v4 = !v6 || impl->dual_stack;
  if (carries_v4) {
    if (auto r = must(IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO"); !r) return fail(r.error());
  }
  if (v6) {
    if (auto r = must(IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO"); !r) return fail(r.error());
  }
  // ECN marks and don't-fragment are improvements, not requirements: a kernel without them still
  // carries QUIC, so failures are logged and ignored.
  const auto may = [&](int level, int name, int value, std::string_view what) {
    if (const int err = set_int_option(fd, level, name, value); err != 0) {
      logger().debug("udp {}: setsockopt {} failed: {}", addr, what, errno_text(err));
    }
  };
  if (carries_v4) {
    may(IPPROTO_IP, IP_RECVTOS, 1, "IP_RECVTOS");
    // QUIC datagrams must not be fragmented (RFC 9000 section 14); PROBE sets DF and leaves path MTU
    // discovery to QUIC instead of the kernel's cache.
    may(IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE, "IP_MTU_DISCOVER");
  }
  if (v6) {
    may(IPPROTO_IPV6, IPV6_RECVTCLASS, 1, "IPV6_RECVTCLASS");
    may(IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_PROBE, "IPV6_MTU_DISCOVER");
  }
  if (options.gso) {
    // Reading UDP_SEGMENT succeeds exactly on kernels that accept the UDP_SEGMENT control message.
    int size = 0;
    socklen_t len = sizeof(size);
    if (::getsockopt(fd, IPPROTO_UDP, UDP_SEGMENT, &size, &len) == 0) impl->gso_segments = kGsoSegmentsMax;
  }
  if (options.gro) impl->gro = set_int_option(fd, IPPROTO_UDP, UDP_GRO, 1) == 0;

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
  logger().debug("udp {}: bound (gso {}, gro {}, dual-stack {})", impl->local, impl->gso_segments > 1, impl->gro,
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

int UdpSocket::receive_buffer_bytes() const noexcept {
  MOOSICBOX_P2P_ASSERT(impl_);
  return buffer_bytes(impl_->fd, SO_RCVBUF);
}

std::size_t UdpSocket::gso_segments_max() const noexcept {
  MOOSICBOX_P2P_ASSERT(impl_);
  return impl_->gso_segments;
}

bool UdpSocket::gro_enabled() const noexcept {
  MOOSICBOX_P2P_ASSERT(impl_);
  return impl_->gro;
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

void UdpSocket::Impl::add_messages(const Transmit& tx, std::size_t index, const Route& r, std::size_t& offset,
                                   std::size_t& n) {
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
      // One GSO send carries at most gso_segments segments and one IP packet's worth of payload.
      const std::size_t fit = std::min({left, gso_segments, std::max<std::size_t>(1, kDatagramBytesMax / seg)});
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
    h.msg_controllen = kControlBytes;
    std::size_t used = 0;
    if (gso) {
      const auto seg = static_cast<std::uint16_t>(tx.segment_size);
      put_cmsg(h, used, IPPROTO_UDP, UDP_SEGMENT, &seg, sizeof(seg));
    }
    if (tx.source) {
      const SocketAddr src = tx.source->canonical();
      if (r.v4) {
        ::in_pktinfo pi{};
        std::memcpy(&pi.ipi_spec_dst, src.ip_bytes().data(), 4);
        put_cmsg(h, used, IPPROTO_IP, IP_PKTINFO, &pi, sizeof(pi));
      } else {
        ::in6_pktinfo pi{};
        std::memcpy(&pi.ipi6_addr, src.ip_bytes().data(), 16);
        pi.ipi6_ifindex = src.scope_id();
        put_cmsg(h, used, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof(pi));
      }
    }
    if (tx.ecn != Ecn::not_ect) {
      const int tos = static_cast<int>(tx.ecn);
      if (r.v4) {
        put_cmsg(h, used, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
      } else {
        put_cmsg(h, used, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof(tos));
      }
    }
    h.msg_controllen = used;
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
      s.add_messages(transmits[bt], bt, *r, boff, n);
      if (boff >= transmits[bt].contents.size()) {
        ++bt;
        boff = 0;
      }
    }
    if (n == 0) continue;

    const int sent = ::sendmmsg(s.fd, s.msgs.data(), static_cast<unsigned>(n), MSG_DONTWAIT);
    ++s.stats.send_calls;
    if (sent > 0) {
      const auto k = static_cast<std::size_t>(sent);
      for (std::size_t i = 0; i < k; ++i) {
        ++s.stats.messages_sent;
        s.stats.datagrams_sent += s.slots[i].datagrams;
        s.stats.bytes_sent += s.slots[i].end - s.slots[i].begin;
      }
      advance_to(s.slots[k - 1].transmit, s.slots[k - 1].end);
      continue;
    }
    const int err = sent < 0 ? errno : EAGAIN;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      if (off > 0) {
        // Half of a split transmit went out; resending it would duplicate those segments.
        s.drop(transmits[t], off, "send buffer full after part of a split transmit");
        ++t;
        off = 0;
      }
      return t;
    }
    if (is_socket_error(err)) return fail(sys_error(fmt::format("sendmmsg on {}", s.local), err));
    if (err == EIO && s.slots[0].gso) {
      // A device without checksum offload rejects GSO with EIO: fall back to one datagram per
      // segment for the rest of this socket's life and resend from the same place.
      logger().warn("udp {}: GSO send failed ({}); falling back to one datagram per send", s.local, errno_text(err));
      s.gso_segments = 1;
      continue;
    }
    // The first message failed on its own (EMSGSIZE, unreachable, bad source, or ENOBUFS: a full
    // device queue, which drops packets rather than making the socket wait): drop the rest of its
    // transmit, as a router dropping it would, and go on with the next one.
    s.drop(transmits[t], off, errno_text(err));
    ++t;
    off = 0;
  }
  return t;
}

void UdpSocket::Impl::parse_received(::mmsghdr& m, RecvMeta& meta) {
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
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO && len >= sizeof(::in_pktinfo)) {
      ::in_pktinfo pi{};
      std::memcpy(&pi, data, sizeof(pi));
      std::array<std::uint8_t, 4> ip{};
      std::memcpy(ip.data(), &pi.ipi_addr, 4);
      meta.destination = SocketAddr::v4(ip, local.port());
      meta.interface_index = static_cast<std::uint32_t>(pi.ipi_ifindex);
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO && len >= sizeof(::in6_pktinfo)) {
      ::in6_pktinfo pi{};
      std::memcpy(&pi, data, sizeof(pi));
      std::array<std::uint8_t, 16> ip{};
      std::memcpy(ip.data(), &pi.ipi6_addr, 16);
      const std::uint32_t scope = is_link_local_v6(ip) ? pi.ipi6_ifindex : 0;
      // Both PKTINFO kinds may arrive for an IPv4 datagram on a dual-stack socket; they agree.
      meta.destination = SocketAddr::v6(ip, local.port(), scope).canonical();
      meta.interface_index = pi.ipi6_ifindex;
    } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS && len >= 1) {
      meta.ecn = static_cast<Ecn>(data[0] & 0b11);
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS && len >= sizeof(int)) {
      int tclass = 0;
      std::memcpy(&tclass, data, sizeof(tclass));
      meta.ecn = static_cast<Ecn>(tclass & 0b11);
    } else if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO && len >= sizeof(int)) {
      int gso_size = 0;
      std::memcpy(&gso_size, data, sizeof(gso_size));
      if (gso_size > 0) meta.stride = std::min(static_cast<std::size_t>(gso_size), meta.length);
    }
  }
  if (meta.stride == 0) meta.stride = meta.length;
  ++stats.messages_received;
  stats.bytes_received += meta.length;
  stats.datagrams_received += meta.segment_count();
  if (meta.truncated) ++stats.truncated_received;
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
      h.msg_controllen = kControlBytes;
      s.msgs[i].msg_len = 0;
    }
    const int r = ::recvmmsg(s.fd, s.msgs.data(), static_cast<unsigned>(n), MSG_DONTWAIT, nullptr);
    ++s.stats.receive_calls;
    if (r < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) break;
      if (is_socket_error(err)) {
        if (got > 0) break;  // report what arrived; the error repeats on the next call
        return fail(sys_error(fmt::format("recvmmsg on {}", s.local), err));
      }
      if (++transient > kTransientErrorsMax) break;
      logger().debug("udp {}: receive skipped a pending error: {}", s.local, errno_text(err));
      continue;
    }
    const auto k = static_cast<std::size_t>(r);
    for (std::size_t i = 0; i < k; ++i) s.parse_received(s.msgs[i], metas[got + i]);
    got += k;
    if (k < n) break;  // the queue is empty: another call would only return EAGAIN
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
