// SPDX-License-Identifier: MIT OR Apache-2.0
// server.cpp: RelayServer. One acceptor loop per bound address; per connection, an optional TLS
// handshake, then HTTP requests (/healthz, /generate_204, /metrics) until one upgrades GET /relay to a
// WebSocket; per WebSocket session, a read loop that authenticates the client and forwards its
// datagrams into the destination's bounded queue, and an on-demand writer that coalesces that queue
// into few large frames (one write in flight, as Beast requires). docs/protocol.md has the format.
// The same code serves real TCP (optionally TLS) or, with RelayServerConfig::sim_host, simnet
// streams on a simulated host; there every deadline (handshake, idle, HTTP, close) is an event in
// virtual time rather than Beast's timers, and the clock and randomness are the host's.
// Layer: relay. Everything runs on the server's executor: no locks.
#include "moosicbox/p2p/relay/server.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <deque>
#include <filesystem>
#include <list>
#include <map>
#include <unordered_map>

#include <fmt/format.h>

#include "core/log.hpp"
#include "moosicbox/p2p/core/spawn.hpp"
#include "moosicbox/p2p/env/udp_socket.hpp"
#include "moosicbox/p2p/simnet/beast.hpp"
#include "moosicbox/p2p/simnet/network.hpp"
#include "relay/either_env.hpp"
#include "relay/protocol.hpp"
#include "relay/stun.hpp"

namespace moosicbox::p2p::relay {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using detail::EitherEnv;
using detail::SimDeadline;
using proto::RawId;

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);
// How long shutdown() waits for sessions to end before it closes their sockets.
constexpr Duration kShutdownGrace = std::chrono::seconds(5);
// Plain HTTP connections (keep-alive) are closed after this much quiet.
constexpr Duration kHttpIdleTimeout = std::chrono::seconds(30);
// Bounded memory for the peer-gone bookkeeping of one session.
constexpr std::size_t kRecentSendersMax = 4;
constexpr std::size_t kPeerGoneSlots = 8;
constexpr Duration kPeerGoneInterval = std::chrono::seconds(1);
// A read buffer that grew for a large message is released when the socket has nothing more, so an
// idle session holds no large buffer.
constexpr std::size_t kReadBufferKeepMax = 16 * 1024;
// The suggested client ping interval (ServerWelcome).
constexpr std::uint32_t kPingIntervalMs = 15'000;

SocketAddr from_endpoint(const tcp::endpoint& ep) {
  const auto ip = ep.address();
  if (ip.is_v4()) return SocketAddr::v4(ip.to_v4().to_bytes(), ep.port());
  const auto v6 = ip.to_v6();
  return SocketAddr::v6(v6.to_bytes(), ep.port(), static_cast<std::uint32_t>(v6.scope_id())).canonical();
}

tcp::endpoint to_endpoint(const SocketAddr& a) {
  if (a.is_v4()) return {asio::ip::address_v4(a.v4_bytes()), a.port()};
  return {asio::ip::address_v6(a.v6_bytes(), a.scope_id()), a.port()};
}

std::uint32_t to_ms(Duration d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(ms, 0, UINT32_MAX));
}

bool has_subprotocol(std::string_view list, std::string_view want) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    auto item = list.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item == want) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// count_records returns how many datagram records a validated records view holds.
std::size_t count_records(ByteView records) {
  std::size_t n = 0;
  proto::DatagramIterator it(records);
  while (!it.next().empty()) ++n;
  return n;
}

}  // namespace

// Peer is the type-erased side of a WebSocket session that other sessions and the server use.
class Peer {
 public:
  virtual ~Peer() = default;
  // enqueue_records queues validated datagram records from `src`; false when the queue is full.
  virtual bool enqueue_records(const RawId& src, ByteView records, std::size_t count) = 0;
  // enqueue_frame queues one encoded control frame; false when the queue is full.
  virtual bool enqueue_frame(const proto::Frame& frame) = 0;
  // close sends a WebSocket close after what is queued (or at once with `discard`).
  virtual void close(websocket::close_code code, std::string_view reason, bool discard) = 0;
  // force closes the socket.
  virtual void force() = 0;
  // note_sender remembers `src` sent to this peer (told when this session ends).
  virtual void note_sender(const RawId& src) = 0;
  bool authenticated = false;
  RawId id{};
};

// Closer closes the lowest layer of a connection's stream (a beast::tcp_stream or a simnet one),
// wherever the stream has moved to.
struct Closer {
  void* stream = nullptr;
  void (*fn)(void*) = nullptr;
  template <class Lowest>
  static Closer of(Lowest& lowest) {
    return {&lowest, [](void* p) { static_cast<Lowest*>(p)->close(); }};
  }
  explicit operator bool() const noexcept { return stream != nullptr; }
  void operator()() const { fn(stream); }
};

// Conn is one accepted connection in the server's registry (for shutdown and the destructor).
struct Conn {
  Closer lowest;
  Peer* peer = nullptr;
};

struct RelayServer::State : std::enable_shared_from_this<RelayServer::State> {
  State(asio::any_io_executor e, EitherEnv environment, RelayServerConfig c)
      : ex(std::move(e)), env(environment), config(std::move(c)) {}

  asio::any_io_executor ex;
  EitherEnv env;
  RelayServerConfig config;
  std::optional<asio::ssl::context> ssl;
  std::vector<tcp::acceptor> acceptors;
  std::vector<simnet::TcpListener> listeners;       // under simulation, instead of acceptors
  std::vector<env::UdpSocket> stun_sockets;         // the STUN responder's sockets
  std::vector<simnet::UdpSocket> stun_sim_sockets;  // under simulation, instead of stun_sockets
  std::vector<SocketAddr> stun_local;
  std::vector<std::uint16_t> stun_ports;  // distinct, at most proto::kStunPortsMax (StunInfo, the header)
  std::vector<SocketAddr> local;
  RelayServerStats stats;
  std::unordered_map<RawId, Peer*, proto::RawIdHash> clients;
  std::map<SocketAddr, std::size_t> per_ip;
  std::list<Conn> conns;
  std::vector<EitherEnv::Timer*> drain_waiters;
  bool stopping = false;
  proto::Health health;

  void conn_ended(std::list<Conn>::iterator it) {
    conns.erase(it);
    if (conns.empty()) {
      for (auto* w : drain_waiters) w->cancel();
    }
  }

