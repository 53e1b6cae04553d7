// SPDX-License-Identifier: MIT OR Apache-2.0
// internal.hpp: the simulator's internal state: the World's implementation (nodes, directory,
// connections, per-link timing state), connection pairs with their lanes of frames in flight, streams,
// listeners, and the two small tools everything uses (RingQueue, WaitQueue).
//
// Model: a connection is one ConnPair with two ends. Everything one end sends to the other is a
// Frame on a Lane; a lane keeps frames not yet transmitted (no usable route) and frames in flight
// with a non-decreasing arrival time, so one runtime event per lane (for its head) delivers them in
// order without a coroutine or timer per message. Messages, control frames (handshake, credits,
// stream open/reset/stop, close) and each stream half have their own lane, which is what keeps
// streams free of head-of-line blocking between each other and the message API.
// Layer: sim (internal). Single-threaded.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "moosicbox/p2p/core/assert.hpp"
#include "moosicbox/p2p/sim/simulator.hpp"
#include "moosicbox/p2p/sim/world.hpp"

namespace moosicbox::p2p::sim::detail {

using EventId = env::SimRuntime::EventId;
inline constexpr EventId kNoEvent = ~EventId{0};

/// kMessageOverhead is added to every message in window accounting, so empty messages are bounded too.
inline constexpr std::size_t kMessageOverhead = 64;
/// kPacketPayloadMax and kPacketOverhead turn a frame into packets for loss and bandwidth: a QUIC
/// packet carries about 1200 bytes and costs about 48 more (IP, UDP, QUIC header, AEAD tag).
inline constexpr std::size_t kPacketPayloadMax = 1200;
inline constexpr std::size_t kPacketOverhead = 48;
/// kFrameHeader is the framing a frame adds (type, length, stream id).
inline constexpr std::size_t kFrameHeader = 8;
/// kStreamSegmentMax is the largest piece a stream write is cut into.
inline constexpr std::size_t kStreamSegmentMax = 16 * 1024;
/// kInitialRto is the retransmission timeout before a round trip was measured (QUIC's initial PTO
/// with its 333 ms initial RTT is about 1 s).
inline constexpr Duration kInitialRto = std::chrono::seconds(1);
/// kAckDelay is the peer's maximum ACK delay, part of every retransmission timeout.
inline constexpr Duration kAckDelay = std::chrono::milliseconds(25);
/// kLossesMax bounds the retransmissions drawn for one frame on one link.
inline constexpr std::uint32_t kLossesMax = 64;

// ---- RingQueue ------------------------------------------------------------------------------------------

/// RingQueue is a FIFO on a power-of-two ring that grows and never shrinks: after warm-up, pushing and
/// popping never allocate. T must be default-constructible and movable.
template <class T>
class RingQueue {
 public:
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] T& front() noexcept {
    MOOSICBOX_P2P_ASSERT(size_ > 0);
    return buf_[head_];
  }
  [[nodiscard]] T& back() noexcept {
    MOOSICBOX_P2P_ASSERT(size_ > 0);
    return buf_[(head_ + size_ - 1) & (buf_.size() - 1)];
  }
  [[nodiscard]] T& operator[](std::size_t i) noexcept { return buf_[(head_ + i) & (buf_.size() - 1)]; }
  void push_back(T&& v) {
    if (size_ == buf_.size()) grow();
    buf_[(head_ + size_) & (buf_.size() - 1)] = std::move(v);
    ++size_;
  }
  T pop_front() {
    MOOSICBOX_P2P_ASSERT(size_ > 0);
    T v = std::move(buf_[head_]);
    buf_[head_] = T{};
    head_ = (head_ + 1) & (buf_.size() - 1);
    --size_;
    return v;
  }
  void clear() {
    while (size_ > 0) (void)pop_front();
    head_ = 0;
  }
  /// release frees the storage too (for queues that will not be used again).
  void release() {
    clear();
    std::vector<T>().swap(buf_);
  }

