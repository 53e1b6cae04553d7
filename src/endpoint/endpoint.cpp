// SPDX-License-Identifier: MIT OR Apache-2.0
// endpoint.cpp: the endpoint's driver. One receive loop per socket feeds datagrams to the connection
// their destination id routes to (or starts a server connection, refuses it, answers with Version
// Negotiation, Retry or a stateless reset); one timer loop runs the earliest connection deadline;
// a coalesced flush writes what connections have to send, batched with GSO, waiting for the socket
// when its buffer is full. Endpoint, Listener and connect() live here too.
// Layer: endpoint. Everything runs on the endpoint's executor: no locks.
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstring>

#include "core/log.hpp"
#include "endpoint/handles.hpp"
#include "env/wall_clock.hpp"
#include "moosicbox/p2p/core/assert.hpp"
#include "moosicbox/p2p/core/spawn.hpp"
#include "quic/packet.hpp"
#include "relay/stun.hpp"

namespace moosicbox::p2p {

using namespace boost::asio::experimental::awaitable_operators;

namespace detail {

namespace {
// Receive batch: buffers per recvmmsg call.
constexpr std::size_t kRecvBatch = 16;
// Send arena: transmits written ahead of one sendmmsg call.
constexpr std::size_t kSendSlots = 16;
// A GSO send carries at most one IPv4 datagram's worth of bytes.
constexpr std::size_t kGsoBytesMax = env::kDatagramBytesMax;
// Stateless resets answer at most this many unknown packets per window, so the endpoint cannot be
// used to reflect traffic at a third party.
constexpr std::uint32_t kResetsPerWindow = 64;
constexpr Duration kResetWindow = std::chrono::milliseconds(100);
constexpr std::size_t kAlpnSizeMax = 255;
// Datagrams the engine may coalesce into one transmit of a relayed connection.
constexpr std::size_t kRelayDatagramsPerTransmit = 16;
// How long an incoming handshake may take before its slot is freed.
constexpr Duration kServerHandshakeTimeout = std::chrono::seconds(10);
}  // namespace

quic::Address to_quic_addr(const SocketAddr& a) {
  if (a.is_v4()) return quic::Address(asio::ip::address_v4(a.v4_bytes()), a.port());
  return quic::Address(asio::ip::address_v6(a.v6_bytes(), a.scope_id()), a.port());
}

SocketAddr from_quic_addr(const quic::Address& a) {
  const auto ip = a.address();
  if (ip.is_v4()) return SocketAddr::v4(ip.to_v4().to_bytes(), a.port());
  const auto v6 = ip.to_v6();
  return SocketAddr::v6(v6.to_bytes(), a.port(), static_cast<std::uint32_t>(v6.scope_id())).canonical();
}

// --- ConnState ---

ConnState::ConnState(std::shared_ptr<EndpointState> endpoint, std::uint64_t serial_no,
                     std::unique_ptr<quic::Connection> q, std::size_t socket_index, bool is_client)
    : ep(std::move(endpoint)),
      serial(serial_no),
      quic(std::move(q)),
      socket(socket_index),
      client(is_client),
      on_state(ep->ex),
      on_progress(ep->ex),
      on_message(ep->ex),
      on_msg_writable(ep->ex),
      on_accept(ep->ex),
      on_streams(ep->ex),
      on_datagram(ep->ex),
      on_path(ep->ex) {}

std::optional<P2PError> ConnState::error() const {
  if (const auto* info = quic->close_info()) return info->error;
  // Unregistered without a close: the endpoint stopped under it.
  if (!registered && (established || ep->stopped)) return P2PError::connection_closed("this node (endpoint closed)");
  return std::nullopt;
}

StreamWaiters& ConnState::waiters(quic::StreamId id) {
  auto& w = stream_waiters[id];
  if (!w) w = std::make_unique<StreamWaiters>(ep->ex);
  return *w;
}

void ConnState::wake_all() {
  on_state.notify_all();
  on_progress.notify_all();
  on_message.notify_all();
  on_msg_writable.notify_all();
  on_accept.notify_all();
  on_streams.notify_all();
  on_datagram.notify_all();
  on_path.notify_all();
  for (auto& [id, w] : stream_waiters) {
    w->readable.notify_all();
    w->writable.notify_all();
  }
}

// --- ListenerState, SocketState ---

ListenerState::ListenerState(std::shared_ptr<EndpointState> endpoint, std::string protocol)
    : ep(endpoint), alpn(std::move(protocol)), on_accept(endpoint->ex) {}

SocketState::SocketState(PathSocket s) : sock(std::move(s)) {
  local = sock.local_addr();
  local_quic = to_quic_addr(local);
  wildcard = local.is_unspecified();
  // A slot holds one GSO send: as many datagrams as the socket batches, within one IPv4 datagram's
  // worth of bytes (the engine fits its datagram size into the slot).
  datagrams_per_transmit = std::max<std::size_t>(1, sock.gso_segments_max());
  slot_size = kGsoBytesMax;
  // Not zeroed: a large block stays unbacked by memory until a slot is written.
  arena = std::make_unique_for_overwrite<std::byte[]>(kSendSlots * slot_size);
  pending.reserve(kSendSlots);
}

// --- EndpointState ---

EndpointState::EndpointState(EndpointEnv environment, EndpointConfig cfg)
    : ex(environment.executor()),
      env(std::move(environment)),
      config(std::move(cfg)),
      id(config.secret_key.public_key()),
      sessions(config.zero_rtt ? config.limits.session_tickets : 0, quic::kTicketLifetime),
      timer(env.make_timer()),
      on_progress(ex) {}

quic::TransportConfig EndpointState::transport_for(const SocketAddr& peer) const {
  quic::TransportConfig t = transport;
  const std::size_t jumbo = config.loopback_udp_payload_size;
  if (peer.is_loopback() && jumbo > t.max_udp_payload_size) {
    t.max_udp_payload_size = std::min(jumbo, kGsoBytesMax);
    t.fixed_udp_payload_size = true;
  }
  return t;
}

std::size_t EndpointState::transfer_datagram_for(const SocketAddr& peer) const {
  // Transfers fill their datagrams: the path's size where it is larger than the internet's (a
  // loopback peer), else the smallest full size QUIC allows (datagrams before path MTU discovery).
  const std::size_t path_max = transport_for(peer).max_udp_payload_size;
  return path_max > quic::TransportConfig{}.max_udp_payload_size ? path_max : kSmallDatagram;
}

quic::RandomFn EndpointState::random_fn() {
  return [this](std::span<std::byte> out) { env.fill_random(out); };
}

quic::Address EndpointState::local_quic(std::size_t socket) const {
  return socket == kRelaySocket ? relay_local_quic : sockets[socket]->local_quic;
}

bool EndpointState::wildcard(std::size_t socket) const { return socket != kRelaySocket && sockets[socket]->wildcard; }

std::vector<std::string> EndpointState::served_alpns() const {
  std::vector<std::string> out;
  for (const auto& [alpn, l] : listeners) {
    auto state = l.lock();
    if (state && !state->closed) out.push_back(alpn);
  }
  return out;
}

std::shared_ptr<ConnState> EndpointState::register_conn(std::unique_ptr<quic::Connection> q, std::size_t socket,
                                                        bool client, const SocketAddr& peer) {
  auto c = std::make_shared<ConnState>(shared_from_this(), next_serial++, std::move(q), socket, client);
  c->transfer_datagram = transfer_datagram_for(peer);
  if (socket == kRelaySocket) {
    c->relay_vaddr = peer;
    relay->pin(peer);
    if (paths) {
      if (auto node = relay->node_of(peer)) paths->activate(*node, peer, env.now());
    }
  }
  c->routed = c->quic->local_cids();
  for (const auto& cid : c->routed) routes[cid] = c;
  conns[c->serial] = c;
  c->registered = true;
  // Busy polling is for UDP sockets: a relayed connection's answers come through a relay session
  // (TCP), and polling would only take the CPU from whatever forwards them.
  if (socket != kRelaySocket) {
    c->handshaking = true;
    ++handshaking;
    last_handshake_start = env.now();
  }
  counters.connections_live = conns.size();
  return c;
}

bool EndpointState::keep_polling(TimePoint now) const {
  if (handshaking > 0 && now - std::max(last_receive, last_handshake_start) < config.busy_poll_handshake) return true;
  // Poll after asking (sending what awaits an answer) and after a datagram arrived, unless a
  // transfer arrived lately.
  if (conns_awaiting_ack == 0 || now - last_large_batch < kTransferQuiet) return false;
  return now - std::max(last_ask, last_receive) < config.busy_poll;
}

void EndpointState::handshake_over(ConnState& c) {
  if (!c.handshaking) return;
  c.handshaking = false;
  --handshaking;
}

void EndpointState::set_awaiting_ack(ConnState& c, std::uint64_t in_flight) {
  // A little in flight means an answer is due within a round trip and no transfer keeps this side
  // busy meanwhile; a transfer with more in flight is throughput-bound (its acknowledgements come
  // in batches whatever the wake-up latency).
  const bool udp = c.socket != kRelaySocket || (paths && c.relay_vaddr && paths->route_of(*c.relay_vaddr) != nullptr);
  const bool awaiting = udp && in_flight > 0 && in_flight <= kAnswerFlightMax;
  if (c.awaiting_ack == awaiting) return;
  c.awaiting_ack = awaiting;
  if (!awaiting) {
    --conns_awaiting_ack;
    return;
  }
  ++conns_awaiting_ack;
  // A request that fits a small datagram just left: wake the receive loops that sleep so they
  // poll for its answer. (Not when a send waits for room: cancelling would end that wait too.)
  const TimePoint now = env.now();
  if (config.busy_poll <= Duration::zero() || in_flight > kSmallDatagram || now - last_large_batch < kTransferQuiet) {
    return;
  }
  last_ask = now;
  for (auto& sock : sockets) {
    if (sock->receive_sleeping && !sock->blocked) {
      sock->receive_sleeping = false;
      sock->sock.cancel();
    }
  }
}

void EndpointState::send_raw(std::size_t socket, const SocketAddr& to, ByteView data,
                             const std::optional<SocketAddr>& source) {
  if (socket == kRelaySocket) {
    if (relay && relay->send(to, data)) {
      ++counters.relay_datagrams_sent;
    } else {
      ++counters.relay_datagrams_dropped;
    }
    return;
  }
  SocketState& s = *sockets[socket];
  env::Transmit t{to, data, 0, s.wildcard ? source : std::nullopt, env::Ecn::not_ect};
  // Stateless answers are best effort: when the socket is full they are simply lost.
  (void)s.sock.try_send_batch(std::span<const env::Transmit>(&t, 1));
}

void EndpointState::on_datagram(std::size_t socket, ByteView data, const env::RecvMeta& meta, TimePoint now) {
  ++counters.datagrams_received;
  const SocketAddr from = meta.source.canonical();
  if (!data.empty() && (std::to_integer<std::uint8_t>(data[0]) & 0x40U) == 0) {
    // No fixed bit: never QUIC v1 (this engine does not grease it). Path discovery and STUN share
    // the sockets; anything else is dropped.
    if (paths && socket != kRelaySocket) {
      if (magicsock::disco::looks_like_disco(data)) {
        ++counters.disco_received;
        paths->on_udp_disco(socket, from, meta.destination, data, now);
        return;
      }
      if (stun::looks_like_stun(data)) {
        paths->on_stun(socket, from, data, now);
        return;
      }
    }
  }
  const quic::Header hdr = quic::decode_header(data);
  switch (hdr.kind) {
    case quic::HeaderKind::invalid:
      ++counters.datagrams_unroutable;
      return;
    case quic::HeaderKind::unsupported_version: {
      // Only a padded client Initial earns an answer, so Version Negotiation never amplifies.
      if (data.size() < 1200 || closing) return;
      std::array<std::byte, 256> out{};
      const std::size_t n = quic::write_version_negotiation(out, hdr, random_fn());
      if (n > 0) {
        ++counters.version_negotiations_sent;
        send_raw(socket, from, ByteView(out).first(n), meta.destination);
      }
      return;
    }
    default:
      break;
  }
  const auto it = routes.find(hdr.dcid);
  if (it != routes.end()) {
    const auto& c = it->second;
    if (c->socket == kRelaySocket && socket != kRelaySocket && c->relay_vaddr) {
      // A relayed connection's peer on a direct path: QUIC keeps seeing the virtual address (its
      // packets are authenticated by the engine; where we send is the path layer's choice).
      if (paths) paths->heard(*c->relay_vaddr, from, now);
      if (data.size() >= c->transfer_datagram) last_large_batch = now;
      c->quic->on_datagram(now, quic::Path{relay_local_quic, to_quic_addr(*c->relay_vaddr)}, data);
      touched.push_back(c);
      return;
    }
    if (c->socket != socket) {
      // A peer may reach us on another socket (another address family); the connection keeps the
      // socket it started on, whose address its path names.
      ++counters.datagrams_unroutable;
      return;
    }
    if (meta.destination && wildcard(socket)) c->reply_source = meta.destination;
    if (data.size() >= c->transfer_datagram) last_large_batch = now;
    c->quic->on_datagram(now, quic::Path{local_quic(socket), to_quic_addr(from)}, data);
    touched.push_back(c);
    return;
  }
  if (hdr.kind == quic::HeaderKind::long_header) {
    accept_new(socket, data, meta, now);
    return;
  }
  ++counters.datagrams_unroutable;
  if (hdr.kind == quic::HeaderKind::short_header && config.stateless_reset && !closing) {
    if (now - reset_window >= kResetWindow) {
      reset_window = now;
      resets_in_window = 0;
    }
    if (resets_in_window >= kResetsPerWindow) return;
    std::array<std::byte, 64> out{};
    const std::size_t n = quic::write_stateless_reset(out, secret, hdr.dcid, data.size(), random_fn());
    if (n > 0) {
      ++resets_in_window;
      ++counters.stateless_resets_sent;
      send_raw(socket, from, ByteView(out).first(n), meta.destination);
    }
  }
}

void EndpointState::accept_new(std::size_t socket, ByteView data, const env::RecvMeta& meta, TimePoint now) {
  auto initial = quic::decode_initial(data);
  if (!initial) {
    ++counters.datagrams_unroutable;
    return;
  }
  const SocketAddr from = meta.source.canonical();
  std::array<std::byte, 1500> out{};
  const char* refusal = nullptr;
  if (closing) {
    refusal = "endpoint closing";
  } else if (handshakes_live >= config.limits.concurrent_handshakes) {
    refusal = "too many handshakes in progress";
  } else if (conns.size() >= config.limits.connections) {
    refusal = "too many connections";
  }
  if (refusal != nullptr) {
    ++counters.handshakes_refused;
    const std::size_t n = quic::write_refusal(out, *initial, refusal);
    if (n > 0) send_raw(socket, from, ByteView(out).first(n), meta.destination);
    return;
  }
  std::optional<quic::RetryValidation> retry;
  if (config.require_retry) {
    retry = quic::validate_retry_token(*initial, to_quic_addr(from), secret, now);
    if (!retry) {
      if (!initial->token.empty()) return;  // a forged or stale token: drop it
      auto n = quic::write_retry(out, *initial, to_quic_addr(from), secret, now, random_fn());
      if (n) {
        ++counters.retries_sent;
        send_raw(socket, from, ByteView(out).first(*n), meta.destination);
      }
      return;
    }
  }
  quic::ServerConfig sc;
  sc.identity = tls;
  sc.alpns = served_alpns();
  sc.transport = transport_for(from);
  // A client that stops mid-handshake holds one of the concurrent_handshakes slots; give it up sooner
  // than a client's own connect timeout.
  sc.transport.handshake_timeout = std::min<Duration>(sc.transport.handshake_timeout, kServerHandshakeTimeout);
  sc.static_secret = secret;
  sc.random = random_fn();
  sc.tickets = tickets;
  const quic::Path path{local_quic(socket), to_quic_addr(from)};
  auto q = quic::Connection::accept(std::move(sc), path, *initial, retry, now);
  if (!q) {
    logger().warn("endpoint: cannot accept a connection from {}: {}", from.to_string(), q.error().message());
    return;
  }
  auto c = register_conn(std::move(*q), socket, false, from);
  c->handshake_counted = true;
  ++handshakes_live;
  counters.handshakes_live = handshakes_live;
  if (socket == kRelaySocket) c->relay_claimed = relay_sender;
  if (meta.destination && wildcard(socket)) c->reply_source = meta.destination;
  c->quic->on_datagram(now, path, data);
  touched.push_back(c);
}

namespace {
// insert_ordered queues a stream the peer opened by id: ids are the peer's opening order, even when
// packets (or RESET_STREAM frames) arrive in another order.
void insert_ordered(Fifo<quic::StreamId>& q, quic::StreamId id) {
  q.insert(std::upper_bound(q.begin(), q.end(), id), id);
}
}  // namespace

void EndpointState::handle_events(const std::shared_ptr<ConnState>& c) {
  while (auto e = c->quic->poll_event()) {
    switch (e->kind) {
      case quic::EventKind::connected: {
        handshake_over(*c);
        if (c->relay_claimed && c->quic->peer_id() != *c->relay_claimed) {
          // The relay named one sender and TLS authenticated another: the relay lies. Packets are
          // sent back by the relay-named id, so the connection could not work anyway.
          ++counters.relay_identity_mismatches;
          c->user_closed = true;
          c->quic->close(kAppErrorProtocol, "the relay named another sender");
          c->on_state.notify_all();
          break;
        }
        c->established = true;
        c->early = false;
        c->established_at = env.now();
        c->alpn = c->quic->alpn();
        c->remote = c->quic->peer_id();
        open_message_stream(*c);
        if (c->quic->early_data() == quic::EarlyData::accepted) ++counters.zero_rtt_accepted;
        if (c->client) {
          ++counters.connections_dialed;
        } else {
          if (c->handshake_counted) {
            c->handshake_counted = false;
            --handshakes_live;
          }
          ++counters.connections_accepted;
          if (!c->delivered) deliver(c);
        }
        if (tickets) counters.zero_rtt_replays_refused = tickets->counters().replays_refused;
        c->on_state.notify_all();
        break;
      }
      case quic::EventKind::early_data:
        // Server: the client resumed in 0-RTT and is known from its ticket; its early streams may
        // be served now (accept_bi_early), the rest waits for the handshake.
        if (!c->client && !c->delivered && !c->quic->alpn().empty()) {
          c->early = true;
          c->alpn = c->quic->alpn();
          c->remote = c->quic->peer_id();
          deliver(c);
        }
        break;
      case quic::EventKind::early_data_rejected:
        ++counters.zero_rtt_rejected;
        break;
      case quic::EventKind::session_ticket:
        if (auto t = c->quic->take_session_ticket(); t && c->remote) {
          sessions.put(*c->remote, c->alpn.empty() ? c->quic->alpn() : c->alpn, std::move(*t), env.now());
        }
        break;
      case quic::EventKind::stream_opened: {
        const auto sid = e->stream_id;
        if (!quic::is_bidi(sid)) {
          // The peer's first unidirectional stream (id 2 from a client, 3 from a server).
          const quic::StreamId first_peer_uni = c->client ? 3 : 2;
          if (!c->msg_in && sid == first_peer_uni) {
            c->msg_in = sid;
            c->on_message.notify_all();
            break;
          }
          insert_ordered(c->accept_uni, sid);
        } else {
          insert_ordered(c->accept_bi, sid);
        }
        c->on_accept.notify_all();
        break;
      }
      case quic::EventKind::stream_readable:
        if (c->msg_in && e->stream_id == *c->msg_in) {
          c->on_message.notify_all();
        } else if (auto w = c->stream_waiters.find(e->stream_id); w != c->stream_waiters.end()) {
          w->second->readable.notify_all();
        }
        break;
      case quic::EventKind::stream_writable:
        if (c->msg_out && e->stream_id == *c->msg_out) {
          c->on_msg_writable.notify_all();
        } else if (auto w = c->stream_waiters.find(e->stream_id); w != c->stream_waiters.end()) {
          w->second->writable.notify_all();
        }
        break;
      case quic::EventKind::stream_closed:
        if (auto w = c->stream_waiters.find(e->stream_id); w != c->stream_waiters.end()) {
          w->second->readable.notify_all();
          w->second->writable.notify_all();
        }
        break;
      case quic::EventKind::streams_available:
        c->on_streams.notify_all();
        break;
      case quic::EventKind::datagram_readable:
        c->on_datagram.notify_all();
        break;
      case quic::EventKind::cid_issued:
        routes[e->cid] = c;
        c->routed.push_back(e->cid);
        break;
      case quic::EventKind::cid_retired: {
        const auto r = routes.find(e->cid);
        if (r != routes.end() && r->second == c) routes.erase(r);
        std::erase(c->routed, e->cid);
        break;
      }
      case quic::EventKind::closed:
        handshake_over(*c);
        if (c->handshake_counted) {
          c->handshake_counted = false;
          --handshakes_live;
        }
        logger().debug("endpoint: connection {} ended: {}", c->serial, c->quic->close_info()->error.message());
        c->wake_all();
        break;
      case quic::EventKind::handshake_completed:
        if (c->quic->is_resumed()) ++counters.resumed;
        break;
    }
  }
  counters.handshakes_live = handshakes_live;
}

void EndpointState::deliver(const std::shared_ptr<ConnState>& c) {
  c->delivered = true;
  const auto lit = listeners.find(c->alpn);
  auto l = lit == listeners.end() ? nullptr : lit->second.lock();
  if (!l || l->closed) {
    c->user_closed = true;
    c->quic->close(kAppErrorBusy, "no listener for this protocol");
  } else if (l->queue.size() >= config.limits.accept_queue) {
    c->user_closed = true;
    c->quic->close(kAppErrorBusy, "accept queue full");
  } else {
    l->queue.push_back(c);
    l->on_accept.notify_all();
  }
}

void EndpointState::open_message_stream(ConnState& c) {
  // The message stream is the first unidirectional stream each side opens; opening it sends
  // nothing until the first message.
  if (c.msg_out) return;
  auto sid = c.quic->open_uni();
  if (sid && sid->has_value()) c.msg_out = **sid;
}

void EndpointState::process(const std::shared_ptr<ConnState>& c) {
  if (!c->registered) return;
  handle_events(c);
  flush(*c);
  handle_events(c);
  c->on_progress.notify_all();
  if (closing) on_progress.notify_all();
  update_deadline(*c);
  reap(c);
}

void EndpointState::flush(ConnState& c) {
  if (!c.registered || stopped) return;
  if (c.socket == kRelaySocket) {
    const magicsock::DirectRoute* r = paths && c.relay_vaddr ? paths->route(*c.relay_vaddr, env.now()) : nullptr;
    if (r != nullptr && r->socket < sockets.size()) {
      flush_udp(c, *sockets[r->socket], &r->addr, r->source);
    } else {
      flush_relay(c);
    }
    return;
  }
  flush_udp(c, *sockets[c.socket], nullptr, c.reply_source);
}

void EndpointState::flush_udp(ConnState& c, SocketState& s, const SocketAddr* to,
                              const std::optional<SocketAddr>& source) {
  if (s.blocked) {
    s.waiting.push_back(c.serial);
    return;
  }
  const TimePoint now = env.now();
  for (std::size_t guard = 0; guard < 4096; ++guard) {
    if (s.pending.size() == kSendSlots && !send_pending(s)) {
      s.waiting.push_back(c.serial);
      return;
    }
    auto slot = std::span<std::byte>(s.arena.get() + s.pending.size() * s.slot_size, s.slot_size);
    auto t = c.quic->poll_transmit(now, slot, s.datagrams_per_transmit);
    if (!t) break;
    env::Transmit tx;
    tx.destination = to != nullptr ? *to : from_quic_addr(t->path.remote);
    tx.contents = ByteView(slot.data(), t->size);
    tx.segment_size = t->size > t->segment_size ? t->segment_size : 0;
    if (s.wildcard) tx.source = source;
    s.pending.push_back(tx);
  }
  if (!s.pending.empty() && !send_pending(s)) s.waiting.push_back(c.serial);
}

void EndpointState::flush_relay(ConnState& c) {
  // A relay session takes datagrams one by one (it batches them into its frames itself): split
  // what the engine coalesced. A datagram the session refuses (its queue is full) is lost to QUIC,
  // whose congestion control slows down as for any loss.
  const TimePoint now = env.now();
  if (!relay_scratch) relay_scratch = std::make_unique_for_overwrite<std::byte[]>(kGsoBytesMax);
  auto buffer = std::span<std::byte>(relay_scratch.get(), kGsoBytesMax);
  for (std::size_t guard = 0; guard < 4096; ++guard) {
    // Pace by the relay session's queue, as by a socket's buffer: wait for it to drain rather than
    // overflow it (every datagram it refused would be a loss to QUIC's congestion control).
    if (c.relay_vaddr && relay && !relay->writable(*c.relay_vaddr)) {
      relay_waiting.push_back(c.serial);
      return;
    }
    auto t = c.quic->poll_transmit(now, buffer, kRelayDatagramsPerTransmit);
    if (!t) break;
    const SocketAddr to = from_quic_addr(t->path.remote);
    const std::size_t step = t->segment_size > 0 ? t->segment_size : t->size;
    for (std::size_t off = 0; off < t->size; off += step) {
      const auto datagram = ByteView(buffer.data() + off, std::min(step, t->size - off));
      if (relay && relay->send(to, datagram)) {
        ++counters.relay_datagrams_sent;
      } else {
        ++counters.relay_datagrams_dropped;
      }
    }
  }
}

bool EndpointState::send_pending(SocketState& s) {
  auto r = s.sock.try_send_batch(s.pending);
  if (!r) {
    logger().warn("endpoint: send on {} failed: {}", s.local.to_string(), r.error().message());
    s.pending.clear();
    return true;
  }
  if (*r == s.pending.size()) {
    s.pending.clear();
    return true;
  }
  // The kernel's buffer is full: keep the rest (moved to the front of the arena) and wait.
  const std::size_t sent = *r;
  std::vector<env::Transmit> rest(s.pending.begin() + static_cast<std::ptrdiff_t>(sent), s.pending.end());
  for (std::size_t i = 0; i < rest.size(); ++i) {
    std::byte* dst = s.arena.get() + i * s.slot_size;
    std::memmove(dst, rest[i].contents.data(), rest[i].contents.size());
    rest[i].contents = ByteView(dst, rest[i].contents.size());
  }
  s.pending = std::move(rest);
  if (!s.blocked) {
    s.blocked = true;
    auto self = shared_from_this();
    SocketState* sp = &s;
    spawn_logged(
        ex,
        [](std::shared_ptr<EndpointState> ep, SocketState* sock) -> asio::awaitable<void> {
          auto w = co_await sock->sock.wait_writable();
          sock->blocked = false;
          if (!w || ep->stopped) co_return;
          if (!ep->send_pending(*sock)) co_return;  // blocked again: another waiter runs
          ep->flush_waiting(*sock);
        }(self, sp),
        "endpoint send wait");
  }
  return false;
}

void EndpointState::flush_waiting(SocketState& s) {
  std::vector<std::uint64_t> waiting;
  waiting.swap(s.waiting);
  std::sort(waiting.begin(), waiting.end());
  waiting.erase(std::unique(waiting.begin(), waiting.end()), waiting.end());
  for (const auto serial : waiting) {
    const auto it = conns.find(serial);
    if (it == conns.end()) continue;
    auto c = it->second;
    process(c);
  }
}

void EndpointState::update_deadline(ConnState& c) {
  set_awaiting_ack(c, c.registered ? c.quic->bytes_in_flight() : 0);
  TimePoint next = c.registered ? c.quic->next_deadline() : kTimePointMax;
  if (next == c.deadline_key) return;
  if (c.deadline_key != kTimePointMax) deadlines.erase({c.deadline_key, c.serial});
  c.deadline_key = next;
  if (next == kTimePointMax) return;
  deadlines.insert({next, c.serial});
  if (next < armed) timer.cancel();
}

void EndpointState::reap(const std::shared_ptr<ConnState>& c) {
  if (!c->registered || !c->quic->is_drained()) return;
  if (c->relay_vaddr && relay) relay->unpin(*c->relay_vaddr);
  if (c->relay_vaddr && paths) paths->deactivate(*c->relay_vaddr);
  for (const auto& cid : c->routed) {
    const auto r = routes.find(cid);
    if (r != routes.end() && r->second == c) routes.erase(r);
  }
  c->routed.clear();
  if (c->deadline_key != kTimePointMax) deadlines.erase({c->deadline_key, c->serial});
  c->deadline_key = kTimePointMax;
  c->registered = false;
  set_awaiting_ack(*c, 0);
  handshake_over(*c);
  if (c->handshake_counted) {
    c->handshake_counted = false;
    --handshakes_live;
  }
  conns.erase(c->serial);
  counters.connections_live = conns.size();
  counters.handshakes_live = handshakes_live;
  c->wake_all();
  on_progress.notify_all();
}

void EndpointState::finish_batch() {
  std::vector<std::shared_ptr<ConnState>> batch;
  batch.swap(touched);
  std::sort(batch.begin(), batch.end());
  batch.erase(std::unique(batch.begin(), batch.end()), batch.end());
  // Events are handled now (waking the coroutines waiting on them); the flush is posted behind
  // those wakeups, so a response written at once leaves in the same packet as the ACK of its
  // request instead of an ACK-only packet first.
  for (auto& c : batch) {
    if (!c->registered) continue;
    handle_events(c);
    schedule_flush(*c);
  }
}

void EndpointState::on_relay_datagram(const SocketAddr& vaddr, const NodeId& from, ByteView data) {
  if (stopped) return;
  ++counters.relay_datagrams_received;
  if (magicsock::disco::looks_like_disco(data)) {
    if (paths) {
      ++counters.disco_received;
      paths->on_relay_disco(from, vaddr, data, env.now());
    }
    return;
  }
  env::RecvMeta meta;
  meta.source = vaddr;
  meta.length = data.size();
  relay_sender = from;
  on_datagram(kRelaySocket, data, meta, env.now());
  relay_sender.reset();
  // A relay frame carries a batch of datagrams, delivered one call each: handle them together
  // once the frame is done, as the receive loop does for a batch of UDP datagrams.
  if (!relay_batch_posted) {
    relay_batch_posted = true;
    asio::post(ex, [self = shared_from_this()] {
      self->relay_batch_posted = false;
      if (!self->stopped) self->finish_batch();
    });
  }
}

void EndpointState::schedule_flush(ConnState& c) {
  ++activity;
  if (!c.registered) return;
  if (!c.dirty) {
    c.dirty = true;
    dirty.push_back(c.serial);
  }
  if (!flush_posted) {
    flush_posted = true;
    asio::post(ex, [self = shared_from_this()] { self->flush_dirty(); });
  }
}

void EndpointState::flush_dirty() {
  flush_posted = false;
  std::vector<std::uint64_t> now_dirty;
  now_dirty.swap(dirty);
  for (const auto serial : now_dirty) {
    const auto it = conns.find(serial);
    if (it == conns.end()) continue;
    auto c = it->second;
    c->dirty = false;
    process(c);
  }
}

void EndpointState::wake_paths(TimePoint when) {
  if (when >= paths_deadline) return;
  if (paths_deadline != kTimePointMax) deadlines.erase({paths_deadline, 0});
  paths_deadline = when;
  deadlines.insert({when, 0});
  if (when < armed) timer.cancel();
}

void EndpointState::run_paths(TimePoint now) {
  if (paths_deadline != kTimePointMax) deadlines.erase({paths_deadline, 0});
  paths_deadline = kTimePointMax;
  if (!paths || stopped) return;
  const TimePoint next = paths->tick(now);
  if (next != kTimePointMax) wake_paths(std::max(next, now + std::chrono::microseconds(100)));
}

std::optional<std::size_t> EndpointState::socket_for(const SocketAddr& to) const {
  for (std::size_t i = 0; i < sockets.size(); ++i) {
    const auto& s = *sockets[i];
    const bool family_ok = to.is_v4() ? (s.local.is_v4() || s.sock.is_dual_stack()) : s.local.is_v6();
    const bool scope_ok = s.wildcard || to.is_loopback() == s.local.is_loopback();
    if (family_ok && scope_ok) return i;
  }
  return std::nullopt;
}

void EndpointState::on_direct_route_changed(const SocketAddr& vaddr) {
  for (auto& [serial, c] : conns) {
    if (c->relay_vaddr != vaddr) continue;
    c->on_path.notify_all();
    schedule_flush(*c);
  }
}

void EndpointState::on_deadlines(TimePoint now) {
  std::vector<std::shared_ptr<ConnState>> due;
  bool paths_due = false;
  for (auto it = deadlines.begin(); it != deadlines.end() && it->first <= now; ++it) {
    if (it->second == 0) {
      paths_due = true;
      continue;
    }
    const auto c = conns.find(it->second);
    if (c != conns.end()) due.push_back(c->second);
  }
  if (paths_due) run_paths(now);
  for (auto& c : due) {
    c->quic->on_deadline(now);
    process(c);
    if (c->registered && c->deadline_key <= now) {
      // ngtcp2 asked for a deadline that has already passed and had nothing to do: look again
      // shortly instead of spinning.
      deadlines.erase({c->deadline_key, c->serial});
      c->deadline_key = now + std::chrono::microseconds(100);
      deadlines.insert({c->deadline_key, c->serial});
    }
  }
}

void EndpointState::abandon() {
  // Only memory is released here: the io_context is going away, so sockets and timers are left to
  // their destructors.
  stopped = true;
  for (auto& [serial, c] : conns) c->registered = false;
  routes.clear();
  conns.clear();
  deadlines.clear();
  touched.clear();
  config_listeners.clear();
}

void EndpointState::stop() {
  if (stopped) return;
  stopped = true;
  conns_awaiting_ack = 0;
  handshaking = 0;
  timer.cancel();
  for (auto& s : sockets) s->sock.cancel();
  if (relay) relay->close();
  for (auto& [serial, c] : conns) {
    c->registered = false;
    c->awaiting_ack = false;
    c->handshaking = false;
    c->wake_all();
  }
  for (auto& [alpn, l] : listeners) {
    if (auto state = l.lock()) {
      state->closed = true;
      state->queue.clear();
      state->on_accept.notify_all();
    }
  }
  // Break the ownership cycles (connections hold the endpoint) now that nothing routes.
  routes.clear();
  touched.clear();  // a relay batch may be pending (on_relay_datagram posts its handling)
  relay_waiting.clear();
  conns.clear();
  deadlines.clear();
  counters.connections_live = 0;
  on_progress.notify_all();
}

namespace {

// LoopGuard counts a running driver loop. When the last loop ends without stop() (its io_context was
// stopped and destroyed under it), it breaks the endpoint's ownership cycles (connections hold the
// endpoint), so nothing leaks.
struct LoopGuard {
  std::shared_ptr<EndpointState> ep;
  explicit LoopGuard(std::shared_ptr<EndpointState> e) : ep(std::move(e)) {}
  LoopGuard(const LoopGuard&) = delete;
  LoopGuard& operator=(const LoopGuard&) = delete;
  ~LoopGuard() {
    --ep->loops_running;
    if (ep->loops_running == 0 && !ep->stopped) ep->abandon();
    ep->on_progress.notify_all();
  }
};

// wait_for_datagram sleeps in the reactor until the socket has a datagram; set_awaiting_ack may
// cut the wait short to poll instead. Returns false when the endpoint stopped meanwhile.
asio::awaitable<bool> wait_for_datagram(EndpointState& ep, SocketState& s) {
  s.receive_sleeping = true;
  auto w = co_await s.sock.wait_readable();
  s.receive_sleeping = false;
  co_return w || !ep.stopped;
}

asio::awaitable<void> recv_loop(std::shared_ptr<EndpointState> self, std::size_t index) {
  const LoopGuard guard(self);
  SocketState& s = *self->sockets[index];
  // 64 KiB buffers hold a GRO run or one loopback jumbo datagram. Not zeroed, so binding an
  // endpoint does not touch a megabyte of memory per socket.
  constexpr std::size_t kRecvBufferSize = 65536;
  const auto storage = std::make_unique_for_overwrite<std::byte[]>(kRecvBatch * kRecvBufferSize);
  std::vector<std::span<std::byte>> views;
  for (std::size_t i = 0; i < kRecvBatch; ++i) views.emplace_back(storage.get() + i * kRecvBufferSize, kRecvBufferSize);
  std::vector<env::RecvMeta> metas(kRecvBatch);
  int busy_looks = 0;  // busy polling: looks in a row during which the application was busy
  while (!self->stopped) {
    auto n = s.sock.try_receive_batch(views, metas);
    if (!n) {
      logger().warn("endpoint: receive on {} failed: {}", s.local.to_string(), n.error().message());
      break;
    }
    if (*n == 0) {
      // Busy polling: look again after everything else ready on the executor ran.
      if (self->keep_polling(self->env.now()) && busy_looks < 2) {
        const std::uint64_t before = self->activity;
        co_await asio::post(self->ex, asio::use_awaitable);
        // Only an otherwise idle thread polls: when the application used the endpoint during two
        // looks in a row, it is busy (a sender producing, say), and polling would only add system
        // calls to its work. It sleeps on the socket then; the reactor sees arrivals between
        // handlers anyway.
        busy_looks = self->activity == before ? 0 : busy_looks + 1;
        continue;
      }
      busy_looks = 0;
      if (auto awake = co_await wait_for_datagram(*self, s); !awake) break;
      continue;
    }
    const TimePoint now = self->env.now();
    self->last_receive = now;
    // Coalesced segments (GRO) are equal-sized datagrams sent back to back: a transfer.
    for (std::size_t i = 0; i < *n; ++i) {
      if (metas[i].stride != 0 && metas[i].stride < metas[i].length) self->last_large_batch = now;
    }
    for (std::size_t i = 0; i < *n; ++i) {
      for (const ByteView datagram : env::Segments(views[i], metas[i])) {
        self->on_datagram(index, datagram, metas[i], now);
      }
    }
    self->finish_batch();
    // Let the application run before receiving more: the coroutines this batch woke answer now (a
    // request's response leaves before the next receive call), and a flood cannot starve them.
    if (*n == kRecvBatch || self->keep_polling(now)) {
      co_await asio::post(self->ex, asio::use_awaitable);
      continue;
    }
    // A short batch emptied the socket's queue: wait for the next datagram at once instead of
    // asking the kernel again (waiting re-arms the socket, so one that arrived meanwhile is seen).
    if (auto awake = co_await wait_for_datagram(*self, s); !awake) break;
  }
}

asio::awaitable<void> timer_loop(std::shared_ptr<EndpointState> self) {
  const LoopGuard guard(self);
  while (!self->stopped) {
    const TimePoint now = self->env.now();
    const TimePoint next = self->deadlines.empty() ? kTimePointMax : self->deadlines.begin()->first;
    if (next <= now) {
      self->on_deadlines(now);
      co_await asio::post(self->ex, asio::use_awaitable);
      continue;
    }
    // With nothing due, sleep long; an earlier deadline cancels the wait (update_deadline).
    self->armed = next == kTimePointMax ? now + std::chrono::hours(1) : next;
    (void)co_await self->timer.wait_until(self->armed);
    self->armed = kTimePointMax;
    if (self->stopped) break;
    self->on_deadlines(self->env.now());
  }
}

}  // namespace

void EndpointState::start() {
  auto self = shared_from_this();
  for (std::size_t i = 0; i < sockets.size(); ++i) {
    ++loops_running;
    spawn_logged(ex, recv_loop(self, i), "endpoint receive loop");
  }
  ++loops_running;
  spawn_logged(ex, timer_loop(self), "endpoint timer loop");
}

asio::awaitable<void> endpoint_close(std::shared_ptr<EndpointState> ep) {
  if (ep->closing) {
    while (!ep->stopped) {
      if (auto awaited = co_await ep->on_progress.wait(); !awaited) co_return;
    }
    co_return;
  }
  ep->closing = true;
  for (auto& [alpn, l] : ep->listeners) {
    if (auto state = l.lock()) {
      state->closed = true;
      for (auto& c : state->queue) {
        c->user_closed = true;
        c->quic->close(kAppErrorBusy, "endpoint closing");
        ep->schedule_flush(*c);
      }
      state->queue.clear();
      state->on_accept.notify_all();
    }
  }
  std::vector<std::shared_ptr<ConnState>> open;
  for (auto& [serial, c] : ep->conns) {
    if (!c->quic->is_closed()) open.push_back(c);
  }
  for (auto& c : open) {
    if (!c->close_started) spawn_logged(ep->ex, graceful_close(c, "endpoint closed"), "connection close");
  }
  // Wait until every connection sent its CONNECTION_CLOSE (graceful closes give up when their
  // peer stops making progress for close_timeout), then stop: the closing periods need no sockets
  // of ours.
  auto timer = ep->env.make_timer();
  auto progress = [&] {
    std::uint64_t total = 0;
    for (auto& c : open) total += c->quic->is_closed() ? 0 : c->quic->unacked_bytes() + 1;
    return total;
  };
  std::uint64_t left = progress();
  TimePoint deadline = ep->env.now() + ep->config.close_timeout + std::chrono::milliseconds(200);
  while (left > 0 && ep->env.now() < deadline) {
    auto r = co_await (ep->on_progress.wait() || timer.wait_until(deadline));
    if (r.index() == 0 && !std::get<0>(r)) break;
    const std::uint64_t now_left = progress();
    if (now_left < left) deadline = ep->env.now() + ep->config.close_timeout + std::chrono::milliseconds(200);
    left = now_left;
  }
  for (auto& c : open) {
    if (!c->quic->is_closed()) c->quic->close(0, "endpoint closed");
    ep->process(c);
  }
  co_await asio::post(ep->ex, asio::use_awaitable);
  // CONNECTION_CLOSE frames queued for relays leave before the sessions end.
  if (ep->relay) co_await ep->relay->drain(ep->env.now() + std::chrono::milliseconds(200));
  ep->stop();
  for (auto& s : ep->sockets) s->sock.close();
}

namespace {

// interface_addresses lists the addresses of the host's interfaces that are up (for wildcard binds):
// IPv4 for an IPv4 socket, both for a dual-stack socket. Link-local IPv6 addresses are skipped (a
// NodeAddr carries no scope id).
std::vector<SocketAddr> os_interface_addresses(const SocketAddr& bound, bool dual_stack) {
  std::vector<SocketAddr> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || (i->ifa_flags & IFF_UP) == 0) continue;
    if (i->ifa_addr->sa_family == AF_INET && (bound.is_v4() || dual_stack)) {
      sockaddr_in sin{};
      std::memcpy(&sin, i->ifa_addr, sizeof(sin));
      std::array<std::uint8_t, 4> ip{};
      std::memcpy(ip.data(), &sin.sin_addr, 4);
      out.push_back(SocketAddr::v4(ip, bound.port()));
    } else if (i->ifa_addr->sa_family == AF_INET6 && bound.is_v6()) {
      sockaddr_in6 sin6{};
      std::memcpy(&sin6, i->ifa_addr, sizeof(sin6));
      std::array<std::uint8_t, 16> ip{};
      std::memcpy(ip.data(), &sin6.sin6_addr, 16);
      if (ip[0] == 0xfe && (ip[1] & 0xc0) == 0x80) continue;  // link-local
      out.push_back(SocketAddr::v6(ip, bound.port()));
    }
  }
  ::freeifaddrs(list);
  return out;
}

}  // namespace