  void ip_release(const SocketAddr& ip) {
    auto it = per_ip.find(ip);
    if (it == per_ip.end()) return;
    if (--it->second == 0) per_ip.erase(it);
  }

  void stop_accepting() {
    for (auto& a : acceptors) {
      boost::system::error_code ec;
      a.close(ec);
    }
    for (auto& l : listeners) l.close();
    for (auto& u : stun_sockets) u.close();
    for (auto& u : stun_sim_sockets) u.close();
  }

  void force_all() {
    for (auto& c : conns) {
      if (c.peer != nullptr) {
        c.peer->force();
      } else if (c.lowest) {
        c.lowest();
      }
    }
  }

  std::string metrics() const;
};

std::string RelayServer::State::metrics() const {
  std::string out;
  auto metric = [&](std::string_view name, std::string_view type, std::string_view help) {
    out += fmt::format("# HELP moosicbox_p2p_relay_{} {}\n# TYPE moosicbox_p2p_relay_{} {}\n", name, help, name, type);
  };
  auto value = [&](std::string_view name, std::string_view labels, std::uint64_t v) {
    out += fmt::format("moosicbox_p2p_relay_{}{} {}\n", name, labels, v);
  };
  metric("clients", "gauge", "Authenticated clients connected.");
  value("clients", "", stats.clients);
  metric("handshakes", "gauge", "Connections not yet authenticated.");
  value("handshakes", "", stats.handshakes);
  metric("accepted_total", "counter", "Clients that completed the handshake.");
  value("accepted_total", "", stats.accepted_total);
  metric("bytes_forwarded_total", "counter", "Datagram bytes queued to their destination.");
  value("bytes_forwarded_total", "", stats.bytes_forwarded);
  metric("datagrams_forwarded_total", "counter", "Datagrams queued to their destination.");
  value("datagrams_forwarded_total", "", stats.datagrams_forwarded);
  metric("frames_received_total", "counter", "Protocol frames received from clients.");
  value("frames_received_total", "", stats.frames_received);
  metric("drops_total", "counter", "Datagrams or frames dropped, by reason.");
  value("drops_total", "{reason=\"no_peer\"}", stats.drops_no_peer);
  value("drops_total", "{reason=\"rate_limited\"}", stats.drops_rate_limited);
  value("drops_total", "{reason=\"queue_full\"}", stats.drops_queue_full);
  value("drops_total", "{reason=\"malformed\"}", stats.drops_malformed);
  metric("handshake_failures_total", "counter", "Handshakes refused (bad signature, timeout, protocol error).");
  value("handshake_failures_total", "", stats.handshake_failures);
  metric("refused_total", "counter", "Connections refused by a limit, by reason.");
  value("refused_total", "{reason=\"per_ip\"}", stats.refused_per_ip);
  value("refused_total", "{reason=\"capacity\"}", stats.refused_capacity);
  metric("peer_gone_sent_total", "counter", "Peer-gone frames sent.");
  value("peer_gone_sent_total", "", stats.peer_gone_sent);
  metric("http_requests_total", "counter", "Plain HTTP requests served.");
  value("http_requests_total", "", stats.http_requests);
  metric("stun_requests_total", "counter", "STUN Binding requests answered.");
  value("stun_requests_total", "", stats.stun_requests);
  metric("stun_malformed_total", "counter", "Datagrams to the STUN port that were not a valid Binding request.");
  value("stun_malformed_total", "", stats.stun_malformed);
  return out;
}

namespace {

using StatePtr = std::shared_ptr<RelayServer::State>;

// kSimulated<Stream> is true for a simulated stream: its deadlines are virtual-time events.
template <class Stream>
inline constexpr bool kSimulated = std::is_same_v<Stream, simnet::TcpStream>;

// Session is one WebSocket client over `NextLayer` (tcp_stream, ssl_stream over it, or a simnet
// stream).
template <class NextLayer>
class Session final : public Peer, public std::enable_shared_from_this<Session<NextLayer>> {
 public:
  Session(StatePtr s, NextLayer&& next, SocketAddr observed, SocketAddr ip_key)
      : s_(std::move(s)), ws_(std::move(next)), observed_(observed), ip_key_(ip_key), timer_(s_->env.make_timer()) {
    if constexpr (kSimulated<NextLayer>) {
      auto& rt = s_->env.sim()->runtime();
      idle_.emplace(rt);
      close_guard_.emplace(rt);
    }
  }

  websocket::stream<NextLayer>& ws() { return ws_; }

  asio::awaitable<void> run(http::request<http::empty_body> req, TimePoint deadline);

  bool enqueue_records(const RawId& src, ByteView records, std::size_t count) override {
    if (closing_) return false;
    const auto& limits = s_->config.limits;
    if (queued_ + records.size() + proto::kPacketHeaderSize > limits.client_queue_bytes_max) return false;
    if (!append_to_last_ || last_src_ != src || frames_.back().size() + records.size() > limits.frame_size_max) {
      frames_.push_back(take_buffer());
      proto::begin_packets(frames_.back(), proto::FrameType::recv_packet, src);
      queued_ += proto::kPacketHeaderSize;
      append_to_last_ = true;
      last_src_ = src;
    }
    frames_.back().insert(frames_.back().end(), records.begin(), records.end());
    queued_ += records.size();
    s_->stats.datagrams_forwarded += count;
    s_->stats.bytes_forwarded += records.size() - 2 * count;
    kick();
    return true;
  }

  bool enqueue_frame(const proto::Frame& frame) override {
    if (closing_) return false;
    Bytes b = take_buffer();
    proto::encode(b, frame);
    if (queued_ + b.size() > s_->config.limits.client_queue_bytes_max) {
      give_buffer(std::move(b));
      return false;
    }
    queued_ += b.size();
    frames_.push_back(std::move(b));
    append_to_last_ = false;
    kick();
    return true;
  }

  void close(websocket::close_code code, std::string_view reason, bool discard) override {
    if (closing_) return;
    closing_ = true;
    close_reason_ = websocket::close_reason(code, reason);
    if (discard) {
      frames_.clear();
      queued_ = 0;
    }
    append_to_last_ = false;
    kick();
  }

  void force() override { beast::get_lowest_layer(ws_).close(); }

