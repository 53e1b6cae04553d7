// SPDX-License-Identifier: MIT OR Apache-2.0
// mem_transport.cpp: the in-memory transport's state machine. Data moves writer queue -> in flight
// (a delivery event one latency later, after serialisation when bandwidth is limited) -> reader
// buffer; the writer's credit returns one latency after the reader consumed the bytes.
// Layer: tests. Single-threaded on the SimRuntime's io_context.
#include "router/support/mem_transport.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <vector>

#include "moosicbox/p2p/core/assert.hpp"
#include "router/async_event.hpp"

namespace moosicbox::p2p::testing {

using router::detail::AsyncEvent;

namespace mem {

struct Pipe {
  explicit Pipe(asio::any_io_executor ex) : reader_wake(ex), writer_wake(ex) {}
  // Writer side.
  Bytes send_buf;
  std::size_t send_pos = 0;
  std::uint64_t written = 0;
  std::uint64_t consumed_known = 0;
  bool fin_written = false;
  bool fin_sent = false;
  bool reset_local = false;
  std::optional<std::uint64_t> stop_received;
  std::int32_t priority = 0;
  bool in_pending = false;
  // In flight.
  std::uint64_t in_flight = 0;
  // Reader side.
  Bytes recv_buf;
  std::size_t recv_pos = 0;
  std::uint64_t consumed = 0;
  bool fin_received = false;
  std::optional<std::uint64_t> reset_received;
  bool stopped_local = false;
  AsyncEvent reader_wake;
  AsyncEvent writer_wake;

  [[nodiscard]] std::size_t queued() const noexcept { return send_buf.size() - send_pos; }
  [[nodiscard]] std::size_t unread() const noexcept { return recv_buf.size() - recv_pos; }
  [[nodiscard]] bool has_output() const noexcept {
    return !reset_local && !stop_received && (queued() > 0 || (fin_written && !fin_sent));
  }
  [[nodiscard]] bool fully_read() const noexcept { return fin_received && unread() == 0; }
};

struct Stream {
  std::weak_ptr<Conn> conn;
  std::uint64_t id = 0;
  int opener = 0;
  std::shared_ptr<Pipe> pipes[2];  // pipes[s] carries what side s writes
  bool released = false;
};

struct Direction {
  std::vector<std::shared_ptr<Pipe>> pending;
  bool busy = false;
  std::size_t rr = 0;
};

struct ListenerState {
  explicit ListenerState(asio::any_io_executor ex) : wake(std::move(ex)) {}
  std::deque<std::shared_ptr<Conn>> incoming;
  AsyncEvent wake;
  bool closed = false;
};

struct Net {
  Net(env::SimRuntime& r, MemLinkConfig c) : rt(&r), cfg(c) {}
  env::SimRuntime* rt;
  MemLinkConfig cfg;
  std::map<NodeId, std::shared_ptr<ListenerState>> listeners;
  std::uint64_t buffered = 0;
  std::uint64_t peak = 0;
  std::uint64_t streams_opened = 0;
  std::uint64_t resets = 0;
  std::uint64_t stops = 0;

  void add_buffered(std::uint64_t n) {
    buffered += n;
    peak = std::max(peak, buffered);
  }
  void sub_buffered(std::uint64_t n) {
    MOOSICBOX_P2P_ASSERT(buffered >= n);
    buffered -= n;
  }
};

struct Conn : std::enable_shared_from_this<Conn> {
  Conn(std::shared_ptr<Net> n, const NodeId& a, const NodeId& b)
      : net(std::move(n)),
        ids{a, b},
        accept_wake{AsyncEvent(net->rt->executor()), AsyncEvent(net->rt->executor())},
        open_wake{AsyncEvent(net->rt->executor()), AsyncEvent(net->rt->executor())},
        msg_wake{AsyncEvent(net->rt->executor()), AsyncEvent(net->rt->executor())} {}

  std::shared_ptr<Net> net;
  NodeId ids[2];
  bool closed[2] = {false, false};
  Direction dirs[2];
  std::deque<std::shared_ptr<Stream>> incoming[2];
  AsyncEvent accept_wake[2];
  std::size_t open_count[2] = {0, 0};
  AsyncEvent open_wake[2];
  std::uint64_t next_stream[2] = {0, 0};
  std::deque<Bytes> messages[2];
  AsyncEvent msg_wake[2];
  std::vector<std::weak_ptr<Stream>> streams;
  ConnectionStats stats[2];
  TimePoint opened_at{};

