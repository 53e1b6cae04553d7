// SPDX-License-Identifier: MIT OR Apache-2.0
// world.cpp: sim::World and its implementation: nodes and the name directory, seeds, routes (direct
// where the NATs allow, otherwise through the best relay), the per-link timing model (latency,
// jitter, loss as retransmission time, bandwidth as serialisation and queueing), reactions to
// topology changes, crashes, and the test helpers. Layer: sim. Single-threaded.
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "moosicbox/p2p/core/secret_key.hpp"
#include "moosicbox/p2p/env/asio_env.hpp"
#include "sim/internal.hpp"

namespace moosicbox::p2p::sim {

std::string_view to_string(PathKind kind) noexcept { return kind == PathKind::direct ? "direct" : "relayed"; }

// ---- seeds ------------------------------------------------------------------------------------------

P2PResult<std::optional<std::uint64_t>> seed_from_env() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): read once when a world is created.
  const char* text = std::getenv("P2P_SIM_SEED");
  if (text == nullptr) return std::optional<std::uint64_t>{};
  const std::string_view value(text);
  std::uint64_t seed = 0;
  const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seed);
  if (value.empty() || ec != std::errc() || ptr != value.data() + value.size()) {
    return fail(
        P2PError::invalid_configuration(fmt::format("P2P_SIM_SEED='{}': not a decimal unsigned 64-bit number", value)));
  }
  return std::optional<std::uint64_t>{seed};
}

P2PResult<std::uint64_t> resolve_seed(std::optional<std::uint64_t> given) {
  if (given) return *given;
  auto from_env = seed_from_env();
  if (!from_env) return fail(from_env.error());
  if (*from_env) return **from_env;
  // The only draw from the OS in the simulator: the root seed of a run nobody asked to reproduce.
  env::OsRandom os;
  std::uint64_t seed = 0;
  os.fill_random(std::as_writable_bytes(std::span(&seed, 1)));
  std::fprintf(stderr, "sim: random seed, reproduce with P2P_SIM_SEED=%llu\n", static_cast<unsigned long long>(seed));
  return seed;
}