std::vector<SocketAddr> interface_addresses(const EndpointEnv& env, const SocketAddr& bound, bool dual_stack) {
  if (env.host() == nullptr) return os_interface_addresses(bound, dual_stack);
  std::vector<SocketAddr> out;
  for (const auto& a : env.host()->addresses()) {
    if (a.is_v4() ? (bound.is_v4() || dual_stack) : bound.is_v6()) out.push_back(a.with_port(bound.port()));
  }
  return out;
}

namespace {

P2PResult<void> check_alpn(std::string_view alpn) {
  if (alpn.empty() || alpn.size() > kAlpnSizeMax) {
    return fail(P2PError::invalid_configuration(
        fmt::format("ALPN must be 1 to {} bytes, got {} bytes", kAlpnSizeMax, alpn.size())));
  }
  return {};
}

}  // namespace

}  // namespace detail

// --- Endpoint ---

Endpoint::Handle::~Handle() {
  if (st && !st->closing) spawn_logged(st->ex, detail::endpoint_close(st), "endpoint close");
}

namespace detail {
namespace {
P2PResult<Endpoint> bind_endpoint(EndpointEnv environment, EndpointConfig config) {
  if (config.bind_addrs.empty()) return fail(P2PError::invalid_configuration("endpoint: no bind address"));
  for (const auto& a : config.alpns) {
    if (auto ok = detail::check_alpn(a); !ok) return fail(ok.error());
  }
  const auto& lim = config.limits;
  if (lim.concurrent_handshakes == 0 || lim.connections == 0 || lim.streams_per_connection == 0 ||
      lim.buffered_bytes_per_connection < 64 * 1024 || lim.send_buffer_per_stream == 0 || lim.accept_queue == 0 ||
      lim.max_message_size == 0) {
    return fail(P2PError::invalid_configuration(
        "endpoint limits must be positive (buffered_bytes_per_connection at least 64 KiB)"));
  }
  if (config.connect_timeout.count() <= 0 || config.idle_timeout.count() <= 0 || config.close_timeout.count() < 0) {
    return fail(P2PError::invalid_configuration("endpoint timeouts must be positive"));
  }
  if (config.busy_poll.count() < 0 || config.busy_poll_handshake.count() < 0) {
    return fail(P2PError::invalid_configuration("endpoint busy_poll durations must not be negative"));
  }
  if (environment.simulated()) {
    // Virtual time never passes while the executor polls: a busy-polling loop would spin.
    config.busy_poll = Duration::zero();
    config.busy_poll_handshake = Duration::zero();
  }
  auto st = std::make_shared<detail::EndpointState>(std::move(environment), std::move(config));
  const asio::any_io_executor ex = st->ex;
  auto tls = quic::TlsIdentity::create(st->config.secret_key);
  if (!tls) return fail(tls.error());
  st->tls = std::move(*tls);
  if (st->config.zero_rtt) {
    quic::TicketIssuer::Limits tl;
    tl.replay_entries_max = std::max<std::size_t>(1, st->config.limits.zero_rtt_replay_entries);
    auto issuer = quic::TicketIssuer::create(tl);
    if (!issuer) return fail(issuer.error());
    st->tickets = std::move(*issuer);
  }
  st->env.fill_random(std::as_writable_bytes(std::span(st->secret)));

  quic::TransportConfig& t = st->transport;
  const auto& cfg = st->config;
  t.idle_timeout = cfg.idle_timeout;
  t.keep_alive_interval = cfg.keep_alive_interval;
  t.handshake_timeout = cfg.connect_timeout;
  t.initial_rtt = cfg.initial_rtt;
  // The driver flushes once per batch of received datagrams, after the application had its turn, so
  // acknowledging without delay costs one ACK per batch and lets answers carry their ACK.
  t.max_ack_delay = Duration::zero();
  t.max_streams_bidi = cfg.limits.streams_per_connection;
  t.max_streams_uni = cfg.limits.streams_per_connection + 1;  // the message stream comes on top
  t.connection_receive_window_max = cfg.limits.buffered_bytes_per_connection;
  t.connection_receive_window = std::min<std::uint64_t>(t.connection_receive_window, t.connection_receive_window_max);
  t.stream_receive_window_max = cfg.limits.buffered_bytes_per_connection / 2;
  t.stream_receive_window = std::min<std::uint64_t>(t.stream_receive_window, t.stream_receive_window_max);
  t.stream_send_buffer_max = cfg.limits.send_buffer_per_stream;
  t.stop_sending_codes = cfg.stop_sending_codes;

  if (st->config.socket_buffer_bytes < 0) {
    return fail(P2PError::invalid_configuration("endpoint socket_buffer_bytes must not be negative"));
  }
  env::UdpSocketOptions sock_options;
  sock_options.receive_buffer_bytes = st->config.socket_buffer_bytes;
  sock_options.send_buffer_bytes = st->config.socket_buffer_bytes;
  for (const auto& addr : st->config.bind_addrs) {
    if (simnet::Host* host = st->env.host()) {
      auto sock = simnet::UdpSocket::bind(*host, addr);
      if (!sock) return fail(sock.error());
      st->sockets.push_back(std::make_unique<detail::SocketState>(detail::PathSocket(std::move(*sock))));
      continue;
    }
    auto sock = env::UdpSocket::bind(ex, addr, sock_options);
    if (!sock) return fail(sock.error());
    st->sockets.push_back(std::make_unique<detail::SocketState>(detail::PathSocket(std::move(*sock))));
  }
  for (const auto& url : st->config.relay_urls) {
    if (auto ok = NodeAddr::validate_relay_url(url); !ok) return fail(ok.error());
  }
  if (st->config.relay_urls.empty() && !st->config.direct_paths) {
    return fail(P2PError::invalid_configuration("endpoint: direct_paths is off and no relay is configured"));
  }
  {
    // Relay paths exist even without configured relays: a peer's ticket may name its relay. No
    // session is opened until one is needed.
    magicsock::RelayPathsConfig rc(st->config.secret_key);
    rc.urls = st->config.relay_urls;
    rc.ca_file = st->config.relay_ca_file;
    rc.peers_max = std::max<std::size_t>(64, 2 * st->config.limits.connections);
    rc.sim_host = st->env.host();
    st->relay = std::make_unique<magicsock::RelayPaths>(ex, std::move(rc));
    st->relay_local_quic = detail::to_quic_addr(magicsock::RelayPaths::kLocal);
    std::weak_ptr<detail::EndpointState> weak = st;
    st->relay->on_receive([weak](const SocketAddr& vaddr, const NodeId& from, ByteView data) {
      if (auto ep = weak.lock()) ep->on_relay_datagram(vaddr, from, data);
    });
    st->relay->on_drain([weak] {
      auto ep = weak.lock();
      if (!ep || ep->stopped) return;
      std::vector<std::uint64_t> waiting;
      waiting.swap(ep->relay_waiting);
      std::sort(waiting.begin(), waiting.end());
      waiting.erase(std::unique(waiting.begin(), waiting.end()), waiting.end());
      for (const auto serial : waiting) {
        if (const auto it = ep->conns.find(serial); it != ep->conns.end()) ep->schedule_flush(*it->second);
      }
    });
    st->relay->on_peer_gone([weak](const SocketAddr& vaddr) {
      auto ep = weak.lock();
      if (!ep) return;
      // The relay says the peer has no session there: a connect in progress fails now instead of
      // after connect_timeout.
      for (auto& [serial, c] : ep->conns) {
        if (c->client && !c->established && c->relay_vaddr == vaddr) {
          c->relay_peer_gone = true;
          c->on_state.notify_all();
        }
      }
    });
    st->relay->start();
  }
  if (st->config.direct_paths) {
    std::weak_ptr<detail::EndpointState> weak = st;
    magicsock::DirectPaths::Io io;
    io.send_udp = [weak](std::size_t socket, const SocketAddr& to, ByteView data,
                         const std::optional<SocketAddr>& source) {
      if (auto ep = weak.lock(); ep && !ep->stopped && socket < ep->sockets.size()) {
        ++ep->counters.disco_sent;
        ep->send_raw(socket, to, data, source);
      }
    };
    io.send_relay = [weak](const SocketAddr& vaddr, ByteView data) {
      auto ep = weak.lock();
      if (!ep || ep->stopped || !ep->relay) return false;
      ++ep->counters.disco_sent;
      return ep->relay->send(vaddr, data);
    };
    io.socket_for = [weak](const SocketAddr& to) -> std::optional<std::size_t> {
      auto ep = weak.lock();
      if (!ep) return std::nullopt;
      return ep->socket_for(to);
    };
    io.local_candidates = [weak]() {
      std::vector<SocketAddr> out;
      if (auto ep = weak.lock()) out = detail::interface_candidates(*ep);
      return out;
    };
    io.route_changed = [weak](const SocketAddr& vaddr) {
      auto ep = weak.lock();
      if (!ep) return;
      ep->on_direct_route_changed(vaddr);
      if (ep->relay) ep->relay->changed().notify_all();
    };
    io.wake = [weak](TimePoint when) {
      if (auto ep = weak.lock()) ep->wake_paths(when);
    };
    io.random = [weak](std::span<std::byte> out) {
      if (auto ep = weak.lock()) ep->env.fill_random(out);
    };
    // Disco nonces count up from the wall clock in microseconds, so a restarted node keeps counting
    // upwards (under simulation: from the virtual clock, which only moves forward).
    const std::uint64_t micros =
        st->env.host() != nullptr
            ? static_cast<std::uint64_t>(
                  std::chrono::duration_cast<std::chrono::microseconds>(st->env.now().time_since_epoch()).count())
            : env::unix_time_micros();
    magicsock::disco::Codec codec(st->config.secret_key, micros + 1, [weak](std::span<std::byte> out) {
      if (auto ep = weak.lock()) ep->env.fill_random(out);
    });
    magicsock::DirectPathsConfig pc;
    pc.peers_max = std::max<std::size_t>(64, 2 * st->config.limits.connections);
    st->paths = std::make_unique<magicsock::DirectPaths>(std::move(codec), std::move(io), pc);
    if (st->relay) {
      // Reflexive addresses come from the home relay's STUN responder.
      st->relay->on_home_stun([weak](const std::vector<SocketAddr>& stun) {
        auto ep = weak.lock();
        if (!ep || ep->stopped || !ep->paths) return;
        ep->paths->set_stun_servers(stun, ep->env.now());
      });
    }
  }
  for (const auto& alpn : st->config.alpns) {
    auto l = std::make_shared<detail::ListenerState>(st, alpn);
    st->listeners[alpn] = l;
    st->config_listeners.push_back(std::move(l));
  }
  st->start();
  return detail::Access::endpoint(std::move(st));
}
}  // namespace
}  // namespace detail

