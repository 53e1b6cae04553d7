// SPDX-License-Identifier: MIT OR Apache-2.0
// sockets.cpp: the sockets of the simulated network: UdpSocket (env::DatagramSocket), TcpStream (a
// reliable byte stream: sequence numbers, retransmission after an RTO, in-order delivery, a send
// window, end of file and reset) and TcpListener, plus the Beast teardown hooks.
// Layer: simnet. Single-threaded: everything runs on the thread stepping the SimRuntime.
#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>

#include "moosicbox/p2p/core/assert.hpp"
#include "moosicbox/p2p/simnet/beast.hpp"
#include "simnet/internal.hpp"

namespace moosicbox::p2p::simnet {

using detail::HostImpl;
using detail::StreamKind;
using detail::StreamPacket;
using ParkId = env::SimRuntime::ParkId;

static_assert(env::DatagramSocket<UdpSocket>);

namespace {

/// pick_port returns a free ephemeral port from the host's random stream.
template <class Taken>
std::optional<std::uint16_t> pick_port(HostImpl& h, Taken&& taken) {
  constexpr std::uint32_t kSpan = detail::kEphemeralPortMax - detail::kEphemeralPortMin + 1;
  for (int i = 0; i < 64; ++i) {
    const auto p = static_cast<std::uint16_t>(detail::kEphemeralPortMin + h.env().rng().uniform(kSpan));
    if (!taken(p)) return p;
  }
  const auto start = static_cast<std::uint32_t>(h.env().rng().uniform(kSpan));
  for (std::uint32_t i = 0; i < kSpan; ++i) {
    const auto p = static_cast<std::uint16_t>(detail::kEphemeralPortMin + (start + i) % kSpan);
    if (!taken(p)) return p;
  }
  return std::nullopt;
}

/// check_bind validates a bind address on `h` and normalises it (v4-mapped to IPv4, no scope).
P2PResult<SocketAddr> check_bind(HostImpl& h, const SocketAddr& addr, std::string_view what) {
  const SocketAddr a = addr.canonical();
  if (a.is_multicast()) {
    return fail(P2PError::invalid_configuration(fmt::format("{} {}: multicast address", what, addr)));
  }
  if (!a.is_unspecified() && !h.has_address(a)) {
    return fail(P2PError::network(fmt::format("{} {}: address not available", what, addr)));
  }
  return a.without_scope();
}

/// local_address checks a bind address (check_bind) and settles its port: an ephemeral one not
/// `ephemeral_taken` for port 0, else the given one unless `explicit_taken` ("address in use").
template <class EphemeralTaken, class ExplicitTaken>
P2PResult<SocketAddr> local_address(HostImpl& h, const SocketAddr& addr, std::string_view what,
                                    EphemeralTaken&& ephemeral_taken, ExplicitTaken&& explicit_taken) {
  auto a = check_bind(h, addr, what);
  if (!a) return fail(a.error());
  if (a->port() == 0) {
    const auto port = pick_port(h, [&](std::uint16_t p) { return ephemeral_taken(a->with_port(p)); });
    if (!port) return fail(P2PError::network(fmt::format("{} {}: no free port", what, addr)));
    return a->with_port(*port);
  }
  if (explicit_taken(*a)) return fail(P2PError::network(fmt::format("{} {}: address in use", what, addr)));
  return *a;
}

/// ParkedIo is a stream operation's handler while it waits in the runtime: resumed with the error
/// code, it runs the handler with the byte count through the handler's own executor.
struct ParkedIo {
  TcpStream::IoHandler handler;
  std::shared_ptr<std::size_t> n;
  asio::any_io_executor fallback;

  using cancellation_slot_type = asio::cancellation_slot;
  [[nodiscard]] cancellation_slot_type get_cancellation_slot() const noexcept {
    return asio::get_associated_cancellation_slot(handler);
  }