  void note_sender(const RawId& src) override {
    for (const auto& r : recent_senders_) {
      if (r == src) return;
    }
    if (recent_senders_.size() < kRecentSendersMax) {
      recent_senders_.push_back(src);
    } else {
      recent_senders_[next_sender_slot_] = src;
      next_sender_slot_ = (next_sender_slot_ + 1) % kRecentSendersMax;
    }
  }

 private:
  Bytes take_buffer() {
    if (spare_.empty()) return {};
    Bytes b = std::move(spare_.back());
    spare_.pop_back();
    b.clear();
    return b;
  }
  void give_buffer(Bytes b) {
    // One spare buffer is enough to alternate with the one in flight; small ones are not worth it.
    if (spare_.empty() && b.capacity() >= 1024) spare_.push_back(std::move(b));
  }

  void kick() {
    if (writing_) return;
    if (frames_.empty() && !closing_) return;
    if (closed_sent_) return;
    writing_ = true;
    spawn_logged(s_->ex, write_loop(this->shared_from_this()), "relay session writer");
  }

  static asio::awaitable<void> write_loop(std::shared_ptr<Session> self) {
    while (!self->frames_.empty()) {
      Bytes frame = std::move(self->frames_.front());
      self->frames_.pop_front();
      if (self->frames_.empty()) self->append_to_last_ = false;
      self->queued_ -= std::min(self->queued_, frame.size());
      auto [ec, n] = co_await self->ws_.async_write(asio::buffer(frame), kUse);
      (void)n;
      if (ec) {
        self->frames_.clear();
        self->queued_ = 0;
        self->writing_ = false;
        self->closing_ = true;
        self->closed_sent_ = true;
        co_return;
      }
      self->give_buffer(std::move(frame));
    }
    if (self->closing_ && !self->closed_sent_) {
      self->closed_sent_ = true;
      if constexpr (kSimulated<NextLayer>) {
        // Beast bounds the close handshake by the handshake timeout on real sockets; the same here.
        self->close_guard_->arm(self->s_->env.now() + self->s_->config.limits.handshake_timeout,
                                [raw = self.get()] { raw->force(); });
      }
      auto [ec] = co_await self->ws_.async_close(self->close_reason_, kUse);
      if constexpr (kSimulated<NextLayer>) self->close_guard_->disarm();
      if (ec) self->force();
    }
    self->writing_ = false;
    // Frames queued while the close was in flight are dropped; frames queued during the last write
    // start a new writer.
    if (!self->closed_sent_) self->kick();
  }

  void fail_protocol(const std::string& why) {
    logger().debug("relay: closing {} ({}): {}", observed_, authenticated ? id_text() : "unauthenticated", why);
    close(websocket::close_code::policy_error, why.substr(0, 120), true);
  }

  std::string id_text() const {
    auto nid = NodeId::from_bytes(std::span<const std::uint8_t>(id));
    return nid ? nid->fmt_short() : "?";
  }

  asio::awaitable<void> watchdog(std::shared_ptr<Session> self, TimePoint deadline) {
    auto r = co_await timer_.wait_until(deadline);
    if (!r) co_return;  // cancelled: authenticated or ended
    if (self->authenticated || self->ended_) co_return;
    self->s_->stats.handshake_failures++;
    self->handshake_failed_ = true;
    if constexpr (kSimulated<NextLayer>) {
      // Beast's handshake timeout ends an unfinished upgrade on real sockets; here the watchdog.
      if (!self->accepted_) {
        self->force();
        co_return;
      }
    }
    self->close(websocket::close_code::policy_error, "handshake timeout", true);
    // A client that does not answer the close is cut off after the WebSocket close timeout.
  }

  // arm_idle closes the session once it has received nothing for idle_timeout (under simulation;
  // Beast's idle timeout does it on real sockets).
  void arm_idle() {
    idle_->arm(last_rx_ + s_->config.limits.idle_timeout, [this] {
      if (s_->env.now() - last_rx_ >= s_->config.limits.idle_timeout) {
        force();
      } else {
        arm_idle();
      }
    });
  }

  bool authenticate(ByteView msg);
  void on_packets(const proto::SendPacket& p);
  void peer_gone_not_connected(const RawId& dst);
  bool take_tokens(std::size_t n);
  void on_end();