P2PResult<Endpoint> Endpoint::bind(asio::any_io_executor ex, EndpointConfig config) {
  return detail::bind_endpoint(detail::EndpointEnv(std::move(ex)), std::move(config));
}

P2PResult<Endpoint> Endpoint::bind(simnet::Host& host, EndpointConfig config) {
  return detail::bind_endpoint(detail::EndpointEnv(host), std::move(config));
}

const NodeId& Endpoint::node_id() const noexcept { return handle_->st->id; }

std::vector<SocketAddr> Endpoint::local_addrs() const {
  std::vector<SocketAddr> out;
  for (const auto& s : handle_->st->sockets) out.push_back(s->local);
  return out;
}

NodeAddr Endpoint::addr() const { return detail::endpoint_addr(*handle_->st); }

std::optional<std::string> Endpoint::home_relay() const {
  const auto& st = handle_->st;
  if (!st->relay) return std::nullopt;
  return st->relay->home_url();
}

asio::awaitable<P2PResult<std::string>> Endpoint::wait_home_relay(Duration timeout) {
  auto st = handle_->st;
  if (!st->relay) co_return fail(P2PError::invalid_configuration("endpoint: no relay configured"));
  co_return co_await st->relay->wait_home(st->env.now() + timeout);
}

namespace detail {
std::vector<SocketAddr> interface_candidates(const EndpointState& ep) {
  std::vector<SocketAddr> out;
  for (const auto& s : ep.sockets) {
    if (s->wildcard) {
      for (const auto& a : detail::interface_addresses(ep.env, s->local, s->sock.is_dual_stack())) out.push_back(a);
    } else {
      out.push_back(s->local);
    }
  }
  return out;
}

NodeAddr endpoint_addr(const EndpointState& ep) {
  NodeAddr out(ep.id);
  if (ep.relay && ep.relay->home_url()) (void)out.set_relay_url(*ep.relay->home_url());
  if (!ep.config.direct_paths) return out;
  // Reflexive addresses (what a peer behind another NAT can reach) first, then the interfaces.
  std::vector<SocketAddr> addrs;
  if (ep.paths) addrs = ep.paths->reflexive();
  std::reverse(addrs.begin(), addrs.end());
  for (const auto& a : interface_candidates(ep)) addrs.push_back(a);
  for (const auto& a : addrs) {
    if (out.direct_addresses().size() >= NodeAddr::kDirectAddressCountMax) break;
    const auto& have = out.direct_addresses();
    if (std::find(have.begin(), have.end(), a) != have.end()) continue;
    (void)out.add_direct_address(a);
  }
  return out;
}
}  // namespace detail