 private:
  void grow() {
    std::vector<T> bigger(buf_.empty() ? 8 : buf_.size() * 2);
    for (std::size_t i = 0; i < size_; ++i) bigger[i] = std::move((*this)[i]);
    buf_ = std::move(bigger);
    head_ = 0;
  }
  std::vector<T> buf_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

// ---- WaitQueue ------------------------------------------------------------------------------------------

/// WaitQueue suspends coroutines until notified (FIFO), a deadline passes, or their operation is
/// cancelled. Waiters re-check their condition after waking: a wake-up is a hint, never a value.
/// Whoever waits must keep the queue's owner alive (every API call holds its handle).
class WaitQueue {
 public:
  enum class Wake : std::uint8_t { notified, cancelled, timed_out };

  explicit WaitQueue(env::SimRuntime& rt) noexcept : rt_(&rt) {}
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;
  ~WaitQueue() { notify_all(); }

  /// wait suspends until notify_one/notify_all, `deadline`, or cancellation.
  asio::awaitable<Wake> wait(TimePoint deadline = kTimePointMax);
  /// notify_one wakes the oldest waiter.
  void notify_one();
  /// notify_all wakes every waiter.
  void notify_all();
  [[nodiscard]] bool empty() const noexcept { return waiters_.empty(); }

 private:
  struct Waiter {
    std::uint64_t token;
    env::SimRuntime::ParkId park;
    EventId deadline;
  };
  env::SimRuntime* rt_;
  std::vector<Waiter> waiters_;
  std::uint64_t next_token_ = 0;
};

// ---- routes and links ------------------------------------------------------------------------------------

/// Hop is one link of a route, with extra delay before it (a relay's forwarding time).
struct Hop {
  NetworkGraph::LinkId link = 0;
  Duration extra{};
};

/// Route is how a connection's two ends reach each other, in both directions.
struct Route {
  PathKind kind = PathKind::direct;
  std::optional<NodeId> relay;
  std::vector<Hop> hops[2];  // [0] dialer -> acceptor, [1] acceptor -> dialer
  Duration latency[2]{};
  Duration rtt{};
  Duration rto{};
  Duration punch{};  // extra handshake time for hole punching
};

/// LinkState is the dynamic state of one directed link: when its transmitter is free again, and its
/// random stream for jitter and loss (derived from the root seed and the link's endpoint names).
struct LinkState {
  TimePoint busy_until{};
  env::Rng rng{0};
  bool seeded = false;
};

// ---- frames and lanes --------------------------------------------------------------------------------

enum class FrameKind : std::uint8_t {
  message,         // data: one message
  close,           // the sender closed the connection (after everything it sent)
  initial,         // handshake: the dialer's first flight
  accept,          // handshake: the acceptor took the connection
  refuse,          // handshake: nobody listens (or the backlog is full)
  message_credit,  // value: message-window bytes the receiver consumed
  stream_open,     // stream: the sender opened it
  stream_data,     // stream, data
  stream_fin,      // stream: end of data
  stream_reset,    // stream, value: the sender aborted its half with this code
  stream_stop,     // stream, value: the receiver asks the sender to stop with this code
  stream_credit,   // stream, value: new flow-control limit (absolute offset)
  streams_credit,  // value: more streams the peer may open
};

struct Frame {
  TimePoint arrival{};
  TimePoint sent{};
  Bytes data;
  std::uint64_t stream = 0;
  std::uint64_t value = 0;
  FrameKind kind = FrameKind::message;
  bool retransmit = false;  // lost with a broken path: it costs a retransmission timeout
};

struct ConnPair;

enum class LaneKind : std::uint8_t { messages, control, stream };

/// Lane is one ordered flow of frames in one direction of a connection.
struct Lane {
  Lane(ConnPair* p, std::uint8_t d, LaneKind k, std::uint64_t s = 0) noexcept : pair(p), dir(d), kind(k), stream(s) {}
  Lane(const Lane&) = delete;
  Lane& operator=(const Lane&) = delete;
  ~Lane();
  [[nodiscard]] bool idle() const noexcept { return pending.empty() && in_flight.empty(); }
  void cancel_event() noexcept;
  void clear() noexcept;

