// SPDX-License-Identifier: MIT OR Apache-2.0
// world.hpp: sim::World, one deterministic simulation: virtual time and the event queue (an
// env::SimRuntime), a root seed from which every node and link draws its own random stream, the
// shared NetworkGraph, the simulated nodes (SimulatorP2P), a name directory, an event trace with a
// hash, and test helpers (setup_connected_peers, setup_partitioned_network, inject_latency,
// inject_packet_loss). The same seed and the same program give the same trace hash.
// Layer: sim. Single-threaded: a World and all its handles belong to the thread that steps it; the
// World must outlive every handle (nodes, connections, listeners, streams).
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/co_spawn.hpp>

#include "moosicbox/p2p/core/config.hpp"
#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/env/sim_env.hpp"
#include "moosicbox/p2p/sim/network_graph.hpp"
#include "moosicbox/p2p/sim/simulator.hpp"

namespace moosicbox::p2p::sim {

namespace detail {
struct WorldImpl;
}  // namespace detail

/// SimLimits bounds what one connection may buffer (every queue of the simulator is bounded).
struct SimLimits {
  /// message_window is how many bytes of messages (each counted with a 64-byte overhead) a sender may
  /// have in flight or unread at the receiver; send() waits beyond it. At least twice the maximum
  /// message size is used, so one maximum-size message always fits.
  std::size_t message_window = std::size_t{16} << 20;
  /// stream_window is the per-stream flow-control window, in bytes.
  std::size_t stream_window = std::size_t{1} << 20;
  /// max_streams is how many streams a peer may have open towards a node at once.
  std::uint64_t max_streams = 100;
  /// accept_backlog is how many connections may wait in a listener for accept(); more are refused.
  std::size_t accept_backlog = 1024;
};

/// WorldOptions configures World::create().
struct WorldOptions {
  /// seed is the root seed; when absent, P2P_SIM_SEED is read, and when that is unset too a random
  /// seed is drawn and printed to stderr so the run can be reproduced.
  std::optional<std::uint64_t> seed;
  /// config holds the network defaults; when absent, NetworkConfig::from_env() (SIMULATOR_* variables).
  std::optional<NetworkConfig> config;
  /// limits bounds buffering per connection.
  SimLimits limits;
};

/// PartitionedNetwork is what setup_partitioned_network() builds.
struct PartitionedNetwork {
  std::vector<SimulatorP2P> group_a;        ///< the nodes "a0".., in order
  std::vector<SimulatorP2P> group_b;        ///< the nodes "b0".., in order
  NetworkGraph::PartitionId partition = 0;  ///< the partition between the groups (for NetworkGraph::heal_partition)
};

/// test_node_id (from core) is also the simulator's id helper: the id of a node added with its
/// default identity is test_node_id(name).
using ::moosicbox::p2p::test_node_id;

/// seed_from_env reads P2P_SIM_SEED: nullopt when unset.
/// Errors: invalid_configuration when it is not a decimal unsigned 64-bit number.
[[nodiscard]] P2PResult<std::optional<std::uint64_t>> seed_from_env();

/// resolve_seed returns `given`, else P2P_SIM_SEED, else a random seed which it prints to stderr as
/// "P2P_SIM_SEED=<n>". Errors: as seed_from_env.
[[nodiscard]] P2PResult<std::uint64_t> resolve_seed(std::optional<std::uint64_t> given);

/// World is one simulated network.
class World {
 public:
  /// kRunLimitDefault bounds run(task) in virtual time.
  static constexpr Duration kRunLimitDefault = std::chrono::hours(24);

  /// create builds a world from `options` (see WorldOptions for the defaults).
  /// Errors: invalid_configuration (a bad P2P_SIM_SEED or SIMULATOR_* variable, or a bad config).
  [[nodiscard]] static P2PResult<std::unique_ptr<World>> create(WorldOptions options = {});

  /// World builds a world with an explicit seed and configuration (the configuration must be valid).
  explicit World(std::uint64_t seed, NetworkConfig config = {}, SimLimits limits = {});
  World(const World&) = delete;
  World& operator=(const World&) = delete;
  ~World();

  /// seed returns the root seed.
  [[nodiscard]] std::uint64_t seed() const noexcept;
  /// now returns the virtual time.
  [[nodiscard]] TimePoint now() const noexcept;
  /// runtime returns the clock and scheduler (for timers and events of the test itself).
  [[nodiscard]] env::SimRuntime& runtime() noexcept;
  /// graph returns the shared topology. Changes take effect at once (connections reroute or stall).
  [[nodiscard]] NetworkGraph& graph() noexcept;
  /// config returns the network configuration.
  [[nodiscard]] const NetworkConfig& config() const noexcept;
  /// limits returns the buffering limits.
  [[nodiscard]] const SimLimits& limits() const noexcept;

  /// add_node adds a node named `name` (its environment draws from derive_seed(seed, name)) and
  /// registers the name in the directory. It has no links yet.
  /// Errors: invalid_configuration (empty or duplicate name, duplicate id).
  [[nodiscard]] P2PResult<SimulatorP2P> add_node(std::string_view name, NodeOptions options = {});
  /// node returns the node with `id`, if any.
  [[nodiscard]] std::optional<SimulatorP2P> node(const NodeId& id) const;
  /// node_by_name returns the node named `name`, if any.
  [[nodiscard]] std::optional<SimulatorP2P> node_by_name(std::string_view name) const;
  /// node_count returns the number of nodes added and not removed.
  [[nodiscard]] std::size_t node_count() const noexcept;
  /// link connects `a` and `b` in both directions with `info`, or with the configuration's default
  /// latency and loss. Errors: as NetworkGraph::connect_nodes.
  [[nodiscard]] P2PResult<void> link(const NodeId& a, const NodeId& b, std::optional<LinkInfo> info = {});

