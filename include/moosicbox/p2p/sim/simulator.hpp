// SPDX-License-Identifier: MIT OR Apache-2.0
// simulator.hpp: SimulatorP2P, the simulator backend: one node of a sim::World that dials node ids,
// listens, resolves names, and exchanges messages and streams over the simulated network with the
// real backend's guarantees (reliable, ordered, exactly-once messages; flow-controlled streams; loss
// costs time, never data; a stall longer than the connection timeout fails both ends).
// SimulatorConnection, SimulatorListener and SimulatorBiStream are handles to state the World owns.
// Layer: sim. Single-threaded: every handle belongs to the thread that steps its World, and the World
// must outlive every handle.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "moosicbox/p2p/concepts.hpp"
#include "moosicbox/p2p/core/node_id.hpp"
#include "moosicbox/p2p/core/secret_key.hpp"
#include "moosicbox/p2p/env/sim_env.hpp"
#include "moosicbox/p2p/sim/network_graph.hpp"
#include "moosicbox/p2p/streams.hpp"

namespace moosicbox::p2p::sim {

class World;
namespace detail {
struct NodeState;
struct EndRef;
struct ListenerRef;
struct Access;
}  // namespace detail

/// SimulatorNodeId is the node id of the simulator: the real NodeId, so applications and the router
/// use one id type on both backends.
using SimulatorNodeId = NodeId;

/// PathKind says how a connection reaches its peer.
enum class PathKind : std::uint8_t {
  direct,   ///< straight through the network (after hole punching where the NATs need it)
  relayed,  ///< through a relay node, because the NATs forbid a direct path or none exists
};

/// to_string returns "direct" or "relayed".
[[nodiscard]] std::string_view to_string(PathKind kind) noexcept;

/// SimulatorBiStream is one bidirectional stream of a SimulatorConnection (a P2PBiStream). It is a
/// move-only handle; destroying it resets an unfinished send half (the peer reads stream_reset with
/// code 0) and stops an unfinished receive half. A stream keeps its connection open.
class SimulatorBiStream {
 public:
  /// Move-only: moving transfers the stream, and the moved-from handle may only be destroyed or
  /// assigned to. Assigning over a handle first drops its stream, as destroying it would.
  ///@{
  SimulatorBiStream(SimulatorBiStream&& other) noexcept;
  SimulatorBiStream& operator=(SimulatorBiStream&& other) noexcept;
  SimulatorBiStream(const SimulatorBiStream&) = delete;
  SimulatorBiStream& operator=(const SimulatorBiStream&) = delete;
  ///@}
  ~SimulatorBiStream();

  /// write queues `data`, waiting while the peer's flow-control window is exhausted (the sender
  /// buffers at most one window). Errors: stream_reset (the peer stopped the stream, or this side
  /// reset it), protocol_error (written after finish()), connection_closed, timeout, cancelled.
  asio::awaitable<P2PResult<void>> write(ByteView data);
  /// finish marks the end of the stream: the peer reads the data, then 0. Errors: as write.
  asio::awaitable<P2PResult<void>> finish();
  /// reset aborts the send half at once: unsent data is dropped and the peer's reads fail with
  /// stream_reset carrying `code`. No-op after a delivered finish or a previous reset.
  void reset(std::uint64_t code);
  /// read waits for data and copies up to buffer.size() bytes; returns 0 only at the end of the
  /// stream. Errors: stream_reset (carries the peer's code; also after this side's stop()),
  /// connection_closed, timeout, cancelled.
  asio::awaitable<P2PResult<std::size_t>> read(std::span<std::byte> buffer);
  /// stop asks the peer to stop sending (its writes fail with stream_reset carrying `code`) and
  /// discards what arrives. No-op once the receive half has ended.
  void stop(std::uint64_t code);
  /// id returns the stream id: 4n for streams the dialer opened, 4n + 1 for the acceptor's.
  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }

