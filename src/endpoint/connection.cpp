// SPDX-License-Identifier: MIT OR Apache-2.0
// connection.cpp: the Connection handle: message framing (a QUIC varint length, then the payload, on
// one unidirectional stream per direction), streams, datagrams, stats and graceful close.
// Layer: endpoint. Endpoint executor only.
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "endpoint/handles.hpp"
#include "moosicbox/p2p/core/assert.hpp"
#include "moosicbox/p2p/core/spawn.hpp"

namespace moosicbox::p2p {

using namespace boost::asio::experimental::awaitable_operators;

namespace detail {

namespace {

// A message header is a QUIC variable-length integer (RFC 9000 §16): 1, 2, 4 or 8 bytes.
std::size_t encode_varint(std::uint64_t v, std::span<std::byte, 8> out) noexcept {
  std::size_t n = 0;
  std::uint8_t prefix = 0;
  if (v < (1U << 6)) {
    n = 1;
  } else if (v < (1U << 14)) {
    n = 2;
    prefix = 0x40;
  } else if (v < (1ULL << 30)) {
    n = 4;
    prefix = 0x80;
  } else {
    n = 8;
    prefix = 0xc0;
  }
  for (std::size_t i = 0; i < n; ++i) {
    out[n - 1 - i] = static_cast<std::byte>((v >> (8 * i)) & 0xffU);
  }
  out[0] |= static_cast<std::byte>(prefix);
  return n;
}

std::size_t varint_size(std::byte first) noexcept { return std::size_t{1} << (std::to_integer<unsigned>(first) >> 6); }

std::uint64_t decode_varint(std::span<const std::byte> in) noexcept {
  std::uint64_t v = std::to_integer<std::uint64_t>(in[0]) & 0x3fU;
  for (std::size_t i = 1; i < in.size(); ++i) v = (v << 8) | std::to_integer<std::uint64_t>(in[i]);
  return v;
}

P2PError closed_here() { return P2PError::connection_closed("this node"); }

// protocol_violation closes the connection because the peer broke the message framing.
P2PError protocol_violation(ConnState& c, std::string why) {
  P2PError e = P2PError::protocol(why);
  c.msg_error = e;
  c.quic->close(kAppErrorProtocol, why);
  c.ep->schedule_flush(c);
  c.wake_all();
  return e;
}

// kMessageReadChunk is how much of the message stream one read pulls: many small messages per
// read, instead of a few engine calls per message.
constexpr std::size_t kMessageReadChunk = 64 * 1024;

// fill_messages reads more of the message stream into msg_buf. Returns false when the stream
// failed (reset: a protocol violation, reported through msg_error) or nothing could be read.
bool fill_messages(ConnState& c, bool& fin) {
  fin = false;
  if (c.msg_buf_pos > 0) {
    c.msg_buf.erase(c.msg_buf.begin(), c.msg_buf.begin() + static_cast<std::ptrdiff_t>(c.msg_buf_pos));
    c.msg_buf_pos = 0;
  }
  const std::size_t old = c.msg_buf.size();
  // Grow by what is there to read, not by a whole chunk: resizing writes every byte it adds, and
  // an idle connection should not hold a chunk of written memory.
  c.msg_buf.resize(old + std::min(kMessageReadChunk, c.quic->stream_readable_size(*c.msg_in)));
  auto r = c.quic->stream_read(*c.msg_in, std::span(c.msg_buf).subspan(old));
  if (!r) {
    c.msg_buf.resize(old);
    if (r.error().code() == P2PErrc::stream_reset) (void)protocol_violation(c, "the peer reset its message stream");
    return false;
  }
  c.msg_buf.resize(old + r->size);
  fin = r->fin;
  return r->size > 0;
}

// kMessageBufferKept is the capacity an emptied message buffer keeps; a larger one is freed, so a
// connection that once received a burst does not hold its buffer while idle.
constexpr std::size_t kMessageBufferKept = 4 * 1024;

void release_message_buffer(ConnState& c) {
  c.msg_buf_pos = 0;
  if (c.msg_buf.capacity() > kMessageBufferKept) {
    Bytes().swap(c.msg_buf);
  } else {
    c.msg_buf.clear();
  }
}

// take_message returns the next complete message from the message stream, nullopt when none is
// complete yet. Reading returns flow-control credit, so the caller flushes afterwards.
std::optional<P2PResult<Bytes>> take_message(ConnState& c) {
  if (c.msg_error) return fail(*c.msg_error);
  if (!c.msg_in) return std::nullopt;
  auto buffered = [&] { return c.msg_buf.size() - c.msg_buf_pos; };
  bool fin = false;
  if (!c.msg_length) {
    // The header: a QUIC varint, 1 to 8 bytes; its first byte says how long it is.
    if (buffered() == 0 && !c.msg_in_finished) (void)fill_messages(c, fin);
    if (c.msg_error) return fail(*c.msg_error);
    if (buffered() == 0) {
      if (fin) c.msg_in_finished = true;
      return std::nullopt;
    }
    const std::size_t hlen = varint_size(c.msg_buf[c.msg_buf_pos]);
    if (buffered() < hlen && !c.msg_in_finished) (void)fill_messages(c, fin);
    if (c.msg_error) return fail(*c.msg_error);
    if (buffered() < hlen) {
      if (fin || c.msg_in_finished)
        return fail(protocol_violation(c, "the message stream ended inside a message header"));
      return std::nullopt;
    }
    const std::uint64_t len = decode_varint(std::span(c.msg_buf).subspan(c.msg_buf_pos, hlen));
    const std::size_t max = c.ep->config.limits.max_message_size;
    if (len > max) return fail(protocol_violation(c, fmt::format("message of {} bytes exceeds max {}", len, max)));
    c.msg_buf_pos += hlen;
    c.msg_length = static_cast<std::size_t>(len);
    c.msg_body.clear();
  }
  const std::size_t len = *c.msg_length;
  if (c.msg_body.empty()) {
    if (buffered() < len && !c.msg_in_finished) (void)fill_messages(c, fin);
    if (c.msg_error) return fail(*c.msg_error);
    if (buffered() >= len) {
      // Fast path: the whole message is buffered.
      const auto begin = c.msg_buf.begin() + static_cast<std::ptrdiff_t>(c.msg_buf_pos);
      Bytes out(begin, begin + static_cast<std::ptrdiff_t>(len));
      c.msg_buf_pos += len;
      if (c.msg_buf_pos == c.msg_buf.size()) {
        release_message_buffer(c);
      }
      c.msg_length.reset();
      return P2PResult<Bytes>(std::move(out));
    }
    if (fin || c.msg_in_finished) return fail(protocol_violation(c, "the message stream ended inside a message"));
    // A large message: take what is buffered and read the rest straight into it.
    c.msg_body.reserve(std::min<std::size_t>(len, 1 << 20));
    c.msg_body.assign(c.msg_buf.begin() + static_cast<std::ptrdiff_t>(c.msg_buf_pos), c.msg_buf.end());
    release_message_buffer(c);
  }
  while (c.msg_body.size() < len) {
    const std::size_t old = c.msg_body.size();
    // What is there, at most the rest of the message: a peer announcing a large message and
    // sending little of it makes this side write (and keep resident) only what arrived.
    const std::size_t want =
        std::min<std::size_t>({len - old, std::size_t{256} * 1024, c.quic->stream_readable_size(*c.msg_in)});
    c.msg_body.resize(old + want);
    auto r = c.quic->stream_read(*c.msg_in, std::span(c.msg_body).subspan(old, want));
    if (!r) {
      c.msg_body.resize(old);
      if (r.error().code() == P2PErrc::stream_reset) {
        return fail(protocol_violation(c, "the peer reset its message stream"));
      }
      return std::nullopt;
    }
    c.msg_body.resize(old + r->size);
    if (r->fin && c.msg_body.size() < len) {
      return fail(protocol_violation(c, "the message stream ended inside a message"));
    }
    if (r->size == 0) return std::nullopt;
  }
  Bytes out = std::move(c.msg_body);
  c.msg_body = Bytes{};
  c.msg_length.reset();
  return P2PResult<Bytes>(std::move(out));
}

// try_write writes what the stream accepts now; returns the bytes accepted.
P2PResult<std::size_t> try_write(ConnState& c, quic::StreamId id, ByteView data, bool fin) {
  auto n = c.quic->stream_write(id, data, fin);
  if (n && (*n > 0 || fin)) c.ep->schedule_flush(c);
  return n;
}

}  // namespace

asio::awaitable<P2PResult<void>> write_all(ConnState& c, quic::StreamId id, ByteView data, bool fin,
                                           Notifier& writable) {
  std::size_t off = 0;
  for (;;) {
    auto n = try_write(c, id, data.subspan(off), fin);
    if (!n) co_return fail(n.error());
    off += *n;
    if (off == data.size()) co_return P2PResult<void>{};
    if (auto awaited = co_await writable.wait(); !awaited) co_return fail(P2PError::cancelled("stream write"));
  }
}

asio::awaitable<void> graceful_close(std::shared_ptr<ConnState> c, std::string reason) {
  c->user_closed = true;
  if (c->close_started || c->quic->is_closed() || !c->registered) co_return;
  c->close_started = true;
  c->wake_all();
  auto& env = c->ep->env;
  auto timer = env.make_timer();
  // The close lingers while the peer makes progress: the deadline moves whenever it acknowledges
  // more, so a slow reader still gets everything, and a reader that stopped cannot hold it forever.
  TimePoint deadline = env.now() + c->ep->config.close_timeout;
  auto wait_progress = [&]() -> asio::awaitable<bool> {
    auto r = co_await (c->on_progress.wait() || timer.wait_until(deadline));
    co_return r.index() == 0 && std::get<0>(r);
  };
  // A message being written is completed first, so the peer never sees half a message.
  while (c->msg_sending && !c->quic->is_closed() && env.now() < deadline) {
    if (auto awaited = co_await wait_progress(); !awaited) break;
  }
  if (c->msg_out && !c->quic->is_closed()) (void)try_write(*c, *c->msg_out, {}, true);
  c->ep->schedule_flush(*c);
  std::uint64_t unacked = c->quic->unacked_bytes();
  while (unacked > 0 && !c->quic->is_closed() && c->registered && env.now() < deadline) {
    if (auto awaited = co_await wait_progress(); !awaited) break;
    const std::uint64_t now_unacked = c->quic->unacked_bytes();
    if (now_unacked < unacked) deadline = env.now() + c->ep->config.close_timeout;
    unacked = now_unacked;
  }
  if (!c->quic->is_closed() && c->registered) c->quic->close(0, reason);
  c->ep->schedule_flush(*c);
  c->wake_all();
}

// --- StreamRef ---

StreamRef::StreamRef(std::shared_ptr<ConnState> c, quic::StreamId stream) : conn(std::move(c)), id(stream) {
  conn->waiters(id);
}

StreamRef::~StreamRef() {
  if (!conn) return;
  if (conn->registered) {
    conn->quic->stream_release(id, kStreamCodeDropped);
    conn->ep->schedule_flush(*conn);
  }
  conn->stream_waiters.erase(id);
}

asio::awaitable<P2PResult<void>> StreamRef::write(ByteView data, bool fin) {
  if (reset) co_return fail(P2PError::protocol(fmt::format("stream {} was reset by this side", id)));
  if (finished) co_return fail(P2PError::protocol(fmt::format("stream {} is already finished", id)));
  auto keep = conn;  // the handle may be moved while the write waits
  auto r = co_await write_all(*keep, id, data, fin, keep->waiters(id).writable);
  if (r && fin) finished = true;
  co_return r;
}

asio::awaitable<P2PResult<std::size_t>> StreamRef::read(std::span<std::byte> buffer) {
  auto keep = conn;
  for (;;) {
    if (read_end) co_return std::size_t{0};
    auto r = keep->quic->stream_read(id, buffer);
    if (!r) co_return fail(r.error());
    if (r->size > 0) keep->ep->schedule_flush(*keep);  // window updates
    if (r->fin) read_end = true;
    if (r->size > 0 || r->fin || buffer.empty()) co_return r->size;
    if (auto awaited = co_await keep->waiters(id).readable.wait(); !awaited)
      co_return fail(P2PError::cancelled("stream read"));
  }
}

asio::awaitable<P2PResult<Bytes>> StreamRef::read_to_end(std::size_t size_max) {
  Bytes out;
  std::array<std::byte, 16 * 1024> buf{};
  for (;;) {
    auto n = co_await read(buf);
    if (!n) co_return fail(n.error());
    if (*n == 0) co_return out;
    if (out.size() + *n > size_max) {
      do_stop(kStreamCodeDropped);
      co_return fail(P2PError::message_too_large(out.size() + *n, size_max));
    }
    out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
  }
}

void StreamRef::do_reset(std::uint64_t code) {
  if (reset || !conn->registered) return;
  reset = true;
  conn->quic->stream_reset(id, code);
  conn->ep->schedule_flush(*conn);
}

void StreamRef::set_priority(std::int32_t priority) {
  if (!conn->registered) return;
  conn->quic->stream_set_priority(id, priority);
}

std::int32_t StreamRef::priority() const noexcept { return conn->registered ? conn->quic->stream_priority(id) : 0; }

void StreamRef::do_stop(std::uint64_t code) {
  if (stopped || !conn->registered) return;
  stopped = true;
  conn->quic->stream_stop(id, code);
  conn->ep->schedule_flush(*conn);
}

}  // namespace detail

// --- Connection ---

namespace detail {
// wait_handshake waits until `c` is established. Errors: its close error, cancelled.
asio::awaitable<P2PResult<void>> wait_handshake(const std::shared_ptr<ConnState>& c, const char* what) {
  for (;;) {
    if (c->established) co_return P2PResult<void>{};
    if (auto e = c->error()) co_return fail(*e);
    if (c->user_closed) co_return fail(closed_here());
    if (auto awaited = co_await c->on_state.wait(); !awaited) co_return fail(P2PError::cancelled(what));
  }
}

// replay_unsafe reports whether what the peer sends now could be a replay: a server connection
// accepted in 0-RTT whose handshake has not completed.
bool replay_unsafe(const ConnState& c) { return !c.client && c.early && !c.established; }

asio::awaitable<P2PResult<BiStream>> accept_bi(std::shared_ptr<ConnState> c, bool early) {
  for (;;) {
    if (!early && replay_unsafe(*c)) {
      if (auto h = co_await wait_handshake(c, "accept_bi"); !h) co_return fail(h.error());
    }
    if (!c->accept_bi.empty()) {
      const auto id = c->accept_bi.front();
      c->accept_bi.pop_front();
      co_return Access::bi(c, id);
    }
    if (auto e = c->error()) co_return fail(*e);
    if (c->user_closed) co_return fail(closed_here());
    if (auto awaited = co_await c->on_accept.wait(); !awaited) co_return fail(P2PError::cancelled("accept_bi"));
  }
}
}  // namespace detail

Connection::Handle::~Handle() {
  if (st && st->registered && !st->close_started && !st->quic->is_closed()) {
    spawn_logged(st->ep->ex, detail::graceful_close(st, ""), "connection close");
  }
}

asio::awaitable<P2PResult<void>> Connection::send(ByteView data) {
  auto c = handle_->st;
  const std::size_t max = c->ep->config.limits.max_message_size;
  if (data.size() > max) co_return fail(P2PError::message_too_large(data.size(), max));
  for (;;) {
    if (auto e = c->error()) co_return fail(*e);
    if (c->user_closed) co_return fail(detail::closed_here());
    if (!c->msg_sending) break;
    if (auto awaited = co_await c->on_msg_writable.wait(); !awaited) co_return fail(P2PError::cancelled("send"));
  }
  // One message at a time, so concurrent senders never interleave their bytes.
  c->msg_sending = true;
  struct Release {
    detail::ConnState* c;
    ~Release() {
      c->msg_sending = false;
      c->on_msg_writable.notify_all();
    }
  } release{c.get()};
  while (!c->msg_out) {
    auto id = c->quic->open_uni();
    if (!id) co_return fail(id.error());
    if (id->has_value()) {
      c->msg_out = **id;
      break;
    }
    if (auto awaited = co_await c->on_streams.wait(); !awaited) co_return fail(P2PError::cancelled("send"));
  }
  std::array<std::byte, 8> header{};
  const std::size_t hn = detail::encode_varint(data.size(), header);
  // Fast path: both parts fit in the send buffer now, without suspending.
  auto n = detail::try_write(*c, *c->msg_out, ByteView(header).first(hn), false);
  if (!n) co_return fail(n.error());
  if (*n < hn) {
    auto r =
        co_await detail::write_all(*c, *c->msg_out, ByteView(header).subspan(*n, hn - *n), false, c->on_msg_writable);
    if (!r) co_return fail(r.error());
    n = std::size_t{0};
  } else {
    n = detail::try_write(*c, *c->msg_out, data, false);
    if (!n) co_return fail(n.error());
  }
  if (*n < data.size()) {
    auto r = co_await detail::write_all(*c, *c->msg_out, data.subspan(*n), false, c->on_msg_writable);
    if (!r) co_return fail(r.error());
  }
  ++c->counters.messages_sent;
  c->counters.bytes_sent += data.size();
  co_return P2PResult<void>{};
}

asio::awaitable<P2PResult<Bytes>> Connection::recv() {
  auto c = handle_->st;
  // Messages carry no early-data flag, so none is delivered before the handshake proves it is no
  // replay.
  if (detail::replay_unsafe(*c)) {
    if (auto h = co_await detail::wait_handshake(c, "recv"); !h) co_return fail(h.error());
  }
  for (;;) {
    auto m = detail::take_message(*c);
    if (c->registered) c->ep->schedule_flush(*c);
    if (m) {
      if (*m) {
        ++c->counters.messages_received;
        c->counters.bytes_received += (*m)->size();
      }
      co_return std::move(*m);
    }
    if (c->msg_in_finished) {
      // The peer finished its messages: a graceful close whose CONNECTION_CLOSE (with its reason)
      // follows; report that close.
      if (auto e = c->error()) co_return fail(*e);
      if (!c->registered || c->user_closed) co_return fail(P2PError::connection_closed("peer"));
      if (auto awaited = co_await c->on_state.wait(); !awaited) co_return fail(P2PError::cancelled("recv"));
      continue;
    }
    if (auto e = c->error()) co_return fail(*e);
    if (c->user_closed) co_return fail(detail::closed_here());
    if (auto awaited = co_await c->on_message.wait(); !awaited) co_return fail(P2PError::cancelled("recv"));
  }
}

Connection::NodeId Connection::remote_node_id() const {
  const auto& c = handle_->st;
  MOOSICBOX_P2P_ASSERT(c->remote.has_value());
  return *c->remote;
}

SocketAddr Connection::remote_addr() const { return detail::from_quic_addr(handle_->st->quic->path().remote); }

namespace detail {
PathInfo path_of(const ConnState& c) {
  PathInfo out;
  out.remote_addr = from_quic_addr(c.quic->path().remote);
  out.rtt = c.quic->stats().smoothed_rtt;
  if (c.relay_vaddr) {
    if (const auto* r = c.ep->paths ? c.ep->paths->route_of(*c.relay_vaddr) : nullptr) {
      // On a direct path found by the path layer (QUIC still sees the virtual address).
      out.kind = PathKind::direct;
      out.remote_addr = r->addr;
      return out;
    }
    out.kind = PathKind::relay;
    if (c.ep->relay) out.relay_url = c.ep->relay->relay_of(*c.relay_vaddr);
  }
  return out;
}

bool same_route(const PathInfo& a, const PathInfo& b) {
  return a.kind == b.kind && a.remote_addr == b.remote_addr && a.relay_url == b.relay_url;
}
}  // namespace detail

PathInfo Connection::path() const { return detail::path_of(*handle_->st); }

asio::awaitable<P2PResult<PathInfo>> Connection::path_changed(PathInfo known) {
  auto c = handle_->st;
  for (;;) {
    if (auto e = c->error()) co_return fail(*e);
    if (c->user_closed) co_return fail(detail::closed_here());
    auto now = detail::path_of(*c);
    if (!detail::same_route(now, known)) co_return now;
    if (c->ep->relay) {
      auto r = co_await (c->on_path.wait() || c->ep->relay->changed().wait());
      const bool woke = r.index() == 0 ? std::get<0>(r) : std::get<1>(r);
      if (!woke) co_return fail(P2PError::cancelled("path_changed"));
    } else {
      const bool woke = co_await c->on_path.wait();
      if (!woke) co_return fail(P2PError::cancelled("path_changed"));
    }
  }
}

const std::string& Connection::alpn() const { return handle_->st->alpn; }

bool Connection::is_connected() const {
  const auto& c = handle_->st;
  return (c->established || c->early) && !c->user_closed && !c->quic->is_closed();
}

bool Connection::is_early() const {
  const auto& c = handle_->st;
  return c->early && !c->established;
}

ZeroRtt Connection::zero_rtt() const {
  switch (handle_->st->quic->early_data()) {
    case quic::EarlyData::none:
      return ZeroRtt::none;
    case quic::EarlyData::attempted:
      return ZeroRtt::pending;
    case quic::EarlyData::accepted:
      return ZeroRtt::accepted;
    case quic::EarlyData::rejected:
      return ZeroRtt::rejected;
  }
  return ZeroRtt::none;
}

asio::awaitable<P2PResult<void>> Connection::handshake() { return detail::wait_handshake(handle_->st, "handshake"); }

asio::awaitable<P2PResult<void>> Connection::close() { return close(""); }

asio::awaitable<P2PResult<void>> Connection::close(std::string_view reason) {
  // The close runs in the background: it delivers what was sent (as long as the peer reads) and
  // then sends CONNECTION_CLOSE. Endpoint::close waits for it.
  auto c = handle_->st;
  if (!c->close_started && !c->quic->is_closed() && c->registered) {
    c->user_closed = true;
    c->wake_all();
    spawn_logged(c->ep->ex, detail::graceful_close(c, std::string(reason)), "connection close");
  }
  c->user_closed = true;
  co_return P2PResult<void>{};
}

std::optional<P2PError> Connection::close_error() const {
  const auto& c = handle_->st;
  if (auto e = c->error()) return e;
  if (c->user_closed) return detail::closed_here();
  return std::nullopt;
}

ConnectionStats Connection::stats() const {
  const auto& c = handle_->st;
  ConnectionStats out = c->counters;
  const auto ps = c->quic->stats();
  if (c->established) out.duration = c->ep->env.now() - c->established_at;
  if (ps.smoothed_rtt.count() > 0) {
    out.rtt = ps.smoothed_rtt;
    out.average_latency = ps.smoothed_rtt / 2;
  }
  return out;
}

TransportStats Connection::transport_stats() const { return handle_->st->quic->stats(); }

asio::awaitable<P2PResult<BiStream>> Connection::open_bi() {
  auto c = handle_->st;
  for (;;) {
    if (auto e = c->error()) co_return fail(*e);
    if (c->user_closed) co_return fail(detail::closed_here());
    auto id = c->quic->open_bi();
    if (!id) co_return fail(id.error());
    if (id->has_value()) co_return detail::Access::bi(c, **id);
    if (auto awaited = co_await c->on_streams.wait(); !awaited) co_return fail(P2PError::cancelled("open_bi"));
  }
}

asio::awaitable<P2PResult<BiStream>> Connection::accept_bi() { return detail::accept_bi(handle_->st, false); }

asio::awaitable<P2PResult<BiStream>> Connection::accept_bi_early() { return detail::accept_bi(handle_->st, true); }

asio::awaitable<P2PResult<SendStream>> Connection::open_uni() {
  auto c = handle_->st;
  for (;;) {
    if (auto e = c->error()) co_return fail(*e);
    if (c->user_closed) co_return fail(detail::closed_here());
    auto id = c->quic->open_uni();
    if (!id) co_return fail(id.error());
    if (id->has_value()) co_return detail::Access::send(c, **id);
    if (auto awaited = co_await c->on_streams.wait(); !awaited) co_return fail(P2PError::cancelled("open_uni"));
  }
}

asio::awaitable<P2PResult<RecvStream>> Connection::accept_uni() {
  auto c = handle_->st;
  if (detail::replay_unsafe(*c)) {
    if (auto h = co_await detail::wait_handshake(c, "accept_uni"); !h) co_return fail(h.error());
  }
  for (;;) {
    if (!c->accept_uni.empty()) {
      const auto id = c->accept_uni.front();
      c->accept_uni.pop_front();
      co_return detail::Access::recv(c, id);
    }
    if (auto e = c->error()) co_return fail(*e);
    if (c->user_closed) co_return fail(detail::closed_here());
    if (auto awaited = co_await c->on_accept.wait(); !awaited) co_return fail(P2PError::cancelled("accept_uni"));
  }
}

std::size_t Connection::max_datagram_size() const { return handle_->st->quic->max_datagram_size(); }

P2PResult<void> Connection::send_datagram(ByteView data) {
  auto& c = handle_->st;
  if (c->user_closed && !c->quic->is_closed()) return fail(detail::closed_here());
  auto r = c->quic->send_datagram(data);
  if (r) c->ep->schedule_flush(*c);
  return r;
}

asio::awaitable<P2PResult<Bytes>> Connection::recv_datagram() {
  auto c = handle_->st;
  for (;;) {
    if (auto d = c->quic->recv_datagram()) co_return std::move(*d);
    if (auto e = c->error()) co_return fail(*e);
    if (c->user_closed) co_return fail(detail::closed_here());
    if (auto awaited = co_await c->on_datagram.wait(); !awaited) co_return fail(P2PError::cancelled("recv_datagram"));
  }
}

// --- streams ---

SendStream::SendStream(std::unique_ptr<detail::StreamRef> ref) noexcept : ref_(std::move(ref)) {}
SendStream::SendStream(SendStream&&) noexcept = default;
SendStream& SendStream::operator=(SendStream&&) noexcept = default;
SendStream::~SendStream() = default;
asio::awaitable<P2PResult<void>> SendStream::write(ByteView data) { return ref_->write(data, false); }
asio::awaitable<P2PResult<void>> SendStream::finish() { return ref_->write({}, true); }
void SendStream::reset(std::uint64_t code) { ref_->do_reset(code); }
void SendStream::set_priority(std::int32_t priority) { ref_->set_priority(priority); }
std::int32_t SendStream::priority() const noexcept { return ref_->priority(); }
std::uint64_t SendStream::id() const noexcept { return static_cast<std::uint64_t>(ref_->id); }

RecvStream::RecvStream(std::unique_ptr<detail::StreamRef> ref) noexcept : ref_(std::move(ref)) {}
RecvStream::RecvStream(RecvStream&&) noexcept = default;
RecvStream& RecvStream::operator=(RecvStream&&) noexcept = default;
RecvStream::~RecvStream() = default;
asio::awaitable<P2PResult<std::size_t>> RecvStream::read(std::span<std::byte> buffer) { return ref_->read(buffer); }
asio::awaitable<P2PResult<Bytes>> RecvStream::read_to_end(std::size_t size_max) { return ref_->read_to_end(size_max); }
void RecvStream::stop(std::uint64_t code) { ref_->do_stop(code); }
std::uint64_t RecvStream::id() const noexcept { return static_cast<std::uint64_t>(ref_->id); }

BiStream::BiStream(std::unique_ptr<detail::StreamRef> ref) noexcept : ref_(std::move(ref)) {}
BiStream::BiStream(BiStream&&) noexcept = default;
BiStream& BiStream::operator=(BiStream&&) noexcept = default;
BiStream::~BiStream() = default;
asio::awaitable<P2PResult<void>> BiStream::write(ByteView data) { return ref_->write(data, false); }
asio::awaitable<P2PResult<void>> BiStream::finish() { return ref_->write({}, true); }
void BiStream::reset(std::uint64_t code) { ref_->do_reset(code); }
void BiStream::set_priority(std::int32_t priority) { ref_->set_priority(priority); }
std::int32_t BiStream::priority() const noexcept { return ref_->priority(); }
asio::awaitable<P2PResult<std::size_t>> BiStream::read(std::span<std::byte> buffer) { return ref_->read(buffer); }
asio::awaitable<P2PResult<Bytes>> BiStream::read_to_end(std::size_t size_max) { return ref_->read_to_end(size_max); }
void BiStream::stop(std::uint64_t code) { ref_->do_stop(code); }
std::uint64_t BiStream::id() const noexcept { return static_cast<std::uint64_t>(ref_->id); }
bool BiStream::is_early() const noexcept { return ref_->conn->quic->stream_is_early(ref_->id); }
asio::awaitable<P2PResult<void>> BiStream::handshake() { return detail::wait_handshake(ref_->conn, "handshake"); }

}  // namespace moosicbox::p2p