  StatePtr s_;
  websocket::stream<NextLayer> ws_;
  SocketAddr observed_;
  SocketAddr ip_key_;
  EitherEnv::Timer timer_;
  proto::Challenge challenge_{};
  std::string host_;
  beast::flat_buffer rd_;
  std::deque<Bytes> frames_;
  std::vector<Bytes> spare_;
  std::size_t queued_ = 0;
  RawId last_src_{};
  bool append_to_last_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool closed_sent_ = false;
  bool ended_ = false;
  bool handshake_failed_ = false;
  bool accepted_ = false;
  websocket::close_reason close_reason_;
  // Under simulation only: the idle deadline and the bound on the close handshake.
  std::optional<SimDeadline> idle_;
  std::optional<SimDeadline> close_guard_;
  TimePoint last_rx_{};
  double tokens_ = 0;
  TimePoint refilled_{};
  std::vector<RawId> recent_senders_;
  std::size_t next_sender_slot_ = 0;
  std::vector<std::pair<RawId, TimePoint>> gone_sent_;
  std::size_t next_gone_slot_ = 0;
};

template <class NextLayer>
bool Session<NextLayer>::authenticate(ByteView msg) {
  auto f = proto::decode(msg, s_->config.limits.frame_size_max);
  if (!f) {
    s_->stats.handshake_failures++;
    handshake_failed_ = true;
    if (!proto::is_unknown_type(f.error())) s_->stats.drops_malformed++;
    fail_protocol("protocol error: " + f.error().context());
    return false;
  }
  const auto* auth = std::get_if<proto::ClientAuth>(&*f);
  if (auth == nullptr) {
    s_->stats.handshake_failures++;
    handshake_failed_ = true;
    fail_protocol("protocol error: expected ClientAuth");
    return false;
  }
  auto who = proto::verify_auth(*auth, host_, challenge_);
  // The challenge is single use whatever the outcome.
  challenge_ = {};
  if (!who) {
    s_->stats.handshake_failures++;
    handshake_failed_ = true;
    fail_protocol(who.error().context());
    return false;
  }
  authenticated = true;
  id = auth->node_id;
  timer_.cancel();
  s_->stats.handshakes--;
  s_->stats.clients++;
  s_->stats.accepted_total++;
  if (auto it = s_->clients.find(id); it != s_->clients.end()) {
    Peer* old = it->second;
    it->second = this;
    old->close(websocket::close_code::policy_error, "replaced", true);
  } else {
    s_->clients.emplace(id, this);
  }
  if constexpr (kSimulated<NextLayer>) {
    arm_idle();
  } else {
    ws_.set_option(
        websocket::stream_base::timeout{s_->config.limits.handshake_timeout, s_->config.limits.idle_timeout, false});
  }
  proto::ServerWelcome w{observed_, kPingIntervalMs, static_cast<std::uint32_t>(s_->config.limits.frame_size_max)};
  enqueue_frame(w);
  if (!s_->stun_ports.empty()) enqueue_frame(proto::StunInfo{s_->stun_ports});
  if (s_->health.status != 0) enqueue_frame(s_->health);
  logger().debug("relay: {} authenticated from {}", id_text(), observed_);
  return true;
}

template <class NextLayer>
bool Session<NextLayer>::take_tokens(std::size_t n) {
  const auto& limits = s_->config.limits;
  if (limits.client_bytes_per_second == 0) return true;
  const auto now = s_->env.now();
  const double burst = static_cast<double>(limits.client_burst_bytes);
  if (refilled_ == TimePoint{}) {
    tokens_ = burst;
  } else {
    const double dt = std::chrono::duration<double>(now - refilled_).count();
    tokens_ = std::min(burst, tokens_ + dt * static_cast<double>(limits.client_bytes_per_second));
  }
  refilled_ = now;
  if (tokens_ < static_cast<double>(n)) return false;
  tokens_ -= static_cast<double>(n);
  return true;
}

template <class NextLayer>
void Session<NextLayer>::peer_gone_not_connected(const RawId& dst) {
  const auto now = s_->env.now();
  for (auto& [who, at] : gone_sent_) {
    if (who != dst) continue;
    if (now - at < kPeerGoneInterval) return;
    at = now;
    if (enqueue_frame(proto::PeerGone{dst, 0})) s_->stats.peer_gone_sent++;
    return;
  }
  if (gone_sent_.size() < kPeerGoneSlots) {
    gone_sent_.emplace_back(dst, now);
  } else {
    gone_sent_[next_gone_slot_] = {dst, now};
    next_gone_slot_ = (next_gone_slot_ + 1) % kPeerGoneSlots;
  }
  if (enqueue_frame(proto::PeerGone{dst, 0})) s_->stats.peer_gone_sent++;
}

template <class NextLayer>
void Session<NextLayer>::on_packets(const proto::SendPacket& p) {
  auto it = s_->clients.find(p.peer);
  if (it == s_->clients.end()) {
    s_->stats.drops_no_peer += count_records(p.datagrams);
    peer_gone_not_connected(p.peer);
    return;
  }
  Peer* dst = it->second;
  dst->note_sender(id);
  // Fast path: the whole frame fits the rate and the destination's queue, one copy.
  const std::size_t total = p.datagrams.size();
  const std::size_t count = count_records(p.datagrams);
  const std::size_t payload = total - 2 * count;
  if (take_tokens(payload)) {
    if (dst->enqueue_records(id, p.datagrams, count)) return;
    // Give the tokens back; fall through to datagram by datagram.
    tokens_ += static_cast<double>(payload);
  }
  ByteView rest = p.datagrams;
  while (!rest.empty()) {
    const std::size_t n = (std::to_integer<std::size_t>(rest[0]) << 8) | std::to_integer<std::size_t>(rest[1]);
    const auto record = rest.first(2 + n);
    rest = rest.subspan(2 + n);
    if (!take_tokens(n)) {
      s_->stats.drops_rate_limited++;
      continue;
    }
    if (!dst->enqueue_records(id, record, 1)) s_->stats.drops_queue_full++;
  }
}

template <class NextLayer>
void Session<NextLayer>::on_end() {
  ended_ = true;
  timer_.cancel();
  if constexpr (kSimulated<NextLayer>) idle_->disarm();
  if (authenticated) {
    s_->stats.clients--;
    auto it = s_->clients.find(id);
    if (it != s_->clients.end() && it->second == this) {
      s_->clients.erase(it);
      for (const auto& sender : recent_senders_) {
        auto other = s_->clients.find(sender);
        if (other == s_->clients.end()) continue;
        if (other->second->enqueue_frame(proto::PeerGone{id, 1})) s_->stats.peer_gone_sent++;
      }
    }
  } else {
    s_->stats.handshakes--;
    if (!handshake_failed_ && !s_->stopping) s_->stats.handshake_failures++;
  }
  s_->ip_release(ip_key_);
}

template <class NextLayer>
asio::awaitable<void> Session<NextLayer>::run(http::request<http::empty_body> req, TimePoint deadline) {
  auto self = this->shared_from_this();
  const auto& limits = s_->config.limits;
  host_ = std::string(req[http::field::host]);
  ws_.read_message_max(limits.frame_size_max);
  ws_.auto_fragment(false);
  ws_.binary(true);
  if constexpr (!kSimulated<NextLayer>) {
    const auto remaining = std::max<Duration>(deadline - s_->env.now(), std::chrono::milliseconds(1));
    ws_.set_option(websocket::stream_base::timeout{remaining, remaining, false});
  }
  ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
    res.set(http::field::sec_websocket_protocol, proto::kSubprotocol);
    res.set(http::field::server, "moosicbox-p2p-relay");
  }));
  spawn_logged(s_->ex, watchdog(self, deadline), "relay handshake watchdog");
  {
    auto [ec] = co_await ws_.async_accept(req, kUse);
    if (ec) {
      on_end();
      co_return;
    }
  }
  accepted_ = true;
  if constexpr (!kSimulated<NextLayer>) {
    boost::system::error_code ec;
    beast::get_lowest_layer(ws_).socket().set_option(tcp::no_delay(true), ec);
  }
  s_->env.fill_random(std::as_writable_bytes(std::span(challenge_)));
  enqueue_frame(proto::ServerChallenge{proto::kVersion, challenge_});
  for (;;) {
    auto [ec, n] = co_await ws_.async_read(rd_, kUse);
    if (ec) break;
    if constexpr (kSimulated<NextLayer>) last_rx_ = s_->env.now();
    const ByteView msg(static_cast<const std::byte*>(rd_.data().data()), rd_.size());
    s_->stats.frames_received++;
    if (closing_) {
      rd_.consume(rd_.size());
      continue;
    }
    if (!ws_.got_binary()) {
      s_->stats.drops_malformed++;
      if (!authenticated) {
        s_->stats.handshake_failures++;
        handshake_failed_ = true;
      }
      fail_protocol("protocol error: text message");
    } else if (!authenticated) {
      authenticate(msg);
    } else {
      auto f = proto::decode(msg, limits.frame_size_max);
      if (!f) {
        if (proto::is_unknown_type(f.error())) {
          s_->stats.frames_unknown++;
        } else {
          s_->stats.drops_malformed++;
          fail_protocol("protocol error: " + f.error().context());
        }
      } else if (const auto* p = std::get_if<proto::SendPacket>(&*f)) {
        on_packets(*p);
      } else if (const auto* ping = std::get_if<proto::Ping>(&*f)) {
        enqueue_frame(proto::Pong{ping->data});
      } else if (std::holds_alternative<proto::Pong>(*f)) {
        // The server does not ping (clients do); an unsolicited pong is harmless.
      } else {
        s_->stats.drops_malformed++;
        fail_protocol("protocol error: unexpected frame from a client");
      }
    }
    rd_.consume(rd_.size());
    if (rd_.capacity() > kReadBufferKeepMax) {
      if constexpr (kSimulated<NextLayer>) {
        // A simulated stream cannot tell what is pending: release the buffer after every large one.
        rd_.shrink_to_fit();
      } else {
        boost::system::error_code aec;
        const auto avail = beast::get_lowest_layer(ws_).socket().available(aec);
        if (aec || avail == 0) rd_.shrink_to_fit();
      }
    }
  }
  on_end();
  // Closing the socket ends an in-flight write (the writer holds its own reference to the session).
  force();
}

