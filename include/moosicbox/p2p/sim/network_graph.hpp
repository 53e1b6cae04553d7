// SPDX-License-Identifier: MIT OR Apache-2.0
// network_graph.hpp: NetworkGraph, the topology of one simulated world: nodes (online or not, behind
// a NAT of a given type, relays or not) and directed links with latency, jitter, loss, a bandwidth
// limit and an active flag, plus partitions that cut every link between two groups of nodes. One
// graph is shared by every node of a World; routes are computed on it (breadth first, as
// find_path does, or by lowest latency, which connections use).
// Layer: sim. Not thread-safe: a graph belongs to the thread that steps its World.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "moosicbox/p2p/core/bytes.hpp"
#include "moosicbox/p2p/core/config.hpp"
#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/node_id.hpp"
#include "moosicbox/p2p/core/time.hpp"

namespace moosicbox::p2p::sim {

/// NatType is the kind of NAT a node sits behind (RFC 3489 names, RFC 4787 behaviour).
enum class NatType : std::uint8_t {
  none,                ///< public address: reachable by anyone
  full_cone,           ///< endpoint-independent mapping and filtering
  address_restricted,  ///< endpoint-independent mapping, address-dependent filtering
  port_restricted,     ///< endpoint-independent mapping, address-and-port-dependent filtering
  symmetric,           ///< endpoint-dependent mapping (a new port per destination)
};

/// to_string returns the NAT type's name, e.g. "port_restricted".
[[nodiscard]] std::string_view to_string(NatType nat) noexcept;
// The simulator's to_string overloads must not hide p2p::to_string(ByteView) inside p2p::sim.
using ::moosicbox::p2p::to_string;

/// direct_connection_possible reports whether two nodes behind `a` and `b` can talk directly, with
/// hole punching where needed. It holds between endpoint-independent mappings (and towards public
/// addresses), fails between two symmetric NATs and between a symmetric and a port-restricted NAT.
[[nodiscard]] bool direct_connection_possible(NatType a, NatType b) noexcept;

/// hole_punch_needed reports whether a dialer must punch a hole to reach a target behind `target`
/// (true unless the target accepts unsolicited packets: public or full cone).
[[nodiscard]] bool hole_punch_needed(NatType target) noexcept;

/// NodeInfo describes one node of the graph.
struct NodeInfo {
  NodeId id;                                              ///< the node's identity
  std::string name;                                       ///< a unique, human-readable name
  bool online = true;                                     ///< offline nodes neither send nor receive
  NatType nat = NatType::none;                            ///< the NAT in front of the node
  bool relay = false;                                     ///< relays forward traffic between nodes that
                                                          ///< cannot talk directly; they are public
  Duration relay_delay = std::chrono::microseconds(500);  ///< a relay's forwarding delay per packet
};

/// LinkInfo describes one direction of a link.
struct LinkInfo {
  Duration latency = std::chrono::milliseconds(50);  ///< one-way propagation delay
  Duration jitter{};                                 ///< extra delay drawn uniformly in [0, jitter]
  double packet_loss = 0.0;                          ///< probability that one packet is lost, in [0, 1]
  std::uint64_t bandwidth = 0;                       ///< bytes per second; 0 means unlimited
  bool active = true;                                ///< an inactive link carries nothing (a flap)

  /// from_config returns a link with the configuration's default latency and loss.
  [[nodiscard]] static LinkInfo from_config(const NetworkConfig& config);
  /// validate checks every field. Errors: invalid_configuration naming the field.
  [[nodiscard]] P2PResult<void> validate() const;

  /// operator== compares every field.
  friend bool operator==(const LinkInfo&, const LinkInfo&) = default;
};

/// Reach selects which links a route query may use.
enum class Reach : std::uint8_t {
  current,   ///< only usable links: active, loss below 1, not partitioned, both ends online
  topology,  ///< every link that exists, whatever its state (is there a route at all?)
};

/// NetworkGraph is the shared topology of a simulated world.
class NetworkGraph {
 public:
  /// LinkId names one directed link; it stays valid until the link is removed.
  using LinkId = std::uint32_t;
  /// PartitionId names a partition for heal_partition().
  using PartitionId = std::uint64_t;

  /// Path is a route: the nodes from source to destination, the links between them and the sum of
  /// their latencies.
  struct Path {
    std::vector<NodeId> nodes;  ///< from the source to the destination, both included
    std::vector<LinkId> links;  ///< the links between consecutive nodes
    Duration latency{};         ///< the sum of the links' latencies
  };