namespace detail {

// ---- the world's state ----------------------------------------------------------------------------------

WorldImpl::WorldImpl(World& w, std::uint64_t seed, NetworkConfig cfg, SimLimits lim)
    : world(&w), config(std::move(cfg)), limits(lim), rt(seed) {
  MOOSICBOX_P2P_ASSERT(config.validate().has_value());
  MOOSICBOX_P2P_ASSERT(limits.max_streams > 0 && limits.stream_window > 0 && limits.accept_backlog > 0);
  graph.set_change_hook([this] { on_topology_change(); });
}

WorldImpl::~WorldImpl() {
  shutting_down = true;
  graph.set_change_hook({});
}

NodeState* WorldImpl::find(const NodeId& id) const {
  const auto it = by_id.find(id);
  return it == by_id.end() ? nullptr : it->second;
}

LinkState& WorldImpl::link_state(NetworkGraph::LinkId link) {
  if (links.size() <= link) links.resize(graph.link_slot_count());
  auto& state = links[link];
  if (!state.seeded) {
    // Each link's stream is named by its endpoints, so adding unrelated links or nodes never
    // changes what this link draws.
    const auto* from = graph.get_node(graph.link_from(link));
    const auto* to = graph.get_node(graph.link_to(link));
    MOOSICBOX_P2P_ASSERT(from != nullptr && to != nullptr);
    state.rng = env::Rng(env::derive_seed(rt.seed(), fmt::format("link:{}>{}", from->name, to->name)));
    state.seeded = true;
  }
  return state;
}

namespace {

// losses draws how many times the worst of `packets` packets is lost on a link with loss rate `p`:
// each packet needs a geometric number of transmissions, and a frame is complete when its last
// packet is. For one packet this is a plain geometric draw; for many, the maximum is drawn in one
// step from its distribution P(max <= m) = (1 - p^(m+1))^n.
std::uint32_t losses(env::Rng& rng, double p, std::size_t packets) {
  if (p <= 0.0) return 0;
  if (packets <= 1) {
    std::uint32_t k = 0;
    while (k < kLossesMax && rng.chance(p)) ++k;
    return k;
  }
  const double u = rng.next_double();
  const double x = 1.0 - std::pow(u, 1.0 / static_cast<double>(packets));
  if (x <= 0.0) return kLossesMax;
  const double m = std::ceil(std::log(x) / std::log(p)) - 1.0;
  if (m <= 0.0) return 0;
  return m >= kLossesMax ? kLossesMax : static_cast<std::uint32_t>(m);
}

Duration serialisation(std::size_t wire_bytes, std::uint64_t bandwidth, double loss) {
  if (bandwidth == 0) return Duration::zero();
  // Retransmitted packets use the link too: on average 1 / (1 - p) transmissions per packet.
  const double seconds = static_cast<double>(wire_bytes) / static_cast<double>(bandwidth) / (1.0 - loss);
  return Duration(static_cast<std::int64_t>(std::ceil(seconds * 1e9)));
}

}  // namespace

TimePoint WorldImpl::transmit_time(const std::vector<Hop>& hops, std::size_t wire_bytes, Duration rto) {
  std::size_t packets = (wire_bytes + kPacketPayloadMax - 1) / kPacketPayloadMax;
  if (packets == 0) packets = 1;
  // A fluid pipeline: the frame's first bit enters each link when it is free and the previous link
  // delivered its first bit; its last bit cannot leave a link before it arrived there. Loss delays
  // the frame by one retransmission timeout per lost transmission of its worst packet.
  TimePoint first = rt.now();
  TimePoint last = rt.now();
  for (const auto& hop : hops) {
    const auto& info = graph.link_info(hop.link);
    auto& state = link_state(hop.link);
    first += hop.extra;
    last += hop.extra;
    Duration latency = info.latency;
    if (info.jitter > Duration::zero()) {
      latency +=
          Duration(static_cast<std::int64_t>(state.rng.uniform(static_cast<std::uint64_t>(info.jitter.count()) + 1)));
    }
    if (info.bandwidth > 0) {
      const auto start = std::max(first, state.busy_until);
      const auto done = std::max(start + serialisation(wire_bytes, info.bandwidth, info.packet_loss), last);
      state.busy_until = done;
      first = start;
      last = done;
    }
    const auto lost = losses(state.rng, info.packet_loss, packets);
    if (lost > 0) {
      first += rto * lost;
      last += rto * lost;
    }
    first += latency;
    last += latency;
  }
  return last;
}

std::optional<Route> WorldImpl::compute_route(const NodeState& a, const NodeState& b, Reach reach) const {
  const auto* ia = graph.get_node(a.id);
  const auto* ib = graph.get_node(b.id);
  if (ia == nullptr || ib == nullptr) return std::nullopt;
  if (reach == Reach::current && (!ia->online || !ib->online)) return std::nullopt;

  auto finish = [](Route r) {
    r.rtt = r.latency[0] + r.latency[1];
    r.rto = 2 * r.rtt + kAckDelay;
    return r;
  };
  auto hops_of = [](const NetworkGraph::Path& p, Duration extra_first = {}) {
    std::vector<Hop> hops;
    hops.reserve(p.links.size());
    for (std::size_t i = 0; i < p.links.size(); ++i) hops.push_back(Hop{p.links[i], i == 0 ? extra_first : Duration{}});
    return hops;
  };

  if (direct_connection_possible(ia->nat, ib->nat)) {
    auto fwd = graph.find_lowest_latency_path(a.id, b.id, reach);
    auto rev = fwd ? graph.find_lowest_latency_path(b.id, a.id, reach) : std::nullopt;
    if (fwd && rev) {
      Route r;
      r.kind = PathKind::direct;
      r.hops[0] = hops_of(*fwd);
      r.hops[1] = hops_of(*rev);
      r.latency[0] = fwd->latency;
      r.latency[1] = rev->latency;
      // Hole punching costs one more round trip before the handshake gets through.
      if (hole_punch_needed(ib->nat)) r.punch = fwd->latency + rev->latency;
      return finish(std::move(r));
    }
  }

  // Through a relay: both ends hold outbound connections to it, so NATs do not matter. The relay
  // with the lowest round trip wins; ties go to the earliest added.
  const auto from_a = graph.shortest_paths(a.id, reach);
  const auto to_b = graph.shortest_paths(b.id, reach, true);
  const auto from_b = graph.shortest_paths(b.id, reach);
  const auto to_a = graph.shortest_paths(a.id, reach, true);
  std::optional<NodeId> best;
  Duration best_rtt = Duration::max();
  for (const auto& node : nodes) {
    if (node->removed || node->id == a.id || node->id == b.id) continue;
    const auto* info = graph.get_node(node->id);
    if (info == nullptr || !info->relay || (reach == Reach::current && (!info->online || node->crashed))) continue;
    const auto l1 = from_a.latency_to(node->id);
    const auto l2 = to_b.latency_to(node->id);
    const auto l3 = from_b.latency_to(node->id);
    const auto l4 = to_a.latency_to(node->id);
    if (!l1 || !l2 || !l3 || !l4) continue;
    const auto rtt = *l1 + *l2 + *l3 + *l4 + 2 * info->relay_delay;
    if (rtt < best_rtt) {
      best_rtt = rtt;
      best = node->id;
    }
  }
  if (!best) return std::nullopt;
  const auto delay = graph.get_node(*best)->relay_delay;
  const auto p1 = from_a.path_to(*best);
  const auto p2 = to_b.path_to(*best);
  const auto p3 = from_b.path_to(*best);
  const auto p4 = to_a.path_to(*best);
  MOOSICBOX_P2P_ASSERT(p1 && p2 && p3 && p4);
  Route r;
  r.kind = PathKind::relayed;
  r.relay = best;
  r.hops[0] = hops_of(*p1);
  auto second = hops_of(*p2, delay);
  r.hops[0].insert(r.hops[0].end(), second.begin(), second.end());
  r.hops[1] = hops_of(*p3);
  auto fourth = hops_of(*p4, delay);
  r.hops[1].insert(r.hops[1].end(), fourth.begin(), fourth.end());
  r.latency[0] = p1->latency + p2->latency + delay;
  r.latency[1] = p3->latency + p4->latency + delay;
  return finish(std::move(r));
}

bool WorldImpl::route_valid(const Route& r, const NodeState& a, const NodeState& b) const {
  for (const auto& hops : r.hops) {
    for (const auto& hop : hops) {
      if (!graph.link_usable(hop.link)) return false;
    }
  }
  const auto* ia = graph.get_node(a.id);
  const auto* ib = graph.get_node(b.id);
  if (ia == nullptr || ib == nullptr) return false;
  if (r.kind == PathKind::direct) return direct_connection_possible(ia->nat, ib->nat);
  const auto* relay = graph.get_node(*r.relay);
  const auto* relay_state = find(*r.relay);
  return relay != nullptr && relay->relay && relay_state != nullptr && !relay_state->crashed;
}

void WorldImpl::on_topology_change() {
  if (shutting_down) return;
  if (links.size() < graph.link_slot_count()) links.resize(graph.link_slot_count());
  // Index loop: revalidation never adds or removes pairs (no handle is dropped here), but a copy
  // of the pointers keeps this obviously safe.
  const auto snapshot = pairs;
  for (auto* p : snapshot) p->revalidate();
}

void WorldImpl::register_pair(ConnPair& p) {
  p.registry_index = pairs.size();
  pairs.push_back(&p);
}

void WorldImpl::unregister_pair(ConnPair& p) noexcept {
  MOOSICBOX_P2P_ASSERT(p.registry_index < pairs.size() && pairs[p.registry_index] == &p);
  pairs[p.registry_index] = pairs.back();
  pairs[p.registry_index]->registry_index = p.registry_index;
  pairs.pop_back();
}

}  // namespace detail

