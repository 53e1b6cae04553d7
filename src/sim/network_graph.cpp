// SPDX-License-Identifier: MIT OR Apache-2.0
// network_graph.cpp: the simulated topology, its partitions and route searches (breadth first and
// Dijkstra on latency). Ties are broken by insertion order, so routes are a pure function of the
// sequence of changes. Layer: sim. Single-threaded.
#include "moosicbox/p2p/sim/network_graph.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <queue>

#include "moosicbox/p2p/core/assert.hpp"

namespace moosicbox::p2p::sim {

std::string_view to_string(NatType nat) noexcept {
  switch (nat) {
    case NatType::none:
      return "none";
    case NatType::full_cone:
      return "full_cone";
    case NatType::address_restricted:
      return "address_restricted";
    case NatType::port_restricted:
      return "port_restricted";
    case NatType::symmetric:
      return "symmetric";
  }
  return "unknown";
}

bool direct_connection_possible(NatType a, NatType b) noexcept {
  // A symmetric NAT picks a new public port per destination, so its peer cannot know the port to
  // punch towards: that fails when the peer filters on address and port (port-restricted) or is
  // itself symmetric. Every other pairing has at least one predictable, open side.
  const auto hard = [](NatType x, NatType y) { return x == NatType::symmetric && y == NatType::port_restricted; };
  if (a == NatType::symmetric && b == NatType::symmetric) return false;
  return !hard(a, b) && !hard(b, a);
}

bool hole_punch_needed(NatType target) noexcept { return target != NatType::none && target != NatType::full_cone; }

LinkInfo LinkInfo::from_config(const NetworkConfig& config) {
  LinkInfo info;
  info.latency = config.latency;
  info.packet_loss = config.packet_loss;
  return info;
}

P2PResult<void> LinkInfo::validate() const {
  if (latency < Duration::zero()) return fail(P2PError::invalid_configuration("link latency must not be negative"));
  if (jitter < Duration::zero()) return fail(P2PError::invalid_configuration("link jitter must not be negative"));
  if (!(packet_loss >= 0.0 && packet_loss <= 1.0)) {
    return fail(
        P2PError::invalid_configuration(fmt::format("link packet_loss {} is not between 0 and 1", packet_loss)));
  }
  return {};
}

// ---- nodes ---------------------------------------------------------------------------------------------

std::optional<std::uint32_t> NetworkGraph::index_of(const NodeId& id) const {
  const auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  return it->second;
}

void NetworkGraph::changed() {
  ++version_;
  if (hook_) hook_();
}

P2PResult<void> NetworkGraph::add_node(NodeInfo info) {
  if (by_id_.contains(info.id)) {
    return fail(P2PError::invalid_configuration(fmt::format("node {} is already in the graph", info.id.fmt_short())));
  }
  if (info.name.empty()) info.name = info.id.fmt_short();
  if (by_name_.contains(info.name)) {
    return fail(P2PError::invalid_configuration(fmt::format("node name '{}' is already used", info.name)));
  }
  if (info.relay_delay < Duration::zero()) {
    return fail(P2PError::invalid_configuration("relay_delay must not be negative"));
  }
  if (info.relay) info.nat = NatType::none;
  const auto index = static_cast<std::uint32_t>(nodes_.size());
  by_id_.emplace(info.id, index);
  by_name_.emplace(info.name, index);
  nodes_.push_back(Node{std::move(info), false, {}, {}});
  for (auto& p : partitions_) p.side.push_back(0);
  changed();
  return {};
}

P2PResult<void> NetworkGraph::remove_node(const NodeId& id) {
  const auto index = index_of(id);
  if (!index) return fail(P2PError::node_not_found(id.to_string()));
  auto& node = nodes_[*index];
  // Copies: remove_link edits the adjacency lists being walked.
  const auto out = node.out;
  const auto in = node.in;
  for (const auto l : out) remove_link(l);
  for (const auto l : in) remove_link(l);
  node.removed = true;
  by_name_.erase(node.info.name);
  by_id_.erase(id);
  changed();
  return {};
}

const NodeInfo* NetworkGraph::get_node(const NodeId& id) const {
  const auto index = index_of(id);
  return index ? &nodes_[*index].info : nullptr;
}

const NodeInfo* NetworkGraph::find_node_by_name(std::string_view name) const {
  const auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &nodes_[it->second].info;
}

P2PResult<void> NetworkGraph::set_online(const NodeId& id, bool online) {
  const auto index = index_of(id);
  if (!index) return fail(P2PError::node_not_found(id.to_string()));
  auto& info = nodes_[*index].info;
  if (info.online == online) return {};
  info.online = online;
  changed();
  return {};
}

P2PResult<void> NetworkGraph::set_nat(const NodeId& id, NatType nat) {
  const auto index = index_of(id);
  if (!index) return fail(P2PError::node_not_found(id.to_string()));
  auto& info = nodes_[*index].info;
  if (info.relay && nat != NatType::none) {
    return fail(P2PError::invalid_configuration(fmt::format("relay '{}' must have a public address", info.name)));
  }
  info.nat = nat;
  changed();
  return {};
}

P2PResult<void> NetworkGraph::set_relay(const NodeId& id, bool relay, Duration delay) {
  const auto index = index_of(id);
  if (!index) return fail(P2PError::node_not_found(id.to_string()));
  if (delay < Duration::zero()) return fail(P2PError::invalid_configuration("relay_delay must not be negative"));
  auto& info = nodes_[*index].info;
  info.relay = relay;
  info.relay_delay = delay;
  if (relay) info.nat = NatType::none;
  changed();
  return {};
}

std::vector<NodeId> NetworkGraph::nodes() const {
  std::vector<NodeId> out;
  out.reserve(by_id_.size());
  for (const auto& n : nodes_) {
    if (!n.removed) out.push_back(n.info.id);
  }
  return out;
}

// ---- links ---------------------------------------------------------------------------------------------

namespace {
std::uint64_t link_key(std::uint32_t from, std::uint32_t to) { return (static_cast<std::uint64_t>(from) << 32) | to; }
}  // namespace

std::uint32_t NetworkGraph::link_between(std::uint32_t from, std::uint32_t to) const {
  const auto it = link_index_.find(link_key(from, to));
  return it == link_index_.end() ? kNone : it->second;
}

P2PResult<void> NetworkGraph::set_link(std::uint32_t from, std::uint32_t to, const LinkInfo& info) {
  if (from == to) return fail(P2PError::invalid_configuration("a link needs two different nodes"));
  if (auto ok = info.validate(); !ok) return ok;
  if (const auto existing = link_between(from, to); existing != kNone) {
    links_[existing].info = info;
    return {};
  }
  const auto id = static_cast<LinkId>(links_.size());
  Link link{from, to, info, 0, false};
  for (const auto& p : partitions_) link.cut += cut_by(p, link) ? 1U : 0U;
  links_.push_back(link);
  link_index_.emplace(link_key(from, to), id);
  nodes_[from].out.push_back(id);
  nodes_[to].in.push_back(id);
  return {};
}

void NetworkGraph::remove_link(std::uint32_t link) {
  auto& l = links_[link];
  MOOSICBOX_P2P_ASSERT(!l.removed);
  l.removed = true;
  link_index_.erase(link_key(l.from, l.to));
  std::erase(nodes_[l.from].out, link);
  std::erase(nodes_[l.to].in, link);
}

P2PResult<void> NetworkGraph::connect_nodes(const NodeId& a, const NodeId& b, const LinkInfo& info) {
  const auto ia = index_of(a);
  if (!ia) return fail(P2PError::node_not_found(a.to_string()));
  const auto ib = index_of(b);
  if (!ib) return fail(P2PError::node_not_found(b.to_string()));
  if (*ia == *ib) return fail(P2PError::invalid_configuration("a link needs two different nodes"));
  if (auto ok = info.validate(); !ok) return ok;
  (void)set_link(*ia, *ib, info);
  (void)set_link(*ib, *ia, info);
  changed();
  return {};
}

P2PResult<void> NetworkGraph::connect_one_way(const NodeId& from, const NodeId& to, const LinkInfo& info) {
  const auto ia = index_of(from);
  if (!ia) return fail(P2PError::node_not_found(from.to_string()));
  const auto ib = index_of(to);
  if (!ib) return fail(P2PError::node_not_found(to.to_string()));
  if (auto ok = set_link(*ia, *ib, info); !ok) return ok;
  changed();
  return {};
}

P2PResult<void> NetworkGraph::disconnect_nodes(const NodeId& a, const NodeId& b) {
  const auto ia = index_of(a);
  if (!ia) return fail(P2PError::node_not_found(a.to_string()));
  const auto ib = index_of(b);
  if (!ib) return fail(P2PError::node_not_found(b.to_string()));
  const auto ab = link_between(*ia, *ib);
  const auto ba = link_between(*ib, *ia);
  if (ab == kNone && ba == kNone) {
    return fail(P2PError::invalid_configuration(
        fmt::format("no link between {} and {}", nodes_[*ia].info.name, nodes_[*ib].info.name)));
  }
  if (ab != kNone) remove_link(ab);
  if (ba != kNone) remove_link(ba);
  changed();
  return {};
}

P2PResult<void> NetworkGraph::update_link(const NodeId& from, const NodeId& to,
                                          const std::function<void(LinkInfo&)>& fn) {
  const auto ia = index_of(from);
  if (!ia) return fail(P2PError::node_not_found(from.to_string()));
  const auto ib = index_of(to);
  if (!ib) return fail(P2PError::node_not_found(to.to_string()));
  const auto l = link_between(*ia, *ib);
  if (l == kNone) {
    return fail(P2PError::invalid_configuration(
        fmt::format("no link from {} to {}", nodes_[*ia].info.name, nodes_[*ib].info.name)));
  }
  LinkInfo info = links_[l].info;
  fn(info);
  if (auto ok = info.validate(); !ok) return ok;
  links_[l].info = info;
  changed();
  return {};
}

P2PResult<void> NetworkGraph::set_link_active(const NodeId& a, const NodeId& b, bool active) {
  const auto ia = index_of(a);
  if (!ia) return fail(P2PError::node_not_found(a.to_string()));
  const auto ib = index_of(b);
  if (!ib) return fail(P2PError::node_not_found(b.to_string()));
  const auto ab = link_between(*ia, *ib);
  const auto ba = link_between(*ib, *ia);
  if (ab == kNone && ba == kNone) {
    return fail(P2PError::invalid_configuration(
        fmt::format("no link between {} and {}", nodes_[*ia].info.name, nodes_[*ib].info.name)));
  }
  if (ab != kNone) links_[ab].info.active = active;
  if (ba != kNone) links_[ba].info.active = active;
  changed();
  return {};
}

const LinkInfo* NetworkGraph::get_link(const NodeId& from, const NodeId& to) const {
  const auto ia = index_of(from);
  const auto ib = index_of(to);
  if (!ia || !ib) return nullptr;
  const auto l = link_between(*ia, *ib);
  return l == kNone ? nullptr : &links_[l].info;
}

const LinkInfo& NetworkGraph::link_info(LinkId link) const {
  MOOSICBOX_P2P_ASSERT(link < links_.size());
  return links_[link].info;
}

bool NetworkGraph::link_exists(LinkId link) const noexcept { return link < links_.size() && !links_[link].removed; }

bool NetworkGraph::usable(const Link& l) const noexcept {
  return !l.removed && l.info.active && l.cut == 0 && l.info.packet_loss < 1.0 && nodes_[l.from].info.online &&
         nodes_[l.to].info.online;
}

bool NetworkGraph::passes(const Link& l, Reach reach) const noexcept {
  return reach == Reach::topology ? !l.removed : usable(l);
}

bool NetworkGraph::link_usable(LinkId link) const noexcept { return link < links_.size() && usable(links_[link]); }

const NodeId& NetworkGraph::link_from(LinkId link) const {
  MOOSICBOX_P2P_ASSERT(link < links_.size());
  return nodes_[links_[link].from].info.id;
}

const NodeId& NetworkGraph::link_to(LinkId link) const {
  MOOSICBOX_P2P_ASSERT(link < links_.size());
  return nodes_[links_[link].to].info.id;
}

// ---- partitions ----------------------------------------------------------------------------------------

bool NetworkGraph::cut_by(const Partition& p, const Link& l) const noexcept {
  const auto a = p.side[l.from];
  const auto b = p.side[l.to];
  return a != 0 && b != 0 && a != b;
}

void NetworkGraph::recount_cuts() {
  for (auto& l : links_) {
    l.cut = 0;
    if (l.removed) continue;
    for (const auto& p : partitions_) l.cut += cut_by(p, l) ? 1U : 0U;
  }
}

P2PResult<NetworkGraph::PartitionId> NetworkGraph::add_partition(std::span<const NodeId> group_a,
                                                                 std::span<const NodeId> group_b) {
  if (group_a.empty() || group_b.empty()) {
    return fail(P2PError::invalid_configuration("a partition needs two non-empty groups"));
  }
  Partition p{next_partition_, std::vector<std::uint8_t>(nodes_.size(), 0)};
  for (const auto& id : group_a) {
    const auto index = index_of(id);
    if (!index) return fail(P2PError::node_not_found(id.to_string()));
    p.side[*index] = 1;
  }
  for (const auto& id : group_b) {
    const auto index = index_of(id);
    if (!index) return fail(P2PError::node_not_found(id.to_string()));
    if (p.side[*index] == 1) {
      return fail(P2PError::invalid_configuration(fmt::format("node {} is in both groups", nodes_[*index].info.name)));
    }
    p.side[*index] = 2;
  }
  ++next_partition_;
  partitions_.push_back(std::move(p));
  recount_cuts();
  changed();
  return partitions_.back().id;
}

P2PResult<void> NetworkGraph::heal_partition(PartitionId id) {
  const auto it = std::ranges::find(partitions_, id, &Partition::id);
  if (it == partitions_.end()) {
    return fail(P2PError::invalid_configuration(fmt::format("no active partition {}", id)));
  }
  partitions_.erase(it);
  recount_cuts();
  changed();
  return {};
}

void NetworkGraph::heal_all_partitions() {
  if (partitions_.empty()) return;
  partitions_.clear();
  recount_cuts();
  changed();
}

bool NetworkGraph::is_partitioned(const NodeId& a, const NodeId& b) const {
  const auto ia = index_of(a);
  const auto ib = index_of(b);
  if (!ia || !ib) return false;
  return std::ranges::any_of(partitions_, [&](const Partition& p) {
    return p.side[*ia] != 0 && p.side[*ib] != 0 && p.side[*ia] != p.side[*ib];
  });
}

// ---- routes --------------------------------------------------------------------------------------------

std::optional<std::vector<NodeId>> NetworkGraph::find_path(const NodeId& from, const NodeId& to) const {
  const auto src = index_of(from);
  const auto dst = index_of(to);
  if (!src || !dst) return std::nullopt;
  if (!nodes_[*src].info.online || !nodes_[*dst].info.online) return std::nullopt;
  if (*src == *dst) return std::vector<NodeId>{from};
  std::vector<std::uint32_t> via(nodes_.size(), kNone);
  std::vector<bool> seen(nodes_.size(), false);
  std::deque<std::uint32_t> queue{*src};
  seen[*src] = true;
  while (!queue.empty()) {
    const auto n = queue.front();
    queue.pop_front();
    if (n == *dst) break;
    for (const auto l : nodes_[n].out) {
      const auto& link = links_[l];
      if (!usable(link) || seen[link.to]) continue;
      seen[link.to] = true;
      via[link.to] = l;
      queue.push_back(link.to);
    }
  }
  if (!seen[*dst]) return std::nullopt;
  std::vector<NodeId> path;
  for (auto n = *dst; n != *src; n = links_[via[n]].from) path.push_back(nodes_[n].info.id);
  path.push_back(from);
  std::ranges::reverse(path);
  return path;
}

NetworkGraph::ShortestPaths NetworkGraph::shortest_paths(const NodeId& root, Reach reach, bool towards_root) const {
  const auto r = index_of(root);
  if (!r) {
    ShortestPaths empty;
    empty.graph_ = this;
    return empty;
  }
  return search(*r, reach, towards_root, kNone);
}

NetworkGraph::ShortestPaths NetworkGraph::search(std::uint32_t root, Reach reach, bool towards_root,
                                                 std::uint32_t stop_at) const {
  ShortestPaths sp;
  sp.graph_ = this;
  sp.towards_root_ = towards_root;
  sp.root_ = root;
  constexpr auto kInf = std::numeric_limits<std::int64_t>::max();
  sp.dist_.assign(nodes_.size(), kInf);
  sp.via_.assign(nodes_.size(), kNone);
  if (reach == Reach::current && !nodes_[root].info.online) return sp;
  // Dijkstra with (distance, node index) ordering: equal-latency alternatives resolve the same way
  // in every run. A single-target search stops once its target is settled.
  using Item = std::pair<std::int64_t, std::uint32_t>;
  std::priority_queue<Item, std::vector<Item>, std::greater<>> heap;
  sp.dist_[root] = 0;
  heap.emplace(0, root);
  while (!heap.empty()) {
    const auto [d, n] = heap.top();
    heap.pop();
    if (d != sp.dist_[n]) continue;
    if (n == stop_at) break;
    const auto& edges = towards_root ? nodes_[n].in : nodes_[n].out;
    for (const auto l : edges) {
      const auto& link = links_[l];
      if (!passes(link, reach)) continue;
      const auto next = towards_root ? link.from : link.to;
      const auto nd = d + std::max<std::int64_t>(link.info.latency.count(), 0);
      if (nd < sp.dist_[next]) {
        sp.dist_[next] = nd;
        sp.via_[next] = l;
        heap.emplace(nd, next);
      }
    }
  }
  return sp;
}

std::optional<Duration> NetworkGraph::ShortestPaths::latency_to(const NodeId& id) const {
  if (graph_ == nullptr || dist_.empty()) return std::nullopt;
  const auto n = graph_->index_of(id);
  if (!n || dist_[*n] == std::numeric_limits<std::int64_t>::max()) return std::nullopt;
  return Duration(dist_[*n]);
}

std::optional<NetworkGraph::Path> NetworkGraph::ShortestPaths::path_to(const NodeId& id) const {
  const auto latency = latency_to(id);
  if (!latency) return std::nullopt;
  const auto target = *graph_->index_of(id);
  Path path;
  path.latency = *latency;
  std::vector<std::uint32_t> node_indices{target};
  for (auto n = target; n != root_;) {
    const auto l = via_[n];
    MOOSICBOX_P2P_ASSERT(l != kNone);
    path.links.push_back(l);
    n = towards_root_ ? graph_->links_[l].to : graph_->links_[l].from;
    node_indices.push_back(n);
  }
  // Walking back from `id` gives the reverse order for a search from the root, and the forward
  // order (id ... root) for a search towards it.
  if (!towards_root_) {
    std::ranges::reverse(path.links);
    std::ranges::reverse(node_indices);
  }
  for (const auto n : node_indices) path.nodes.push_back(graph_->nodes_[n].info.id);
  return path;
}

std::optional<NetworkGraph::Path> NetworkGraph::find_lowest_latency_path(const NodeId& from, const NodeId& to,
                                                                         Reach reach) const {
  const auto src = index_of(from);
  const auto dst = index_of(to);
  if (!src || !dst) return std::nullopt;
  return search(*src, reach, false, *dst).path_to(to);
}

}  // namespace moosicbox::p2p::sim
