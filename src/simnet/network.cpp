// SPDX-License-Identifier: MIT OR Apache-2.0
// network.cpp: the simulated packet network: segments, hosts, links (loss, MTU, bandwidth, queue,
// latency, jitter, reordering), partitions, routing and NAT routers (mapping, port allocation,
// filtering, expiry, hairpinning, UDP blocking, flushing).
// Layer: simnet. Single-threaded: everything runs on the thread stepping the SimRuntime.
#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "moosicbox/p2p/core/assert.hpp"
#include "simnet/internal.hpp"

namespace moosicbox::p2p::simnet {

using detail::Flight;
using detail::Hop;
using detail::HostImpl;
using detail::LinkDir;
using detail::LinkImpl;
using detail::MapKey;
using detail::Mapping;
using detail::Owner;
using detail::Proto;
using detail::RouterImpl;
using detail::SegmentImpl;

namespace {

// IPv4 + UDP and IPv6 + UDP header bytes, counted against the MTU and on the wire.
constexpr std::size_t kHeaderV4 = 28;
constexpr std::size_t kHeaderV6 = 48;

std::size_t header_bytes(const SocketAddr& dst) noexcept { return dst.is_v4() ? kHeaderV4 : kHeaderV6; }

bool valid_interface_address(const SocketAddr& a) noexcept { return !a.is_unspecified() && !a.is_multicast(); }

}  // namespace

// ---- segments, hosts, routers ----------------------------------------------------------------------

Router* SegmentImpl::router() const noexcept { return router_; }

namespace detail {

HostImpl::HostImpl(Network& n, std::string nm, SegmentImpl& s, std::vector<SocketAddr> a, LinkParams l)
    : name_(std::move(nm)),
      net_(&n),
      segment_(&s),
      addrs_(std::move(a)),
      link_(l, env::derive_seed(n.runtime().seed(), "link/" + name_)),
      env_(n.runtime(), "host/" + name_) {}

bool HostImpl::has_address(const SocketAddr& a) const noexcept {
  const SocketAddr k = ip_key(a.canonical());
  return std::ranges::any_of(addrs_, [&](const SocketAddr& mine) { return mine == k; });
}

std::optional<SocketAddr> HostImpl::first_address(SocketAddr::Family family) const noexcept {
  for (const auto& a : addrs_) {
    if (a.family() == family) return a;
  }
  return std::nullopt;
}

P2PResult<void> HostImpl::set_addresses(std::vector<SocketAddr> addrs) {
  if (addrs.empty()) return fail(P2PError::invalid_configuration(fmt::format("host {}: no address", name_)));
  for (auto& a : addrs) {
    a = ip_key(a.canonical());
    if (!valid_interface_address(a)) {
      return fail(P2PError::invalid_configuration(fmt::format("host {}: bad address {}", name_, a.ip_string())));
    }
    const auto it = segment_->owners.find(a);
    if (it != segment_->owners.end() && it->second.host != this) {
      return fail(P2PError::invalid_configuration(
          fmt::format("host {}: address {} already used on {}", name_, a.ip_string(), segment_->name_)));
    }
  }
  for (const auto& a : addrs_) segment_->owners.erase(a);
  addrs_ = std::move(addrs);
  for (const auto& a : addrs_) segment_->owners[a] = Owner{this, nullptr};
  return {};
}

RouterImpl::RouterImpl(Network::Impl& n, std::string nm, SegmentImpl& parent, SocketAddr pub, NatConfig c, LinkParams l)
    : net_(&n),
      name_(std::move(nm)),
      parent_(&parent),
      public_(pub),
      lan_(name_ + "/lan", this),
      link_(l, env::derive_seed(n.rt->seed(), "link/" + name_)),
      nat_(c),
      rng_(env::derive_seed(n.rt->seed(), "nat/" + name_)),
      last_port_(static_cast<std::uint16_t>(c.port_min - 1)) {}

bool RouterImpl::expired(const Mapping& m) const noexcept {
  return net_->rt->now() - m.last_out >= timeout(m.key.proto);
}

void RouterImpl::flush() {
  // The ports in use stay unavailable for a while, so every flow gets a new external port (what a
  // rebinding NAT does); they return to use when nothing else is free.
  for (const auto& [port_key, index] : by_port_) retired_.insert(port_key);
  maps_.clear();
  free_maps_.clear();
  by_key_.clear();
  by_port_.clear();
}

std::size_t RouterImpl::mapping_count() const noexcept {
  std::size_t n = 0;
  for (const auto& m : maps_) {
    if (m.live && !expired(m)) ++n;
  }
  return n;
}

void RouterImpl::remove(std::uint32_t index) {
  auto& m = maps_[index];
  by_key_.erase(m.key);
  by_port_.erase((static_cast<std::uint32_t>(m.key.proto) << 16) | m.external);
  m = Mapping{};
  free_maps_.push_back(index);
}

std::size_t RouterImpl::purge_expired() {
  std::size_t n = 0;
  for (std::uint32_t i = 0; i < maps_.size(); ++i) {
    if (maps_[i].live && expired(maps_[i])) {
      remove(i);
      ++stats_.mappings_expired;
      ++n;
    }
  }
  return n;
}

bool RouterImpl::port_taken(Proto p, std::uint16_t port) const {
  const std::uint32_t k = (static_cast<std::uint32_t>(p) << 16) | port;
  return by_port_.contains(k) || retired_.contains(k);
}

std::optional<std::uint16_t> RouterImpl::allocate_port(Proto p, std::uint16_t internal_port) {
  const std::uint32_t lo = nat_.port_min;
  const std::uint32_t hi = std::max<std::uint32_t>(nat_.port_max, lo);
  const std::uint32_t span = hi - lo + 1;
  auto scan_from = [&](std::uint32_t start) -> std::optional<std::uint16_t> {
    for (std::uint32_t i = 0; i < span; ++i) {
      const auto port = static_cast<std::uint16_t>(lo + (start - lo + i) % span);
      if (!port_taken(p, port)) return port;
    }
    return std::nullopt;
  };
  auto pick = [&]() -> std::optional<std::uint16_t> {
    switch (nat_.ports) {
      case NatPorts::preserve: {
        if (internal_port >= lo && internal_port <= hi && !port_taken(p, internal_port)) return internal_port;
        const std::uint32_t from = (internal_port >= lo && internal_port <= hi) ? internal_port + 1U : lo;
        return scan_from(from > hi ? lo : from);
      }
      case NatPorts::sequential: {
        const std::uint32_t from = static_cast<std::uint32_t>(last_port_) + 1;
        return scan_from(from < lo || from > hi ? lo : from);
      }
      case NatPorts::random: {
        for (int i = 0; i < 64; ++i) {
          const auto port = static_cast<std::uint16_t>(lo + rng_.uniform(span));
          if (!port_taken(p, port)) return port;
        }
        return scan_from(lo + static_cast<std::uint32_t>(rng_.uniform(span)));
      }
    }
    return std::nullopt;
  };
  auto port = pick();
  if (!port && !retired_.empty()) {
    retired_.clear();
    port = pick();
  }
  if (port) last_port_ = *port;
  return port;
}

std::optional<std::uint16_t> RouterImpl::outbound(Proto p, const SocketAddr& src, const SocketAddr& dst) {
  MapKey key{p, src, {}};
  switch (nat_.mapping) {
    case NatMapping::endpoint_independent:
      break;
    case NatMapping::address_dependent:
      key.dest = ip_key(dst);
      break;
    case NatMapping::address_and_port_dependent:
      key.dest = dst;
      break;
  }
  std::uint32_t index = 0;
  auto it = by_key_.find(key);
  if (it != by_key_.end() && expired(maps_[it->second])) {
    remove(it->second);
    ++stats_.mappings_expired;
    it = by_key_.end();
  }
  if (it != by_key_.end()) {
    index = it->second;
  } else {
    if (by_key_.size() >= nat_.mappings_max && purge_expired() == 0) {
      ++stats_.table_full;
      return std::nullopt;
    }
    const auto port = allocate_port(p, src.port());
    if (!port) {
      ++stats_.table_full;
      return std::nullopt;
    }
    if (!free_maps_.empty()) {
      index = free_maps_.back();
      free_maps_.pop_back();
    } else {
      index = static_cast<std::uint32_t>(maps_.size());
      maps_.emplace_back();
    }
    auto& m = maps_[index];
    m.key = key;
    m.external = *port;
    m.live = true;
    by_key_.emplace(key, index);
    by_port_.emplace((static_cast<std::uint32_t>(p) << 16) | *port, index);
    ++stats_.mappings_created;
  }
  auto& m = maps_[index];
  // Only outbound traffic refreshes a mapping (RFC 4787 REQ-6 allows inbound refresh; common NATs
  // and this model do not), so a peer that only receives must keep sending to stay reachable.
  m.last_out = net_->rt->now();
  if (nat_.filtering == NatFiltering::address_and_port) m.peers.insert(dst);
  if (nat_.filtering == NatFiltering::address) m.peer_ips.insert(ip_key(dst));
  return m.external;
}

Mapping* RouterImpl::inbound(Proto p, std::uint16_t port) {
  const auto it = by_port_.find((static_cast<std::uint32_t>(p) << 16) | port);
  if (it == by_port_.end()) return nullptr;
  if (expired(maps_[it->second])) {
    remove(it->second);
    ++stats_.mappings_expired;
    return nullptr;
  }
  return &maps_[it->second];
}

}  // namespace detail

// ---- the network -------------------------------------------------------------------------------------

Network::Impl::Impl(env::SimRuntime& r, Network& n)
    : rt(&r), self(&n), internet("internet", nullptr), alive(std::make_shared<Impl*>(this)) {}

Network::Impl::~Impl() {
  alive.reset();
  // Packets in flight hold events that name this network; they must never run.
  for (auto& f : flights) {
    if (f.live) rt->cancel(f.event);
  }
}

std::uint32_t Network::Impl::new_flight() {
  std::uint32_t i = 0;
  if (!free_flights.empty()) {
    i = free_flights.back();
    free_flights.pop_back();
  } else {
    i = static_cast<std::uint32_t>(flights.size());
    flights.emplace_back();
  }
  auto& f = flights[i];
  f.live = true;
  f.data = take_buffer();
  return i;
}

void Network::Impl::release(std::uint32_t i) {
  auto& f = flights[i];
  give_buffer(std::move(f.data));
  f.data = {};
  f.sender.reset();
  f.live = false;
  free_flights.push_back(i);
}

std::vector<std::byte> Network::Impl::take_buffer() {
  if (buffer_pool.empty()) return {};
  auto b = std::move(buffer_pool.back());
  buffer_pool.pop_back();
  b.clear();
  return b;
}

void Network::Impl::give_buffer(std::vector<std::byte>&& b) {
  if (b.capacity() == 0 || buffer_pool.size() >= detail::kBufferPoolMax) return;
  buffer_pool.push_back(std::move(b));
}

void Network::Impl::send_udp(HostImpl& host, const SocketAddr& src, const SocketAddr& dst, ByteView payload,
                             env::Ecn ecn) {
  ++stats.packets_sent;
  const auto i = new_flight();
  auto& f = flights[i];
  f.src = src;
  f.dst = dst;
  f.data.assign(payload.begin(), payload.end());
  f.origin = &host;
  f.ecn = ecn;
  f.stream = false;
  f.sent_at = rt->now();
  cross(i, host.link_, host.link_.up, Hop::segment, host.segment_);
}

void Network::Impl::send_stream(HostImpl& host, const SocketAddr& src, const SocketAddr& dst, detail::StreamKind kind,
                                std::uint64_t seq, ByteView payload, std::shared_ptr<TcpStream::Impl> sender) {
  const auto i = new_flight();
  auto& f = flights[i];
  f.src = src;
  f.dst = dst;
  f.data.assign(payload.begin(), payload.end());
  f.origin = &host;
  f.ecn = env::Ecn::not_ect;
  f.stream = true;
  f.kind = kind;
  f.seq = seq;
  f.sender = std::move(sender);
  f.sent_at = rt->now();
  cross(i, host.link_, host.link_.up, Hop::segment, host.segment_);
}

void Network::Impl::drop(std::uint32_t i, std::uint64_t NetStats::*counter) {
  ++stats.packets_dropped;
  ++(stats.*counter);
  auto& f = flights[i];
  auto sender = std::move(f.sender);
  const auto seq = f.seq;
  const bool reliable = f.stream && f.kind != detail::StreamKind::rst;
  release(i);
  // A stream packet is not lost: its sender resends it after a retransmission timeout.
  if (reliable && sender) stream_dropped(std::move(sender), seq);
}

void Network::Impl::cross(std::uint32_t i, LinkImpl& link, LinkDir& dir, Hop hop, void* target) {
  auto& f = flights[i];
  const auto& p = link.params;
  if (!p.up) return drop(i, &NetStats::dropped_link_down);
  if (drop_filter) {
    const Packet pkt{f.src, f.dst, f.data.size(), f.stream};
    if (drop_filter(pkt)) return drop(i, &NetStats::dropped_fault);
  }
  if (p.loss > 0.0 && link.rng.chance(p.loss)) return drop(i, &NetStats::dropped_loss);
  const std::size_t wire = f.data.size() + header_bytes(f.dst);
  // Streams clamp their segment size to the path (as TCP's MSS does), so the MTU applies to datagrams.
  if (!f.stream && wire > p.mtu) return drop(i, &NetStats::dropped_mtu);
  const TimePoint now = rt->now();
  TimePoint departure = now;
  if (p.bandwidth_bps > 0) {
    const TimePoint start = std::max(now, dir.busy_until);
    // Bytes still waiting for (or in) serialisation, from how long the link stays busy.
    __extension__ using U128 = unsigned __int128;
    const auto backlog_ns = static_cast<U128>((start - now).count());
    const auto backlog = static_cast<std::uint64_t>(backlog_ns * p.bandwidth_bps / 8'000'000'000ULL);
    if (backlog + wire > p.queue_bytes) return drop(i, &NetStats::dropped_queue);
    const auto ser = static_cast<std::int64_t>(static_cast<U128>(wire) * 8'000'000'000ULL / p.bandwidth_bps);
    dir.busy_until = start + Duration(ser);
    departure = dir.busy_until;
  }
  TimePoint arrival = departure + p.latency;
  if (p.jitter.count() > 0) {
    arrival += Duration(static_cast<std::int64_t>(link.rng.uniform(static_cast<std::uint64_t>(p.jitter.count()) + 1)));
  }
  if (p.reorder > 0.0 && link.rng.chance(p.reorder)) {
    // Held back: later packets may overtake it, and it does not hold them back.
    arrival = std::max(arrival, dir.last_arrival) + p.reorder_delay;
  } else {
    // Jitter alone never reorders: a packet arrives no earlier than the one before it on this link.
    arrival = std::max(arrival, dir.last_arrival);
    dir.last_arrival = arrival;
  }
  f.hop = hop;
  f.target = target;
  f.event = rt->schedule_at(arrival, [this, i] { arrive(i); });
}

void Network::Impl::arrive(std::uint32_t i) {
  auto& f = flights[i];
  switch (f.hop) {
    case Hop::segment:
      return route(*static_cast<SegmentImpl*>(f.target), i);
    case Hop::host:
      return deliver(*static_cast<HostImpl*>(f.target), i);
    case Hop::router_in:
      return router_in(*static_cast<RouterImpl*>(f.target), i);
  }
}

void Network::Impl::route(SegmentImpl& seg, std::uint32_t i) {
  auto& f = flights[i];
  const auto it = seg.owners.find(detail::ip_key(f.dst));
  if (it != seg.owners.end()) {
    if (it->second.host != nullptr) {
      auto& h = *it->second.host;
      return cross(i, h.link_, h.link_.down, Hop::host, &h);
    }
    auto& r = *it->second.router;
    return cross(i, r.link_, r.link_.down, Hop::router_in, &r);
  }
  if (seg.router_ == nullptr) return drop(i, &NetStats::dropped_no_route);
  if (detail::ip_key(f.dst) == detail::ip_key(seg.router_->public_)) return hairpin(*seg.router_, i);
  router_out(*seg.router_, i);
}

void Network::Impl::router_out(RouterImpl& r, std::uint32_t i) {
  auto& f = flights[i];
  if (!f.stream && r.nat_.udp_blocked) {
    ++r.stats_.blocked_udp;
    return drop(i, &NetStats::dropped_nat);
  }
  if (f.src.family() != r.public_.family()) return drop(i, &NetStats::dropped_no_route);
  const auto port = r.outbound(f.stream ? Proto::stream : Proto::udp, f.src, f.dst);
  if (!port) return drop(i, &NetStats::dropped_nat);
  f.src = r.public_.with_port(*port);
  ++r.stats_.translated_out;
  cross(i, r.link_, r.link_.up, Hop::segment, r.parent_);
}

void Network::Impl::router_in(RouterImpl& r, std::uint32_t i) {
  auto& f = flights[i];
  if (!f.stream && r.nat_.udp_blocked) {
    ++r.stats_.blocked_udp;
    return drop(i, &NetStats::dropped_nat);
  }
  const Mapping* m = r.inbound(f.stream ? Proto::stream : Proto::udp, f.dst.port());
  if (m == nullptr) {
    ++r.stats_.unmapped_in;
    return drop(i, &NetStats::dropped_nat);
  }
  const bool allowed = r.nat_.filtering == NatFiltering::none ||
                       (r.nat_.filtering == NatFiltering::address && m->peer_ips.contains(detail::ip_key(f.src))) ||
                       (r.nat_.filtering == NatFiltering::address_and_port && m->peers.contains(f.src));
  if (!allowed) {
    ++r.stats_.filtered_in;
    return drop(i, &NetStats::dropped_nat);
  }
  f.dst = m->key.internal;
  ++r.stats_.translated_in;
  route(r.lan_, i);
}

void Network::Impl::hairpin(RouterImpl& r, std::uint32_t i) {
  auto& f = flights[i];
  if (!r.nat_.hairpin) return drop(i, &NetStats::dropped_nat);
  if (!f.stream && r.nat_.udp_blocked) {
    ++r.stats_.blocked_udp;
    return drop(i, &NetStats::dropped_nat);
  }
  // The packet turns around inside the router: out through the NAT (the source is translated and
  // maps like any outbound flow), then in through it as if it had come from outside.
  const auto proto = f.stream ? Proto::stream : Proto::udp;
  const auto port = r.outbound(proto, f.src, f.dst);
  if (!port) return drop(i, &NetStats::dropped_nat);
  f.src = r.public_.with_port(*port);
  ++r.stats_.translated_out;
  ++r.stats_.hairpinned;
  router_in(r, i);
}

bool Network::Impl::partitioned(const Host* a, const Host* b) const {
  for (const auto& p : partitions) {
    if ((p.a.contains(a) && p.b.contains(b)) || (p.b.contains(a) && p.a.contains(b))) return true;
  }
  return false;
}

namespace {
std::uint64_t addr_word(const SocketAddr& a) noexcept { return std::hash<SocketAddr>{}(a); }

std::uint64_t payload_hash(ByteView data) noexcept {
  // Eight bytes at a time, multiply-xorshift: cheap, and any changed byte changes the result.
  std::uint64_t h = 0x243f6a8885a308d3ULL ^ data.size();
  std::size_t i = 0;
  for (; i + 8 <= data.size(); i += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, data.data() + i, 8);
    h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 32;
  }
  std::uint64_t tail = 0;
  std::memcpy(&tail, data.data() + i, data.size() - i);
  h = (h ^ tail) * 0x9e3779b97f4a7c15ULL;
  return h ^ (h >> 29);
}
}  // namespace

void Network::Impl::trace_delivery(const SocketAddr& src, const SocketAddr& dst, std::size_t size,
                                   std::uint64_t extra) {
  if (!trace) return;
  const std::uint64_t words[] = {addr_word(src), addr_word(dst), size, extra};
  rt->trace_words(words);
}

void Network::Impl::deliver(HostImpl& h, std::uint32_t i) {
  auto& f = flights[i];
  // Partitions are decided here, at the destination host: only now are both the original source
  // and the final destination known (NATs rewrite addresses on the way).
  if (!partitions.empty() && partitioned(f.origin, &h)) return drop(i, &NetStats::dropped_partition);
  if (f.stream) {
    detail::StreamPacket p{f.src, f.dst, f.kind, f.seq, std::move(f.data), std::move(f.sender), f.sent_at};
    f.data = {};
    release(i);
    stream_arrive(h, std::move(p));
    return;
  }
  auto* s = h.udp.find(f.dst);
  if (s == nullptr || !s->open) return drop(i, &NetStats::dropped_no_socket);
  if (s->queue.size() >= UdpSocket::kRecvQueueMax) return drop(i, &NetStats::dropped_receive_queue);
  trace_delivery(f.src, f.dst, f.data.size(), payload_hash(f.data));
  udp_arrive(*s, i);
}

// ---- Network ---------------------------------------------------------------------------------------

Network::Network(env::SimRuntime& rt) : impl_(std::make_unique<Impl>(rt, *this)) {}
Network::~Network() = default;

env::SimRuntime& Network::runtime() const noexcept { return *impl_->rt; }
Segment& Network::internet() noexcept { return impl_->internet; }

namespace {
P2PResult<std::vector<SocketAddr>> check_addresses(const std::string& who, SegmentImpl& seg,
                                                   std::vector<SocketAddr> addrs) {
  if (addrs.empty()) return fail(P2PError::invalid_configuration(fmt::format("{}: no address", who)));
  for (auto& a : addrs) {
    a = detail::ip_key(a.canonical());
    if (!valid_interface_address(a)) {
      return fail(P2PError::invalid_configuration(fmt::format("{}: bad address {}", who, a.ip_string())));
    }
    if (seg.owners.contains(a)) {
      return fail(P2PError::invalid_configuration(
          fmt::format("{}: address {} already used on {}", who, a.ip_string(), seg.name_)));
    }
  }
  for (std::size_t i = 0; i < addrs.size(); ++i) {
    for (std::size_t j = i + 1; j < addrs.size(); ++j) {
      if (addrs[i] == addrs[j]) {
        return fail(P2PError::invalid_configuration(fmt::format("{}: address {} given twice", who, addrs[i])));
      }
    }
  }
  return addrs;
}
}  // namespace

P2PResult<Host*> Network::add_host(std::string name, Segment& where, std::vector<SocketAddr> addrs, LinkParams link) {
  auto& seg = static_cast<SegmentImpl&>(where);
  if (name.empty()) return fail(P2PError::invalid_configuration("host without a name"));
  if (impl_->host_by_name.contains(name) || impl_->router_by_name.contains(name)) {
    return fail(P2PError::invalid_configuration(fmt::format("duplicate name {}", name)));
  }
  auto checked = check_addresses("host " + name, seg, std::move(addrs));
  if (!checked) return fail(checked.error());
  auto h = std::make_unique<HostImpl>(*this, name, seg, std::move(*checked), link);
  auto* raw = h.get();
  for (const auto& a : raw->addrs_) seg.owners[a] = Owner{raw, nullptr};
  impl_->host_by_name.emplace(std::move(name), raw);
  impl_->hosts.push_back(std::move(h));
  return raw;
}

P2PResult<Router*> Network::add_router(std::string name, Segment& where, SocketAddr public_addr, NatConfig nat,
                                       LinkParams link) {
  auto& seg = static_cast<SegmentImpl&>(where);
  if (name.empty()) return fail(P2PError::invalid_configuration("router without a name"));
  if (impl_->host_by_name.contains(name) || impl_->router_by_name.contains(name)) {
    return fail(P2PError::invalid_configuration(fmt::format("duplicate name {}", name)));
  }
  if (nat.port_min == 0 || nat.port_min > nat.port_max) {
    return fail(P2PError::invalid_configuration(fmt::format("router {}: bad port range", name)));
  }
  auto checked = check_addresses("router " + name, seg, {public_addr});
  if (!checked) return fail(checked.error());
  auto r = std::make_unique<RouterImpl>(*impl_, name, seg, checked->front(), nat, link);
  auto* raw = r.get();
  seg.owners[raw->public_] = Owner{nullptr, raw};
  impl_->router_by_name.emplace(std::move(name), raw);
  impl_->routers.push_back(std::move(r));
  return raw;
}

Host* Network::host(std::string_view name) const noexcept {
  const auto it = impl_->host_by_name.find(name);
  return it == impl_->host_by_name.end() ? nullptr : it->second;
}

Router* Network::router(std::string_view name) const noexcept {
  const auto it = impl_->router_by_name.find(name);
  return it == impl_->router_by_name.end() ? nullptr : it->second;
}

void Network::set_drop_filter(std::function<bool(const Packet&)> filter) { impl_->drop_filter = std::move(filter); }

void Network::partition(std::vector<Host*> a, std::vector<Host*> b) {
  Impl::Partition p;
  p.a.insert(a.begin(), a.end());
  p.b.insert(b.begin(), b.end());
  impl_->partitions.push_back(std::move(p));
}

void Network::heal() { impl_->partitions.clear(); }

void Network::add_name(std::string name, SocketAddr addr) { impl_->names[std::move(name)] = addr; }

std::optional<SocketAddr> Network::resolve(std::string_view name) const {
  const auto it = impl_->names.find(name);
  if (it == impl_->names.end()) return std::nullopt;
  return it->second;
}

const NetStats& Network::stats() const noexcept { return impl_->stats; }
void Network::set_trace_packets(bool on) noexcept { impl_->trace = on; }

}  // namespace moosicbox::p2p::simnet