  [[nodiscard]] Duration latency() const { return net->cfg.latency; }

  void wake_all(int side) {
    accept_wake[side].notify_all();
    open_wake[side].notify_all();
    msg_wake[side].notify_all();
    for (const auto& w : streams) {
      if (auto s = w.lock()) {
        for (auto& p : s->pipes) {
          p->reader_wake.notify_all();
          p->writer_wake.notify_all();
        }
      }
    }
  }

  void close_side(int side) {
    if (closed[side]) return;
    closed[side] = true;
    incoming[side].clear();
    wake_all(side);
    net->rt->schedule_after(latency(), [self = shared_from_this(), other = 1 - side] {
      self->closed[other] = true;
      self->incoming[other].clear();
      self->wake_all(other);
    });
  }

  void kick(int side, const std::shared_ptr<Pipe>& p) {
    if (!p->in_pending) {
      p->in_pending = true;
      dirs[side].pending.push_back(p);
    }
    pump(side);
  }

  void pump(int side);
  void deliver(const std::shared_ptr<Pipe>& pipe, int side, Bytes chunk, bool fin);
};

void Conn::pump(int side) {
  Direction& d = dirs[side];
  const std::uint64_t bw = net->cfg.bytes_per_second;
  while (!(bw > 0 && d.busy)) {
    // Drop pipes with nothing to send, then take the highest priority, round robin among equals.
    std::erase_if(d.pending, [](const std::shared_ptr<Pipe>& p) {
      if (p->has_output()) return false;
      p->in_pending = false;
      return true;
    });
    if (d.pending.empty() || closed[side]) return;
    std::int32_t top = INT32_MIN;
    for (const auto& p : d.pending) top = std::max(top, p->priority);
    const std::size_t n = d.pending.size();
    std::size_t pick = n;
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t i = (d.rr + k) % n;
      if (d.pending[i]->priority == top) {
        pick = i;
        break;
      }
    }
    MOOSICBOX_P2P_ASSERT(pick < n);
    d.rr = pick + 1;
    std::shared_ptr<Pipe> p = d.pending[pick];
    const std::size_t take = bw > 0 ? std::min(p->queued(), net->cfg.chunk_bytes) : p->queued();
    Bytes chunk(p->send_buf.begin() + static_cast<std::ptrdiff_t>(p->send_pos),
                p->send_buf.begin() + static_cast<std::ptrdiff_t>(p->send_pos + take));
    p->send_pos += take;
    if (p->send_pos == p->send_buf.size()) {
      p->send_buf.clear();
      p->send_pos = 0;
    }
    const bool fin = p->queued() == 0 && p->fin_written && !p->fin_sent;
    if (fin) p->fin_sent = true;
    p->in_flight += take;
    const Duration ser = bw > 0 ? Duration(static_cast<std::int64_t>(take * 1'000'000'000ULL / bw)) : Duration::zero();
    net->rt->schedule_after(ser + latency(), [self = shared_from_this(), p, side, c = std::move(chunk), fin]() mutable {
      self->deliver(p, side, std::move(c), fin);
    });
    if (bw > 0) {
      d.busy = true;
      net->rt->schedule_after(ser, [self = shared_from_this(), side] {
        self->dirs[side].busy = false;
        self->pump(side);
      });
    }
  }
}

void Conn::deliver(const std::shared_ptr<Pipe>& pipe, int side, Bytes chunk, bool fin) {
  Pipe& p = *pipe;
  MOOSICBOX_P2P_ASSERT(p.in_flight >= chunk.size());
  p.in_flight -= chunk.size();
  const int reader = 1 - side;
  if (closed[reader] || p.reset_received || p.stopped_local) {
    net->sub_buffered(chunk.size());
  } else {
    p.recv_buf.insert(p.recv_buf.end(), chunk.begin(), chunk.end());
    stats[reader].bytes_received += chunk.size();
  }
  if (fin) p.fin_received = true;
  p.reader_wake.notify_all();
}

}  // namespace mem

using mem::Conn;
using mem::Pipe;

// ---- MemStream ------------------------------------------------------------------------------------

MemStream& MemStream::operator=(MemStream&& o) noexcept {
  if (this != &o) {
    release();
    s_ = std::move(o.s_);
    side_ = o.side_;
  }
  return *this;
}

MemStream::~MemStream() { release(); }

void MemStream::release() {
  if (!s_) return;
  const Pipe& out = *s_->pipes[side_];
  const Pipe& in = *s_->pipes[1 - side_];
  if (!out.fin_written && !out.reset_local) reset(0);
  if (!in.stopped_local && !in.fully_read() && !in.reset_received) stop(0);
  auto c = s_->conn.lock();
  if (c && side_ != s_->opener && !s_->released) {
    s_->released = true;
    // The opener learns one latency later that it may open another stream (MAX_STREAMS).
    c->net->rt->schedule_after(c->latency(), [c, opener = s_->opener] {
      MOOSICBOX_P2P_ASSERT(c->open_count[opener] > 0);
      --c->open_count[opener];
      c->open_wake[opener].notify_all();
    });
  }
  s_.reset();
}

asio::awaitable<P2PResult<void>> MemStream::write(ByteView data) {
  MOOSICBOX_P2P_ASSERT(s_);
  auto stream = s_;
  const int side = side_;
  Pipe& p = *stream->pipes[side];
  while (true) {
    auto c = stream->conn.lock();
    if (!c || c->closed[side]) co_return fail(P2PError::connection_closed("mem transport"));
    if (p.reset_local) co_return fail(P2PError::cancelled("stream reset locally"));
    if (p.stop_received) co_return fail(P2PError::stream_reset(*p.stop_received));
    MOOSICBOX_P2P_ASSERT(!p.fin_written);
    if (data.empty()) co_return P2PResult<void>{};
    const std::uint64_t window = c->net->cfg.stream_window;
    const std::uint64_t outstanding = p.written - p.consumed_known;
    MOOSICBOX_P2P_ASSERT(outstanding <= window);
    const std::uint64_t credit = window - outstanding;
    if (credit == 0) {
      c.reset();
      if (auto r = co_await p.writer_wake.wait(); !r) co_return r;
      continue;
    }
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(credit, data.size()));
    p.send_buf.insert(p.send_buf.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n));
    p.written += n;
    c->net->add_buffered(n);
    c->stats[side].bytes_sent += n;
    data = data.subspan(n);
    c->kick(side, stream->pipes[side]);
  }
}

