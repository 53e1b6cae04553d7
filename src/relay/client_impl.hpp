// SPDX-License-Identifier: MIT OR Apache-2.0
// client_impl.hpp: the implementation of relay::Client, written once over a Transport: RealTransport
// (AsioEnv time and timers, resolver + TCP, optional TLS, Beast's stream timeouts) or SimTransport
// (a simulated host: SimEnv time, timers and random stream, simnet streams, deadlines in virtual
// time). ClientCore holds what does not depend on the transport (the send queue, the state, the
// counters), so the per-datagram calls (send, writable) reach it without virtual dispatch; the
// transport-dependent part (connect, session, pings, backoff) is ClientImpl<Transport>.
// client.cpp instantiates the real client, client_sim.cpp the simulated one.
// Layer: relay (internal). Everything runs on the client's executor: no locks.
#pragma once

#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <deque>
#include <list>
#include <unordered_map>

#include <fmt/format.h>

#include "core/log.hpp"
#include "moosicbox/p2p/core/spawn.hpp"
#include "moosicbox/p2p/env/asio_env.hpp"
#include "moosicbox/p2p/env/sim_env.hpp"
#include "moosicbox/p2p/simnet/network.hpp"
#include "relay/client.hpp"
#include "relay/either_env.hpp"
#include "relay/protocol.hpp"
#include "relay/url.hpp"

namespace moosicbox::p2p::relay::detail {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using proto::RawId;

inline constexpr auto kUse = asio::as_tuple(asio::use_awaitable);
// The largest frame the client builds before the server announced its own limit (the default).
inline constexpr std::size_t kFrameSizeDefault = 64 * 1024;
// Bounds the node id cache of received packets (validating a curve point per frame is not free).
inline constexpr std::size_t kIdCacheMax = 1024;
// Beast masks client frames through its write buffer: one buffer per frame means one write call.
inline constexpr std::size_t kWriteBufferBytes = 64 * 1024 + 64;

inline std::string describe(const boost::system::error_code& ec) { return ec.message(); }

/// RealTransport: the operating system's TCP (and TLS through OpenSSL), real time.
struct RealTransport {
  static constexpr bool kSimulated = false;
  using Env = env::AsioEnv;
  RealTransport(asio::any_io_executor ex, std::optional<asio::ssl::context> ctx)
      : env_(std::move(ex)), tls(std::move(ctx)) {}
  Env& env() noexcept { return env_; }
  Env env_;
  std::optional<asio::ssl::context> tls;
};

/// SimTransport: one simulated host (its environment and its streams).
struct SimTransport {
  static constexpr bool kSimulated = true;
  using Env = env::SimEnv;
  explicit SimTransport(simnet::Host& h) : host(&h), env_(&h.env()) {}
  Env& env() noexcept { return *env_; }
  simnet::Host* host;
  Env* env_;
};

/// sim_address returns where the relay of `url` is on the simulated network of `host`: an IP
/// literal, or a name the network resolves. Errors: connection_failed (an unknown name).
P2PResult<SocketAddr> sim_address(simnet::Host& host, const RelayUrl& url);

/// ClientCore is the transport-independent part of a client (see the file comment).
class ClientCore : public Client {
 public:
  ClientCore(asio::any_io_executor ex, ClientConfig cfg, RelayUrl url)
      : ex_(std::move(ex)), cfg_(std::move(cfg)), url_(std::move(url)) {}

  ReceiveFn on_receive_;
  PeerGoneFn on_peer_gone_;
  StateFn on_state_;
  StunFn on_stun_;
  std::function<void()> on_drain_;

  // The transport-dependent operations.
  virtual void do_start() = 0;
  virtual void do_close() = 0;
  virtual asio::awaitable<P2PResult<Duration>> do_ping() = 0;
  virtual asio::awaitable<P2PResult<void>> do_wait_connected(TimePoint deadline) = 0;

  bool writable() {
    if (queued_ < cfg_.send_queue_bytes_max / 2) return true;
    drain_wanted_ = true;
    return false;
  }

  bool send(const NodeId& to, ByteView datagram) {
    if (closed_ || datagram.empty() || datagram.size() > kDatagramSizeMax) {
      stats_.drops_queue_full++;
      return false;
    }
    const std::size_t record = proto::datagram_record_size(datagram.size());
    if (queued_ + record + proto::kPacketHeaderSize > cfg_.send_queue_bytes_max) {
      stats_.drops_queue_full++;
      return false;
    }
    const RawId dst = proto::raw_id(to);
    if (!append_ || last_dst_ != dst || frames_.back().bytes.size() + record > frame_max_) {
      frames_.push_back({take_buffer(), 0});
      proto::begin_packets(frames_.back().bytes, proto::FrameType::send_packet, dst);
      queued_ += proto::kPacketHeaderSize;
      append_ = true;
      last_dst_ = dst;
    }
    auto& f = frames_.back();
    proto::append_datagram(f.bytes, datagram);
    f.datagrams++;
    queued_ += record;
    kick();
    return true;
  }