 private:
  friend struct detail::Access;
  SimulatorBiStream(std::shared_ptr<detail::EndRef> end, std::uint64_t id) noexcept;
  void release() noexcept;

  std::shared_ptr<detail::EndRef> end_;
  std::uint64_t id_ = 0;
};

/// SimulatorConnection is a connection between two simulated nodes (a P2PStreamConnection). Copies
/// are handles to the same connection; dropping the last one (streams included) closes it.
class SimulatorConnection {
 public:
  /// NodeId is the peer identity type.
  using NodeId = p2p::NodeId;
  /// BiStream is the stream type of P2PStreamConnection.
  using BiStream = SimulatorBiStream;

  /// send queues one message; it arrives once, in order, after the path's latency, serialisation
  /// and any retransmission time. Waits while the peer's message window is full.
  /// Errors: message_too_large, connection_closed (closed by either side), timeout (the path stalled
  /// longer than the connection timeout), cancelled.
  asio::awaitable<P2PResult<void>> send(ByteView data);
  /// send queues one message, taking ownership of its buffer (no copy). Errors: as above.
  asio::awaitable<P2PResult<void>> send(Bytes&& data);
  /// recv waits for the next message. After the peer closes it returns every message sent before the
  /// close, then connection_closed; after a failure, the messages that had arrived, then the failure.
  /// Errors: connection_closed, timeout, cancelled.
  asio::awaitable<P2PResult<Bytes>> recv();
  /// try_recv returns the next message if one has arrived, nullopt if none has yet, without waiting.
  /// Errors: as recv, once no message is left.
  [[nodiscard]] P2PResult<std::optional<Bytes>> try_recv();
  /// close closes gracefully: everything sent before is still delivered, then the peer sees the
  /// close. Waits until the close reached the peer (or the connection failed). Idempotent; never fails.
  asio::awaitable<P2PResult<void>> close();
  /// is_connected is true until either side closes or the connection fails.
  [[nodiscard]] bool is_connected() const;
  /// remote_node_id returns the peer's id.
  [[nodiscard]] NodeId remote_node_id() const;
  /// local_node_id returns this side's id.
  [[nodiscard]] NodeId local_node_id() const;
  /// stats returns this side's counters; average_latency is the mean one-way delivery time of the
  /// messages received and rtt the current path's round-trip time.
  [[nodiscard]] ConnectionStats stats() const;
  /// path returns whether the connection currently runs direct or through a relay.
  [[nodiscard]] PathKind path() const;
  /// relay returns the relay in use, when path() is relayed.
  [[nodiscard]] std::optional<NodeId> relay() const;
  /// id returns a number that names this connection in the world's trace (the same on both sides).
  [[nodiscard]] std::uint64_t id() const;

  /// open_bi opens a bidirectional stream; waits while the peer's stream limit is reached.
  /// Errors: connection_closed, timeout, cancelled.
  asio::awaitable<P2PResult<SimulatorBiStream>> open_bi();
  /// accept_bi waits for the next stream the peer opened, in opening order.
  /// Errors: connection_closed, timeout, cancelled.
  asio::awaitable<P2PResult<SimulatorBiStream>> accept_bi();

 private:
  friend struct detail::Access;
  explicit SimulatorConnection(std::shared_ptr<detail::EndRef> end) noexcept : end_(std::move(end)) {}
  std::shared_ptr<detail::EndRef> end_;
};

/// SimulatorListener hands out the connections dialed to its node (a P2PListener). Copies are
/// handles; dropping the last one (or close()) stops listening and refuses queued connections.
class SimulatorListener {
 public:
  /// Connection is the connection type it hands out.
  using Connection = SimulatorConnection;

  /// accept waits for the next incoming connection, in arrival order.
  /// Errors: connection_closed (the listener was closed or its node crashed), cancelled.
  asio::awaitable<P2PResult<SimulatorConnection>> accept();
  /// local_addr returns the address given to listen().
  [[nodiscard]] std::string local_addr() const;
  /// close stops listening; pending and later accept() calls fail with connection_closed.
  void close();