  void operator()(boost::system::error_code ec) {
    auto ex = asio::get_associated_executor(handler, fallback);
    asio::dispatch(ex, [h = std::move(handler), ec, bytes = *n]() mutable { std::move(h)(ec, bytes); });
  }
};

std::size_t total_size(const auto& buffers) {
  std::size_t n = 0;
  for (const auto& b : buffers) n += b.size();
  return n;
}

}  // namespace

// ---- UdpSocket ------------------------------------------------------------------------------------

void UdpSocket::Impl::wake(boost::system::error_code ec) {
  auto pending = std::move(waiters);
  waiters.clear();
  for (const auto id : pending) runtime->resume(id, ec);
}

void UdpSocket::Impl::unbind() noexcept {
  if (host != nullptr && net_alive()) {
    host->udp.remove(local, this);
    for (auto& d : queue) net->give_buffer(std::move(d.data));
  }
  queue.clear();
  host = nullptr;
}

void Network::Impl::udp_arrive(UdpSocket::Impl& s, std::uint32_t i) {
  auto& f = flights[i];
  ++stats.packets_delivered;
  stats.bytes_delivered += f.data.size();
  s.queue.push_back(UdpSocket::Impl::Datagram{std::move(f.data), f.src, f.dst, f.ecn});
  f.data = {};
  release(i);
  if (!s.waiters.empty()) s.wake({});
}

P2PResult<UdpSocket> UdpSocket::bind(Host& host, const SocketAddr& addr) {
  auto& h = static_cast<HostImpl&>(host);
  const auto taken = [&](const SocketAddr& a) { return h.udp.conflicts(a); };
  auto chosen = local_address(h, addr, "bind", taken, taken);
  if (!chosen) return fail(chosen.error());
  const SocketAddr local = *chosen;
  auto impl = std::make_shared<Impl>();
  impl->runtime = &h.env().runtime();
  impl->net = &h.network().impl();
  impl->alive = impl->net->alive;
  impl->host = &h;
  impl->local = local;
  impl->open = true;
  h.udp.add(local, impl.get());
  UdpSocket s;
  s.impl_ = std::move(impl);
  return s;
}

UdpSocket::UdpSocket() noexcept = default;
UdpSocket::UdpSocket(UdpSocket&&) noexcept = default;
UdpSocket& UdpSocket::operator=(UdpSocket&& other) noexcept {
  if (this != &other) {
    close();
    impl_ = std::move(other.impl_);
  }
  return *this;
}
UdpSocket::~UdpSocket() { close(); }

SocketAddr UdpSocket::local_addr() const { return impl_ ? impl_->local : SocketAddr{}; }
std::size_t UdpSocket::gso_segments_max() const { return 64; }
bool UdpSocket::is_dual_stack() const { return impl_ && impl_->local.is_v6() && impl_->local.is_unspecified(); }

P2PResult<std::size_t> UdpSocket::try_send_batch(std::span<const env::Transmit> out) {
  if (!impl_ || !impl_->open || !impl_->net_alive()) {
    return fail(P2PError::network(fmt::format("send on closed socket {}", local_addr())));
  }
  auto& s = *impl_;
  auto& net = *s.net;
  auto refuse = [&](std::size_t datagrams) {
    // What the kernel refuses (no route from this socket, a source that is not local) is dropped
    // like a lost datagram, as the real socket does.
    net.stats.packets_sent += datagrams;
    net.stats.packets_dropped += datagrams;
    net.stats.dropped_no_route += datagrams;
  };
  for (const auto& tx : out) {
    const SocketAddr dst = tx.destination.canonical();
    const std::size_t count = tx.segment_count();
    std::optional<SocketAddr> src;
    if (!s.local.is_unspecified()) {
      // A socket bound to an address the host no longer has cannot send (EADDRNOTAVAIL).
      if (s.local.family() == dst.family() && s.host->has_address(s.local)) src = detail::ip_key(s.local);
    } else if (dst.is_v4() || s.local.is_v6()) {
      if (tx.source) {
        const SocketAddr want = tx.source->canonical();
        if (want.family() == dst.family() && s.host->has_address(want)) src = detail::ip_key(want);
      } else {
        src = s.host->first_address(dst.family());
      }
    }
    if (!src || dst.is_unspecified() || dst.port() == 0) {
      refuse(count);
      continue;
    }
    const SocketAddr from = src->with_port(s.local.port());
    if (tx.segment_size == 0) {
      if (tx.contents.size() > env::kDatagramBytesMax) {
        refuse(1);
        continue;
      }
      net.send_udp(*s.host, from, dst, tx.contents, tx.ecn);
      continue;
    }
    for (std::size_t off = 0; off < tx.contents.size() || off == 0; off += tx.segment_size) {
      const std::size_t len = std::min(tx.segment_size, tx.contents.size() - off);
      net.send_udp(*s.host, from, dst, tx.contents.subspan(off, len), tx.ecn);
      if (tx.contents.empty()) break;
    }
  }
  return out.size();
}

P2PResult<std::size_t> UdpSocket::try_receive_batch(std::span<const std::span<std::byte>> buffers,
                                                    std::span<env::RecvMeta> metas) {
  if (!impl_ || !impl_->open) return fail(P2PError::network(fmt::format("receive on closed socket {}", local_addr())));
  auto& s = *impl_;
  const std::size_t n = std::min(buffers.size(), metas.size());
  std::size_t k = 0;
  while (k < n && !s.queue.empty()) {
    auto& d = s.queue.front();
    const auto buf = buffers[k];
    const std::size_t len = std::min(d.data.size(), buf.size());
    if (len > 0) std::memcpy(buf.data(), d.data.data(), len);
    auto& m = metas[k];
    m = env::RecvMeta{};
    m.source = d.src;
    m.destination = d.dst;
    m.length = len;
    m.stride = len;
    m.ecn = d.ecn;
    m.truncated = d.data.size() > buf.size();
    if (s.net_alive()) s.net->give_buffer(std::move(d.data));
    s.queue.pop_front();
    ++k;
  }
  return k;
}

asio::awaitable<P2PResult<void>> UdpSocket::wait_readable() {
  const std::shared_ptr<Impl> self = impl_;
  if (!self || !self->open) co_return fail(P2PError::cancelled("wait on closed UDP socket"));
  if (!self->queue.empty()) co_return P2PResult<void>{};
  ParkId parked = 0;
  const auto ec = co_await self->runtime->suspend([&](ParkId id) {
    parked = id;
    self->waiters.push_back(id);
  });
  std::erase(self->waiters, parked);
  if (ec) co_return fail(P2PError::cancelled("UDP socket wait"));
  co_return P2PResult<void>{};
}

asio::awaitable<P2PResult<void>> UdpSocket::wait_writable() {
  if (!impl_ || !impl_->open) co_return fail(P2PError::cancelled("wait on closed UDP socket"));
  co_return P2PResult<void>{};
}

void UdpSocket::cancel() noexcept {
  if (impl_) impl_->wake(asio::error::operation_aborted);
}

void UdpSocket::close() noexcept {
  if (!impl_ || !impl_->open) return;
  impl_->open = false;
  impl_->unbind();
  impl_->wake(asio::error::operation_aborted);
}

// ---- TcpStream: the connection ---------------------------------------------------------------------

Duration TcpStream::Impl::rto() const noexcept {
  // Before the handshake measured the RTT, the classic initial RTO of one second.
  if (rtt.count() <= 0) return std::chrono::seconds(1);
  return std::max<Duration>(std::chrono::milliseconds(200), 2 * rtt);
}

std::size_t TcpStream::Impl::window_free() const noexcept {
  std::size_t used = unacked_bytes;
  if (const auto p = peer.lock()) used += p->rx_buffered();
  return used >= detail::kStreamWindow ? 0 : detail::kStreamWindow - used;
}

void TcpStream::Impl::register_conn() {
  host->conns.emplace(detail::ConnKey{local, remote}, shared_from_this());
  ++host->conn_ports[local.port()];
  registered = true;
}

void TcpStream::Impl::unregister_conn() noexcept {
  if (!registered) return;
  registered = false;
  if (!net_alive()) return;
  const auto it = host->conn_ports.find(local.port());
  if (it != host->conn_ports.end() && --it->second <= 0) host->conn_ports.erase(it);
  // Last: the table may hold the last reference to this end.
  host->conns.erase(detail::ConnKey{local, remote});
}

void TcpStream::Impl::send_reliable(StreamKind kind, ByteView data) {
  const auto seq = next_seq++;
  unacked.emplace(seq, Seg{kind, std::vector<std::byte>(data.begin(), data.end()), std::nullopt});
  unacked_bytes += data.size();
  transmit(seq);
}

void TcpStream::Impl::transmit(std::uint64_t seq) {
  if (!net_alive()) return;
  const auto it = unacked.find(seq);
  if (it == unacked.end()) return;
  if (it->second.kind == StreamKind::syn) syn_sent_at = rt().now();
  net->send_stream(*host, local, remote, it->second.kind, seq, it->second.data, shared_from_this());
}

void Network::Impl::stream_dropped(std::shared_ptr<TcpStream::Impl> sender, std::uint64_t seq) {
  sender->on_dropped(seq);
}

void TcpStream::Impl::on_dropped(std::uint64_t seq) {
  if (state == State::reset || state == State::refused || state == State::closed) return;
  const auto it = unacked.find(seq);
  if (it == unacked.end()) return;
  const TimePoint now = rt().now();
  if (!it->second.first_failure) it->second.first_failure = now;
  // A path cut for reset_after resets the connection (the handshake has its own connect timeout).
  if (state == State::established && now - *it->second.first_failure >= reset_after) {
    do_reset(true);
    return;
  }
  rt().schedule_after(rto(), [self = shared_from_this(), seq] {
    if (self->state == State::established || self->state == State::syn_sent) self->transmit(seq);
  });
}

void TcpStream::Impl::on_delivered(std::uint64_t seq) {
  const auto it = unacked.find(seq);
  if (it == unacked.end()) return;
  if (it->second.kind == StreamKind::fin) fin_acked = true;
  unacked_bytes -= it->second.data.size();
  unacked.erase(it);
  try_complete_write();
  maybe_finish();
}

void TcpStream::Impl::apply(StreamKind kind, std::vector<std::byte>& data) {
  switch (kind) {
    case StreamKind::syn:
      break;
    case StreamKind::syn_ack:
      if (state == State::syn_sent) {
        state = State::established;
        const Duration measured = rt().now() - syn_sent_at;
        if (measured.count() > 0) rtt = measured;
        if (connect_park) rt().resume(*connect_park);
      }
      break;
    case StreamKind::data:
      if (net_alive()) net->stats.stream_bytes += data.size();
      // After close() the bytes are taken (the peer's send completes) and thrown away.
      if (!app_closed) rx.insert(rx.end(), data.begin(), data.end());
      break;
    case StreamKind::fin:
      peer_fin = true;
      break;
    case StreamKind::rst:
      break;
  }
}

void TcpStream::Impl::on_packet(StreamPacket& p) {
  if (net_alive()) ++net->stats.stream_packets_delivered;
  if (p.kind == StreamKind::rst) {
    if (state == State::syn_sent) {
      state = State::refused;
      unacked.clear();
      unacked_bytes = 0;
      if (connect_park) rt().resume(*connect_park);
      unregister_conn();
    } else if (state == State::established) {
      do_reset(false);
    }
    return;
  }
  if (state == State::reset || state == State::refused || state == State::closed) return;
  if (p.sender && peer.expired()) peer = p.sender;
  if (p.seq == rx_next) {
    apply(p.kind, p.data);
    ++rx_next;
    while (!ooo.empty() && ooo.begin()->first == rx_next) {
      auto node = ooo.extract(ooo.begin());
      ooo_bytes -= node.mapped().second.size();
      apply(node.mapped().first, node.mapped().second);
      ++rx_next;
    }
  } else if (p.seq > rx_next && !ooo.contains(p.seq)) {
    ooo_bytes += p.data.size();
    ooo.emplace(p.seq, std::make_pair(p.kind, std::move(p.data)));
  }
  // Delivery is acknowledged at once (no ACK packets are modelled): the sender's window then
  // counts what this end holds unread instead.
  if (p.sender) p.sender->on_delivered(p.seq);
  try_complete_read();
  maybe_finish();
}

void Network::Impl::stream_arrive(HostImpl& h, StreamPacket p) {
  // Stream packets carry no payload hash in the trace: a WebSocket client masks its frames with
  // Beast's own random generator, and only the sizes are a function of the seed.
  trace_delivery(p.src, p.dst, p.data.size(), (static_cast<std::uint64_t>(p.kind) << 56) ^ p.seq);
  const auto it = h.conns.find(detail::ConnKey{p.dst, p.src});
  if (it != h.conns.end()) {
    const auto end = it->second;
    end->on_packet(p);
    return;
  }
  if (p.kind == StreamKind::syn && p.seq == 0) {
    auto* l = h.listeners.find(p.dst);
    if (l != nullptr && l->open) {
      if (l->backlog.size() >= l->backlog_max) {
        // A full backlog ignores the SYN; the client tries again after its RTO.
        if (p.sender) stream_dropped(p.sender, p.seq);
        return;
      }
      auto end = std::make_shared<TcpStream::Impl>();
      end->runtime = rt;
      end->net = this;
      end->alive = alive;
      end->host = &h;
      end->local = p.dst;
      end->remote = p.src;
      end->state = TcpStream::Impl::State::established;
      end->rtt = 2 * (rt->now() - p.sent_at);
      end->register_conn();
      end->on_packet(p);
      end->send_reliable(StreamKind::syn_ack, {});
      l->backlog.push_back(end);
      auto waiters = std::move(l->waiters);
      l->waiters.clear();
      for (const auto id : waiters) rt->resume(id);
      return;
    }
  }
  // Nothing holds this connection: a reset answers (a refused connect, or a stale flow).
  if (p.kind != StreamKind::rst) send_stream(h, p.dst, p.src, StreamKind::rst, 0, {}, nullptr);
}

void TcpStream::Impl::do_reset(bool send_rst) {
  if (state == State::reset) return;
  state = State::reset;
  if (send_rst && net_alive()) net->send_stream(*host, local, remote, StreamKind::rst, 0, {}, nullptr);
  unacked.clear();
  unacked_bytes = 0;
  ooo.clear();
  ooo_bytes = 0;
  if (read) complete_read(asio::error::connection_reset, 0);
  if (write) complete_write(asio::error::connection_reset, 0);
  unregister_conn();
}

void TcpStream::Impl::maybe_finish() {
  // A closed end stays until its FIN is delivered (it may need resending); then packets for it
  // are answered with a reset, as a closed TCP socket does.
  if (app_closed && fin_acked) unregister_conn();
}

void TcpStream::Impl::complete_read(boost::system::error_code ec, std::size_t n) {
  *read->n = n;
  const auto id = read->park;
  read.reset();
  rt().resume(id, ec);
}

void TcpStream::Impl::complete_write(boost::system::error_code ec, std::size_t n) {
  *write->n = n;
  const auto id = write->park;
  write.reset();
  rt().resume(id, ec);
}

void TcpStream::Impl::abort_ops() {
  if (read) complete_read(asio::error::operation_aborted, 0);
  if (write) complete_write(asio::error::operation_aborted, 0);
}

void TcpStream::Impl::try_complete_read() {
  if (!read) return;
  const std::size_t want = total_size(read->buffers);
  if (want == 0) return complete_read({}, 0);
  if (rx.size() > rx_off) {
    std::size_t n = 0;
    for (const auto& b : read->buffers) {
      const std::size_t len = std::min(b.size(), rx.size() - rx_off);
      if (len > 0) std::memcpy(b.data(), rx.data() + rx_off, len);
      rx_off += len;
      n += len;
      if (rx_off == rx.size()) break;
    }
    if (rx_off == rx.size()) {
      rx.clear();
      rx_off = 0;
    } else if (rx_off > 64 * 1024 && rx_off * 2 > rx.size()) {
      rx.erase(rx.begin(), rx.begin() + static_cast<std::ptrdiff_t>(rx_off));
      rx_off = 0;
    }
    complete_read({}, n);
    // Reading opened the peer's window.
    if (const auto p = peer.lock()) p->try_complete_write();
    return;
  }
  if (state == State::reset) return complete_read(asio::error::connection_reset, 0);
  if (peer_fin) return complete_read(asio::error::eof, 0);
  if (state == State::closed || app_closed) return complete_read(asio::error::operation_aborted, 0);
}

void TcpStream::Impl::try_complete_write() {
  if (!write) return;
  if (state == State::reset) return complete_write(asio::error::connection_reset, 0);
  if (app_closed) return complete_write(asio::error::operation_aborted, 0);
  if (fin_sent) return complete_write(asio::error::broken_pipe, 0);
  if (state != State::established || !net_alive()) return complete_write(asio::error::not_connected, 0);
  const std::size_t want = total_size(write->buffers);
  if (want == 0) return complete_write({}, 0);
  std::size_t space = window_free();
  if (space == 0) return;  // waits for the peer to read
  std::size_t n = 0;
  std::vector<std::byte> seg;
  seg.reserve(detail::kStreamSegmentMax);
  auto flush = [&] {
    if (seg.empty()) return;
    send_reliable(StreamKind::data, seg);
    seg.clear();
  };
  for (const auto& b : write->buffers) {
    const auto* p = static_cast<const std::byte*>(b.data());
    std::size_t left = std::min(b.size(), space - n);
    while (left > 0) {
      const std::size_t take = std::min(left, detail::kStreamSegmentMax - seg.size());
      seg.insert(seg.end(), p, p + take);
      p += take;
      left -= take;
      n += take;
      if (seg.size() == detail::kStreamSegmentMax) flush();
    }
    if (n == space) break;
  }
  flush();
  complete_write({}, n);
}

// ---- TcpStream ----------------------------------------------------------------------------------------

TcpStream::TcpStream() noexcept = default;
TcpStream::TcpStream(std::shared_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
TcpStream::TcpStream(TcpStream&&) noexcept = default;
TcpStream& TcpStream::operator=(TcpStream&& other) noexcept {
  if (this != &other) {
    close();
    impl_ = std::move(other.impl_);
  }
  return *this;
}
TcpStream::~TcpStream() { close(); }

asio::awaitable<P2PResult<TcpStream>> TcpStream::connect(Host& host, SocketAddr to, Duration timeout) {
  auto& h = static_cast<HostImpl&>(host);
  const SocketAddr dst = to.canonical();
  if (dst.is_unspecified() || dst.port() == 0 || dst.is_multicast()) {
    co_return fail(P2PError::invalid_configuration(fmt::format("connect to {}: bad address", to)));
  }
  const auto src = h.first_address(dst.family());
  if (!src) co_return fail(P2PError::network(fmt::format("connect to {}: host {} has no address", to, h.name())));
  const auto port = pick_port(h, [&](std::uint16_t p) { return h.conn_ports.contains(p) || h.listeners.port_used(p); });
  if (!port) co_return fail(P2PError::network(fmt::format("connect to {}: no free port", to)));

  auto end = std::make_shared<Impl>();
  end->runtime = &h.env().runtime();
  end->net = &h.network().impl();
  end->alive = end->net->alive;
  end->host = &h;
  end->local = src->with_port(*port);
  end->remote = dst;
  end->state = Impl::State::syn_sent;
  end->register_conn();
  end->send_reliable(StreamKind::syn, {});

  auto* rt = end->runtime;
  env::SimRuntime::EventId timer = 0;
  const auto ec = co_await rt->suspend([&](ParkId id) {
    end->connect_park = id;
    timer = rt->schedule_after(timeout, [rt, id] { rt->resume(id, asio::error::timed_out); });
  });
  rt->cancel(timer);
  end->connect_park.reset();
  if (end->state == Impl::State::established) co_return TcpStream(std::move(end));
  const auto state = end->state;
  end->state = Impl::State::closed;
  end->unacked.clear();
  end->unacked_bytes = 0;
  end->unregister_conn();
  if (state == Impl::State::refused) co_return fail(P2PError::connection_failed(fmt::format("{} refused", to)));
  if (ec == asio::error::timed_out) co_return fail(P2PError::timeout(timeout));
  if (ec) co_return fail(P2PError::cancelled(fmt::format("connect to {}", to)));
  co_return fail(P2PError::connection_failed(fmt::format("{}: reset", to)));
}

TcpStream::executor_type TcpStream::get_executor() const noexcept {
  if (!impl_) return {};
  return impl_->runtime->executor();
}

SocketAddr TcpStream::local_addr() const { return impl_ ? impl_->local : SocketAddr{}; }
SocketAddr TcpStream::remote_addr() const { return impl_ ? impl_->remote : SocketAddr{}; }
bool TcpStream::is_open() const noexcept {
  return impl_ && !impl_->app_closed && impl_->state == Impl::State::established;
}

void TcpStream::close() noexcept {
  if (!impl_ || impl_->app_closed) return;
  auto& s = *impl_;
  s.app_closed = true;
  if (s.state == Impl::State::established && !s.fin_sent && s.net_alive()) {
    s.fin_sent = true;
    s.send_reliable(StreamKind::fin, {});
  }
  s.abort_ops();
  s.rx.clear();
  s.rx_off = 0;
  if (s.state != Impl::State::established) {
    s.unregister_conn();
  } else {
    s.maybe_finish();
  }
  // The peer's window counted our unread bytes; they are gone now.
  if (const auto p = s.peer.lock()) p->try_complete_write();
}

void TcpStream::shutdown_send() noexcept {
  if (!impl_ || impl_->fin_sent || impl_->state != Impl::State::established) return;
  impl_->fin_sent = true;
  impl_->send_reliable(StreamKind::fin, {});
  if (impl_->write) impl_->try_complete_write();
}

void TcpStream::cancel() noexcept {
  if (impl_) impl_->abort_ops();
}

namespace {
template <class Pending, class Buffers>
void start_op(const std::shared_ptr<TcpStream::Impl>& self, std::optional<Pending>& slot_of_op, Buffers buffers,
              TcpStream::IoHandler handler, bool is_read) {
  auto& rt = self->rt();
  auto n = std::make_shared<std::size_t>(0);
  env::SimRuntime::Handler wrapped(ParkedIo{std::move(handler), n, rt.executor()});
  auto slot = asio::get_associated_cancellation_slot(wrapped);
  const auto id = rt.park(std::move(wrapped));
  slot_of_op.emplace(Pending{id, std::move(buffers), n});
  if (slot.is_connected()) {
    slot.assign([w = std::weak_ptr<TcpStream::Impl>(self), r = &rt, id, is_read](asio::cancellation_type) {
      if (const auto s = w.lock()) {
        if (is_read && s->read && s->read->park == id) s->read.reset();
        if (!is_read && s->write && s->write->park == id) s->write.reset();
      }
      r->resume(id, asio::error::operation_aborted, true);
    });
  }
}
}  // namespace

void TcpStream::start_read(std::vector<asio::mutable_buffer> buffers, IoHandler handler) {
  MOOSICBOX_P2P_ASSERT(impl_);  // an operation on a default-constructed or moved-from stream
  MOOSICBOX_P2P_ASSERT(!impl_->read);
  start_op(impl_, impl_->read, std::move(buffers), std::move(handler), true);
  if (impl_->app_closed) return impl_->complete_read(asio::error::operation_aborted, 0);
  impl_->try_complete_read();
}

void TcpStream::start_write(std::vector<asio::const_buffer> buffers, IoHandler handler) {
  MOOSICBOX_P2P_ASSERT(impl_);  // an operation on a default-constructed or moved-from stream
  MOOSICBOX_P2P_ASSERT(!impl_->write);
  start_op(impl_, impl_->write, std::move(buffers), std::move(handler), false);
  impl_->try_complete_write();
}

// ---- TcpListener --------------------------------------------------------------------------------------

void TcpListener::Impl::unbind() noexcept {
  if (host != nullptr && net_alive()) host->listeners.remove(local, this);
  host = nullptr;
}

P2PResult<TcpListener> TcpListener::listen(Host& host, const SocketAddr& addr, std::size_t backlog) {
  auto& h = static_cast<HostImpl&>(host);
  // An explicit port is taken only by another listener, as with SO_REUSEADDR (which real servers
  // set): connections still finishing on the port, say those of a listener that was just closed for
  // a restart, do not stop a new one; packets find connections by both addresses and listeners by
  // the port alone. An ephemeral port avoids connections too.
  auto chosen = local_address(
      h, addr, "listen",
      [&](const SocketAddr& a) { return h.listeners.conflicts(a) || h.conn_ports.contains(a.port()); },
      [&](const SocketAddr& a) { return h.listeners.conflicts(a); });
  if (!chosen) return fail(chosen.error());
  const SocketAddr local = *chosen;
  auto impl = std::make_shared<Impl>();
  impl->runtime = &h.env().runtime();
  impl->net = &h.network().impl();
  impl->alive = impl->net->alive;
  impl->host = &h;
  impl->local = local;
  impl->backlog_max = std::max<std::size_t>(backlog, 1);
  impl->open = true;
  h.listeners.add(local, impl.get());
  TcpListener l;
  l.impl_ = std::move(impl);
  return l;
}

TcpListener::TcpListener() noexcept = default;
TcpListener::TcpListener(TcpListener&&) noexcept = default;
TcpListener& TcpListener::operator=(TcpListener&& other) noexcept {
  if (this != &other) {
    close();
    impl_ = std::move(other.impl_);
  }
  return *this;
}
TcpListener::~TcpListener() { close(); }

SocketAddr TcpListener::local_addr() const { return impl_ ? impl_->local : SocketAddr{}; }

asio::awaitable<P2PResult<TcpStream>> TcpListener::accept() {
  const std::shared_ptr<Impl> self = impl_;
  while (true) {
    if (!self || !self->open) co_return fail(P2PError::cancelled("accept on closed listener"));
    if (!self->backlog.empty()) {
      auto end = std::move(self->backlog.front());
      self->backlog.pop_front();
      co_return TcpStream(std::move(end));
    }
    ParkId parked = 0;
    const auto ec = co_await self->runtime->suspend([&](ParkId id) {
      parked = id;
      self->waiters.push_back(id);
    });
    std::erase(self->waiters, parked);
    if (ec) co_return fail(P2PError::cancelled("accept"));
  }
}

void TcpListener::close() noexcept {
  if (!impl_ || !impl_->open) return;
  auto& l = *impl_;
  l.open = false;
  l.unbind();
  auto waiters = std::move(l.waiters);
  l.waiters.clear();
  for (const auto id : waiters) l.runtime->resume(id, asio::error::operation_aborted);
  auto backlog = std::move(l.backlog);
  l.backlog.clear();
  for (auto& end : backlog) {
    if (l.net_alive()) end->do_reset(true);
  }
}

// ---- Beast -----------------------------------------------------------------------------------------

void teardown(boost::beast::role_type /*role*/, TcpStream& stream, boost::beast::error_code& ec) {
  // A simulated stream cannot block the thread that steps the simulation: end the stream at once.
  stream.shutdown_send();
  stream.close();
  ec = {};
}

namespace detail {
namespace {
struct TeardownOp : std::enable_shared_from_this<TeardownOp> {
  TeardownOp(TcpStream& s, asio::any_completion_handler<void(boost::system::error_code)> h)
      : stream(&s), handler(std::move(h)), fallback(s.get_executor()) {}

  void read() {
    stream->start_read({asio::buffer(scratch)},
                       TcpStream::IoHandler([self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                         if (!ec) return self->read();
                         self->finish(ec == asio::error::eof ? boost::system::error_code{} : ec);
                       }));
  }
  void finish(boost::system::error_code ec) {
    stream->close();
    auto ex = asio::get_associated_executor(*handler, fallback);
    // Posted to the stream's executor, then run through the handler's own (never inline).
    asio::post(fallback, asio::bind_executor(ex, [h = std::move(*handler), ec]() mutable { std::move(h)(ec); }));
    handler.reset();
  }

  TcpStream* stream;
  std::optional<asio::any_completion_handler<void(boost::system::error_code)>> handler;
  asio::any_io_executor fallback;
  std::array<std::byte, 1024> scratch{};
};
}  // namespace

void start_teardown(boost::beast::role_type /*role*/, TcpStream& stream,
                    asio::any_completion_handler<void(boost::system::error_code)> handler) {
  // Both roles send their end of file, then read (and discard) until the peer's, as Beast does for
  // TCP sockets; then the stream closes.
  stream.shutdown_send();
  auto op = std::make_shared<TeardownOp>(stream, std::move(handler));
  op->read();
}
}  // namespace detail

}  // namespace moosicbox::p2p::simnet