  /// register_peer adds or replaces `name` -> `id` in the directory that discover() reads.
  /// Errors: invalid_configuration (empty name).
  [[nodiscard]] P2PResult<void> register_peer(std::string_view name, const NodeId& id);
  /// lookup reads the directory at once (no discovery delay).
  [[nodiscard]] std::optional<NodeId> lookup(std::string_view name) const;

  /// crash stops a node abruptly: it goes offline, its listener and connections end at once on its
  /// side (connection_closed), and its peers' connections fail with timeout after the connection
  /// timeout, as no answer ever comes. Errors: node_not_found.
  [[nodiscard]] P2PResult<void> crash(const NodeId& id);
  /// restart brings a crashed node back online with no listener and no connections (the
  /// application listens again). Errors: node_not_found, invalid_configuration (not crashed).
  [[nodiscard]] P2PResult<void> restart(const NodeId& id);
  /// remove_node crashes a node and removes it and its links for good. Errors: node_not_found.
  [[nodiscard]] P2PResult<void> remove_node(const NodeId& id);

  /// setup_connected_peers adds `n` nodes "peer0".."peer<n-1>", every pair linked with the default
  /// link. Errors: invalid_configuration (names already used).
  [[nodiscard]] P2PResult<std::vector<SimulatorP2P>> setup_connected_peers(std::size_t n);
  /// setup_partitioned_network adds `a` nodes "a0".. and `b` nodes "b0".., every pair linked, and a
  /// partition between the two groups. Errors: invalid_configuration (names used, a or b zero).
  [[nodiscard]] P2PResult<PartitionedNetwork> setup_partitioned_network(std::size_t a, std::size_t b);
  /// inject_latency sets the latency of the link from `from` to `to`.
  /// Errors: node_not_found, invalid_configuration (no such link, negative latency).
  [[nodiscard]] P2PResult<void> inject_latency(const NodeId& from, const NodeId& to, Duration latency);
  /// inject_packet_loss sets the loss rate of the link from `from` to `to`.
  /// Errors: node_not_found, invalid_configuration (no such link, rate outside [0, 1]).
  [[nodiscard]] P2PResult<void> inject_packet_loss(const NodeId& from, const NodeId& to, double rate);

  /// run_until_idle runs until nothing is left to do (bounded by the runtime's step limit).
  env::SimRuntime::RunResult run_until_idle();
  /// run_for lets `d` of virtual time pass.
  env::SimRuntime::RunResult run_for(Duration d);
  /// run_until runs until virtual time `t`.
  env::SimRuntime::RunResult run_until(TimePoint t);
  /// run_while runs while `keep_going()` holds, at most until `limit`.
  env::SimRuntime::RunResult run_while(const std::function<bool()>& keep_going, TimePoint limit = kTimePointMax);

  /// run spawns `task` on the world and runs until it completes, at most `limit` of virtual time.
  /// Returns its value, or nullopt when it did not complete in time or the world went idle with the
  /// task still waiting (nothing could ever complete it; time then stays where it was). Rethrows its
  /// exception. A task that did not complete stays in the world and may finish in a later run.
  template <class T>
  std::optional<T> run(asio::awaitable<T> task, Duration limit = kRunLimitDefault);
  /// run spawns a task without a value; returns whether it completed (see above).
  bool run(asio::awaitable<void> task, Duration limit = kRunLimitDefault);

  /// trace adds a line to the trace (and its hash).
  void trace(std::string_view line);
  /// trace_hash returns the hash of the whole trace so far: equal seeds give equal hashes.
  [[nodiscard]] std::uint64_t trace_hash() const noexcept;
  /// set_trace_sink receives every trace line with its virtual time (to print a run); empty to stop.
  void set_trace_sink(std::function<void(TimePoint, std::string_view)> sink);

  /// connection_count returns the number of connections alive in the world.
  [[nodiscard]] std::size_t connection_count() const noexcept;
  /// messages_delivered returns how many messages reached a receiver since the world started.
  [[nodiscard]] std::uint64_t messages_delivered() const noexcept;

  /// impl is the world's internal state (for the simulator's own code).
  [[nodiscard]] detail::WorldImpl& impl() noexcept { return *impl_; }

 private:
  struct RunState;
  bool drive(const std::shared_ptr<RunState>& state, Duration limit);

  std::unique_ptr<detail::WorldImpl> impl_;
};

/// World::RunState tracks a task started by run().
struct World::RunState {
  bool done = false;         ///< the task completed (normally or with an exception)
  std::exception_ptr error;  ///< the exception the task ended with, if any (run() rethrows it)
};

template <class T>
std::optional<T> World::run(asio::awaitable<T> task, Duration limit) {
  auto state = std::make_shared<RunState>();
  auto value = std::make_shared<std::optional<T>>();
  // The value travels through a wrapper so T need not be default-constructible (co_spawn's
  // completion signature would require it).
  auto wrapper = [](std::shared_ptr<std::optional<T>> out, asio::awaitable<T> t) -> asio::awaitable<void> {
    out->emplace(co_await std::move(t));
  };
  asio::co_spawn(runtime().executor(), wrapper(value, std::move(task)), [state](std::exception_ptr e) {
    state->done = true;
    state->error = e;
  });
  if (!drive(state, limit)) return std::nullopt;
  return std::move(*value);
}

}  // namespace moosicbox::p2p::sim
