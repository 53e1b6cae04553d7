// SPDX-License-Identifier: MIT OR Apache-2.0
// direct_paths.cpp: DirectPaths (see direct_paths.hpp): candidates, punch rounds, pongs, path
// choice, heartbeats, loss and fallback, and the STUN client that learns reflexive addresses.
// Layer: endpoint (path layer). Runs on the endpoint's executor.
#include "endpoint/magicsock/direct_paths.hpp"

#include <algorithm>
#include <utility>

#include "relay/stun.hpp"

namespace moosicbox::p2p::magicsock {

namespace {

using env::SocketAddr;

constexpr TimePoint kNever = TimePoint::min();
// Pings per candidate in one punch round, and the first pause between them (it doubles): 0, 100,
// 300, 700, 1500 ms.
constexpr std::uint32_t kRoundTries = 5;
constexpr Duration kRoundRetry = std::chrono::milliseconds(100);
// STUN requests per refresh, first pause 100 ms (doubling).
constexpr std::uint32_t kStunTries = 4;
constexpr std::size_t kOutstandingMax = 32;
constexpr std::size_t kReflexiveMax = 4;
// A peer answers at most one CallMeMaybe per this interval with a punch round (and its own
// CallMeMaybe): a hostile peer cannot make us spray pings.
constexpr Duration kCallMeMaybeMin = std::chrono::milliseconds(500);
// A ping from an unvalidated address gets a ping back at most this often per candidate.
constexpr Duration kPingBackMin = std::chrono::seconds(1);

Duration since(TimePoint now, TimePoint t) { return t == kNever ? Duration::max() : now - t; }

Duration silence_for(const DirectPathsConfig& cfg, Duration rtt) { return std::max(cfg.silence_min, 3 * rtt); }
Duration lost_for(const DirectPathsConfig& cfg, Duration rtt) { return std::max(cfg.lost_min, 4 * rtt); }
Duration probe_spacing(Duration rtt) { return std::max<Duration>(std::chrono::milliseconds(25), rtt); }

}  // namespace

DirectPaths::DirectPaths(disco::Codec codec, Io io, DirectPathsConfig config)
    : codec_(std::move(codec)), io_(std::move(io)), config_(config) {}

DirectPaths::~DirectPaths() = default;

bool DirectPaths::in_use(const Peer& p, TimePoint now) const {
  return p.conns > 0 && since(now, p.last_send) < config_.in_use;
}

disco::TxId DirectPaths::new_tx() {
  disco::TxId tx{};
  io_.random(tx);
  return tx;
}

DirectPaths::Peer* DirectPaths::find(const NodeId& node) {
  auto it = peers_.find(node);
  return it == peers_.end() ? nullptr : &it->second;
}

DirectPaths::Peer& DirectPaths::get(const NodeId& node) {
  if (auto* p = find(node)) {
    p->last_used = ++use_clock_;
    return *p;
  }
  if (peers_.size() >= config_.peers_max) evict_one();
  auto [it, inserted] = peers_.try_emplace(node, Peer{.node = node});
  Peer& p = it->second;
  p.last_send = kNever;
  p.last_cmm_sent = kNever;
  p.last_cmm_received = kNever;
  p.last_used = ++use_clock_;
  return p;
}

void DirectPaths::evict_one() {
  // The least recently used peer without connections (peers with connections are never evicted;
  // when every peer has one, the least recently used goes anyway: the table stays bounded).
  Peer* victim = nullptr;
  for (auto& [id, p] : peers_) {
    if (victim == nullptr || (p.conns == 0 && victim->conns > 0) ||
        ((p.conns == 0) == (victim->conns == 0) && p.last_used < victim->last_used)) {
      victim = &p;
    }
  }
  if (victim == nullptr) return;
  if (victim->due != kTimePointMax) due_.erase({victim->due, victim});
  if (victim->vaddr) {
    auto v = by_vaddr_.find(*victim->vaddr);
    if (v != by_vaddr_.end() && v->second == victim) by_vaddr_.erase(v);
  }
  peers_.erase(victim->node);
}

DirectPaths::Candidate* DirectPaths::candidate(Peer& p, const SocketAddr& addr_in, std::optional<std::size_t> socket) {
  const SocketAddr addr = addr_in.canonical();
  if (addr.is_unspecified() || addr.port() == 0 || addr.is_multicast()) return nullptr;
  for (auto& c : p.candidates) {
    if (c.addr == addr) return &c;
  }
  if (!socket) socket = io_.socket_for(addr);
  if (!socket) return nullptr;
  Candidate fresh;
  fresh.addr = addr;
  fresh.socket = *socket;
  fresh.last_ping = kNever;
  fresh.last_pong = kNever;
  fresh.last_rx = kNever;
  if (p.candidates.size() < config_.candidates_max) {
    p.candidates.push_back(fresh);
    return &p.candidates.back();
  }
  // Full: replace the candidate that answered least recently (never the active one), in place so
  // the active index stays valid.
  std::optional<std::size_t> victim;
  for (std::size_t i = 0; i < p.candidates.size(); ++i) {
    if (p.best == i) continue;
    if (!victim || p.candidates[i].last_pong < p.candidates[*victim].last_pong) victim = i;
  }
  if (!victim) return nullptr;
  p.candidates[*victim] = fresh;
  return &p.candidates[*victim];
}

void DirectPaths::add_candidates(const NodeId& node, std::span<const SocketAddr> addrs) {
  Peer& p = get(node);
  for (const auto& a : addrs) (void)candidate(p, a, std::nullopt);
}

void DirectPaths::activate(const NodeId& node, const SocketAddr& vaddr, TimePoint now) {
  Peer& p = get(node);
  ++p.conns;
  punch(node, vaddr, now);
}

void DirectPaths::punch(const NodeId& node, const SocketAddr& vaddr, TimePoint now) {
  Peer& p = get(node);
  if (p.vaddr != vaddr) {
    if (p.vaddr) by_vaddr_.erase(*p.vaddr);
    p.vaddr = vaddr;
  }
  by_vaddr_[vaddr] = &p;
  p.last_send = now;
  if (!p.best && since(now, p.last_cmm_sent) >= kCallMeMaybeMin) {
    p.round_pause = config_.repunch_min;
    start_round(p, now);
  }
  reschedule(p);
}

void DirectPaths::deactivate(const SocketAddr& vaddr) {
  auto it = by_vaddr_.find(vaddr);
  if (it == by_vaddr_.end()) return;
  Peer& p = *it->second;
  if (p.conns > 0) --p.conns;
}

const DirectRoute* DirectPaths::route(const SocketAddr& vaddr, TimePoint now) {
  auto it = by_vaddr_.find(vaddr);
  if (it == by_vaddr_.end()) return nullptr;
  Peer& p = *it->second;
  p.last_send = now;
  if (!p.best) return nullptr;
  Candidate& c = p.candidates[*p.best];
  // Traffic leaves on a path that has been silent: probe it (loss is declared in tick()).
  if (since(now, c.last_rx) > silence_for(config_, c.rtt) && since(now, c.last_ping) > probe_spacing(c.rtt)) {
    send_ping(p, c, now);
    reschedule(p);
  }
  return &p.route;
}

const DirectRoute* DirectPaths::route_of(const SocketAddr& vaddr) const {
  auto it = by_vaddr_.find(vaddr);
  if (it == by_vaddr_.end() || !it->second->best) return nullptr;
  return &it->second->route;
}

bool DirectPaths::has_route(const NodeId& node) const {
  auto it = peers_.find(node);
  return it != peers_.end() && it->second.best.has_value();
}

void DirectPaths::heard(const SocketAddr& vaddr, const SocketAddr& from, TimePoint now) {
  auto it = by_vaddr_.find(vaddr);
  if (it == by_vaddr_.end()) return;
  Peer& p = *it->second;
  // Only known candidates: an address is learned from authenticated disco packets, never from
  // QUIC datagrams (their authenticity is only known inside the engine).
  for (auto& c : p.candidates) {
    if (c.addr != from) continue;
    c.last_rx = now;
    c.first_unanswered = kTimePointMax;
    return;
  }
}

void DirectPaths::start_round(Peer& p, TimePoint now) {
  send_call_me_maybe(p, now);
  for (auto& c : p.candidates) {
    c.tries_left = kRoundTries;
    c.retry = kRoundRetry;
    c.next_ping = now;
  }
  p.next_round = now + p.round_pause;
  p.round_pause = std::min(config_.repunch_max, 2 * p.round_pause);
  run_peer(p, now);
}

void DirectPaths::send_ping(Peer& p, Candidate& c, TimePoint now) {
  disco::Ping ping{new_tx()};
  auto packet = codec_.seal(p.node, ping);
  if (!packet) return;
  if (p.outstanding.size() >= kOutstandingMax) p.outstanding.erase(p.outstanding.begin());
  p.outstanding.push_back({ping.tx, c.addr, now});
  io_.send_udp(c.socket, c.addr, *packet, c.source);
  c.last_ping = now;
  if (c.first_unanswered == kTimePointMax) c.first_unanswered = now;
  ++stats_.pings_sent;
}

void DirectPaths::send_call_me_maybe(Peer& p, TimePoint now) {
  if (!p.vaddr) return;
  disco::CallMeMaybe cmm{our_candidates()};
  auto packet = codec_.seal(p.node, cmm);
  if (!packet) return;
  if (io_.send_relay(*p.vaddr, *packet)) {
    p.last_cmm_sent = now;
    ++stats_.call_me_maybe_sent;
  }
}

std::vector<SocketAddr> DirectPaths::our_candidates() const {
  std::vector<SocketAddr> out;
  auto add = [&](const SocketAddr& a0) {
    const SocketAddr a = a0.canonical();
    if (a.is_unspecified() || a.port() == 0 || out.size() >= disco::kCandidatesMax) return;
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  };
  // Reflexive addresses first: they are what a peer behind another NAT can reach.
  for (auto it = reflexive_.rbegin(); it != reflexive_.rend(); ++it) add(*it);
  for (const auto& a : io_.local_candidates()) add(a);
  return out;
}

void DirectPaths::on_udp_disco(std::size_t socket, const SocketAddr& from, const std::optional<SocketAddr>& destination,
                               ByteView packet, TimePoint now) {
  auto opened = codec_.open(packet);
  if (!opened) {
    ++stats_.disco_refused;
    return;
  }
  Peer& p = get(opened->from);
  on_message(p, opened->message, socket, from.canonical(), destination, now);
}

void DirectPaths::on_relay_disco(const NodeId& node, const SocketAddr& vaddr, ByteView packet, TimePoint now) {
  auto opened = codec_.open(packet);
  if (!opened || opened->from != node) {
    // A packet the relay names one sender for and the box another: refused like a forgery.
    ++stats_.disco_refused;
    return;
  }
  Peer& p = get(node);
  if (p.vaddr != vaddr) {
    if (p.vaddr) by_vaddr_.erase(*p.vaddr);
    p.vaddr = vaddr;
    by_vaddr_[vaddr] = &p;
  }
  on_message(p, opened->message, std::nullopt, SocketAddr{}, std::nullopt, now);
}

void DirectPaths::on_message(Peer& p, const disco::Message& m, std::optional<std::size_t> socket,
                             const SocketAddr& from, const std::optional<SocketAddr>& destination, TimePoint now) {
  if (const auto* ping = std::get_if<disco::Ping>(&m)) {
    if (!socket) return;  // pings only validate UDP paths; through a relay they prove nothing
    disco::Pong pong{ping->tx, from};
    if (auto packet = codec_.seal(p.node, pong)) {
      io_.send_udp(*socket, from, *packet, destination);
      ++stats_.pongs_sent;
    }
    // The sender's address is a candidate (a NAT's mapping towards us, or a rebinding): ping it
    // back, which also opens our side of the path.
    if (Candidate* c = candidate(p, from, socket)) {
      c->last_rx = now;
      if (destination) c->source = destination;
      if (!c->validated && since(now, c->last_ping) >= kPingBackMin) send_ping(p, *c, now);
    }
    reschedule(p);
    return;
  }
  if (const auto* pong = std::get_if<disco::Pong>(&m)) {
    if (!socket) return;
    on_pong(p, *pong, from, destination, now);
    return;
  }
  const auto& cmm = std::get<disco::CallMeMaybe>(m);
  ++stats_.call_me_maybe_received;
  for (const auto& a : cmm.candidates) (void)candidate(p, a, std::nullopt);
  if (since(now, p.last_cmm_received) < kCallMeMaybeMin) return;
  p.last_cmm_received = now;
  // Answer with our own candidates (the dialer's ticket may lack our reflexive address) and ping
  // theirs: our pings open our NAT towards them while theirs arrive.
  if (!p.best) {
    p.round_pause = config_.repunch_min;
    start_round(p, now);
  }
  reschedule(p);
}

void DirectPaths::on_pong(Peer& p, const disco::Pong& pong, const SocketAddr& from,
                          const std::optional<SocketAddr>& destination, TimePoint now) {
  auto it =
      std::find_if(p.outstanding.begin(), p.outstanding.end(), [&](const Outstanding& o) { return o.tx == pong.tx; });
  if (it == p.outstanding.end() || it->to != from) {
    ++stats_.pongs_unexpected;
    return;
  }
  const Duration rtt = now - it->sent;
  p.outstanding.erase(it);
  ++stats_.pongs_received;
  Candidate* c = candidate(p, from, std::nullopt);
  if (c == nullptr) return;
  c->rtt = c->last_pong == kNever ? rtt : (7 * c->rtt + rtt) / 8;
  c->last_pong = now;
  c->last_rx = now;
  c->first_unanswered = kTimePointMax;
  c->tries_left = 0;
  c->next_ping = kTimePointMax;
  if (destination) c->source = destination;
  if (!c->validated) {
    c->validated = true;
    ++stats_.paths_validated;
  }
  if (!pong.src.is_unspecified()) learn_reflexive(pong.src, now);
  choose(p, now);
  reschedule(p);
}

void DirectPaths::choose(Peer& p, TimePoint now) {
  std::optional<std::size_t> pick;
  for (std::size_t i = 0; i < p.candidates.size(); ++i) {
    const Candidate& c = p.candidates[i];
    if (!c.validated) continue;
    if (p.best != i && since(now, c.last_pong) > config_.trust) continue;
    if (!pick || c.rtt < p.candidates[*pick].rtt) pick = i;
  }
  if (!pick) return;
  if (p.best && *p.best != *pick && p.candidates[*p.best].validated) {
    // Hysteresis: move only to a path at least a fifth faster.
    const Duration cur = p.candidates[*p.best].rtt;
    if (p.candidates[*pick].rtt * 5 > cur * 4) pick = p.best;
  }
  const Candidate& c = p.candidates[*pick];
  const bool changed = p.best != pick || p.route.addr != c.addr;
  p.best = pick;
  p.route = DirectRoute{c.socket, c.addr, c.source, c.rtt};
  if (!changed) return;
  ++stats_.switches_direct;
  p.next_round = kTimePointMax;
  if (p.vaddr && io_.route_changed) io_.route_changed(*p.vaddr);
}

void DirectPaths::lose(Peer& p, TimePoint now) {
  if (!p.best) return;
  Candidate& c = p.candidates[*p.best];
  c.validated = false;
  c.first_unanswered = kTimePointMax;
  p.best.reset();
  ++stats_.fallbacks_relay;
  if (p.vaddr && io_.route_changed) io_.route_changed(*p.vaddr);
  // Our NAT mapping may have changed (rebinding): learn our reflexive addresses again, and punch.
  restart_stun(now);
  p.round_pause = config_.repunch_min;
  start_round(p, now);
}

void DirectPaths::run_peer(Peer& p, TimePoint now) {
  for (auto& c : p.candidates) {
    if (c.tries_left == 0 || c.next_ping > now) continue;
    send_ping(p, c, now);
    if (--c.tries_left > 0) {
      c.next_ping = now + c.retry;
      c.retry *= 2;
    } else {
      c.next_ping = kTimePointMax;
    }
  }
  if (p.best) {
    Candidate& c = p.candidates[*p.best];
    if (c.first_unanswered != kTimePointMax && c.last_rx < c.first_unanswered &&
        now - c.first_unanswered >= lost_for(config_, c.rtt)) {
      lose(p, now);
      return;
    }
    if (c.first_unanswered != kTimePointMax && since(now, c.last_ping) >= probe_spacing(c.rtt)) {
      send_ping(p, c, now);  // keep probing while unanswered
    } else if (in_use(p, now) && since(now, c.last_ping) >= config_.heartbeat) {
      send_ping(p, c, now);
    }
    p.route.rtt = c.rtt;
  } else if (p.conns > 0 && p.next_round <= now) {
    start_round(p, now);
    return;
  }
}

void DirectPaths::reschedule(Peer& p) {
  TimePoint when = kTimePointMax;
  for (const auto& c : p.candidates) {
    if (c.tries_left > 0) when = std::min(when, c.next_ping);
  }
  if (p.best) {
    const Candidate& c = p.candidates[*p.best];
    if (c.first_unanswered != kTimePointMax) {
      when = std::min(when, c.first_unanswered + lost_for(config_, c.rtt));
      when = std::min(when, c.last_ping + probe_spacing(c.rtt));
    } else if (p.conns > 0 && p.last_send != kNever && c.last_ping != kNever) {
      // Heartbeat while in use (run_peer checks use when it comes).
      if (p.last_send + config_.in_use > c.last_ping + config_.heartbeat) {
        when = std::min(when, c.last_ping + config_.heartbeat);
      }
    }
  } else if (p.conns > 0) {
    when = std::min(when, p.next_round);
  }
  schedule(p, when);
}

void DirectPaths::schedule(Peer& p, TimePoint when) {
  if (when == p.due) return;
  if (p.due != kTimePointMax) due_.erase({p.due, &p});
  p.due = when;
  if (when == kTimePointMax) return;
  due_.insert({when, &p});
  if (io_.wake) io_.wake(when);
}

TimePoint DirectPaths::tick(TimePoint now) {
  // Peers due now (collected first: running one may reschedule others).
  std::vector<Peer*> run;
  for (auto it = due_.begin(); it != due_.end() && it->first <= now; ++it) run.push_back(it->second);
  for (Peer* p : run) {
    due_.erase({p->due, p});
    p->due = kTimePointMax;
  }
  for (Peer* p : run) {
    run_peer(*p, now);
    reschedule(*p);
  }
  // STUN: retries, and the periodic refresh.
  if (!stun_.empty() && now >= stun_next_refresh) {
    restart_stun(now);
    stun_next_refresh = now + config_.stun_refresh;
  }
  TimePoint next = due_.empty() ? kTimePointMax : due_.begin()->first;
  for (auto& s : stun_) {
    if (s.tries_left > 0 && s.next <= now) send_stun(s, now);
    if (s.tries_left > 0) next = std::min(next, s.next);
  }
  if (!stun_.empty()) next = std::min(next, stun_next_refresh);
  return next;
}

void DirectPaths::set_stun_servers(std::vector<SocketAddr> servers, TimePoint now) {
  stun_.clear();
  for (const auto& a0 : servers) {
    const SocketAddr a = a0.canonical();
    auto socket = io_.socket_for(a);
    if (!socket) continue;
    StunServer s;
    s.addr = a;
    s.socket = *socket;
    stun_.push_back(s);
  }
  restart_stun(now);
  stun_next_refresh = stun_.empty() ? kTimePointMax : now + config_.stun_refresh;
  if (!stun_.empty() && io_.wake) io_.wake(now);
}

void DirectPaths::restart_stun(TimePoint now) {
  for (auto& s : stun_) {
    s.tx = new_tx();
    s.tries_left = kStunTries;
    s.retry = kRoundRetry;
    s.next = now;
  }
}

void DirectPaths::send_stun(StunServer& s, TimePoint now) {
  const auto request = stun::binding_request(s.tx);
  io_.send_udp(s.socket, s.addr, request, std::nullopt);
  ++stats_.stun_requests;
  if (--s.tries_left > 0) {
    s.next = now + s.retry;
    s.retry *= 2;
  } else {
    s.next = kTimePointMax;
  }
}

void DirectPaths::on_stun(std::size_t socket, const SocketAddr& from, ByteView packet, TimePoint now) {
  auto r = stun::parse_binding_response(packet);
  if (!r) return;
  for (auto& s : stun_) {
    if (s.socket != socket || s.addr != from.canonical() || s.tx != r->tx) continue;
    ++stats_.stun_responses;
    s.tries_left = 0;
    s.next = kTimePointMax;
    s.tx = new_tx();  // a late duplicate of this answer no longer matches
    s.mapped = r->mapped.canonical();
    learn_reflexive(*s.mapped, now);
    return;
  }
}

void DirectPaths::learn_reflexive(const SocketAddr& a0, TimePoint now) {
  const SocketAddr a = a0.canonical();
  if (a.is_unspecified() || a.port() == 0) return;
  auto it = std::find(reflexive_.begin(), reflexive_.end(), a);
  if (it != reflexive_.end()) {
    // Known: move it to the newest place.
    reflexive_.erase(it);
    reflexive_.push_back(a);
    return;
  }
  if (reflexive_.size() >= kReflexiveMax) reflexive_.erase(reflexive_.begin());
  reflexive_.push_back(a);
  candidates_changed(now);
}

void DirectPaths::candidates_changed(TimePoint now) {
  // Peers in use over the relay hear of our new candidates and get a fresh punch round.
  for (auto& [id, p] : peers_) {
    if (p.best || p.conns == 0 || !p.vaddr) continue;
    p.round_pause = config_.repunch_min;
    start_round(p, now);
    reschedule(p);
  }
}

std::vector<SocketAddr> DirectPaths::reflexive() const { return reflexive_; }

}  // namespace moosicbox::p2p::magicsock
