// SPDX-License-Identifier: MIT OR Apache-2.0
// connection.cpp: connection pairs of the simulator: frames on lanes, their delivery, the handshake,
// flow control (message window and stream credit), graceful close, failure, rerouting and stalls on
// topology changes, streams, and the public connection and stream handles.
// Layer: sim. Single-threaded; nothing here spawns a coroutine: delivery runs from runtime events and
// wakes waiting coroutines through WaitQueue.
#include <cstring>

#include "sim/internal.hpp"

namespace moosicbox::p2p::sim::detail {

// ---- WaitQueue ------------------------------------------------------------------------------------------

asio::awaitable<WaitQueue::Wake> WaitQueue::wait(TimePoint deadline) {
  const auto token = next_token_++;
  auto* rt = rt_;
  // Three words of captures fit the function wrapper's inline storage: no allocation per wait.
  const auto ec = co_await rt->suspend([this, token, deadline](env::SimRuntime::ParkId id) {
    EventId ev = kNoEvent;
    if (deadline != kTimePointMax) {
      ev = rt_->schedule_at(deadline, [r = rt_, id] { r->resume(id, asio::error::timed_out); });
    }
    waiters_.push_back(Waiter{token, id, ev});
  });
  // Still listed when the wake-up came from the deadline or from cancellation, not from notify.
  const auto it = std::ranges::find(waiters_, token, &Waiter::token);
  if (it != waiters_.end()) {
    if (it->deadline != kNoEvent) rt->cancel(it->deadline);
    waiters_.erase(it);
  }
  if (!ec) co_return Wake::notified;
  if (ec == asio::error::timed_out) co_return Wake::timed_out;
  co_return Wake::cancelled;
}

void WaitQueue::notify_one() {
  while (!waiters_.empty()) {
    const Waiter w = waiters_.front();
    waiters_.erase(waiters_.begin());
    if (w.deadline != kNoEvent) rt_->cancel(w.deadline);
    // A waiter already resumed by its cancellation does not count: wake the next one.
    if (rt_->resume(w.park)) return;
  }
}

void WaitQueue::notify_all() {
  if (waiters_.empty()) return;
  const auto all = std::move(waiters_);
  waiters_.clear();
  for (const auto& w : all) {
    if (w.deadline != kNoEvent) rt_->cancel(w.deadline);
    rt_->resume(w.park);
  }
}

// ---- lanes ----------------------------------------------------------------------------------------------

Lane::~Lane() { cancel_event(); }

void Lane::cancel_event() noexcept {
  if (event == kNoEvent) return;
  pair->world->rt.cancel(event);
  event = kNoEvent;
}

void Lane::clear() noexcept {
  cancel_event();
  pending.clear();
  in_flight.clear();
}

std::size_t wire_size(const Frame& frame, std::size_t& packets) noexcept {
  const std::size_t payload = frame.data.size() + kFrameHeader;
  packets = (payload + kPacketPayloadMax - 1) / kPacketPayloadMax;
  return payload + packets * kPacketOverhead;
}

// ---- handles' shared tokens ----------------------------------------------------------------------------

EndRef::~EndRef() { pair->release(side); }

ListenerState::ListenerState(WorldImpl& w, std::shared_ptr<NodeState> n, std::string a)
    : world(&w), node(std::move(n)), addr(std::move(a)), waiters(w.rt) {}

void ListenerState::close(std::string_view reason) {
  if (closed) return;
  closed = true;
  close_reason = std::string(reason);
  if (node->listener == this) node->listener = nullptr;
  if (world->shutting_down) return;
  world->rt.trace(fmt::format("unlisten {}", node->name));
  waiters.notify_all();
  // Connections nobody accepted close now: their dialers see the close after everything in flight.
  while (!backlog.empty()) (void)backlog.pop_front();
}

// ---- the pair --------------------------------------------------------------------------------------------

ConnPair::ConnPair(WorldImpl& w, std::uint64_t conn_id, std::shared_ptr<NodeState> dialer,
                   std::shared_ptr<NodeState> acceptor)
    : world(&w),
      id(conn_id),
      end{End(w.rt), End(w.rt)},
      messages{Lane(this, 0, LaneKind::messages), Lane(this, 1, LaneKind::messages)},
      control{Lane(this, 0, LaneKind::control), Lane(this, 1, LaneKind::control)} {
  end[0].node = std::move(dialer);
  end[1].node = std::move(acceptor);
  end[0].streams_allowed = w.limits.max_streams;
  end[1].streams_allowed = w.limits.max_streams;
  w.register_pair(*this);
}

ConnPair::~ConnPair() {
  for (auto* ev : {&stall_event, &handshake_event, &peer_lost_event, &reap_event}) {
    if (*ev != kNoEvent) world->rt.cancel(*ev);
  }
  streams.clear();
  world->unregister_pair(*this);
}

void ConnPair::trace_line(std::string_view what) { world->rt.trace(fmt::format("conn {} {}", id, what)); }

template <class F>
void ConnPair::for_each_lane(std::uint8_t dir, F&& f) {
  // Control first and messages last: on a flush, a close frame (on the message lane) is placed after
  // everything else its side sent.
  f(control[dir]);
  for (auto& [sid, s] : streams) f(s->half[dir].lane);
  f(messages[dir]);
}

TimePoint ConnPair::latest_arrival(std::uint8_t dir) {
  TimePoint latest{};
  for_each_lane(dir, [&](Lane& l) { latest = std::max(latest, l.last_arrival); });
  return latest;
}

void ConnPair::push(Lane& lane, Frame&& frame) {
  if (failed) return;
  frame.sent = world->rt.now();
  if (route_usable && lane.pending.empty()) {
    transmit(lane, std::move(frame));
    return;
  }
  // Without a usable path the frame would be sent into the void and lost: once a path is back it
  // goes out when its retransmission timer fires.
  if (!route_usable) frame.retransmit = true;
  lane.pending.push_back(std::move(frame));
}

void ConnPair::push_control(std::uint8_t from, FrameKind kind, std::uint64_t stream, std::uint64_t value) {
  if (failed || end[from].dead) return;
  // After a local close only the handshake answer may still go out (the close follows it).
  if (end[from].local_closed && kind != FrameKind::accept && kind != FrameKind::refuse) return;
  Frame f;
  f.kind = kind;
  f.stream = stream;
  f.value = value;
  push(control[from], std::move(f));
}

void ConnPair::transmit(Lane& lane, Frame&& frame) {
  MOOSICBOX_P2P_ASSERT(route.has_value() && route_usable);
  const auto dir = lane.dir;
  std::size_t packets = 0;
  const auto bytes = wire_size(frame, packets);
  const auto rto = end[0].established ? route->rto : kInitialRto;
  auto arrival = world->transmit_time(route->hops[dir], bytes, rto);
  // A frame lost with a broken path is noticed only when its retransmission timer fires.
  if (frame.retransmit) arrival += rto;
  if (frame.kind == FrameKind::initial) arrival += route->punch;
  if (frame.kind == FrameKind::close) arrival = std::max(arrival, latest_arrival(dir));
  arrival = std::max(arrival, lane.last_arrival);
  lane.last_arrival = arrival;
  frame.arrival = arrival;
  lane.in_flight.push_back(std::move(frame));
  if (lane.event == kNoEvent) schedule(lane);
}

void ConnPair::schedule(Lane& lane) {
  MOOSICBOX_P2P_ASSERT(!lane.in_flight.empty() && lane.event == kNoEvent);
  Lane* l = &lane;
  lane.event = world->rt.schedule_at(lane.in_flight.front().arrival, [l] {
    l->event = kNoEvent;
    l->pair->on_lane_due(*l);
  });
}

void ConnPair::on_lane_due(Lane& lane) {
  const auto now = world->rt.now();
  // Everything due now goes in one event: a burst sent at one instant costs one event, not one
  // per message. fail() may clear the lane meanwhile; the loop then just ends.
  while (!lane.in_flight.empty() && lane.in_flight.front().arrival <= now) {
    deliver(lane.dir, lane.in_flight.pop_front());
  }
  if (!lane.in_flight.empty() && lane.event == kNoEvent) schedule(lane);
}

void ConnPair::deliver(std::uint8_t dir, Frame&& f) {
  const auto r = peer(dir);
  End& to = end[r];
  switch (f.kind) {
    case FrameKind::initial:
      handle_initial();
      return;
    case FrameKind::accept:
      if (to.dead || end[0].established) return;
      end[0].established = true;
      established_at = world->rt.now();
      if (handshake_event != kNoEvent) {
        world->rt.cancel(handshake_event);
        handshake_event = kNoEvent;
      }
      trace_line(fmt::format("established {}", to_string(route ? route->kind : PathKind::direct)));
      to.connect_waiters.notify_all();
      return;
    case FrameKind::refuse:
      refused = true;
      fail(P2PError::connection_failed(fmt::format("{} is not accepting connections", end[1].node->name)));
      return;
    case FrameKind::message: {
      if (to.dead || to.local_closed) return;
      const auto size = f.data.size();
      to.inbox.push_back(Inbound{std::move(f.data), world->rt.now() - f.sent});
      ++world->delivered;
      const std::uint64_t words[3] = {id, dir, size};
      world->rt.trace_words(words);
      to.recv_waiters.notify_one();
      return;
    }
    case FrameKind::close:
      end[dir].close_delivered = true;
      end[dir].close_waiters.notify_all();
      if (to.dead || to.peer_closed) return;
      to.peer_closed = true;
      trace_line(fmt::format("close from {} reached {}", end[dir].node->name, to.node->name));
      wake_side(r);
      return;
    case FrameKind::message_credit:
      to.window_used -= std::min(to.window_used, f.value);
      to.send_waiters.notify_all();
      return;
    default:
      stream_frame(dir, std::move(f));
      return;
  }
}

std::uint64_t ConnPair::message_window() const noexcept {
  return std::max<std::uint64_t>(world->limits.message_window,
                                 2 * (std::uint64_t{world->config.max_message_size} + kMessageOverhead));
}

void ConnPair::consumed_message(std::uint8_t side, std::uint64_t cost) {
  End& e = end[side];
  e.consumed_uncredited += cost;
  // Credit in quarters of the window: a sender that waits for credit has more than half a window
  // outstanding (the window holds two maximum messages), so a receiver that reads everything always
  // sends some, and one credit frame covers many messages.
  if (e.consumed_uncredited >= message_window() / 4) {
    push_control(side, FrameKind::message_credit, 0, e.consumed_uncredited);
    e.consumed_uncredited = 0;
  }
}

// ---- lifecycle -------------------------------------------------------------------------------------------

void ConnPair::start_handshake() {
  const auto timeout = world->config.connection_timeout;
  handshake_event = world->rt.schedule_after(timeout, [this, timeout] {
    handshake_event = kNoEvent;
    if (!end[0].established && !failed) fail(P2PError::timeout(timeout));
  });
  push_control(0, FrameKind::initial);
}

void ConnPair::handle_initial() {
  End& acc = end[1];
  if (failed || acc.dead || acc.established) return;
  NodeState& node = *acc.node;
  ListenerState* listener = node.up() ? node.listener : nullptr;
  if (listener == nullptr || listener->closed || listener->backlog.size() >= world->limits.accept_backlog) {
    trace_line(fmt::format("refused by {}", node.name));
    push_control(1, FrameKind::refuse);
    return;
  }
  acc.established = true;
  trace_line(fmt::format("accepted by {}", node.name));
  listener->backlog.push_back(std::make_shared<EndRef>(shared_from_this(), 1));
  listener->waiters.notify_one();
  push_control(1, FrameKind::accept);
}

void ConnPair::pull_back_all() {
  const auto now = world->rt.now();
  for (std::uint8_t dir = 0; dir < 2; ++dir) {
    for_each_lane(dir, [&](Lane& l) {
      l.cancel_event();
      if (l.in_flight.empty()) {
        l.last_arrival = std::min(l.last_arrival, now);
        return;
      }
      // The path broke under these frames: they are lost and will be sent again, ahead of
      // anything queued after them.
      RingQueue<Frame> again;
      while (!l.in_flight.empty()) {
        Frame f = l.in_flight.pop_front();
        f.retransmit = true;
        again.push_back(std::move(f));
      }
      while (!l.pending.empty()) again.push_back(l.pending.pop_front());
      l.pending = std::move(again);
      l.last_arrival = now;
    });
  }
}

void ConnPair::flush_all() {
  for (std::uint8_t dir = 0; dir < 2; ++dir) {
    for_each_lane(dir, [&](Lane& l) {
      while (!l.pending.empty() && route_usable && !failed) transmit(l, l.pending.pop_front());
    });
  }
}

void ConnPair::revalidate() {
  if (failed) return;
  if (route_usable && world->route_valid(*route, *end[0].node, *end[1].node)) return;
  auto next = world->compute_route(*end[0].node, *end[1].node, Reach::current);
  if (next) {
    const bool was_usable = route_usable;
    if (was_usable) pull_back_all();
    route = std::move(next);
    route_usable = true;
    if (stall_event != kNoEvent) {
      world->rt.cancel(stall_event);
      stall_event = kNoEvent;
    }
    trace_line(fmt::format("{} {}{}", was_usable ? "reroute" : "resume", to_string(route->kind),
                           route->relay ? fmt::format(" via {}", route->relay->fmt_short()) : std::string()));
    flush_all();
    return;
  }
  if (!route_usable) return;
  pull_back_all();
  route_usable = false;
  trace_line("stall");
  const auto timeout = world->config.connection_timeout;
  stall_event = world->rt.schedule_after(timeout, [this, timeout] {
    stall_event = kNoEvent;
    fail(P2PError::timeout(timeout));
  });
}

void ConnPair::wake_side(std::uint8_t side) {
  End& e = end[side];
  e.recv_waiters.notify_all();
  e.send_waiters.notify_all();
  e.accept_waiters.notify_all();
  e.open_waiters.notify_all();
  e.connect_waiters.notify_all();
  for (auto& [sid, s] : streams) {
    s->half[side].writers.notify_all();
    s->half[peer(side)].readers.notify_all();
  }
}

void ConnPair::fail(const P2PError& error) {
  if (failed) return;
  failed = true;
  for (auto& e : end) {
    if (!e.error) e.error = error;
  }
  for (std::uint8_t dir = 0; dir < 2; ++dir) for_each_lane(dir, [](Lane& l) { l.clear(); });
  for (auto* ev : {&stall_event, &handshake_event, &peer_lost_event}) {
    if (*ev != kNoEvent) world->rt.cancel(*ev);
    *ev = kNoEvent;
  }
  trace_line(fmt::format("failed: {}", error.message()));
  for (std::uint8_t side = 0; side < 2; ++side) {
    wake_side(side);
    end[side].close_waiters.notify_all();
  }
  schedule_reap();
}

void ConnPair::crash_side(std::uint8_t side) {
  End& e = end[side];
  if (e.dead) return;
  e.dead = true;
  if (!e.error) e.error = P2PError::connection_closed("a crash of this node");
  e.inbox.clear();
  for_each_lane(side, [](Lane& l) { l.pending.clear(); });
  trace_line(fmt::format("side {} crashed", e.node->name));
  wake_side(side);
  e.close_waiters.notify_all();
  if (failed || peer_lost_event != kNoEvent) return;
  // The peer hears nothing more: it gives up after the connection timeout, whatever the network does.
  const auto timeout = world->config.connection_timeout;
  peer_lost_event = world->rt.schedule_after(timeout, [this, timeout] {
    peer_lost_event = kNoEvent;
    fail(P2PError::timeout(timeout));
  });
}

void ConnPair::close_side(std::uint8_t side) {
  End& e = end[side];
  if (e.local_closed) return;
  e.local_closed = true;
  e.inbox.clear();
  e.accept_queue.clear();
  for (auto& [sid, s] : streams) {
    s->queued = s->queued && side != peer(s->initiator);
    s->half[peer(side)].segments.clear();
  }
  if (!failed && !e.dead) {
    trace_line(fmt::format("{} closes", e.node->name));
    Frame f;
    f.kind = FrameKind::close;
    push(messages[side], std::move(f));
  }
  wake_side(side);
  schedule_reap();
}

void ConnPair::release(std::uint8_t side) {
  if (world->shutting_down) return;
  close_side(side);
}

std::optional<P2PError> ConnPair::send_error(std::uint8_t side) const {
  const End& e = end[side];
  if (e.local_closed) return P2PError::connection_closed("this side");
  if (e.error) return *e.error;
  if (e.peer_closed) return P2PError::connection_closed("the peer");
  return std::nullopt;
}

std::optional<P2PError> ConnPair::recv_error(std::uint8_t side) const { return send_error(side); }

bool ConnPair::connected(std::uint8_t side) const noexcept {
  const End& e = end[side];
  return e.established && !e.local_closed && !e.peer_closed && !e.error;
}

// ---- streams ---------------------------------------------------------------------------------------------

Stream* ConnPair::find_stream(std::uint64_t sid) {
  const auto it = streams.find(sid);
  return it == streams.end() ? nullptr : it->second.get();
}

Stream& ConnPair::open_stream(std::uint8_t side) {
  End& e = end[side];
  const auto sid = e.next_stream_index++ * 4 + side;
  auto s = std::make_unique<Stream>(world->rt, this, sid, world->limits.stream_window);
  s->handle[side] = true;
  ++e.streams_opened;
  auto& ref = *s;
  streams.emplace(sid, std::move(s));
  push_control(side, FrameKind::stream_open, sid);
  return ref;
}

void ConnPair::stream_known(std::uint8_t side, std::uint64_t sid) {
  End& e = end[side];
  const auto index = sid >> 2;
  if (index < e.peer_streams_known) return;
  // As in QUIC, a frame for stream n opens every lower stream of that initiator too, so streams
  // are accepted in opening order even when frames overtake each other.
  for (auto i = e.peer_streams_known; i <= index; ++i) {
    const auto s_id = i * 4 + peer(side);
    auto* s = find_stream(s_id);
    if (s == nullptr || s->known) continue;
    s->known = true;
    if (!e.local_closed && !e.dead) {
      s->queued = true;
      e.accept_queue.push_back(std::uint64_t{s_id});
    }
  }
  e.peer_streams_known = index + 1;
  e.accept_waiters.notify_all();
}

void ConnPair::stream_frame(std::uint8_t dir, Frame&& f) {
  const auto r = peer(dir);
  if (f.kind == FrameKind::streams_credit) {
    end[r].streams_allowed += f.value;
    end[r].open_waiters.notify_all();
    return;
  }
  auto* s = find_stream(f.stream);
  if (s == nullptr || end[r].dead) return;
  if (s->initiator == dir) stream_known(r, f.stream);
  switch (f.kind) {
    case FrameKind::stream_open:
      return;
    case FrameKind::stream_data: {
      auto& in = s->half[dir];
      if (end[r].local_closed || in.stopped || in.reset_arrived) return;
      in.segments.push_back(std::move(f.data));
      in.readers.notify_all();
      return;
    }
    case FrameKind::stream_fin: {
      auto& in = s->half[dir];
      in.fin_arrived = true;
      in.readers.notify_all();
      return;
    }
    case FrameKind::stream_reset: {
      auto& in = s->half[dir];
      if (in.eof_read || in.reset_arrived) return;
      in.reset_arrived = true;
      in.reset_code_in = f.value;
      in.segments.clear();
      in.head_offset = 0;
      in.readers.notify_all();
      check_stream_closed(*s);
      return;
    }
    case FrameKind::stream_stop: {
      auto& out = s->half[r];
      if (out.send_done()) return;
      out.stop_received = true;
      out.stop_code = f.value;
      out.lane.pending.clear();
      out.writers.notify_all();
      check_stream_closed(*s);
      return;
    }
    case FrameKind::stream_credit: {
      auto& out = s->half[r];
      if (f.value > out.credit_limit) {
        out.credit_limit = f.value;
        out.writers.notify_all();
      }
      return;
    }
    default:
      MOOSICBOX_P2P_ASSERT(false && "not a stream frame");
  }
}

void ConnPair::check_stream_closed(Stream& s) {
  const auto acceptor = peer(s.initiator);
  // The acceptor gives the opener its stream slot back once both halves ended on its side.
  if (!s.slot_released && s.half[s.initiator].recv_done() && s.half[acceptor].send_done()) {
    s.slot_released = true;
    push_control(acceptor, FrameKind::streams_credit, 0, 1);
  }
  schedule_reap();
}

void ConnPair::stream_reset(std::uint8_t side, Stream& s, std::uint64_t code) {
  auto& out = s.half[side];
  if (out.reset_sent || out.stop_received) return;
  if (out.fin_sent && out.fin_arrived) return;  // finished and delivered: nothing left to abort
  out.reset_sent = true;
  out.reset_code = code;
  out.lane.pending.clear();
  push_control(side, FrameKind::stream_reset, s.id, code);
  out.writers.notify_all();
  check_stream_closed(s);
}

void ConnPair::stream_stop(std::uint8_t side, Stream& s, std::uint64_t code) {
  auto& in = s.half[peer(side)];
  if (in.recv_done()) return;
  in.stopped = true;
  in.stop_code_sent = code;
  in.segments.clear();
  in.head_offset = 0;
  push_control(side, FrameKind::stream_stop, s.id, code);
  in.readers.notify_all();
  check_stream_closed(s);
}

void ConnPair::stream_consumed(std::uint8_t side, Stream& s, std::size_t n) {
  auto& in = s.half[peer(side)];
  in.consumed += n;
  const auto window = world->limits.stream_window;
  if (in.fin_arrived || in.stopped) return;
  // Like MAX_STREAM_DATA: announce a new limit once a quarter of the window was read.
  if (in.consumed + window - in.credit_granted >= window / 4) {
    in.credit_granted = in.consumed + window;
    push_control(side, FrameKind::stream_credit, s.id, in.credit_granted);
  }
}

std::optional<P2PError> ConnPair::stream_send_error(std::uint8_t side, const StreamHalf& out) const {
  if (auto e = send_error(side)) return e;
  if (out.stop_received) return P2PError::stream_reset(out.stop_code);
  if (out.reset_sent) return P2PError::stream_reset(out.reset_code);
  if (out.fin_sent) return P2PError::protocol("write after the stream was finished");
  return std::nullopt;
}

void ConnPair::schedule_reap() {
  if (reap_event != kNoEvent || world->shutting_down) return;
  // Streams are freed from an event of their own, never from inside the delivery of their frames.
  reap_event = world->rt.schedule_after(Duration::zero(), [this] { reap(); });
}

void ConnPair::reap() {
  reap_event = kNoEvent;
  for (auto it = streams.begin(); it != streams.end();) {
    auto& s = *it->second;
    const auto acceptor = peer(s.initiator);
    const bool unused = !s.handle[0] && !s.handle[1] && !s.queued;
    const bool idle = s.half[0].lane.idle() && s.half[1].lane.idle();
    const bool acceptor_gone = end[acceptor].local_closed || end[acceptor].dead;
    if (unused && (failed || (idle && (s.known || acceptor_gone)))) {
      if (!s.slot_released) {
        s.slot_released = true;
        push_control(acceptor, FrameKind::streams_credit, 0, 1);
      }
      it = streams.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace moosicbox::p2p::sim::detail

// ---- public handles ------------------------------------------------------------------------------------

namespace moosicbox::p2p::sim {

using detail::WaitQueue;

asio::awaitable<P2PResult<void>> SimulatorConnection::send(ByteView data) {
  MOOSICBOX_P2P_ASSERT(end_);
  const auto keep = end_;
  auto& pair = *keep->pair;
  const auto side = keep->side;
  auto& e = pair.end[side];
  const auto max = pair.world->config.max_message_size;
  if (data.size() > max) co_return fail(P2PError::message_too_large(data.size(), max));
  const std::uint64_t cost = data.size() + detail::kMessageOverhead;
  while (true) {
    if (auto err = pair.send_error(side)) co_return fail(*err);
    if (e.window_used == 0 || e.window_used + cost <= pair.message_window()) break;
    if (const auto wake = co_await e.send_waiters.wait(); wake == WaitQueue::Wake::cancelled)
      co_return fail(P2PError::cancelled("send"));
  }
  e.window_used += cost;
  ++e.messages_sent;
  e.bytes_sent += data.size();
  detail::Frame f;
  f.data.assign(data.begin(), data.end());
  pair.push(pair.messages[side], std::move(f));
  co_return P2PResult<void>{};
}

asio::awaitable<P2PResult<void>> SimulatorConnection::send(Bytes&& data) {
  MOOSICBOX_P2P_ASSERT(end_);
  const auto keep = end_;
  auto& pair = *keep->pair;
  const auto side = keep->side;
  auto& e = pair.end[side];
  const auto max = pair.world->config.max_message_size;
  if (data.size() > max) co_return fail(P2PError::message_too_large(data.size(), max));
  const std::uint64_t cost = data.size() + detail::kMessageOverhead;
  while (true) {
    if (auto err = pair.send_error(side)) co_return fail(*err);
    if (e.window_used == 0 || e.window_used + cost <= pair.message_window()) break;
    if (const auto wake = co_await e.send_waiters.wait(); wake == WaitQueue::Wake::cancelled)
      co_return fail(P2PError::cancelled("send"));
  }
  e.window_used += cost;
  ++e.messages_sent;
  e.bytes_sent += data.size();
  detail::Frame f;
  f.data = std::move(data);
  pair.push(pair.messages[side], std::move(f));
  co_return P2PResult<void>{};
}

namespace {
Bytes take_message(detail::ConnPair& pair, std::uint8_t side) {
  auto& e = pair.end[side];
  detail::Inbound in = e.inbox.pop_front();
  ++e.messages_received;
  e.bytes_received += in.data.size();
  e.latency_sum += in.latency;
  pair.consumed_message(side, in.data.size() + detail::kMessageOverhead);
  return std::move(in.data);
}
}  // namespace

asio::awaitable<P2PResult<Bytes>> SimulatorConnection::recv() {
  MOOSICBOX_P2P_ASSERT(end_);
  const auto keep = end_;
  auto& pair = *keep->pair;
  const auto side = keep->side;
  auto& e = pair.end[side];
  while (true) {
    if (!e.inbox.empty()) co_return take_message(pair, side);
    if (auto err = pair.recv_error(side)) co_return fail(*err);
    if (const auto wake = co_await e.recv_waiters.wait(); wake == WaitQueue::Wake::cancelled)
      co_return fail(P2PError::cancelled("recv"));
  }
}

P2PResult<std::optional<Bytes>> SimulatorConnection::try_recv() {
  MOOSICBOX_P2P_ASSERT(end_);
  auto& pair = *end_->pair;
  const auto side = end_->side;
  if (!pair.end[side].inbox.empty()) return std::optional<Bytes>(take_message(pair, side));
  if (auto err = pair.recv_error(side)) return fail(*err);
  return std::optional<Bytes>{};
}

asio::awaitable<P2PResult<void>> SimulatorConnection::close() {
  MOOSICBOX_P2P_ASSERT(end_);
  const auto keep = end_;
  auto& pair = *keep->pair;
  const auto side = keep->side;
  pair.close_side(side);
  auto& e = pair.end[side];
  while (!e.close_delivered && !pair.failed && !e.dead && !pair.end[pair.peer(side)].dead) {
    if (const auto wake = co_await e.close_waiters.wait(); wake == WaitQueue::Wake::cancelled) break;
  }
  co_return P2PResult<void>{};
}

bool SimulatorConnection::is_connected() const {
  MOOSICBOX_P2P_ASSERT(end_);
  return end_->pair->connected(end_->side);
}

NodeId SimulatorConnection::remote_node_id() const {
  MOOSICBOX_P2P_ASSERT(end_);
  return end_->pair->end[end_->pair->peer(end_->side)].node->id;
}

NodeId SimulatorConnection::local_node_id() const {
  MOOSICBOX_P2P_ASSERT(end_);
  return end_->pair->end[end_->side].node->id;
}

ConnectionStats SimulatorConnection::stats() const {
  MOOSICBOX_P2P_ASSERT(end_);
  const auto& pair = *end_->pair;
  const auto& e = pair.end[end_->side];
  ConnectionStats s;
  s.messages_sent = e.messages_sent;
  s.messages_received = e.messages_received;
  s.bytes_sent = e.bytes_sent;
  s.bytes_received = e.bytes_received;
  s.duration = e.established ? pair.world->rt.now() - pair.established_at : Duration::zero();
  if (e.messages_received > 0) s.average_latency = e.latency_sum / static_cast<std::int64_t>(e.messages_received);
  if (pair.route) s.rtt = pair.route->rtt;
  return s;
}

PathKind SimulatorConnection::path() const {
  MOOSICBOX_P2P_ASSERT(end_);
  const auto& route = end_->pair->route;
  return route ? route->kind : PathKind::direct;
}

std::optional<NodeId> SimulatorConnection::relay() const {
  MOOSICBOX_P2P_ASSERT(end_);
  const auto& route = end_->pair->route;
  return route ? route->relay : std::nullopt;
}

std::uint64_t SimulatorConnection::id() const {
  MOOSICBOX_P2P_ASSERT(end_);
  return end_->pair->id;
}

asio::awaitable<P2PResult<SimulatorBiStream>> SimulatorConnection::open_bi() {
  MOOSICBOX_P2P_ASSERT(end_);
  const auto keep = end_;
  auto& pair = *keep->pair;
  const auto side = keep->side;
  auto& e = pair.end[side];
  while (true) {
    if (auto err = pair.send_error(side)) co_return fail(*err);
    if (e.streams_opened < e.streams_allowed) break;
    if (const auto wake = co_await e.open_waiters.wait(); wake == WaitQueue::Wake::cancelled)
      co_return fail(P2PError::cancelled("open_bi"));
  }
  const auto sid = pair.open_stream(side).id;
  co_return detail::Access::stream(keep, sid);
}

asio::awaitable<P2PResult<SimulatorBiStream>> SimulatorConnection::accept_bi() {
  MOOSICBOX_P2P_ASSERT(end_);
  const auto keep = end_;
  auto& pair = *keep->pair;
  const auto side = keep->side;
  auto& e = pair.end[side];
  while (true) {
    while (!e.accept_queue.empty()) {
      const auto sid = e.accept_queue.pop_front();
      auto* s = pair.find_stream(sid);
      if (s == nullptr) continue;
      s->queued = false;
      s->handle[side] = true;
      co_return detail::Access::stream(keep, sid);
    }
    if (auto err = pair.recv_error(side)) co_return fail(*err);
    if (const auto wake = co_await e.accept_waiters.wait(); wake == WaitQueue::Wake::cancelled)
      co_return fail(P2PError::cancelled("accept_bi"));
  }
}

// ---- streams ----------------------------------------------------------------------------------------------

SimulatorBiStream::SimulatorBiStream(std::shared_ptr<detail::EndRef> end, std::uint64_t id) noexcept
    : end_(std::move(end)), id_(id) {}

SimulatorBiStream::SimulatorBiStream(SimulatorBiStream&& other) noexcept
    : end_(std::move(other.end_)), id_(other.id_) {}

SimulatorBiStream& SimulatorBiStream::operator=(SimulatorBiStream&& other) noexcept {
  if (this != &other) {
    release();
    end_ = std::move(other.end_);
    id_ = other.id_;
  }
  return *this;
}

SimulatorBiStream::~SimulatorBiStream() { release(); }

void SimulatorBiStream::release() noexcept {
  if (!end_) return;
  auto& pair = *end_->pair;
  const auto side = end_->side;
  if (!pair.world->shutting_down) {
    if (auto* s = pair.find_stream(id_); s != nullptr) {
      // Dropping a stream mid-way aborts it, as QUIC does: the peer must not wait forever.
      if (!s->half[side].send_done()) pair.stream_reset(side, *s, 0);
      if (!s->half[pair.peer(side)].recv_done()) pair.stream_stop(side, *s, 0);
      s->handle[side] = false;
      pair.schedule_reap();
    }
  }
  end_.reset();
}

asio::awaitable<P2PResult<void>> SimulatorBiStream::write(ByteView data) {
  MOOSICBOX_P2P_ASSERT(end_);
  const auto keep = end_;
  auto& pair = *keep->pair;
  const auto side = keep->side;
  const auto sid = id_;
  std::size_t done = 0;
  while (true) {
    auto* s = pair.find_stream(sid);
    MOOSICBOX_P2P_ASSERT(s != nullptr);
    auto& out = s->half[side];
    if (auto err = pair.stream_send_error(side, out)) co_return fail(*err);
    if (done == data.size()) co_return P2PResult<void>{};
    const auto credit = out.credit_limit - out.sent_offset;
    if (credit == 0) {
      if (const auto wake = co_await out.writers.wait(); wake == WaitQueue::Wake::cancelled)
        co_return fail(P2PError::cancelled("stream write"));
      continue;
    }
    const auto n = std::min({data.size() - done, static_cast<std::size_t>(credit), detail::kStreamSegmentMax});
    detail::Frame f;
    f.kind = detail::FrameKind::stream_data;
    f.stream = sid;
    f.data.assign(data.begin() + static_cast<std::ptrdiff_t>(done),
                  data.begin() + static_cast<std::ptrdiff_t>(done + n));
    out.sent_offset += n;
    done += n;
    pair.push(out.lane, std::move(f));
  }
}

asio::awaitable<P2PResult<void>> SimulatorBiStream::finish() {
  MOOSICBOX_P2P_ASSERT(end_);
  const auto keep = end_;
  auto& pair = *keep->pair;
  const auto side = keep->side;
  auto* s = pair.find_stream(id_);
  MOOSICBOX_P2P_ASSERT(s != nullptr);
  auto& out = s->half[side];
  if (auto err = pair.stream_send_error(side, out)) co_return fail(*err);
  out.fin_sent = true;
  detail::Frame f;
  f.kind = detail::FrameKind::stream_fin;
  f.stream = id_;
  pair.push(out.lane, std::move(f));
  pair.check_stream_closed(*s);
  co_return P2PResult<void>{};
}

void SimulatorBiStream::reset(std::uint64_t code) {
  MOOSICBOX_P2P_ASSERT(end_);
  auto& pair = *end_->pair;
  if (auto* s = pair.find_stream(id_); s != nullptr) pair.stream_reset(end_->side, *s, code);
}

void SimulatorBiStream::stop(std::uint64_t code) {
  MOOSICBOX_P2P_ASSERT(end_);
  auto& pair = *end_->pair;
  if (auto* s = pair.find_stream(id_); s != nullptr) pair.stream_stop(end_->side, *s, code);
}

asio::awaitable<P2PResult<std::size_t>> SimulatorBiStream::read(std::span<std::byte> buffer) {
  MOOSICBOX_P2P_ASSERT(end_);
  MOOSICBOX_P2P_ASSERT(!buffer.empty());  // a zero-byte read could not be told from the end of the stream
  const auto keep = end_;
  auto& pair = *keep->pair;
  const auto side = keep->side;
  const auto sid = id_;
  while (true) {
    auto* s = pair.find_stream(sid);
    MOOSICBOX_P2P_ASSERT(s != nullptr);
    auto& in = s->half[pair.peer(side)];
    if (in.reset_arrived) co_return fail(P2PError::stream_reset(in.reset_code_in));
    if (in.stopped) co_return fail(P2PError::stream_reset(in.stop_code_sent));
    if (pair.end[side].local_closed) co_return fail(P2PError::connection_closed("this side"));
    if (!in.segments.empty()) {
      std::size_t n = 0;
      while (n < buffer.size() && !in.segments.empty()) {
        auto& seg = in.segments.front();
        const auto k = std::min(buffer.size() - n, seg.size() - in.head_offset);
        std::memcpy(buffer.data() + n, seg.data() + in.head_offset, k);
        n += k;
        in.head_offset += k;
        if (in.head_offset == seg.size()) {
          (void)in.segments.pop_front();
          in.head_offset = 0;
        }
      }
      pair.stream_consumed(side, *s, n);
      co_return n;
    }
    if (in.fin_arrived) {
      if (!in.eof_read) {
        in.eof_read = true;
        pair.check_stream_closed(*s);
      }
      co_return std::size_t{0};
    }
    if (auto err = pair.recv_error(side)) co_return fail(*err);
    if (const auto wake = co_await in.readers.wait(); wake == WaitQueue::Wake::cancelled)
      co_return fail(P2PError::cancelled("stream read"));
  }
}

}  // namespace moosicbox::p2p::sim