// serve_http answers one plain HTTP request; returns whether to keep the connection.
template <class Stream>
asio::awaitable<bool> serve_http(StatePtr s, Stream& stream, const http::request<http::empty_body>& req) {
  s->stats.http_requests++;
  http::response<http::string_body> res{http::status::ok, req.version()};
  res.set(http::field::server, "moosicbox-p2p-relay");
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.set(http::field::cache_control, "no-store");
  const auto target = std::string_view(req.target().data(), req.target().size());
  const auto path = target.substr(0, target.find('?'));
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    res.result(http::status::method_not_allowed);
    res.set(http::field::allow, "GET, HEAD");
    res.body() = "method not allowed\n";
  } else if (path == "/healthz") {
    res.body() = "ok\n";
  } else if (path == "/generate_204") {
    res.result(http::status::no_content);
    if (auto it = req.find(proto::kChallengeHeader); it != req.end()) {
      const auto v = it->value();
      if (v.size() <= 128) res.set(proto::kResponseHeader, v);
    }
    if (!s->stun_ports.empty()) {
      res.set(proto::kStunHeader, proto::format_stun_header(s->stun_ports));
    }
  } else if (path == "/metrics") {
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = s->metrics();
  } else if (path == proto::kRelayPath) {
    res.result(http::status::bad_request);
    res.body() = "relay: GET /relay must upgrade to a WebSocket (subprotocol moosicbox-p2p-relay-v1)\n";
  } else {
    res.result(http::status::not_found);
    res.body() = "not found\n";
  }
  res.keep_alive(req.keep_alive());
  res.prepare_payload();
  if (req.method() == http::verb::head) res.body().clear();
  auto [ec, n] = co_await http::async_write(stream, res, kUse);
  (void)n;
  co_return !ec && req.keep_alive();
}

template <class Stream>
asio::awaitable<void> refuse(Stream& stream, const http::request<http::empty_body>& req, http::status status,
                             std::string body) {
  http::response<http::string_body> res{status, req.version()};
  res.set(http::field::server, "moosicbox-p2p-relay");
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.keep_alive(false);
  res.body() = std::move(body);
  res.prepare_payload();
  auto [ec, n] = co_await http::async_write(stream, res, kUse);
  (void)ec;
  (void)n;
}

// HttpDeadline bounds each step of a connection's HTTP phase: Beast's stream expiry on real
// sockets, a virtual-time event that closes the stream under simulation.
template <class Stream>
class HttpDeadline {
 public:
  HttpDeadline(RelayServer::State& s, Stream& stream) : env_(&s.env), stream_(&stream) {
    if constexpr (kSimulated<Stream>) guard_.emplace(s.env.sim()->runtime());
  }
  void after(Duration d) {
    if constexpr (kSimulated<Stream>) {
      guard_->arm(env_->now() + d, [stream = stream_] { stream->close(); });
    } else {
      beast::get_lowest_layer(*stream_).expires_after(d);
    }
  }
  void never() {
    if constexpr (kSimulated<Stream>) {
      guard_->disarm();
    } else {
      beast::get_lowest_layer(*stream_).expires_never();
    }
  }
  [[nodiscard]] bool expired(const boost::system::error_code& ec) const {
    return ec == beast::error::timeout || (guard_ && guard_->fired());
  }

 private:
  EitherEnv* env_;
  Stream* stream_;
  std::optional<SimDeadline> guard_;
};