asio::awaitable<P2PResult<void>> MemStream::finish() {
  MOOSICBOX_P2P_ASSERT(s_);
  Pipe& p = *s_->pipes[side_];
  auto c = s_->conn.lock();
  if (!c || c->closed[side_]) co_return fail(P2PError::connection_closed("mem transport"));
  if (p.reset_local) co_return fail(P2PError::cancelled("stream reset locally"));
  if (p.stop_received) co_return fail(P2PError::stream_reset(*p.stop_received));
  if (!p.fin_written) {
    p.fin_written = true;
    c->kick(side_, s_->pipes[side_]);
  }
  co_return P2PResult<void>{};
}

void MemStream::reset(std::uint64_t code) {
  MOOSICBOX_P2P_ASSERT(s_);
  auto pipe = s_->pipes[side_];
  Pipe& p = *pipe;
  if (p.reset_local) return;
  if (p.fin_sent && p.queued() == 0 && p.in_flight == 0) return;  // everything delivered: nothing to abort
  auto c = s_->conn.lock();
  p.reset_local = true;
  if (c) c->net->sub_buffered(p.queued());
  p.send_buf.clear();
  p.send_pos = 0;
  p.writer_wake.notify_all();
  if (!c) return;
  c->net->rt->schedule_after(c->latency(), [c, pipe, code] {
    ++c->net->resets;
    if (pipe->reset_received || pipe->fully_read()) return;
    pipe->reset_received = code;
    if (!pipe->stopped_local) c->net->sub_buffered(pipe->unread());
    pipe->recv_buf.clear();
    pipe->recv_pos = 0;
    pipe->reader_wake.notify_all();
  });
}

asio::awaitable<P2PResult<std::size_t>> MemStream::read(std::span<std::byte> buffer) {
  MOOSICBOX_P2P_ASSERT(s_);
  auto stream = s_;
  const int side = side_;
  Pipe& p = *stream->pipes[1 - side];
  while (true) {
    if (p.stopped_local) co_return fail(P2PError::cancelled("stream stopped locally"));
    if (p.reset_received) co_return fail(P2PError::stream_reset(*p.reset_received));
    auto c = stream->conn.lock();
    if (p.unread() > 0) {
      const std::size_t n = std::min(buffer.size(), p.unread());
      std::memcpy(buffer.data(), p.recv_buf.data() + p.recv_pos, n);
      p.recv_pos += n;
      if (p.recv_pos == p.recv_buf.size()) {
        p.recv_buf.clear();
        p.recv_pos = 0;
      }
      p.consumed += n;
      if (c) {
        c->net->sub_buffered(n);
        // The writer's credit returns one latency later (MAX_STREAM_DATA).
        c->net->rt->schedule_after(c->latency(), [pipe = stream->pipes[1 - side], consumed = p.consumed] {
          pipe->consumed_known = std::max(pipe->consumed_known, consumed);
          pipe->writer_wake.notify_all();
        });
      }
      co_return n;
    }
    if (p.fin_received) co_return std::size_t{0};
    if (!c || c->closed[side]) co_return fail(P2PError::connection_closed("mem transport"));
    c.reset();
    if (auto r = co_await p.reader_wake.wait(); !r) co_return fail(std::move(r.error()));
  }
}