  /// ShortestPaths is the result of a lowest-latency search from (or towards) one node.
  class ShortestPaths {
   public:
    /// latency_to returns the route latency to `id`, or nullopt when unreachable.
    [[nodiscard]] std::optional<Duration> latency_to(const NodeId& id) const;
    /// path_to returns the route to `id` (from `id` for a search towards the root), or nullopt.
    [[nodiscard]] std::optional<Path> path_to(const NodeId& id) const;

   private:
    friend class NetworkGraph;
    const NetworkGraph* graph_ = nullptr;
    std::uint32_t root_ = 0;
    bool towards_root_ = false;
    std::vector<std::int64_t> dist_;
    std::vector<std::uint32_t> via_;  // link used to reach each node; kNone when unreached
  };

  NetworkGraph() = default;
  NetworkGraph(const NetworkGraph&) = delete;
  NetworkGraph& operator=(const NetworkGraph&) = delete;

  /// add_node adds a node. Errors: invalid_configuration when the id or the name is already used.
  [[nodiscard]] P2PResult<void> add_node(NodeInfo info);
  /// remove_node removes a node and every link to or from it. Errors: node_not_found.
  [[nodiscard]] P2PResult<void> remove_node(const NodeId& id);
  /// get_node returns the node's description, or nullptr when it is not in the graph.
  [[nodiscard]] const NodeInfo* get_node(const NodeId& id) const;
  /// find_node_by_name returns the node named `name`, or nullptr.
  [[nodiscard]] const NodeInfo* find_node_by_name(std::string_view name) const;
  /// set_online takes a node offline (it neither sends nor receives) or back online.
  /// Errors: node_not_found.
  [[nodiscard]] P2PResult<void> set_online(const NodeId& id, bool online);
  /// set_nat puts a node behind a NAT of type `nat`. Errors: node_not_found.
  [[nodiscard]] P2PResult<void> set_nat(const NodeId& id, NatType nat);
  /// set_relay makes a node a relay (public: its NAT becomes none) or an ordinary node.
  /// Errors: node_not_found, invalid_configuration (negative delay).
  [[nodiscard]] P2PResult<void> set_relay(const NodeId& id, bool relay,
                                          Duration delay = std::chrono::microseconds(500));
  /// node_count returns the number of nodes.
  [[nodiscard]] std::size_t node_count() const noexcept { return by_id_.size(); }
  /// nodes returns the ids of every node, in the order they were added.
  [[nodiscard]] std::vector<NodeId> nodes() const;

  /// connect_nodes links `a` and `b` in both directions with `info` (replacing existing links).
  /// Errors: node_not_found, invalid_configuration (a == b or a bad LinkInfo).
  [[nodiscard]] P2PResult<void> connect_nodes(const NodeId& a, const NodeId& b, const LinkInfo& info);
  /// connect_one_way adds (or replaces) the link from `from` to `to` only, for asymmetric networks.
  /// Errors: as connect_nodes.
  [[nodiscard]] P2PResult<void> connect_one_way(const NodeId& from, const NodeId& to, const LinkInfo& info);
  /// disconnect_nodes removes the links between `a` and `b` in both directions.
  /// Errors: node_not_found, invalid_configuration when there is no such link.
  [[nodiscard]] P2PResult<void> disconnect_nodes(const NodeId& a, const NodeId& b);
  /// update_link changes the link from `from` to `to`. Errors: node_not_found, invalid_configuration
  /// (no such link, or `fn` produced a bad LinkInfo; the link is then unchanged).
  [[nodiscard]] P2PResult<void> update_link(const NodeId& from, const NodeId& to,
                                            const std::function<void(LinkInfo&)>& fn);
  /// set_link_active activates or deactivates both directions of the link between `a` and `b` (a
  /// flap). Errors: as update_link.
  [[nodiscard]] P2PResult<void> set_link_active(const NodeId& a, const NodeId& b, bool active);
  /// get_link returns the link from `from` to `to`, or nullptr.
  [[nodiscard]] const LinkInfo* get_link(const NodeId& from, const NodeId& to) const;
  /// link_count returns the number of directed links.
  [[nodiscard]] std::size_t link_count() const noexcept { return link_index_.size(); }