// serve_stream reads HTTP requests on `stream` until one upgrades (then runs the session) or the
// connection ends.
template <class Stream>
asio::awaitable<void> serve_stream(StatePtr s, Stream stream, std::list<Conn>::iterator conn, SocketAddr peer_addr,
                                   TimePoint deadline, bool& counted_handshake) {
  const auto& limits = s->config.limits;
  // The caller's stream was moved into this one.
  conn->lowest = Closer::of(beast::get_lowest_layer(stream));
  HttpDeadline<Stream> expiry(*s, stream);
  for (;;) {
    std::optional<http::request<http::empty_body>> upgrade;
    {
      beast::flat_buffer buf(limits.http_request_bytes_max);
      http::request_parser<http::empty_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(limits.http_request_bytes_max, UINT32_MAX)));
      parser.body_limit(0);
      if (counted_handshake) {
        expiry.after(std::max<Duration>(deadline - s->env.now(), std::chrono::milliseconds(1)));
      } else {
        expiry.after(std::min<Duration>(kHttpIdleTimeout, limits.handshake_timeout));
      }
      auto [ec, n] = co_await http::async_read(stream, buf, parser, kUse);
      (void)n;
      if (ec) {
        if (expiry.expired(ec) && counted_handshake) s->stats.handshake_failures++;
        if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
          expiry.after(std::chrono::seconds(1));
          http::response<http::string_body> res{http::status::request_header_fields_too_large, 11};
          res.body() = "request head too large\n";
          res.keep_alive(false);
          res.prepare_payload();
          auto [wec, wn] = co_await http::async_write(stream, res, kUse);
          (void)wec;
          (void)wn;
        }
        co_return;
      }
      auto& req = parser.get();
      if (!websocket::is_upgrade(req)) {
        if (counted_handshake) {
          counted_handshake = false;
          s->stats.handshakes--;
        }
        expiry.after(std::chrono::seconds(10));
        auto keep = co_await serve_http(s, stream, req);
        if (!keep || s->stopping) co_return;
        continue;
      }
      const auto target = std::string_view(req.target().data(), req.target().size());
      const auto path = target.substr(0, target.find('?'));
      expiry.after(std::chrono::seconds(5));
      if (path != proto::kRelayPath) {
        co_await refuse(stream, req, http::status::not_found, "not found\n");
        co_return;
      }
      const auto protocols = req[http::field::sec_websocket_protocol];
      if (!has_subprotocol(std::string_view(protocols.data(), protocols.size()), proto::kSubprotocol)) {
        s->stats.handshake_failures++;
        co_await refuse(stream, req, http::status::bad_request,
                        fmt::format("relay: unsupported WebSocket subprotocol '{}' (this relay speaks {})\n",
                                    std::string_view(protocols.data(), protocols.size()), proto::kSubprotocol));
        co_return;
      }
      if (s->stopping) {
        co_await refuse(stream, req, http::status::service_unavailable, "relay: shutting down\n");
        co_return;
      }
      upgrade = std::move(req);
    }
    // Who the client is, for the limits and the welcome.
    SocketAddr observed = peer_addr;
    if (s->config.trust_forwarded_for) {
      const auto xff = (*upgrade)["X-Forwarded-For"];
      auto first = std::string_view(xff.data(), xff.size());
      first = first.substr(0, first.find(','));
      while (!first.empty() && first.front() == ' ') first.remove_prefix(1);
      while (!first.empty() && first.back() == ' ') first.remove_suffix(1);
      if (auto a = SocketAddr::parse_ip(first, 0); a) {
        observed = *a;
      } else if (auto b = SocketAddr::parse(first); b) {
        observed = *b;
      }
    }
    const SocketAddr ip_key = observed.canonical().with_port(0).without_scope();
    const auto on_ip = s->per_ip.contains(ip_key) ? s->per_ip[ip_key] : 0;
    if (on_ip >= limits.clients_per_ip_max) {
      s->stats.refused_per_ip++;
      co_await refuse(stream, *upgrade, http::status::too_many_requests, "relay: too many clients from this address\n");
      co_return;
    }
    if (s->stats.clients >= limits.clients_max) {
      s->stats.refused_capacity++;
      co_await refuse(stream, *upgrade, http::status::service_unavailable, "relay: at capacity\n");
      co_return;
    }
    s->per_ip[ip_key]++;
    if (!counted_handshake) s->stats.handshakes++;
    // The session owns the count from here.
    counted_handshake = false;
    expiry.never();
    auto session = std::make_shared<Session<Stream>>(s, std::move(stream), observed, ip_key);
    conn->lowest = Closer::of(beast::get_lowest_layer(session->ws()));
    conn->peer = session.get();
    co_await session->run(std::move(*upgrade), deadline);
    conn->peer = nullptr;
    conn->lowest = {};
    co_return;
  }
}

asio::awaitable<void> serve_connection(StatePtr s, tcp::socket socket) {
  boost::system::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  if (ec) co_return;
  const auto deadline = s->env.now() + s->config.limits.handshake_timeout;
  s->conns.push_back({});
  const auto conn = std::prev(s->conns.end());
  s->stats.handshakes++;
  bool counted = true;
  beast::tcp_stream stream(std::move(socket));
  conn->lowest = Closer::of(stream);
  if (s->ssl) {
    beast::ssl_stream<beast::tcp_stream> tls(std::move(stream), *s->ssl);
    conn->lowest = Closer::of(beast::get_lowest_layer(tls));
    beast::get_lowest_layer(tls).expires_after(s->config.limits.handshake_timeout);
    auto [hec] = co_await tls.async_handshake(asio::ssl::stream_base::server, kUse);
    if (hec) {
      s->stats.handshake_failures++;
    } else {
      co_await serve_stream(s, std::move(tls), conn, from_endpoint(remote), deadline, counted);
    }
  } else {
    co_await serve_stream(s, std::move(stream), conn, from_endpoint(remote), deadline, counted);
  }
  if (counted) s->stats.handshakes--;
  s->conn_ended(conn);
}

// serve_sim_connection serves one simulated stream (plain HTTP: a simulated relay has no TLS).
asio::awaitable<void> serve_sim_connection(StatePtr s, simnet::TcpStream stream) {
  const auto remote = stream.remote_addr().canonical();
  const auto deadline = s->env.now() + s->config.limits.handshake_timeout;
  s->conns.push_back({});
  const auto conn = std::prev(s->conns.end());
  s->stats.handshakes++;
  bool counted = true;
  conn->lowest = Closer::of(stream);
  co_await serve_stream(s, std::move(stream), conn, remote, deadline, counted);
  if (counted) s->stats.handshakes--;
  s->conn_ended(conn);
}

asio::awaitable<void> accept_loop_sim(StatePtr s, std::size_t index) {
  for (;;) {
    auto r = co_await s->listeners[index].accept();
    if (s->stopping) co_return;
    if (!r) {
      if (r.error().code() == P2PErrc::cancelled) co_return;
      logger().warn("relay: accept on {} failed: {}", s->local[index], r.error().message());
      auto timer = s->env.make_timer();
      auto w = co_await timer.wait_until(s->env.now() + std::chrono::milliseconds(50));
      (void)w;
      continue;
    }
    spawn_logged(s->ex, serve_sim_connection(s, std::move(*r)), "relay connection");
  }
}

asio::awaitable<void> accept_loop(StatePtr s, std::size_t index) {
  for (;;) {
    auto [ec, socket] = co_await s->acceptors[index].async_accept(kUse);
    if (s->stopping || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of descriptors or similar: wait a little rather than spin.
      logger().warn("relay: accept on {} failed: {}", s->local[index], ec.message());
      auto timer = s->env.make_timer();
      auto r = co_await timer.wait_until(s->env.now() + std::chrono::milliseconds(50));
      (void)r;
      continue;
    }
    spawn_logged(s->ex, serve_connection(s, std::move(socket)), "relay connection");
  }
}