void MemStream::stop(std::uint64_t code) {
  MOOSICBOX_P2P_ASSERT(s_);
  auto pipe = s_->pipes[1 - side_];
  Pipe& p = *pipe;
  if (p.stopped_local || p.fully_read() || p.reset_received) return;
  auto c = s_->conn.lock();
  p.stopped_local = true;
  if (c) c->net->sub_buffered(p.unread());
  p.recv_buf.clear();
  p.recv_pos = 0;
  p.reader_wake.notify_all();
  if (!c) return;
  c->net->rt->schedule_after(c->latency(), [c, pipe, code] {
    ++c->net->stops;
    if (pipe->reset_local || pipe->stop_received) return;
    if (pipe->fin_sent && pipe->queued() == 0) return;  // the writer already sent everything
    pipe->stop_received = code;
    c->net->sub_buffered(pipe->queued());
    pipe->send_buf.clear();
    pipe->send_pos = 0;
    pipe->writer_wake.notify_all();
  });
}

std::uint64_t MemStream::id() const { return s_ ? s_->id : 0; }

void MemStream::set_priority(std::int32_t priority) {
  if (s_) s_->pipes[side_]->priority = priority;
}

// ---- MemConnection ------------------------------------------------------------------------------

struct MemConnection::Handle {
  Handle(std::shared_ptr<Conn> conn, int s) : c(std::move(conn)), side(s) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { c->close_side(side); }
  std::shared_ptr<Conn> c;
  int side;
};

MemConnection::MemConnection(std::shared_ptr<mem::Conn> c, int side)
    : h_(std::make_shared<Handle>(std::move(c), side)) {}

asio::awaitable<P2PResult<void>> MemConnection::send(ByteView data) {
  auto h = h_;
  auto& c = *h->c;
  if (c.closed[h->side]) co_return fail(P2PError::connection_closed("mem transport"));
  constexpr std::size_t kMax = std::size_t{1} << 20;
  if (data.size() > kMax) co_return fail(P2PError::message_too_large(data.size(), kMax));
  c.stats[h->side].messages_sent++;
  c.net->rt->schedule_after(c.latency(), [conn = h->c, other = 1 - h->side, m = Bytes(data.begin(), data.end())] {
    if (conn->closed[other]) return;
    conn->messages[other].push_back(m);
    conn->msg_wake[other].notify_all();
  });
  co_return P2PResult<void>{};
}

asio::awaitable<P2PResult<Bytes>> MemConnection::recv() {
  auto h = h_;
  auto& c = *h->c;
  while (true) {
    if (!c.messages[h->side].empty()) {
      Bytes m = std::move(c.messages[h->side].front());
      c.messages[h->side].pop_front();
      c.stats[h->side].messages_received++;
      co_return m;
    }
    if (c.closed[h->side]) co_return fail(P2PError::connection_closed("mem transport"));
    if (auto r = co_await c.msg_wake[h->side].wait(); !r) co_return fail(std::move(r.error()));
  }
}

NodeId MemConnection::remote_node_id() const { return h_->c->ids[1 - h_->side]; }

bool MemConnection::is_connected() const { return !h_->c->closed[h_->side]; }

asio::awaitable<P2PResult<void>> MemConnection::close() {
  h_->c->close_side(h_->side);
  co_return P2PResult<void>{};
}

ConnectionStats MemConnection::stats() const {
  auto s = h_->c->stats[h_->side];
  s.duration = h_->c->net->rt->now() - h_->c->opened_at;
  return s;
}

