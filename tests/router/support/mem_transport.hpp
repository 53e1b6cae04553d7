// SPDX-License-Identifier: MIT OR Apache-2.0
// mem_transport.hpp: an in-memory transport that satisfies P2PStreamConnection on SimRuntime
// virtual time, for testing the router's drivers without a backend. It models what the router
// relies on: per-stream flow control (a bounded window, updates arriving one latency later), FIN,
// RESET_STREAM and STOP_SENDING with codes, stream limits (open_bi waits), link latency and an
// optional bandwidth shared by the streams of a direction, scheduled by priority then round robin,
// and per-operation cancellation of every wait.
// Layer: tests. Single-threaded on the SimRuntime's io_context.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "moosicbox/p2p/concepts.hpp"
#include "moosicbox/p2p/core/node_id.hpp"
#include "moosicbox/p2p/env/sim_env.hpp"
#include "moosicbox/p2p/streams.hpp"

namespace moosicbox::p2p::testing {

/// MemLinkConfig describes the simulated link between two endpoints.
struct MemLinkConfig {
  Duration latency = std::chrono::milliseconds(1);  ///< one way
  std::uint64_t bytes_per_second = 0;               ///< shared by a direction's streams; 0: unlimited
  std::size_t stream_window = 256 * 1024;           ///< receive window of each stream direction
  std::size_t chunk_bytes = 16 * 1024;              ///< transmission unit when bandwidth is limited
  std::size_t streams_max = 128;                    ///< streams one side may have open at once
};

namespace mem {
struct Net;
struct Conn;
struct Stream;
}  // namespace mem

/// MemStream is one end of a bidirectional stream.
class MemStream {
 public:
  MemStream(std::shared_ptr<mem::Stream> s, int side) : s_(std::move(s)), side_(side) {}
  MemStream(MemStream&& o) noexcept : s_(std::move(o.s_)), side_(o.side_) {}
  MemStream& operator=(MemStream&& o) noexcept;
  MemStream(const MemStream&) = delete;
  MemStream& operator=(const MemStream&) = delete;
  ~MemStream();

  asio::awaitable<P2PResult<void>> write(ByteView data);
  asio::awaitable<P2PResult<void>> finish();
  void reset(std::uint64_t code);
  asio::awaitable<P2PResult<std::size_t>> read(std::span<std::byte> buffer);
  void stop(std::uint64_t code);
  [[nodiscard]] std::uint64_t id() const;
  void set_priority(std::int32_t priority);

 private:
  void release();
  std::shared_ptr<mem::Stream> s_;
  int side_;
};

/// MemConnection is one end of a connection (a copyable handle; the last handle dropped closes it).
class MemConnection {
 public:
  using NodeId = p2p::NodeId;
  using BiStream = MemStream;

  MemConnection(std::shared_ptr<mem::Conn> c, int side);

  asio::awaitable<P2PResult<void>> send(ByteView data);
  asio::awaitable<P2PResult<Bytes>> recv();
  [[nodiscard]] NodeId remote_node_id() const;
  [[nodiscard]] bool is_connected() const;
  asio::awaitable<P2PResult<void>> close();
  [[nodiscard]] ConnectionStats stats() const;
  asio::awaitable<P2PResult<MemStream>> open_bi();
  asio::awaitable<P2PResult<MemStream>> accept_bi();

 private:
  struct Handle;
  std::shared_ptr<Handle> h_;
};

/// MemListener hands out connections dialed to its node.
class MemListener {
 public:
  using Connection = MemConnection;
  explicit MemListener(std::shared_ptr<mem::Net> net, NodeId node) : net_(std::move(net)), node_(node) {}
  asio::awaitable<P2PResult<MemConnection>> accept();
  [[nodiscard]] std::string local_addr() const { return "mem:" + node_.fmt_short(); }
  /// close ends pending and future accepts with connection_closed.
  void close();

 private:
  std::shared_ptr<mem::Net> net_;
  NodeId node_;
};

/// MemNetwork creates listeners and connections on one SimRuntime.
class MemNetwork {
 public:
  MemNetwork(env::SimRuntime& rt, MemLinkConfig config = {});
  ~MemNetwork();

  /// listen makes `node` accept connections. Errors: connection_failed when it already listens.
  P2PResult<MemListener> listen(const NodeId& node);
  /// connect dials `server` as `client` (one round trip). Errors: connection_failed when nothing
  /// listens there.
  asio::awaitable<P2PResult<MemConnection>> connect(NodeId client, NodeId server);

  /// buffered_bytes returns the bytes the transport holds right now (queued, in flight, unread).
  [[nodiscard]] std::uint64_t buffered_bytes() const noexcept;
  /// peak_buffered_bytes returns the largest buffered_bytes() seen.
  [[nodiscard]] std::uint64_t peak_buffered_bytes() const noexcept;
  /// streams_opened returns how many streams were opened so far.
  [[nodiscard]] std::uint64_t streams_opened() const noexcept;
  /// resets_seen and stops_seen count RESET_STREAM and STOP_SENDING frames delivered.
  [[nodiscard]] std::uint64_t resets_seen() const noexcept;
  [[nodiscard]] std::uint64_t stops_seen() const noexcept;

 private:
  std::shared_ptr<mem::Net> net_;
};

static_assert(P2PStreamConnection<MemConnection>);
static_assert(P2PListener<MemListener>);

}  // namespace moosicbox::p2p::testing