bool Endpoint::is_closed() const noexcept { return handle_->st->closing; }

EndpointStats Endpoint::stats() const {
  const auto& st = handle_->st;
  EndpointStats out = st->counters;
  if (st->paths) {
    const auto& p = st->paths->stats();
    out.direct_paths_validated = p.paths_validated;
    out.direct_switches = p.switches_direct;
    out.direct_fallbacks = p.fallbacks_relay;
    out.disco_refused = p.disco_refused;
  }
  return out;
}

asio::awaitable<void> Endpoint::close() { co_await detail::endpoint_close(handle_->st); }

P2PResult<Listener> Endpoint::listen(std::string_view alpn) {
  auto& st = handle_->st;
  if (auto ok = detail::check_alpn(alpn); !ok) return fail(ok.error());
  if (st->closing) return fail(P2PError::connection_closed("this node (endpoint closed)"));
  const std::string key(alpn);
  auto it = st->listeners.find(key);
  if (it != st->listeners.end()) {
    auto existing = it->second.lock();
    if (existing && !existing->closed) {
      // A listener created from EndpointConfig::alpns waits for its first listen() call.
      const auto cfg = std::find(st->config_listeners.begin(), st->config_listeners.end(), existing);
      if (cfg == st->config_listeners.end()) {
        return fail(P2PError::connection_failed(fmt::format("already listening for '{}'", key)));
      }
      st->config_listeners.erase(cfg);
      return detail::Access::listener(std::move(existing));
    }
  }
  auto l = std::make_shared<detail::ListenerState>(st, key);
  st->listeners[key] = l;
  return detail::Access::listener(std::move(l));
}