  const std::string& url() const noexcept { return cfg_.url; }
  ClientState state() const noexcept { return state_; }
  std::optional<Duration> rtt() const noexcept { return rtt_; }
  std::optional<SocketAddr> observed_addr() const noexcept { return observed_; }
  std::vector<std::uint16_t> stun_ports() const { return stun_ports_; }
  std::vector<SocketAddr> stun_addrs() const {
    std::vector<SocketAddr> out;
    if (!remote_ip_) return out;
    for (auto p : stun_ports_) out.push_back(remote_ip_->with_port(p));
    return out;
  }
  std::optional<P2PError> last_error() const { return last_error_; }
  ClientStats stats() const noexcept { return stats_; }
  std::size_t queued_bytes() const noexcept { return queued_; }

 protected:
  struct QueuedFrame {
    Bytes bytes;
    std::uint32_t datagrams = 0;
  };

  void maybe_drained() {
    if (!drain_wanted_ || queued_ > cfg_.send_queue_bytes_max / 4) return;
    drain_wanted_ = false;
    if (on_drain_) on_drain_();
  }

  Bytes take_buffer() {
    if (spare_.empty()) return {};
    Bytes b = std::move(spare_.back());
    spare_.pop_back();
    b.clear();
    return b;
  }

  void push_control(const proto::Frame& f) {
    QueuedFrame q;
    proto::encode(q.bytes, f);
    if (frames_.empty()) append_ = false;
    frames_.push_front(std::move(q));
    kick();
  }

  void kick() {
    if (writing_ || frames_.empty() || state_ != ClientState::connected || !start_writer_) return;
    writing_ = true;
    start_writer_();
  }

  std::optional<NodeId> node_id_of(const RawId& raw) {
    if (auto it = ids_.find(raw); it != ids_.end()) return it->second;
    auto id = NodeId::from_bytes(std::span<const std::uint8_t>(raw));
    if (!id) return std::nullopt;
    if (ids_.size() >= kIdCacheMax) ids_.clear();
    ids_.emplace(raw, *id);
    return *id;
  }

  // drop_oversized drops frames built for a larger limit than this relay's (they cannot be sent).
  void drop_oversized() {
    const auto before = frames_.size();
    std::erase_if(frames_, [&](const QueuedFrame& f) {
      if (f.bytes.size() <= frame_max_) return false;
      stats_.drops_queue_full += f.datagrams;
      queued_ -= std::min(queued_, f.bytes.size());
      return true;
    });
    if (frames_.size() != before) append_ = false;
  }

  asio::any_io_executor ex_;
  ClientConfig cfg_;
  RelayUrl url_;
  bool drain_wanted_ = false;  // writable() said no: call on_drain_ once the queue drained
  bool started_ = false;
  bool closed_ = false;
  ClientState state_ = ClientState::waiting;
  std::optional<Duration> rtt_;
  std::optional<SocketAddr> observed_;
  std::vector<std::uint16_t> stun_ports_;
  std::optional<SocketAddr> remote_ip_;  // the relay IP this session connected to (port 0)
  std::optional<P2PError> last_error_;
  ClientStats stats_;
  std::deque<QueuedFrame> frames_;
  std::vector<Bytes> spare_;
  std::size_t queued_ = 0;
  RawId last_dst_{};
  bool append_ = false;
  bool writing_ = false;
  std::size_t frame_max_ = kFrameSizeDefault;
  std::function<void()> start_writer_;
  std::function<void()> force_;
  std::uint64_t generation_ = 0;
  std::uint64_t ping_seq_ = 0;
  std::unordered_map<RawId, NodeId, proto::RawIdHash> ids_;
  TimePoint last_rx_{};
  TimePoint last_tx_{};
  std::uint32_t failures_ = 0;
  std::optional<proto::Restarting> restarting_;
  std::optional<P2PError> session_error_;
  std::optional<TimePoint> restart_until_;
};

/// ClientImpl is the client over `Transport` (RealTransport or SimTransport).
template <class Transport>
class ClientImpl final : public ClientCore {
 public:
  using Env = typename Transport::Env;
  using Timer = typename Env::Timer;

  ClientImpl(asio::any_io_executor ex, ClientConfig cfg, RelayUrl url, Transport transport)
      : ClientCore(std::move(ex), std::move(cfg), std::move(url)),
        t_(std::move(transport)),
        backoff_timer_(t_.env().make_timer()),
        ping_timer_(t_.env().make_timer()) {}