  /// add_partition cuts every link between a node of `group_a` and a node of `group_b` until healed.
  /// Errors: node_not_found, invalid_configuration (a node in both groups, or an empty group).
  [[nodiscard]] P2PResult<PartitionId> add_partition(std::span<const NodeId> group_a, std::span<const NodeId> group_b);
  /// heal_partition restores the links cut by `id`. Errors: invalid_configuration (unknown id).
  [[nodiscard]] P2PResult<void> heal_partition(PartitionId id);
  /// heal_all_partitions restores every cut link.
  void heal_all_partitions();
  /// is_partitioned reports whether an active partition separates `a` from `b`.
  [[nodiscard]] bool is_partitioned(const NodeId& a, const NodeId& b) const;

  /// find_path returns the path with the fewest hops over usable links (breadth first), or nullopt.
  [[nodiscard]] std::optional<std::vector<NodeId>> find_path(const NodeId& from, const NodeId& to) const;
  /// find_lowest_latency_path returns the path with the lowest total latency, or nullopt.
  [[nodiscard]] std::optional<Path> find_lowest_latency_path(const NodeId& from, const NodeId& to,
                                                             Reach reach = Reach::current) const;
  /// shortest_paths searches lowest-latency routes from `root` to every node, or with
  /// `towards_root` from every node to `root`. An unknown root gives an empty result.
  [[nodiscard]] ShortestPaths shortest_paths(const NodeId& root, Reach reach, bool towards_root = false) const;

  /// link_info returns a link's description. `link` must be valid.
  [[nodiscard]] const LinkInfo& link_info(LinkId link) const;
  /// link_usable reports whether a link carries traffic now (active, loss below 1, not partitioned,
  /// both ends online). False for a removed link.
  [[nodiscard]] bool link_usable(LinkId link) const noexcept;
  /// link_exists reports whether `link` names a link that was not removed.
  [[nodiscard]] bool link_exists(LinkId link) const noexcept;
  /// link_slot_count bounds every LinkId ever handed out (for per-link side tables).
  [[nodiscard]] std::size_t link_slot_count() const noexcept { return links_.size(); }
  /// link_from returns the node a link leaves. `link` must be valid.
  [[nodiscard]] const NodeId& link_from(LinkId link) const;
  /// link_to returns the node a link reaches. `link` must be valid.
  [[nodiscard]] const NodeId& link_to(LinkId link) const;

  /// version changes whenever anything that affects routing changes.
  [[nodiscard]] std::uint64_t version() const noexcept { return version_; }
  /// set_change_hook installs the function called after every change (the World revalidates the
  /// routes of its connections there). Empty to remove.
  void set_change_hook(std::function<void()> hook) { hook_ = std::move(hook); }

 private:
  static constexpr std::uint32_t kNone = 0xffffffffU;
  struct Node {
    NodeInfo info;
    bool removed = false;
    std::vector<LinkId> out;
    std::vector<LinkId> in;
  };
  struct Link {
    std::uint32_t from = 0;
    std::uint32_t to = 0;
    LinkInfo info;
    std::uint32_t cut = 0;  // number of active partitions that cut this link
    bool removed = false;
  };
  struct Partition {
    PartitionId id = 0;
    std::vector<std::uint8_t> side;  // per node index: 0 outside, 1 group a, 2 group b
  };

  [[nodiscard]] std::optional<std::uint32_t> index_of(const NodeId& id) const;
  // search runs Dijkstra from `root`; with `stop_at` set it stops once that node is settled, so only
  // the path to `stop_at` is then final.
  [[nodiscard]] ShortestPaths search(std::uint32_t root, Reach reach, bool towards_root, std::uint32_t stop_at) const;
  [[nodiscard]] bool usable(const Link& l) const noexcept;
  [[nodiscard]] bool passes(const Link& l, Reach reach) const noexcept;
  [[nodiscard]] std::uint32_t link_between(std::uint32_t from, std::uint32_t to) const;
  P2PResult<void> set_link(std::uint32_t from, std::uint32_t to, const LinkInfo& info);
  void remove_link(std::uint32_t link);
  void recount_cuts();
  [[nodiscard]] bool cut_by(const Partition& p, const Link& l) const noexcept;
  void changed();

  std::vector<Node> nodes_;
  std::unordered_map<NodeId, std::uint32_t> by_id_;
  std::unordered_map<std::string, std::uint32_t> by_name_;
  std::vector<Link> links_;
  std::unordered_map<std::uint64_t, std::uint32_t> link_index_;  // (from << 32 | to) -> link
  std::vector<Partition> partitions_;
  PartitionId next_partition_ = 1;
  std::uint64_t version_ = 0;
  std::function<void()> hook_;
};

}  // namespace moosicbox::p2p::sim