namespace detail {
asio::awaitable<P2PResult<Connection>> dial(std::shared_ptr<EndpointState> st, NodeAddr peer,
                                            std::string_view alpn_view, bool early);
}  // namespace detail

asio::awaitable<P2PResult<Connection>> Endpoint::connect(NodeAddr peer, std::string_view alpn) {
  return detail::dial(handle_->st, std::move(peer), alpn, false);
}

asio::awaitable<P2PResult<Connection>> Endpoint::connect_early(NodeAddr peer, std::string_view alpn) {
  return detail::dial(handle_->st, std::move(peer), alpn, true);
}

namespace detail {
// DialRace is what the direct and relay attempts of one connect() share: the first to complete its
// handshake wins, and the others close themselves when they see it.
struct DialRace {
  explicit DialRace(const asio::any_io_executor& ex) : changed(ex) {}
  Notifier changed;
  std::shared_ptr<ConnState> winner;
  bool direct_done = false;  // every direct attempt failed
  bool relay_done = false;
  std::optional<P2PError> relay_error;
};

// Target is one way to a peer: a socket and the peer's address on it (a virtual address on a
// relay path).
struct Target {
  SocketAddr addr;
  std::size_t socket = 0;
};

// attempt dials `peer` over one target until `attempt_end`, the handshake completes, it fails, or
// another attempt of `race` wins. Returns the connection (established, or early when `early` and
// 0-RTT was attempted).
asio::awaitable<P2PResult<std::shared_ptr<ConnState>>> attempt(std::shared_ptr<EndpointState> st, const NodeAddr& peer,
                                                               const std::string& alpn, Target target, bool early,
                                                               TimePoint start, TimePoint attempt_end,
                                                               std::shared_ptr<DialRace> race) {
  const TimePoint now = st->env.now();
  quic::ClientConfig cc;
  cc.identity = st->tls;
  cc.server_id = peer.node_id();
  cc.alpn = alpn;
  cc.path = quic::Path{st->local_quic(target.socket), detail::to_quic_addr(target.addr)};
  cc.transport = st->transport_for(target.addr);
  cc.static_secret = st->secret;
  cc.random = st->random_fn();
  // A ticket is used once: the first attempt resumes with it, later ones do full handshakes.
  cc.resume = st->sessions.take(peer.node_id(), alpn, now);
  auto q = quic::Connection::connect(std::move(cc), now);
  if (!q) co_return fail(q.error());
  auto c = st->register_conn(std::move(*q), target.socket, true, target.addr);
  c->remote = peer.node_id();
  c->alpn = alpn;
  if (early && c->quic->early_data() == quic::EarlyData::attempted) {
    // 0-RTT: usable now; what the application sends leaves with the handshake.
    c->early = true;
    EndpointState::open_message_stream(*c);
    st->process(c);
    co_return c;
  }
  st->process(c);
  auto timer = st->env.make_timer();
  for (;;) {
    if (c->established) co_return c;
    if (auto e = c->error()) co_return fail(*e);
    if (st->stopped) co_return fail(P2PError::connection_closed("this node (endpoint closed)"));
    if (c->relay_peer_gone) {
      c->quic->close(0, "peer not at the relay");
      st->process(c);
      const auto url = st->relay ? st->relay->relay_of(target.addr) : std::nullopt;
      co_return fail(P2PError::node_not_found(
          fmt::format("{} is not connected to relay {}", peer.node_id().fmt_short(), url.value_or("?"))));
    }
    if (race->winner) {
      c->quic->close(0, "another path connected first");
      st->process(c);
      co_return fail(P2PError::cancelled("connect: another path connected first"));
    }
    if (st->env.now() >= attempt_end) {
      c->quic->close(0, "connect timeout");
      st->process(c);
      co_return fail(P2PError::timeout(st->env.now() - start));
    }
    auto r = co_await (c->on_state.wait() || race->changed.wait() || timer.wait_until(attempt_end));
    const bool cancelled = (r.index() == 0 && !std::get<0>(r)) || (r.index() == 1 && !std::get<1>(r));
    if (cancelled) {
      c->quic->close(0, "connect cancelled");
      st->process(c);
      co_return fail(P2PError::cancelled("connect"));
    }
  }
}

// relay_side runs the relay attempt of a race: after `head_start`, or at once when the direct
// attempts all failed.
asio::awaitable<void> relay_side(std::shared_ptr<EndpointState> st, NodeAddr peer, std::string alpn, Target target,
                                 TimePoint start, TimePoint deadline, Duration head_start,
                                 std::shared_ptr<DialRace> race) {
  auto timer = st->env.make_timer();
  const TimePoint go = start + head_start;
  while (!race->winner && !race->direct_done && !st->stopped && st->env.now() < go) {
    auto r = co_await (race->changed.wait() || timer.wait_until(go));
    if (r.index() == 0 && !std::get<0>(r)) break;
  }
  if (!race->winner && !st->stopped) {
    auto c = co_await attempt(st, peer, alpn, target, false, start, deadline, race);
    if (c) {
      if (!race->winner) {
        race->winner = *c;
      } else {
        (*c)->quic->close(0, "another path connected first");
        st->process(*c);
      }
    } else {
      race->relay_error = c.error();
    }
  }
  race->relay_done = true;
  race->changed.notify_all();
}

// dial is Endpoint::connect (early: connect_early).
asio::awaitable<P2PResult<Connection>> dial(std::shared_ptr<EndpointState> st, NodeAddr peer,
                                            std::string_view alpn_view, bool early) {
  const std::string alpn(alpn_view);
  if (auto ok = detail::check_alpn(alpn); !ok) co_return fail(ok.error());
  if (st->closing) co_return fail(P2PError::connection_closed("this node (endpoint closed)"));
  if (st->conns.size() >= st->config.limits.connections) {
    co_return fail(P2PError::connection_failed("too many connections on this endpoint"));
  }
  // Pair each direct address with a socket that can reach it.
  std::vector<Target> direct;
  if (st->config.direct_paths) {
    for (const auto& a : peer.direct_addresses()) {
      if (auto i = st->socket_for(a)) direct.push_back({a, *i});
    }
  }
  // The relay path: through the relay the peer's address names (or the one it was last heard on).
  std::optional<Target> relayed;
  std::optional<P2PError> relay_refused;
  if (st->relay &&
      (peer.relay_url() || st->relay->knows(peer.node_id()) || (direct.empty() && st->relay->home_url().has_value()))) {
    auto vaddr = st->relay->peer(peer.node_id(), peer.relay_url());
    if (vaddr) {
      relayed = Target{*vaddr, EndpointState::kRelaySocket};
    } else {
      relay_refused = vaddr.error();
    }
  }
  if (direct.empty() && !relayed) {
    if (relay_refused) co_return fail(*relay_refused);
    std::string why = "no direct address this endpoint's sockets can reach";
    if (!st->config.direct_paths) why = "no relay named (direct paths are off)";
    co_return fail(
        P2PError::node_not_found(fmt::format("{}: {} ({})", peer.node_id().fmt_short(), why, peer.to_string())));
  }
  const TimePoint start = st->env.now();
  const TimePoint deadline = start + st->config.connect_timeout;
  auto race = std::make_shared<DialRace>(st->ex);
  if (relayed && st->paths) {
    // The path layer: the connection lives on the peer's virtual address and starts on the relay
    // unless a direct path answers within the head start; hole punching goes on meanwhile and the
    // connection moves to a direct path as soon as one is validated.
    const NodeId node = peer.node_id();
    std::vector<SocketAddr> addrs;
    addrs.reserve(direct.size());
    for (const auto& t : direct) addrs.push_back(t.addr);
    st->paths->add_candidates(node, addrs);
    st->paths->punch(node, relayed->addr, start);
    if (!early && !direct.empty()) {
      auto timer = st->env.make_timer();
      const TimePoint go = start + st->config.relay_head_start;
      while (!st->paths->has_route(node) && !st->stopped && st->env.now() < go) {
        auto r = co_await (st->relay->changed().wait() || timer.wait_until(go));
        if (r.index() == 0 && !std::get<0>(r)) break;
      }
    }
    auto c = co_await attempt(st, peer, alpn, *relayed, early, start, deadline, race);
    if (!c) co_return fail(c.error());
    co_return Access::connection(std::move(*c));
  }
  if (direct.empty()) {
    auto c = co_await attempt(st, peer, alpn, *relayed, early, start, deadline, race);
    if (!c) co_return fail(c.error());
    co_return Access::connection(std::move(*c));
  }
  if (relayed) {
    spawn_logged(st->ex,
                 relay_side(st, peer, alpn, *relayed, start, deadline,
                            early ? Duration::zero() : st->config.relay_head_start, race),
                 "connect over relay");
  }
  std::optional<P2PError> last;
  for (std::size_t k = 0; k < direct.size() && !race->winner; ++k) {
    const TimePoint now = st->env.now();
    if (now >= deadline) break;
    const TimePoint attempt_end = now + (deadline - now) / static_cast<std::int64_t>(direct.size() - k);
    auto c = co_await attempt(st, peer, alpn, direct[k], early && !relayed, start, attempt_end, race);
    if (c) {
      if (!race->winner) {
        race->winner = *c;
      } else if (race->winner != *c) {
        (*c)->quic->close(0, "another path connected first");
        st->process(*c);
      }
      race->changed.notify_all();
      break;
    }
    if (race->winner) break;
    last = c.error();
    if (last->code() == P2PErrc::cancelled) co_return fail(*last);
    // Identity and protocol failures are final: another address of the same node would give the
    // same answer.
    if (last->code() == P2PErrc::authentication_failed || last->code() == P2PErrc::connection_failed) break;
  }
  race->direct_done = true;
  race->changed.notify_all();
  if (relayed) {
    // Wait for the relay attempt (it starts now if its head start has not run out).
    while (!race->relay_done && !race->winner) {
      const bool woke = co_await race->changed.wait();
      if (!woke) co_return fail(P2PError::cancelled("connect"));
    }
  }
  if (race->winner) co_return Access::connection(race->winner);
  if (race->relay_error && (!last || last->code() == P2PErrc::timeout)) last = race->relay_error;
  if (!last) last = P2PError::timeout(st->env.now() - start);
  co_return fail(*last);
}
}  // namespace detail