  void do_start() override {
    if (started_ || closed_) return;
    started_ = true;
    spawn_logged(ex_, run(std::static_pointer_cast<ClientImpl>(shared_from_this())), "relay client");
  }

  asio::awaitable<P2PResult<Duration>> do_ping() override {
    if (state_ != ClientState::connected) co_return fail(P2PError::connection_closed("relay session not connected"));
    PingWaiter w(env().make_timer());
    const std::uint64_t id = ++ping_seq_;
    pings_.emplace(id, &w);
    proto::PingData data{};
    for (std::size_t i = 0; i < 8; ++i) data[i] = static_cast<std::uint8_t>(id >> (56 - 8 * i));
    const auto sent = env().now();
    w.sent = sent;
    push_control(proto::Ping{data});
    auto r = co_await w.timer.wait_until(sent + cfg_.pong_timeout);
    pings_.erase(id);
    if (w.rtt) {
      rtt_ = *w.rtt;
      co_return *w.rtt;
    }
    if (w.ended) co_return fail(P2PError::connection_closed("relay session ended"));
    if (r) co_return fail(P2PError::timeout(cfg_.pong_timeout));
    co_return fail(P2PError::cancelled("relay ping"));
  }

  asio::awaitable<P2PResult<void>> do_wait_connected(TimePoint deadline) override {
    for (;;) {
      if (state_ == ClientState::connected) co_return P2PResult<void>{};
      if (closed_) co_return fail(P2PError::connection_closed("relay client closed"));
      Timer timer = env().make_timer();
      waiters_.push_back(&timer);
      auto r = co_await timer.wait_until(deadline);
      std::erase(waiters_, &timer);
      if (state_ == ClientState::connected) co_return P2PResult<void>{};
      if (closed_) co_return fail(P2PError::connection_closed("relay client closed"));
      if (r) {
        const auto why = last_error_ ? last_error_->message() : std::string("no attempt finished yet");
        co_return fail(P2PError(P2PErrc::timeout, fmt::format("waiting for relay {} ({})", cfg_.url, why)));
      }
      // Woken by a state change: look again.
    }
  }

  void do_close() override {
    if (closed_) return;
    closed_ = true;
    backoff_timer_.cancel();
    ping_timer_.cancel();
    frames_.clear();
    queued_ = 0;
    append_ = false;
    if (force_) force_();
    set_state(ClientState::closed, std::nullopt);
  }

 private:
  struct PingWaiter {
    explicit PingWaiter(Timer t) : timer(std::move(t)) {}
    Timer timer;
    std::optional<Duration> rtt;
    TimePoint sent{};
    bool ended = false;
  };

  Env& env() noexcept { return t_.env(); }

  void set_state(ClientState s, std::optional<P2PError> why) {
    if (why) last_error_ = why;
    const bool changed = s != state_;
    state_ = s;
    for (auto* w : waiters_) w->cancel();
    if ((changed || why) && on_state_) on_state_(s, why);
  }

  void end_pings() {
    for (auto& [id, w] : pings_) {
      w->ended = true;
      w->timer.cancel();
    }
  }

  template <class NextLayer>
  asio::awaitable<void> write_loop(std::shared_ptr<ClientImpl> self, std::shared_ptr<websocket::stream<NextLayer>> ws,
                                   std::uint64_t generation);

  template <class NextLayer>
  asio::awaitable<P2PResult<void>> session(std::shared_ptr<websocket::stream<NextLayer>> ws);

  // connect_real resolves, connects (and runs TLS) on `ws`'s lowest layer, then handshake().
  template <class NextLayer>
  asio::awaitable<P2PResult<void>> connect_real(std::shared_ptr<websocket::stream<NextLayer>> ws);

  // connect_sim opens a simnet stream from the transport's host, then handshake().
  asio::awaitable<P2PResult<void>> connect_sim();

  // handshake upgrades to a WebSocket and authenticates (by `deadline`), then runs the session.
  template <class NextLayer>
  asio::awaitable<P2PResult<void>> handshake(std::shared_ptr<websocket::stream<NextLayer>> ws, std::uint64_t gen,
                                             TimePoint deadline);

  asio::awaitable<void> ping_loop(std::shared_ptr<ClientImpl> self, std::uint64_t generation);

  asio::awaitable<void> run(std::shared_ptr<ClientImpl> self);

  P2PResult<void> handle_frame(ByteView msg);

  P2PResult<void> failed(P2PError e) {
    stats_.connect_failures++;
    return fail(std::move(e));
  }