// kStunBatch is how many datagrams the STUN responder takes per receive call.
constexpr std::size_t kStunBatch = 8;
// kStunBufferSize holds any valid request (stun::kMessageSizeMax) and shows longer ones as truncated.
constexpr std::size_t kStunBufferSize = 1500;

// answer_stun answers one datagram that reached the STUN port, or counts it malformed. The answer
// is sent at once (a full send buffer drops it, as a lost datagram): nothing queues.
template <class Socket>
void answer_stun(RelayServer::State& s, Socket& socket, ByteView datagram, const env::RecvMeta& meta) {
  auto tx = stun::parse_binding_request(datagram);
  if (!tx) {
    s.stats.stun_malformed++;
    return;
  }
  s.stats.stun_requests++;
  const Bytes response = stun::binding_response(*tx, meta.source.canonical());
  env::Transmit t;
  t.destination = meta.source;
  t.contents = response;
  t.source = meta.destination;
  auto sent = socket.try_send_batch(std::span<const env::Transmit>(&t, 1));
  (void)sent;
}

// stun_loop is the STUN responder of one socket: one receive loop that answers synchronously.
template <class Socket>
asio::awaitable<void> stun_loop(StatePtr s, Socket* socket, SocketAddr local) {
  std::vector<std::byte> storage(kStunBatch * kStunBufferSize);
  std::array<std::span<std::byte>, kStunBatch> buffers;
  for (std::size_t i = 0; i < kStunBatch; ++i)
    buffers[i] = std::span(storage).subspan(i * kStunBufferSize, kStunBufferSize);
  std::array<env::RecvMeta, kStunBatch> metas{};
  for (;;) {
    auto ready = co_await socket->wait_readable();
    if (s->stopping) co_return;
    if (!ready) {
      if (ready.error().code() != P2PErrc::cancelled) {
        logger().warn("relay: STUN socket {} failed: {}", local, ready.error().message());
      }
      co_return;
    }
    for (;;) {
      auto n = socket->try_receive_batch(buffers, metas);
      if (!n) {
        logger().warn("relay: STUN socket {} failed: {}", local, n.error().message());
        co_return;
      }
      if (*n == 0) break;
      for (std::size_t i = 0; i < *n; ++i) {
        const env::Segments segments(buffers[i], metas[i]);
        if (segments.empty()) s->stats.stun_malformed++;  // longer than any request: cut
        for (const ByteView d : segments) answer_stun(*s, *socket, d, metas[i]);
      }
    }
  }
}

// stun_ports_of returns the distinct ports of `addrs`, at most proto::kStunPortsMax.
std::vector<std::uint16_t> stun_ports_of(const std::vector<SocketAddr>& addrs) {
  std::vector<std::uint16_t> ports;
  for (const auto& a : addrs) {
    if (ports.size() == proto::kStunPortsMax) break;
    if (std::ranges::find(ports, a.port()) == ports.end()) ports.push_back(a.port());
  }
  return ports;
}

P2PResult<void> check_config(const RelayServerConfig& c) {
  const auto& l = c.limits;
  if (l.frame_size_max < 1024 || l.frame_size_max > 16 * 1024 * 1024) {
    return fail(P2PError::invalid_configuration(
        fmt::format("relay: frame_size_max {} out of range (1024..16777216)", l.frame_size_max)));
  }
  if (l.client_queue_bytes_max < l.frame_size_max) {
    return fail(P2PError::invalid_configuration(fmt::format(
        "relay: client_queue_bytes_max {} is below frame_size_max {}", l.client_queue_bytes_max, l.frame_size_max)));
  }
  if (l.client_bytes_per_second > 0 && l.client_burst_bytes < proto::kDatagramSizeMax) {
    return fail(P2PError::invalid_configuration(
        fmt::format("relay: client_burst_bytes {} is below one datagram (65535)", l.client_burst_bytes)));
  }
  if (l.clients_max == 0 || l.clients_per_ip_max == 0) {
    return fail(P2PError::invalid_configuration("relay: clients_max and clients_per_ip_max must be positive"));
  }
  if (l.handshake_timeout <= Duration::zero() || l.idle_timeout <= Duration::zero()) {
    return fail(P2PError::invalid_configuration("relay: handshake_timeout and idle_timeout must be positive"));
  }
  if (l.http_request_bytes_max < 512) {
    return fail(P2PError::invalid_configuration(
        fmt::format("relay: http_request_bytes_max {} is below 512", l.http_request_bytes_max)));
  }
  if (c.bind_addrs.empty()) return fail(P2PError::invalid_configuration("relay: no bind address"));
  if (c.tls_cert_file.has_value() != c.tls_key_file.has_value()) {
    return fail(P2PError::invalid_configuration("relay: tls_cert_file and tls_key_file go together"));
  }
  return {};
}

}  // namespace