// --- Listener ---

namespace detail {
void close_listener(ListenerState& l) {
  if (l.closed) return;
  l.closed = true;
  if (auto ep = l.ep.lock()) {
    for (auto& c : l.queue) {
      c->user_closed = true;
      c->quic->close(kAppErrorBusy, "listener closed");
      ep->schedule_flush(*c);
    }
    const auto it = ep->listeners.find(l.alpn);
    if (it != ep->listeners.end() && it->second.lock().get() == &l) ep->listeners.erase(it);
  }
  l.queue.clear();
  l.on_accept.notify_all();
}
}  // namespace detail

Listener::Handle::~Handle() {
  if (st) detail::close_listener(*st);
}

void Listener::close() { detail::close_listener(*handle_->st); }

asio::awaitable<P2PResult<Connection>> Listener::accept() {
  auto state = handle_->st;
  for (;;) {
    if (state->closed) co_return fail(P2PError::connection_closed("this node (listener closed)"));
    while (!state->queue.empty()) {
      auto c = std::move(state->queue.front());
      state->queue.pop_front();
      if (c->error()) continue;  // ended while it waited
      co_return detail::Access::connection(std::move(c));
    }
    if (auto awaited = co_await state->on_accept.wait(); !awaited) co_return fail(P2PError::cancelled("accept"));
  }
}

std::string Listener::local_addr() const {
  auto ep = handle_->st->ep.lock();
  if (!ep) return {};
  return detail::endpoint_addr(*ep).to_ticket();
}

const std::string& Listener::alpn() const { return handle_->st->alpn; }

}  // namespace moosicbox::p2p