  Duration next_backoff() {
    auto base = cfg_.backoff_initial;
    for (std::uint32_t i = 0; i < failures_ && base < cfg_.backoff_max; ++i) base *= 2;
    return jittered(std::min(base, cfg_.backoff_max));
  }

  // jittered returns `base` +-25%, so clients that lost the same relay do not come back in step. The
  // randomness is the environment's (a seeded stream under simulation).
  Duration jittered(Duration base) {
    std::array<std::byte, 8> r{};
    env().fill_random(r);
    std::uint64_t v = 0;
    for (auto b : r) v = (v << 8) | std::to_integer<std::uint64_t>(b);
    const double jitter = 0.75 + 0.5 * (static_cast<double>(v >> 11) / static_cast<double>(1ULL << 53));
    const auto d = Duration(static_cast<Duration::rep>(static_cast<double>(base.count()) * jitter));
    return std::max<Duration>(d, std::chrono::milliseconds(1));
  }

  Transport t_;
  Timer backoff_timer_;
  Timer ping_timer_;
  std::unordered_map<std::uint64_t, PingWaiter*> pings_;
  std::vector<Timer*> waiters_;
};

template <class Transport>
P2PResult<void> ClientImpl<Transport>::handle_frame(ByteView msg) {
  auto f = proto::decode(msg, std::max(frame_max_, kFrameSizeDefault));
  if (!f) {
    if (proto::is_unknown_type(f.error())) return {};
    return fail(f.error());
  }
  if (const auto* p = std::get_if<proto::RecvPacket>(&*f)) {
    auto from = node_id_of(p->peer);
    if (!from) return fail(P2PError::protocol("relay sent a packet from an invalid node id"));
    proto::DatagramIterator it(p->datagrams);
    for (auto d = it.next(); !d.empty(); d = it.next()) {
      stats_.datagrams_received++;
      stats_.bytes_received += d.size();
      if (on_receive_) on_receive_(*from, d);
      if (closed_) break;
    }
  } else if (const auto* ping = std::get_if<proto::Ping>(&*f)) {
    push_control(proto::Pong{ping->data});
  } else if (const auto* pong = std::get_if<proto::Pong>(&*f)) {
    std::uint64_t id = 0;
    for (auto b : pong->data) id = (id << 8) | b;
    if (auto it = pings_.find(id); it != pings_.end()) {
      it->second->rtt = env().now() - it->second->sent;
      it->second->timer.cancel();
    }
  } else if (const auto* gone = std::get_if<proto::PeerGone>(&*f)) {
    auto who = node_id_of(gone->node_id);
    if (who && on_peer_gone_) {
      on_peer_gone_(*who, gone->reason == 0 ? PeerGoneReason::not_connected : PeerGoneReason::disconnected);
    }
  } else if (const auto* h = std::get_if<proto::Health>(&*f)) {
    if (h->status == 0) {
      logger().info("relay {}: healthy: {}", cfg_.url, h->message);
    } else {
      logger().warn("relay {}: degraded: {}", cfg_.url, h->message);
    }
  } else if (const auto* stun = std::get_if<proto::StunInfo>(&*f)) {
    stun_ports_ = stun->ports;
    if (on_stun_) {
      if (auto addrs = stun_addrs(); !addrs.empty()) on_stun_(addrs);
    }
  } else if (const auto* r = std::get_if<proto::Restarting>(&*f)) {
    restarting_ = *r;
    return fail(P2PError::connection_closed(fmt::format("relay {} restarting: reconnecting in {}ms, trying for {}ms",
                                                        cfg_.url, r->reconnect_in_ms, r->try_for_ms)));
  } else {
    return fail(P2PError::protocol("relay sent a client-only or handshake frame after the handshake"));
  }
  return {};
}

template <class Transport>
template <class NextLayer>
asio::awaitable<void> ClientImpl<Transport>::write_loop(std::shared_ptr<ClientImpl> self,
                                                        std::shared_ptr<websocket::stream<NextLayer>> ws,
                                                        std::uint64_t generation) {
  (void)self;
  while (generation == generation_ && !frames_.empty()) {
    QueuedFrame f = std::move(frames_.front());
    frames_.pop_front();
    if (frames_.empty()) append_ = false;
    if (f.datagrams > 0) queued_ -= std::min(queued_, f.bytes.size());
    auto [ec, n] = co_await ws->async_write(asio::buffer(f.bytes), kUse);
    (void)n;
    // A writer of an ended session must not touch the next session's state.
    if (generation != generation_) co_return;
    if (ec) break;
    maybe_drained();
    last_tx_ = env().now();
    if (f.datagrams > 0) {
      stats_.frames_sent++;
      stats_.datagrams_sent += f.datagrams;
      stats_.bytes_sent += f.bytes.size() - proto::kPacketHeaderSize - 2 * std::size_t{f.datagrams};
      if (spare_.empty() && f.bytes.capacity() >= 1024) spare_.push_back(std::move(f.bytes));
    }
  }
  writing_ = false;
}

template <class Transport>
asio::awaitable<void> ClientImpl<Transport>::ping_loop(std::shared_ptr<ClientImpl> self, std::uint64_t generation) {
  (void)self;
  while (!closed_ && generation == generation_ && state_ == ClientState::connected) {
    // Quiet either way: the server closes a session it hears nothing from, even one that only
    // receives.
    const auto at = std::min(last_rx_, last_tx_) + cfg_.ping_interval;
    if (env().now() >= at) {
      auto r = co_await do_ping();
      if (closed_ || generation != generation_) co_return;
      if (!r && r.error().code() == P2PErrc::timeout) {
        session_error_ = P2PError(P2PErrc::timeout, fmt::format("relay {} did not answer a ping within {}", cfg_.url,
                                                                format_duration(cfg_.pong_timeout)));
        if (force_) force_();
        co_return;
      }
      if (!r) co_return;
      // An answered ping is traffic both ways: wait a full interval again.
      last_rx_ = env().now();
      last_tx_ = last_rx_;
      continue;
    }
    auto w = co_await ping_timer_.wait_until(at);
    if (!w) co_return;
  }
}

template <class Transport>
template <class NextLayer>
asio::awaitable<P2PResult<void>> ClientImpl<Transport>::session(std::shared_ptr<websocket::stream<NextLayer>> ws) {
  beast::flat_buffer buf;
  for (;;) {
    auto [ec, n] = co_await ws->async_read(buf, kUse);
    (void)n;
    if (closed_) co_return P2PResult<void>{};
    if (ec) {
      if (session_error_) co_return fail(*session_error_);
      const auto& reason = ws->reason();
      if (reason.code != websocket::close_code::none) {
        co_return fail(P2PError::connection_closed(
            fmt::format("relay {} (close code {}: {})", cfg_.url, static_cast<unsigned>(reason.code),
                        std::string_view(reason.reason.data(), reason.reason.size()))));
      }
      co_return fail(P2PError::network(fmt::format("relay {} session: {}", cfg_.url, describe(ec))));
    }
    last_rx_ = env().now();
    const ByteView msg(static_cast<const std::byte*>(buf.data().data()), buf.size());
    auto r = handle_frame(msg);
    buf.consume(buf.size());
    if (!r) co_return fail(r.error());
    if (closed_) co_return P2PResult<void>{};
    if (buf.capacity() > 256 * 1024) buf.shrink_to_fit();
  }
}

template <class Transport>
template <class NextLayer>
asio::awaitable<P2PResult<void>> ClientImpl<Transport>::connect_real(std::shared_ptr<websocket::stream<NextLayer>> ws) {
  const auto deadline = env().now() + cfg_.connect_timeout;
  const auto remaining = [&] { return std::max<Duration>(deadline - env().now(), std::chrono::milliseconds(1)); };
  const std::uint64_t gen = ++generation_;
  session_error_.reset();
  auto& lowest = beast::get_lowest_layer(*ws);
  force_ = [ws] { beast::get_lowest_layer(*ws).close(); };

  tcp::resolver resolver(ex_);
  auto [rec, results] = co_await resolver.async_resolve(url_.host, std::to_string(url_.port), kUse);
  if (closed_) co_return P2PResult<void>{};
  if (rec) {
    co_return failed(P2PError::connection_failed(
        fmt::format("relay {}: cannot resolve '{}': {}", cfg_.url, url_.host, describe(rec))));
  }
  lowest.expires_after(remaining());
  {
    auto [cec, ep] = co_await lowest.async_connect(results, kUse);
    if (closed_) co_return P2PResult<void>{};
    if (cec == beast::error::timeout) co_return failed(P2PError::timeout(cfg_.connect_timeout));
    if (cec) co_return failed(P2PError::connection_failed(fmt::format("relay {}: {}", cfg_.url, describe(cec))));
    if (auto ip = SocketAddr::parse_ip(ep.address().to_string(), 0); ip) {
      remote_ip_ = ip->canonical();
    } else {
      remote_ip_.reset();
    }
  }
  {
    boost::system::error_code ec;
    lowest.socket().set_option(tcp::no_delay(true), ec);
  }
  if constexpr (!std::is_same_v<NextLayer, beast::tcp_stream>) {
    auto& tls = ws->next_layer();
    if (!url_.ipv6_literal && url_.host.find_first_not_of("0123456789.") != std::string::npos) {
      SSL_ctrl(tls.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(url_.host.c_str()));
    }
    tls.set_verify_callback(asio::ssl::host_name_verification(url_.host));
    auto [tec] = co_await tls.async_handshake(asio::ssl::stream_base::client, kUse);
    if (closed_) co_return P2PResult<void>{};
    if (tec == beast::error::timeout) co_return failed(P2PError::timeout(cfg_.connect_timeout));
    if (tec) {
      co_return failed(P2PError::connection_failed(fmt::format("relay {}: TLS: {}", cfg_.url, describe(tec))));
    }
  }
  lowest.expires_never();
  ws->set_option(websocket::stream_base::timeout{remaining(), remaining(), false});
  co_return co_await handshake(ws, gen, deadline);
}

template <class Transport>
asio::awaitable<P2PResult<void>> ClientImpl<Transport>::connect_sim() {
  using namespace boost::asio::experimental::awaitable_operators;
  const auto deadline = env().now() + cfg_.connect_timeout;
  const std::uint64_t gen = ++generation_;
  session_error_.reset();
  auto addr = sim_address(*t_.host, url_);
  if (!addr) co_return failed(addr.error());
  // close() during the connect ends it at once: it cancels this timer, the losing side cancels
  // the connect.
  auto abort = std::make_shared<Timer>(env().make_timer());
  force_ = [abort] { abort->cancel(); };
  auto r = co_await (simnet::TcpStream::connect(*t_.host, *addr, cfg_.connect_timeout) || abort->wait_until(deadline));
  if (closed_) co_return P2PResult<void>{};
  if (r.index() == 1) co_return failed(P2PError::timeout(cfg_.connect_timeout));
  auto& stream = std::get<0>(r);
  if (!stream) {
    if (stream.error().code() == P2PErrc::timeout) co_return failed(P2PError::timeout(cfg_.connect_timeout));
    co_return failed(P2PError::connection_failed(fmt::format("relay {}: {}", cfg_.url, stream.error().message())));
  }
  remote_ip_ = addr->with_port(0).canonical();
  auto ws = std::make_shared<websocket::stream<simnet::TcpStream>>(std::move(*stream));
  force_ = [ws] { ws->next_layer().close(); };
  co_return co_await handshake(ws, gen, deadline);
}

template <class Transport>
template <class NextLayer>
asio::awaitable<P2PResult<void>> ClientImpl<Transport>::handshake(std::shared_ptr<websocket::stream<NextLayer>> ws,
                                                                  std::uint64_t gen, TimePoint deadline) {
  auto self = std::static_pointer_cast<ClientImpl>(shared_from_this());
  // Under simulation the handshake's deadline is a virtual-time event that closes the stream
  // (Beast's own timeouts would read the real clock); on real sockets Beast's timeout option.
  std::optional<SimDeadline> guard;
  if constexpr (Transport::kSimulated) {
    guard.emplace(env().runtime());
    guard->arm(deadline, [ws] { ws->next_layer().close(); });
  }
  const auto timed_out = [&](const boost::system::error_code& ec) {
    return ec == beast::error::timeout || (guard && guard->fired());
  };
  ws->set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
    req.set(http::field::sec_websocket_protocol, proto::kSubprotocol);
    req.set(http::field::user_agent, "moosicbox-p2p");
  }));
  ws->read_message_max(kFrameSizeDefault);
  ws->auto_fragment(false);
  ws->write_buffer_bytes(kWriteBufferBytes);
  const std::string host = url_.host_header();
  {
    websocket::response_type res;
    auto [hec] = co_await ws->async_handshake(res, host, std::string(proto::kRelayPath), kUse);
    if (closed_) co_return P2PResult<void>{};
    if (hec) {
      if (res.result_int() != 0 && res.result() != http::status::switching_protocols) {
        std::string body = res.body().substr(0, 200);
        while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
        co_return failed(P2PError::connection_failed(
            fmt::format("relay {} refused the upgrade: HTTP {} {}", cfg_.url, res.result_int(), body)));
      }
      if (timed_out(hec)) co_return failed(P2PError::timeout(cfg_.connect_timeout));
      co_return failed(P2PError::connection_failed(fmt::format("relay {}: upgrade: {}", cfg_.url, describe(hec))));
    }
    const auto sub = res[http::field::sec_websocket_protocol];
    if (std::string_view(sub.data(), sub.size()) != proto::kSubprotocol) {
      co_return failed(
          P2PError::protocol(fmt::format("relay {} did not select subprotocol {}", cfg_.url, proto::kSubprotocol)));
    }
  }
  ws->binary(true);
  beast::flat_buffer buf;
  const auto read_frame = [&]() -> asio::awaitable<P2PResult<proto::Frame>> {
    buf.consume(buf.size());
    auto [ec, n] = co_await ws->async_read(buf, kUse);
    (void)n;
    if (ec) {
      const auto& reason = ws->reason();
      if (reason.code != websocket::close_code::none) {
        co_return fail(
            P2PError::authentication_failed(fmt::format("relay {} closed the handshake: {}", cfg_.url,
                                                        std::string_view(reason.reason.data(), reason.reason.size()))));
      }
      if (timed_out(ec)) co_return fail(P2PError::timeout(cfg_.connect_timeout));
      co_return fail(P2PError::connection_failed(fmt::format("relay {} handshake: {}", cfg_.url, describe(ec))));
    }
    auto f = proto::decode(ByteView(static_cast<const std::byte*>(buf.data().data()), buf.size()), kFrameSizeDefault);
    if (!f) co_return fail(f.error());
    co_return std::move(*f);
  };
  proto::Challenge challenge{};
  {
    auto f = co_await read_frame();
    if (closed_) co_return P2PResult<void>{};
    if (!f) co_return failed(f.error());
    const auto* c = std::get_if<proto::ServerChallenge>(&*f);
    if (c == nullptr) co_return failed(P2PError::protocol("relay handshake: expected ServerChallenge"));
    if (c->version != proto::kVersion) {
      co_return failed(P2PError::protocol(
          fmt::format("relay {} speaks protocol version {}, this node {}", cfg_.url, c->version, proto::kVersion)));
    }
    challenge = c->challenge;
  }
  {
    auto auth = proto::make_auth(cfg_.key, host, challenge);
    if (!auth) co_return failed(auth.error());
    Bytes out;
    proto::encode(out, *auth);
    auto [wec, wn] = co_await ws->async_write(asio::buffer(out), kUse);
    (void)wn;
    if (closed_) co_return P2PResult<void>{};
    if (wec) {
      if (timed_out(wec)) co_return failed(P2PError::timeout(cfg_.connect_timeout));
      co_return failed(P2PError::connection_failed(fmt::format("relay {} handshake: {}", cfg_.url, describe(wec))));
    }
  }
  {
    auto f = co_await read_frame();
    if (closed_) co_return P2PResult<void>{};
    if (!f) co_return failed(f.error());
    const auto* w = std::get_if<proto::ServerWelcome>(&*f);
    if (w == nullptr) co_return failed(P2PError::protocol("relay handshake: expected ServerWelcome"));
    observed_ = w->observed;
    stun_ports_.clear();
    frame_max_ = std::clamp<std::size_t>(w->frame_size_max, 1024, kFrameSizeDefault);
    ws->read_message_max(std::clamp<std::size_t>(w->frame_size_max, kFrameSizeDefault, 16 * 1024 * 1024));
  }
  drop_oversized();
  if constexpr (Transport::kSimulated) {
    // The session's liveness is the ping loop's (as on real sockets, where Beast only bounds the
    // close handshake from here on).
    guard->disarm();
  } else {
    ws->set_option(websocket::stream_base::timeout{cfg_.connect_timeout, websocket::stream_base::none(), false});
  }
  stats_.connects++;
  failures_ = 0;
  restart_until_.reset();
  last_rx_ = env().now();
  last_tx_ = last_rx_;
  // Weak: a member holding the client would keep it alive forever when its io_context goes away
  // with the session suspended (a cycle no one breaks). The writer holds it while it runs.
  start_writer_ = [this, weak = std::weak_ptr<ClientImpl>(self), ws, gen] {
    if (auto strong = weak.lock()) spawn_logged(ex_, write_loop(strong, ws, gen), "relay client writer");
  };
  set_state(ClientState::connected, std::nullopt);
  kick();
  spawn_logged(ex_, ping_loop(self, gen), "relay client pings");
  co_return co_await session(ws);
}