  ConnPair* pair;
  std::uint8_t dir;  // the sending side
  LaneKind kind;
  std::uint64_t stream;
  RingQueue<Frame> pending;    // accepted but not transmitted: no usable route
  RingQueue<Frame> in_flight;  // transmitted; arrival times never decrease
  TimePoint last_arrival{};
  EventId event = kNoEvent;
};

// ---- streams -------------------------------------------------------------------------------------------

/// StreamHalf is the data flowing from side `dir` to the other side, with both sides' views.
struct StreamHalf {
  StreamHalf(env::SimRuntime& rt, ConnPair* pair, std::uint8_t dir, std::uint64_t id, std::uint64_t window) noexcept
      : credit_limit(window), writers(rt), credit_granted(window), readers(rt), lane(pair, dir, LaneKind::stream, id) {}
  [[nodiscard]] bool send_done() const noexcept { return fin_sent || reset_sent || stop_received; }
  [[nodiscard]] bool recv_done() const noexcept { return eof_read || reset_arrived || stopped; }

  // The sender's view.
  std::uint64_t credit_limit;  // the receiver allows bytes up to this offset
  std::uint64_t sent_offset = 0;
  bool fin_sent = false;
  bool reset_sent = false;
  std::uint64_t reset_code = 0;
  bool stop_received = false;
  std::uint64_t stop_code = 0;
  WaitQueue writers;
  // The receiver's view.
  RingQueue<Bytes> segments;
  std::size_t head_offset = 0;
  bool fin_arrived = false;
  bool eof_read = false;
  bool reset_arrived = false;
  std::uint64_t reset_code_in = 0;
  bool stopped = false;
  std::uint64_t stop_code_sent = 0;
  std::uint64_t consumed = 0;
  std::uint64_t credit_granted;
  WaitQueue readers;
  Lane lane;
};

struct Stream {
  Stream(env::SimRuntime& rt, ConnPair* pair, std::uint64_t stream_id, std::uint64_t window) noexcept
      : id(stream_id),
        initiator(static_cast<std::uint8_t>(stream_id & 1)),
        half{StreamHalf(rt, pair, 0, stream_id, window), StreamHalf(rt, pair, 1, stream_id, window)} {}
  std::uint64_t id;
  std::uint8_t initiator;
  StreamHalf half[2];
  bool handle[2] = {false, false};
  bool known = false;   // the acceptor side learned of it
  bool queued = false;  // waiting in the acceptor's accept queue
  bool slot_released = false;
};

// ---- nodes, listeners, ends ---------------------------------------------------------------------------

struct WorldImpl;
struct ListenerState;

struct NodeState : std::enable_shared_from_this<NodeState> {
  NodeState(WorldImpl& w, NodeId node_id, std::string node_name, env::SimEnv node_env)
      : world(&w), id(node_id), name(std::move(node_name)), env(std::move(node_env)) {}
  WorldImpl* world;
  NodeId id;
  std::string name;
  env::SimEnv env;
  ListenerState* listener = nullptr;
  bool crashed = false;
  bool removed = false;
  [[nodiscard]] bool up() const noexcept { return !crashed && !removed; }
};

/// EndRef is the shared token behind every handle of one side of a connection: its destruction (the
/// last SimulatorConnection or SimulatorBiStream of that side went away) closes the side.
struct EndRef {
  EndRef(std::shared_ptr<ConnPair> p, std::uint8_t s) noexcept : pair(std::move(p)), side(s) {}
  EndRef(const EndRef&) = delete;
  EndRef& operator=(const EndRef&) = delete;
  ~EndRef();
  std::shared_ptr<ConnPair> pair;
  std::uint8_t side;
};

struct ListenerState {
  ListenerState(WorldImpl& w, std::shared_ptr<NodeState> n, std::string a);
  ListenerState(const ListenerState&) = delete;
  ListenerState& operator=(const ListenerState&) = delete;
  ~ListenerState() { close("closing the listener"); }
  void close(std::string_view reason);