// ---- World ---------------------------------------------------------------------------------------------

P2PResult<std::unique_ptr<World>> World::create(WorldOptions options) {
  auto seed = resolve_seed(options.seed);
  if (!seed) return fail(seed.error());
  NetworkConfig config;
  if (options.config) {
    config = *options.config;
  } else {
    auto from_env = NetworkConfig::from_env();
    if (!from_env) return fail(from_env.error());
    config = *from_env;
  }
  if (auto ok = config.validate(); !ok) return fail(ok.error());
  const auto& l = options.limits;
  if (l.max_streams == 0 || l.stream_window == 0 || l.accept_backlog == 0 || l.message_window == 0) {
    return fail(P2PError::invalid_configuration("simulator limits must be positive"));
  }
  return std::make_unique<World>(*seed, std::move(config), options.limits);
}

World::World(std::uint64_t seed, NetworkConfig config, SimLimits limits)
    : impl_(std::make_unique<detail::WorldImpl>(*this, seed, std::move(config), limits)) {
  impl_->rt.trace(fmt::format("world seed={}", seed));
}

World::~World() = default;

std::uint64_t World::seed() const noexcept { return impl_->rt.seed(); }
TimePoint World::now() const noexcept { return impl_->rt.now(); }
env::SimRuntime& World::runtime() noexcept { return impl_->rt; }
NetworkGraph& World::graph() noexcept { return impl_->graph; }
const NetworkConfig& World::config() const noexcept { return impl_->config; }
const SimLimits& World::limits() const noexcept { return impl_->limits; }
std::size_t World::node_count() const noexcept { return impl_->by_id.size(); }
std::size_t World::connection_count() const noexcept { return impl_->pairs.size(); }
std::uint64_t World::messages_delivered() const noexcept { return impl_->delivered; }