template <class Transport>
asio::awaitable<void> ClientImpl<Transport>::run(std::shared_ptr<ClientImpl> self) {
  (void)self;
  while (!closed_) {
    set_state(ClientState::connecting, std::nullopt);
    P2PResult<void> r;
    if constexpr (Transport::kSimulated) {
      r = co_await connect_sim();
    } else {
      if (t_.tls) {
        auto ws = std::make_shared<websocket::stream<beast::ssl_stream<beast::tcp_stream>>>(ex_, *t_.tls);
        r = co_await connect_real(ws);
      } else {
        auto ws = std::make_shared<websocket::stream<beast::tcp_stream>>(ex_);
        r = co_await connect_real(ws);
      }
    }
    // End the session: its writer and ping loop see the generation change.
    ++generation_;
    if (force_) force_();
    force_ = nullptr;
    start_writer_ = nullptr;
    writing_ = false;
    end_pings();
    ping_timer_.cancel();
    if (closed_) break;
    P2PError why = r ? P2PError::connection_closed(fmt::format("relay {} ended the session", cfg_.url)) : r.error();
    const auto now = env().now();
    Duration delay{};
    if (restarting_) {
      restart_until_ = now + std::chrono::milliseconds(restarting_->try_for_ms);
      delay = jittered(std::chrono::milliseconds(restarting_->reconnect_in_ms));
      restarting_.reset();
    } else if (restart_until_ && now < *restart_until_) {
      delay = std::min(next_backoff(), std::max<Duration>(*restart_until_ - now, std::chrono::milliseconds(1)));
      failures_ = std::min<std::uint32_t>(failures_ + 1, 32);
      why = P2PError::connection_failed(fmt::format("relay {} restarting, not back yet: {}", cfg_.url, why.message()));
    } else if (restart_until_) {
      restart_until_.reset();
      delay = next_backoff();
      failures_ = std::min<std::uint32_t>(failures_ + 1, 32);
      why = P2PError::connection_failed(
          fmt::format("relay {} did not come back after its restart; backing off: {}", cfg_.url, why.message()));
    } else {
      delay = next_backoff();
      failures_ = std::min<std::uint32_t>(failures_ + 1, 32);
    }
    logger().debug("relay client {}: {}; next attempt in {}", cfg_.url, why.message(), format_duration(delay));
    set_state(ClientState::waiting, std::move(why));
    auto w = co_await backoff_timer_.wait_until(now + delay);
    (void)w;
  }
}