  WorldImpl* world;
  std::shared_ptr<NodeState> node;
  std::string addr;
  RingQueue<std::shared_ptr<EndRef>> backlog;
  WaitQueue waiters;
  bool closed = false;
  std::string close_reason;
};

struct ListenerRef {
  explicit ListenerRef(std::shared_ptr<ListenerState> s) noexcept : st(std::move(s)) {}
  ListenerRef(const ListenerRef&) = delete;
  ListenerRef& operator=(const ListenerRef&) = delete;
  ~ListenerRef() { st->close("closing the listener"); }
  std::shared_ptr<ListenerState> st;
};

struct Inbound {
  Bytes data;
  Duration latency{};
};

/// End is one side of a connection.
struct End {
  explicit End(env::SimRuntime& rt) noexcept
      : recv_waiters(rt),
        send_waiters(rt),
        close_waiters(rt),
        connect_waiters(rt),
        accept_waiters(rt),
        open_waiters(rt) {}

  std::shared_ptr<NodeState> node;
  bool established = false;
  bool local_closed = false;     // close() or the last handle dropped
  bool peer_closed = false;      // the peer's close arrived
  bool close_delivered = false;  // this side's close reached the peer
  bool dead = false;             // this side's node crashed: nothing reaches it any more
  std::optional<P2PError> error;
  RingQueue<Inbound> inbox;
  std::uint64_t window_used = 0;          // as sender: message cost not yet credited back
  std::uint64_t consumed_uncredited = 0;  // as receiver: message cost read but not yet credited
  std::uint64_t next_stream_index = 0;
  std::uint64_t streams_opened = 0;
  std::uint64_t streams_allowed = 0;
  std::uint64_t peer_streams_known = 0;
  RingQueue<std::uint64_t> accept_queue;
  WaitQueue recv_waiters;
  WaitQueue send_waiters;
  WaitQueue close_waiters;
  WaitQueue connect_waiters;
  WaitQueue accept_waiters;
  WaitQueue open_waiters;
  std::uint64_t messages_sent = 0;
  std::uint64_t messages_received = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  Duration latency_sum{};
};

/// ConnPair is one connection: both ends, their lanes, streams and route.
struct ConnPair : std::enable_shared_from_this<ConnPair> {
  ConnPair(WorldImpl& w, std::uint64_t conn_id, std::shared_ptr<NodeState> dialer, std::shared_ptr<NodeState> acceptor);
  ConnPair(const ConnPair&) = delete;
  ConnPair& operator=(const ConnPair&) = delete;
  ~ConnPair();

  // Sending.
  void push(Lane& lane, Frame&& frame);
  void transmit(Lane& lane, Frame&& frame);
  void schedule(Lane& lane);
  void on_lane_due(Lane& lane);
  void deliver(std::uint8_t dir, Frame&& frame);
  template <class F>
  void for_each_lane(std::uint8_t dir, F&& f);
  [[nodiscard]] TimePoint latest_arrival(std::uint8_t dir);
  void push_control(std::uint8_t from, FrameKind kind, std::uint64_t stream = 0, std::uint64_t value = 0);

  // Lifecycle.
  void start_handshake();
  void handle_initial();
  void revalidate();
  void pull_back_all();
  void flush_all();
  void fail(const P2PError& error);
  void crash_side(std::uint8_t side);
  void close_side(std::uint8_t side);
  void release(std::uint8_t side);
  void wake_side(std::uint8_t side);
  [[nodiscard]] std::optional<P2PError> send_error(std::uint8_t side) const;
  [[nodiscard]] std::optional<P2PError> recv_error(std::uint8_t side) const;
  [[nodiscard]] bool connected(std::uint8_t side) const noexcept;
  [[nodiscard]] std::uint64_t message_window() const noexcept;
  void consumed_message(std::uint8_t side, std::uint64_t cost);