asio::awaitable<P2PResult<MemStream>> MemConnection::open_bi() {
  auto h = h_;
  auto c = h->c;
  const int side = h->side;
  while (true) {
    if (c->closed[side]) co_return fail(P2PError::connection_closed("mem transport"));
    if (c->open_count[side] < c->net->cfg.streams_max) break;
    if (auto r = co_await c->open_wake[side].wait(); !r) co_return fail(std::move(r.error()));
  }
  auto s = std::make_shared<mem::Stream>();
  s->conn = c;
  s->id = c->next_stream[side]++ * 4 + static_cast<std::uint64_t>(side);
  s->opener = side;
  s->pipes[0] = std::make_shared<Pipe>(c->net->rt->executor());
  s->pipes[1] = std::make_shared<Pipe>(c->net->rt->executor());
  ++c->open_count[side];
  ++c->net->streams_opened;
  std::erase_if(c->streams, [](const std::weak_ptr<mem::Stream>& w) { return w.expired(); });
  c->streams.push_back(s);
  // Streams open in order: the peer learns of this one one latency later, after the earlier ones.
  c->net->rt->schedule_after(c->latency(), [c, s, other = 1 - side] {
    if (c->closed[other]) return;
    c->incoming[other].push_back(s);
    c->accept_wake[other].notify_all();
  });
  co_return MemStream(s, side);
}

asio::awaitable<P2PResult<MemStream>> MemConnection::accept_bi() {
  auto h = h_;
  auto c = h->c;
  const int side = h->side;
  while (true) {
    if (!c->incoming[side].empty()) {
      auto s = std::move(c->incoming[side].front());
      c->incoming[side].pop_front();
      co_return MemStream(std::move(s), side);
    }
    if (c->closed[side]) co_return fail(P2PError::connection_closed("mem transport"));
    if (auto r = co_await c->accept_wake[side].wait(); !r) co_return fail(std::move(r.error()));
  }
}

// ---- MemListener and MemNetwork -----------------------------------------------------------------

asio::awaitable<P2PResult<MemConnection>> MemListener::accept() {
  auto net = net_;
  const auto it = net->listeners.find(node_);
  if (it == net->listeners.end()) co_return fail(P2PError::connection_closed("listener"));
  auto st = it->second;
  while (true) {
    if (!st->incoming.empty()) {
      auto c = std::move(st->incoming.front());
      st->incoming.pop_front();
      co_return MemConnection(std::move(c), 1);
    }
    if (st->closed) co_return fail(P2PError::connection_closed("listener closed"));
    if (auto r = co_await st->wake.wait(); !r) co_return fail(std::move(r.error()));
  }
}

void MemListener::close() {
  const auto it = net_->listeners.find(node_);
  if (it == net_->listeners.end()) return;
  it->second->closed = true;
  it->second->wake.notify_all();
}

MemNetwork::MemNetwork(env::SimRuntime& rt, MemLinkConfig config) : net_(std::make_shared<mem::Net>(rt, config)) {}

MemNetwork::~MemNetwork() {
  for (auto& [id, l] : net_->listeners) {
    l->closed = true;
    l->incoming.clear();
  }
}

P2PResult<MemListener> MemNetwork::listen(const NodeId& node) {
  if (net_->listeners.contains(node)) return fail(P2PError::connection_failed("already listening"));
  net_->listeners.emplace(node, std::make_shared<mem::ListenerState>(net_->rt->executor()));
  return MemListener(net_, node);
}

asio::awaitable<P2PResult<MemConnection>> MemNetwork::connect(NodeId client, NodeId server) {
  auto net = net_;
  const auto it = net->listeners.find(server);
  if (it == net->listeners.end() || it->second->closed) {
    co_return fail(P2PError::connection_failed("nothing listens there"));
  }
  auto c = std::make_shared<Conn>(net, client, server);
  c->opened_at = net->rt->now();
  net->rt->schedule_after(net->cfg.latency, [st = it->second, c] {
    if (st->closed) return;
    st->incoming.push_back(c);
    st->wake.notify_all();
  });
  env::SimEnv::Timer timer(*net->rt);
  if (auto r = co_await timer.wait_until(net->rt->now() + 2 * net->cfg.latency); !r)
    co_return fail(std::move(r.error()));
  co_return MemConnection(std::move(c), 0);
}

std::uint64_t MemNetwork::buffered_bytes() const noexcept { return net_->buffered; }
std::uint64_t MemNetwork::peak_buffered_bytes() const noexcept { return net_->peak; }
std::uint64_t MemNetwork::streams_opened() const noexcept { return net_->streams_opened; }
std::uint64_t MemNetwork::resets_seen() const noexcept { return net_->resets; }
std::uint64_t MemNetwork::stops_seen() const noexcept { return net_->stops; }

}  // namespace moosicbox::p2p::testing