 private:
  friend struct detail::Access;
  explicit SimulatorListener(std::shared_ptr<detail::ListenerRef> ref) noexcept : ref_(std::move(ref)) {}
  std::shared_ptr<detail::ListenerRef> ref_;
};

/// Identity selects where a simulated node's key comes from.
enum class Identity : std::uint8_t {
  from_name,  ///< test_secret_key(name): the id is test_node_id(name), the same under every seed
  from_seed,  ///< SecretKey::generate() from the node's seeded random stream
};

/// NodeOptions configures a node added to a World.
struct NodeOptions {
  NatType nat = NatType::none;                            ///< the NAT the node sits behind
  bool relay = false;                                     ///< whether the node relays for others
  Duration relay_delay = std::chrono::microseconds(500);  ///< a relay's forwarding delay
  Identity identity = Identity::from_name;                ///< where the key comes from
  std::optional<SecretKey> key;                           ///< an explicit key (overrides identity)
};

/// SimulatorP2P is one simulated node (a P2PSystem). It is a cheap, copyable handle.
class SimulatorP2P {
 public:
  /// NodeId, Connection and Listener are the backend's types.
  ///@{
  using NodeId = p2p::NodeId;
  using Connection = SimulatorConnection;
  using Listener = SimulatorListener;
  ///@}

  /// local_node_id returns this node's id.
  [[nodiscard]] NodeId local_node_id() const;
  /// name returns this node's name in the world.
  [[nodiscard]] const std::string& name() const;
  /// connect dials `id`: it completes after the handshake's round trip (plus one for hole punching,
  /// plus retransmission time under loss), direct where the NATs allow, otherwise through the best
  /// reachable relay. Errors: node_not_found (no such node), no_route (no path at all, direct or
  /// relayed), connection_failed (the peer is not listening, its backlog is full, it is this node, or
  /// this node is down), timeout (no usable path, or no answer, within the connection timeout).
  asio::awaitable<P2PResult<SimulatorConnection>> connect(const NodeId& id);
  /// connect_by_name discovers `name`, then connects. Errors: as discover and connect.
  asio::awaitable<P2PResult<SimulatorConnection>> connect_by_name(std::string_view name);
  /// listen starts accepting connections; `addr` is only a label (local_addr() returns it, or
  /// "sim://<name>" when empty). Errors: connection_failed (already listening, or the node is down).
  asio::awaitable<P2PResult<SimulatorListener>> listen(std::string_view addr = {});
  /// discover resolves `name` in the world's directory after the configured discovery delay.
  /// Errors: node_not_found (no such name), discovery_failed (this node is down).
  asio::awaitable<P2PResult<NodeId>> discover(std::string_view name);
  /// register_peer adds or replaces `name` -> `id` in the world's directory (every node's nodes
  /// register their own names). Errors: invalid_configuration (empty name).
  [[nodiscard]] P2PResult<void> register_peer(std::string_view name, const NodeId& id);
  /// env returns this node's environment: virtual time, timers, its seeded random stream.
  [[nodiscard]] env::SimEnv& env() const;
  /// world returns the world this node lives in.
  [[nodiscard]] World& world() const;
  /// is_up is false while the node is crashed or removed.
  [[nodiscard]] bool is_up() const;

 private:
  friend struct detail::Access;
  explicit SimulatorP2P(std::shared_ptr<detail::NodeState> node) noexcept : node_(std::move(node)) {}
  std::shared_ptr<detail::NodeState> node_;
};

static_assert(P2PConnection<SimulatorConnection>);
static_assert(P2PStreamConnection<SimulatorConnection>);
static_assert(P2PBiStream<SimulatorBiStream>);
static_assert(P2PListener<SimulatorListener>);
static_assert(P2PSystem<SimulatorP2P>);

}  // namespace moosicbox::p2p::sim