P2PResult<SimulatorP2P> World::add_node(std::string_view name, NodeOptions options) {
  auto& w = *impl_;
  if (name.empty()) return fail(P2PError::invalid_configuration("a node needs a name"));
  if (w.graph.find_node_by_name(name) != nullptr || w.directory.contains(std::string(name))) {
    return fail(P2PError::invalid_configuration(fmt::format("node name '{}' is already used", name)));
  }
  env::SimEnv node_env(w.rt, name);
  SecretKey key = options.key                               ? *options.key
                  : options.identity == Identity::from_seed ? SecretKey::generate(node_env)
                                                            : test_secret_key(name);
  const NodeId id = key.public_key();
  const NodeInfo info{.id = id,
                      .name = std::string(name),
                      .online = true,
                      .nat = options.relay ? NatType::none : options.nat,
                      .relay = options.relay,
                      .relay_delay = options.relay_delay};
  if (auto ok = w.graph.add_node(info); !ok) return fail(ok.error());
  auto node = std::make_shared<detail::NodeState>(w, id, std::string(name), std::move(node_env));
  w.by_id.emplace(id, node.get());
  w.directory.emplace(std::string(name), id);
  w.nodes.push_back(node);
  w.rt.trace(fmt::format("node {} {} nat={}{}", name, id.fmt_short(), to_string(info.nat), info.relay ? " relay" : ""));
  return detail::Access::system(std::move(node));
}

std::optional<SimulatorP2P> World::node(const NodeId& id) const {
  auto* n = impl_->find(id);
  if (n == nullptr) return std::nullopt;
  return detail::Access::system(n->shared_from_this());
}

std::optional<SimulatorP2P> World::node_by_name(std::string_view name) const {
  const auto* info = impl_->graph.find_node_by_name(name);
  if (info == nullptr) return std::nullopt;
  return node(info->id);
}

P2PResult<void> World::link(const NodeId& a, const NodeId& b, std::optional<LinkInfo> info) {
  return impl_->graph.connect_nodes(a, b, info ? *info : LinkInfo::from_config(impl_->config));
}

P2PResult<void> World::register_peer(std::string_view name, const NodeId& id) {
  if (name.empty()) return fail(P2PError::invalid_configuration("a directory name must not be empty"));
  impl_->directory.insert_or_assign(std::string(name), id);
  impl_->rt.trace(fmt::format("register {} {}", name, id.fmt_short()));
  return {};
}

std::optional<NodeId> World::lookup(std::string_view name) const {
  const auto it = impl_->directory.find(std::string(name));
  if (it == impl_->directory.end()) return std::nullopt;
  return it->second;
}

P2PResult<void> World::crash(const NodeId& id) {
  auto& w = *impl_;
  auto* node = w.find(id);
  if (node == nullptr) return fail(P2PError::node_not_found(id.to_string()));
  if (node->crashed) return {};
  node->crashed = true;
  w.rt.trace(fmt::format("crash {}", node->name));
  // The node's own side ends first, so closing its listener below sends nothing in its name.
  const auto snapshot = w.pairs;
  for (auto* p : snapshot) {
    for (std::uint8_t side = 0; side < 2; ++side) {
      if (p->end[side].node.get() == node) p->crash_side(side);
    }
  }
  if (node->listener != nullptr) node->listener->close("a crash of the node");
  return w.graph.set_online(id, false);
}

P2PResult<void> World::restart(const NodeId& id) {
  auto& w = *impl_;
  auto* node = w.find(id);
  if (node == nullptr) return fail(P2PError::node_not_found(id.to_string()));
  if (!node->crashed) return fail(P2PError::invalid_configuration(fmt::format("node {} is not crashed", node->name)));
  node->crashed = false;
  w.rt.trace(fmt::format("restart {}", node->name));
  return w.graph.set_online(id, true);
}