P2PResult<RelayServer> RelayServer::create(asio::any_io_executor ex, RelayServerConfig config) {
  if (auto r = check_config(config); !r) return std::unexpected(r.error());
  if (simnet::Host* host = config.sim_host; host != nullptr) {
    if (config.tls_cert_file) return fail(P2PError::invalid_configuration("relay: TLS relays are not simulated"));
    if (ex != host->env().executor()) {
      return fail(P2PError::invalid_configuration(
          fmt::format("relay: the executor is not the runtime executor of simulated host '{}'", host->name())));
    }
    auto s = std::make_shared<State>(ex, EitherEnv(host->env()), std::move(config));
    for (const auto& addr : s->config.bind_addrs) {
      auto l = simnet::TcpListener::listen(*host, addr);
      if (!l) {
        return fail(P2PError::network(fmt::format("relay: cannot listen on {}: {}", addr, l.error().message())));
      }
      s->local.push_back(l->local_addr());
      s->listeners.push_back(std::move(*l));
    }
    for (std::size_t i = 0; i < s->listeners.size(); ++i) spawn_logged(ex, accept_loop_sim(s, i), "relay accept");
    for (const auto& addr : s->config.stun_bind_addrs) {
      auto u = simnet::UdpSocket::bind(*host, addr);
      if (!u) {
        return fail(P2PError::network(fmt::format("relay: cannot bind STUN on {}: {}", addr, u.error().message())));
      }
      s->stun_local.push_back(u->local_addr());
      s->stun_sim_sockets.push_back(std::move(*u));
    }
    s->stun_ports = stun_ports_of(s->stun_local);
    for (std::size_t i = 0; i < s->stun_sim_sockets.size(); ++i) {
      spawn_logged(ex, stun_loop(s, &s->stun_sim_sockets[i], s->stun_local[i]), "relay STUN");
    }
    return RelayServer(std::move(s));
  }
  auto s = std::make_shared<State>(ex, EitherEnv(ex), std::move(config));
  if (s->config.tls_cert_file) {
    for (const auto* f : {&*s->config.tls_cert_file, &*s->config.tls_key_file}) {
      std::error_code fec;
      if (!std::filesystem::is_regular_file(*f, fec)) {
        return fail(P2PError::invalid_configuration(fmt::format("relay: TLS file '{}' is missing or unreadable", *f)));
      }
    }
    s->ssl.emplace(asio::ssl::context::tls_server);
    boost::system::error_code ec;
    s->ssl->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                            asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                            asio::ssl::context::no_tlsv1_1,
                        ec);
    s->ssl->use_certificate_chain_file(*s->config.tls_cert_file, ec);
    if (ec) {
      return fail(P2PError::invalid_configuration(
          fmt::format("relay: bad TLS certificate '{}': {}", *s->config.tls_cert_file, ec.message())));
    }
    s->ssl->use_private_key_file(*s->config.tls_key_file, asio::ssl::context::pem, ec);
    if (ec) {
      return fail(P2PError::invalid_configuration(
          fmt::format("relay: bad TLS key '{}': {}", *s->config.tls_key_file, ec.message())));
    }
  }
  for (const auto& addr : s->config.bind_addrs) {
    tcp::acceptor a(ex);
    boost::system::error_code ec;
    const auto ep = to_endpoint(addr);
    a.open(ep.protocol(), ec);
    if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec && ep.protocol() == tcp::v6()) a.set_option(asio::ip::v6_only(true), ec);
    if (!ec) a.bind(ep, ec);
    if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail(P2PError::network(fmt::format("relay: cannot listen on {}: {}", addr, ec.message())));
    s->local.push_back(from_endpoint(a.local_endpoint()));
    s->acceptors.push_back(std::move(a));
  }
  for (std::size_t i = 0; i < s->acceptors.size(); ++i) spawn_logged(ex, accept_loop(s, i), "relay accept");
  for (const auto& addr : s->config.stun_bind_addrs) {
    env::UdpSocketOptions options;
    options.v6_only = true;
    options.gso = false;
    options.gro = false;
    auto u = env::UdpSocket::bind(ex, addr, options);
    if (!u) return fail(P2PError::network(fmt::format("relay: cannot bind STUN on {}: {}", addr, u.error().message())));
    s->stun_local.push_back(u->local_addr());
    s->stun_sockets.push_back(std::move(*u));
  }
  s->stun_ports = stun_ports_of(s->stun_local);
  for (std::size_t i = 0; i < s->stun_sockets.size(); ++i) {
    spawn_logged(ex, stun_loop(s, &s->stun_sockets[i], s->stun_local[i]), "relay STUN");
  }
  return RelayServer(std::move(s));
}

P2PResult<RelayServer> RelayServer::create(simnet::Host& host, RelayServerConfig config) {
  config.sim_host = &host;
  return create(host.env().executor(), std::move(config));
}

RelayServer::RelayServer(std::shared_ptr<State> state) : state_(std::move(state)) {}
RelayServer::RelayServer(RelayServer&&) noexcept = default;
RelayServer& RelayServer::operator=(RelayServer&& other) noexcept {
  if (this != &other) {
    if (state_) {
      state_->stopping = true;
      state_->stop_accepting();
      state_->force_all();
    }
    state_ = std::move(other.state_);
  }
  return *this;
}

RelayServer::~RelayServer() {
  if (!state_) return;
  state_->stopping = true;
  state_->stop_accepting();
  state_->force_all();
}

std::vector<SocketAddr> RelayServer::local_addrs() const { return state_->local; }

std::vector<SocketAddr> RelayServer::local_stun_addrs() const { return state_->stun_local; }

std::string RelayServer::url() const {
  const auto& a = state_->local.front();
  const auto host = a.is_v4() ? a.ip_string() : fmt::format("[{}]", a.ip_string());
  return fmt::format("{}://{}:{}", state_->ssl ? "https" : "http", host, a.port());
}

RelayServerStats RelayServer::stats() const { return state_->stats; }

std::string RelayServer::metrics_text() const { return state_->metrics(); }

void RelayServer::set_health(bool degraded, std::string message) {
  if (message.size() > proto::kHealthMessageSizeMax) message.resize(proto::kHealthMessageSizeMax);
  state_->health = proto::Health{static_cast<std::uint8_t>(degraded ? 1 : 0), std::move(message)};
  for (auto& [id, peer] : state_->clients) peer->enqueue_frame(state_->health);
}

asio::awaitable<void> RelayServer::shutdown(bool restarting) {
  auto s = state_;
  if (!s) co_return;
  if (!s->stopping) {
    s->stopping = true;
    s->stop_accepting();
    const proto::Restarting announce{to_ms(s->config.restart_reconnect_in), to_ms(s->config.restart_try_for)};
    for (auto& c : s->conns) {
      if (c.peer != nullptr && c.peer->authenticated) {
        if (restarting) {
          c.peer->enqueue_frame(announce);
          c.peer->close(websocket::close_code::service_restart, "restarting", false);
        } else {
          c.peer->close(websocket::close_code::going_away, "going away", true);
        }
      } else if (c.peer != nullptr) {
        c.peer->force();
      } else if (c.lowest) {
        c.lowest();
      }
    }
  }
  const auto deadline = s->env.now() + kShutdownGrace;
  for (int round = 0; round < 2 && !s->conns.empty(); ++round) {
    auto timer = s->env.make_timer();
    s->drain_waiters.push_back(&timer);
    auto r = co_await timer.wait_until(round == 0 ? deadline : s->env.now() + std::chrono::seconds(1));
    (void)r;
    std::erase(s->drain_waiters, &timer);
    if (!s->conns.empty()) s->force_all();
  }
}

}  // namespace moosicbox::p2p::relay