  // Streams.
  [[nodiscard]] Stream* find_stream(std::uint64_t id);
  Stream& open_stream(std::uint8_t side);
  void stream_known(std::uint8_t side, std::uint64_t id);
  void stream_frame(std::uint8_t dir, Frame&& frame);
  void check_stream_closed(Stream& s);
  void stream_reset(std::uint8_t side, Stream& s, std::uint64_t code);
  void stream_stop(std::uint8_t side, Stream& s, std::uint64_t code);
  void stream_consumed(std::uint8_t side, Stream& s, std::size_t n);
  void schedule_reap();
  void reap();
  [[nodiscard]] std::optional<P2PError> stream_send_error(std::uint8_t side, const StreamHalf& out) const;

  [[nodiscard]] std::uint8_t peer(std::uint8_t side) const noexcept { return static_cast<std::uint8_t>(1 - side); }
  void trace_line(std::string_view what);

  WorldImpl* world;
  std::uint64_t id;
  std::size_t registry_index = 0;
  End end[2];
  Lane messages[2];
  Lane control[2];
  std::map<std::uint64_t, std::unique_ptr<Stream>> streams;
  std::optional<Route> route;
  bool route_usable = false;
  bool failed = false;
  bool refused = false;
  EventId stall_event = kNoEvent;
  EventId handshake_event = kNoEvent;
  EventId peer_lost_event = kNoEvent;
  EventId reap_event = kNoEvent;
  TimePoint established_at{};
};

// ---- the world -------------------------------------------------------------------------------------------

struct WorldImpl {
  WorldImpl(World& w, std::uint64_t seed, NetworkConfig cfg, SimLimits lim);
  WorldImpl(const WorldImpl&) = delete;
  WorldImpl& operator=(const WorldImpl&) = delete;
  ~WorldImpl();

  [[nodiscard]] NodeState* find(const NodeId& id) const;
  [[nodiscard]] std::optional<Route> compute_route(const NodeState& a, const NodeState& b, Reach reach) const;
  [[nodiscard]] bool route_valid(const Route& r, const NodeState& a, const NodeState& b) const;
  [[nodiscard]] TimePoint transmit_time(const std::vector<Hop>& hops, std::size_t wire_bytes, Duration rto);
  LinkState& link_state(NetworkGraph::LinkId link);
  void on_topology_change();
  void register_pair(ConnPair& p);
  void unregister_pair(ConnPair& p) noexcept;
  [[nodiscard]] std::string_view node_name(const NodeState& n) const noexcept { return n.name; }

  World* world;
  NetworkConfig config;
  SimLimits limits;
  NetworkGraph graph;
  std::vector<std::shared_ptr<NodeState>> nodes;
  std::unordered_map<NodeId, NodeState*> by_id;
  std::unordered_map<std::string, NodeId> directory;
  std::vector<ConnPair*> pairs;
  std::vector<LinkState> links;
  std::uint64_t next_pair_id = 1;
  std::uint64_t delivered = 0;
  bool shutting_down = false;
  // Declared last so it is destroyed first: the coroutines it still holds run their destructors
  // while the nodes and connections they refer to exist.
  env::SimRuntime rt;
};

/// Access builds and opens the public handles for the simulator's code.
struct Access {
  static SimulatorConnection connection(std::shared_ptr<EndRef> end) { return SimulatorConnection(std::move(end)); }
  static SimulatorBiStream stream(std::shared_ptr<EndRef> end, std::uint64_t id) {
    return SimulatorBiStream(std::move(end), id);
  }
  static SimulatorListener listener(std::shared_ptr<ListenerRef> ref) { return SimulatorListener(std::move(ref)); }
  static SimulatorP2P system(std::shared_ptr<NodeState> node) { return SimulatorP2P(std::move(node)); }
  static const std::shared_ptr<NodeState>& node(const SimulatorP2P& s) { return s.node_; }
};

/// wire_size returns the bytes a frame occupies on the wire, and through `packets` how many packets.
[[nodiscard]] std::size_t wire_size(const Frame& frame, std::size_t& packets) noexcept;

}  // namespace moosicbox::p2p::sim::detail