P2PResult<void> World::remove_node(const NodeId& id) {
  auto& w = *impl_;
  auto* node = w.find(id);
  if (node == nullptr) return fail(P2PError::node_not_found(id.to_string()));
  if (auto ok = crash(id); !ok) return ok;
  node->removed = true;
  w.rt.trace(fmt::format("remove {}", node->name));
  std::erase_if(w.directory, [&](const auto& entry) { return entry.second == id; });
  w.by_id.erase(id);
  return w.graph.remove_node(id);
}

// ---- test helpers ------------------------------------------------------------------------------------

P2PResult<std::vector<SimulatorP2P>> World::setup_connected_peers(std::size_t n) {
  std::vector<SimulatorP2P> peers;
  peers.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto node = add_node(fmt::format("peer{}", i));
    if (!node) return fail(node.error());
    peers.push_back(std::move(*node));
  }
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = i + 1; j < n; ++j) {
      if (auto ok = link(peers[i].local_node_id(), peers[j].local_node_id()); !ok) return fail(ok.error());
    }
  }
  return peers;
}

P2PResult<PartitionedNetwork> World::setup_partitioned_network(std::size_t a, std::size_t b) {
  if (a == 0 || b == 0) return fail(P2PError::invalid_configuration("both groups need at least one node"));
  PartitionedNetwork net;
  for (std::size_t i = 0; i < a + b; ++i) {
    const bool in_a = i < a;
    auto node = add_node(in_a ? fmt::format("a{}", i) : fmt::format("b{}", i - a));
    if (!node) return fail(node.error());
    (in_a ? net.group_a : net.group_b).push_back(std::move(*node));
  }
  std::vector<NodeId> ids_a;
  std::vector<NodeId> ids_b;
  for (const auto& n : net.group_a) ids_a.push_back(n.local_node_id());
  for (const auto& n : net.group_b) ids_b.push_back(n.local_node_id());
  std::vector<NodeId> all = ids_a;
  all.insert(all.end(), ids_b.begin(), ids_b.end());
  for (std::size_t i = 0; i < all.size(); ++i) {
    for (std::size_t j = i + 1; j < all.size(); ++j) {
      if (auto ok = link(all[i], all[j]); !ok) return fail(ok.error());
    }
  }
  auto partition = graph().add_partition(ids_a, ids_b);
  if (!partition) return fail(partition.error());
  net.partition = *partition;
  return net;
}

P2PResult<void> World::inject_latency(const NodeId& from, const NodeId& to, Duration latency) {
  return graph().update_link(from, to, [&](LinkInfo& info) { info.latency = latency; });
}

P2PResult<void> World::inject_packet_loss(const NodeId& from, const NodeId& to, double rate) {
  return graph().update_link(from, to, [&](LinkInfo& info) { info.packet_loss = rate; });
}

// ---- running -----------------------------------------------------------------------------------------

env::SimRuntime::RunResult World::run_until_idle() { return impl_->rt.run_until_idle(); }
env::SimRuntime::RunResult World::run_for(Duration d) { return impl_->rt.run_for(d); }
env::SimRuntime::RunResult World::run_until(TimePoint t) { return impl_->rt.run_until(t); }
env::SimRuntime::RunResult World::run_while(const std::function<bool()>& keep_going, TimePoint limit) {
  return impl_->rt.run_while(keep_going, limit);
}

bool World::drive(const std::shared_ptr<RunState>& state, Duration limit) {
  impl_->rt.run_while([&] { return !state->done; }, now() + limit);
  if (state->error) std::rethrow_exception(state->error);
  return state->done;
}

bool World::run(asio::awaitable<void> task, Duration limit) {
  auto state = std::make_shared<RunState>();
  asio::co_spawn(runtime().executor(), std::move(task), [state](std::exception_ptr e) {
    state->done = true;
    state->error = e;
  });
  return drive(state, limit);
}

void World::trace(std::string_view line) { impl_->rt.trace(line); }
std::uint64_t World::trace_hash() const noexcept { return impl_->rt.trace_hash(); }
void World::set_trace_sink(std::function<void(TimePoint, std::string_view)> sink) {
  impl_->rt.set_trace_sink(std::move(sink));
}

}  // namespace moosicbox::p2p::sim