/// probe_request sends GET /generate_204 with a random challenge on `stream` and times the answer.
/// `guard`, under simulation, is the deadline that closes the stream (its firing means timeout).
/// Any HTTP answer is a result (the caller judges it); only transport failures are errors.
template <class Stream, class Env>
asio::awaitable<P2PResult<RelayProbe>> probe_request(Stream& stream, Env& env, const RelayUrl& url, Duration timeout,
                                                     const SimDeadline* guard) {
  const auto timed_out = [&](const boost::system::error_code& ec) {
    return ec == beast::error::timeout || (guard != nullptr && guard->fired());
  };
  std::array<std::byte, 8> token_bytes{};
  env.fill_random(token_bytes);
  std::string token;
  for (auto b : token_bytes) token += fmt::format("{:02x}", std::to_integer<unsigned>(b));
  http::request<http::empty_body> req{http::verb::get, "/generate_204", 11};
  req.set(http::field::host, url.host_header());
  req.set(http::field::user_agent, "moosicbox-p2p");
  req.set(proto::kChallengeHeader, token);
  req.keep_alive(false);
  const auto start = env.now();
  auto [wec, wn] = co_await http::async_write(stream, req, kUse);
  (void)wn;
  if (timed_out(wec)) co_return fail(P2PError::timeout(timeout));
  if (wec) co_return fail(P2PError::network(fmt::format("relay probe: {}", describe(wec))));
  beast::flat_buffer buf(16 * 1024);
  http::response_parser<http::string_body> parser;
  parser.body_limit(16 * 1024);
  auto [rec, rn] = co_await http::async_read(stream, buf, parser, kUse);
  (void)rn;
  RelayProbe probe;
  probe.latency = env.now() - start;
  if (timed_out(rec)) co_return fail(P2PError::timeout(timeout));
  if (rec) co_return fail(P2PError::network(fmt::format("relay probe: {}", describe(rec))));
  const auto& res = parser.get();
  probe.status = res.result_int();
  const auto echo = res[proto::kResponseHeader];
  probe.challenge_echoed =
      res.result() == http::status::no_content && std::string_view(echo.data(), echo.size()) == token;
  const auto stun = res[proto::kStunHeader];
  probe.stun_ports = proto::parse_stun_header(std::string_view(stun.data(), stun.size()));
  co_return probe;
}

/// check_probe turns a probe into probe_latency's result: a 204 echoing the challenge, or an error.
inline P2PResult<Duration> check_probe(const P2PResult<RelayProbe>& p) {
  if (!p) return fail(p.error());
  if (p->status != 204) {
    return fail(P2PError::network(fmt::format("relay probe: /generate_204 answered HTTP {}", p->status)));
  }
  if (!p->challenge_echoed) {
    return fail(P2PError::network("relay probe: the answer does not echo the challenge (a captive portal?)"));
  }
  return p->latency;
}

/// create_sim_client builds the simulated client (client_sim.cpp); `config` and `url` are valid.
/// Errors: invalid_configuration (https, an executor that is not the host's runtime's).
P2PResult<std::shared_ptr<Client>> create_sim_client(asio::any_io_executor ex, ClientConfig config, RelayUrl url);

}  // namespace moosicbox::p2p::relay::detail
