// SPDX-License-Identifier: MIT OR Apache-2.0
// server.cpp: the non-template half of Server: admission (per-peer and global limits), one
// coroutine per request stream running the request protocol, a watchdog that enforces the
// timeouts on the environment's clock, and graceful shutdown.
//
// Timeouts: each request carries a deadline that progress pushes back (idle timeout). One watchdog
// per server sleeps until the earliest deadline; an expired request is first cancelled softly (its
// current operation is cancelled through the request's cancellation slot, so it can still answer
// 408 or 503), and reset outright if it has not ended kAbortGrace later.
// Layer: router. Everything runs on the environment's executor.
#include "moosicbox/p2p/router/server.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>

#include "async_event.hpp"
#include "core/log.hpp"
#include "moosicbox/p2p/core/assert.hpp"
#include "moosicbox/p2p/core/spawn.hpp"
#include "stream_state.hpp"

namespace moosicbox::p2p::router {

std::string_view request_outcome_name(RequestOutcome o) noexcept {
  switch (o) {
    case RequestOutcome::completed:
      return "completed";
    case RequestOutcome::refused:
      return "refused";
    case RequestOutcome::aborted_by_peer:
      return "aborted_by_peer";
    case RequestOutcome::aborted_by_server:
      return "aborted_by_server";
    case RequestOutcome::timed_out:
      return "timed_out";
    case RequestOutcome::shut_down:
      return "shut_down";
  }
  return "unknown";
}

namespace detail {

namespace {
// kAbortGrace is how long a softly cancelled request may take to answer before its stream is reset.
constexpr Duration kAbortGrace = std::chrono::seconds(2);

struct PeerState {
  std::size_t connections = 0;
  std::size_t in_flight = 0;
};

enum class Phase : std::uint8_t { head, handler, response };

struct RequestCtx {
  RequestCtx(const NodeId& peer) : record{.remote = peer} {}
  std::shared_ptr<StreamState> stream;
  std::shared_ptr<ConnectionState> conn;
  AnyEnv* env = nullptr;
  TimePoint started{};
  TimePoint deadline = kTimePointMax;
  Duration idle{};  // progress pushes the deadline to now + idle (zero: no extension)
  Phase phase = Phase::head;
  int strikes = 0;  // 1: softly cancelled, 2: reset
  std::optional<RequestOutcome> forced;
  asio::cancellation_signal signal;
  RequestRecord record;

  void touch() {
    if (strikes > 0 || idle <= Duration::zero()) return;
    deadline = std::max(deadline, env->now() + idle);
  }
};
}  // namespace

struct ConnectionState {
  ConnectionState(const NodeId& p, asio::any_io_executor ex) : peer(p), idle(std::move(ex)) {}
  NodeId peer;
  asio::cancellation_signal shutdown;  // bound to the connection loop: cancels its pending accept
  std::size_t in_flight = 0;
  AsyncEvent idle;  // notified whenever one of its requests ends
  std::shared_ptr<PeerState> peer_state;
};

struct ServerCore::Impl {
  Impl(std::shared_ptr<AnyEnv> e, std::shared_ptr<const P2PRouter> r, ServeOptions o)
      : env(std::move(e)),
        router(std::move(r)),
        options(std::move(o)),
        shutdown_event(env->executor()),
        changed(env->executor()),
        watchdog_wake(env->executor()),
        watchdog_timer(env->make_timer()) {}

  std::shared_ptr<AnyEnv> env;
  std::shared_ptr<const P2PRouter> router;
  ServeOptions options;
  bool shutting_down = false;
  bool stopped = false;
  AsyncEvent shutdown_event;
  AsyncEvent changed;  // a request or a connection ended, or shutdown began
  AsyncEvent watchdog_wake;
  std::unique_ptr<AnyTimer> watchdog_timer;
  TimePoint watchdog_target = kTimePointMax;  // what the watchdog's timer waits for
  std::map<NodeId, std::shared_ptr<PeerState>> peers;
  std::map<std::uint64_t, std::shared_ptr<RequestCtx>> active;
  std::vector<std::weak_ptr<ConnectionState>> connections;  // to cancel their loops on shutdown
  std::uint64_t next_seq = 0;
  std::size_t in_flight = 0;
  ServerStats stats;

  void forget_peer_if_idle(const NodeId& peer) {
    const auto it = peers.find(peer);
    if (it != peers.end() && it->second->connections == 0 && it->second->in_flight == 0) peers.erase(it);
  }

  // arm makes sure the watchdog wakes by `deadline`.
  void arm(TimePoint deadline) {
    if (deadline >= watchdog_target) return;
    if (watchdog_target == kTimePointMax) {
      watchdog_wake.notify_all();
    } else {
      watchdog_timer->cancel();
    }
  }

  void strike(RequestCtx& ctx, RequestOutcome why, TimePoint now) {
    if (ctx.strikes == 0) {
      ctx.strikes = 1;
      if (!ctx.forced) ctx.forced = why;
      ctx.deadline = now + kAbortGrace;
      ctx.signal.emit(asio::cancellation_type::terminal);
      arm(ctx.deadline);
    } else if (ctx.strikes == 1) {
      ctx.strikes = 2;
      ctx.deadline = kTimePointMax;
      ctx.stream->abort(why == RequestOutcome::shut_down ? ResetCode::shutdown : ResetCode::timeout);
    }
  }
};

namespace {

asio::awaitable<void> watchdog([[maybe_unused]] std::shared_ptr<ServerCore> self, ServerCore::Impl* impl) {
  while (!impl->stopped) {
    const TimePoint now = impl->env->now();
    TimePoint next = kTimePointMax;
    // Collect first, strike after: striking must not run while the map is being walked.
    std::vector<std::shared_ptr<RequestCtx>> expired;
    for (const auto& [seq, ctx] : impl->active) {
      if (ctx->deadline <= now) expired.push_back(ctx);
    }
    for (const auto& ctx : expired) {
      impl->strike(*ctx, ctx->forced.value_or(RequestOutcome::timed_out), now);
    }
    for (const auto& [seq, ctx] : impl->active) next = std::min(next, ctx->deadline);
    if (next == kTimePointMax) {
      (void)co_await impl->watchdog_wake.wait();
      continue;
    }
    impl->watchdog_target = next;
    (void)co_await impl->watchdog_timer->wait_until(next);
    impl->watchdog_target = kTimePointMax;
  }
}

// response_declared_length applies the body's length to the content-length header.
void set_length_header(Headers& headers, const Body& body) {
  if (const auto n = body.size()) {
    headers.set("content-length", std::to_string(*n));
  }
}

asio::awaitable<P2PResult<void>> write_response(StreamState& st, P2PResponse response, bool head_request,
                                                const HeadLimits& limits, StatusCode& status_sent) {
  if (head_request || !allows_body(response.status)) response.body.clear();
  if (!head_request) set_length_header(response.headers, response.body);
  Bytes buf;
  ResponseHead head{response.status, std::move(response.headers)};
  if (auto enc = encode_response_head(head, limits, buf); !enc) {
    logger().warn("router: cannot encode the response head ({}); answering 500", enc.error().message());
    buf.clear();
    response.body.clear();
    const ResponseHead fallback{StatusCode::internal_server_error, Headers{{"content-length", "0"}}};
    const auto again = encode_response_head(fallback, limits, buf);
    MOOSICBOX_P2P_ASSERT(again.has_value());
    head.status = fallback.status;
  }
  status_sent = head.status;
  // A small body travels with its head in one write: one packet for a small answer.
  if (!response.body.is_streamed() && response.body.bytes().size() <= kWriteChunk) {
    const auto bytes = response.body.bytes();
    buf.insert(buf.end(), bytes.begin(), bytes.end());
    if (auto w = co_await st.write(buf); !w) co_return w;
  } else {
    if (auto w = co_await st.write(buf); !w) co_return w;
    if (auto b = co_await send_body(st, std::move(response.body)); !b) co_return b;
  }
  co_return co_await st.finish();
}

bool peer_went_away(const P2PError& e) noexcept {
  return e.code() == P2PErrc::stream_reset || e.code() == P2PErrc::connection_closed;
}

asio::awaitable<void> run_request([[maybe_unused]] std::shared_ptr<ServerCore> self, ServerCore::Impl* impl,
                                  std::shared_ptr<RequestCtx> ctx) {
  // Cancellation (timeouts, shutdown) must surface as operation results, never as exceptions.
  co_await asio::this_coro::throw_if_cancelled(false);
  StreamState& st = *ctx->stream;
  auto& rec = ctx->record;
  const auto& opts = impl->options;

  // answer writes a small error answer after a refused or timed-out head, then stops the body.
  auto answer = [&](StatusCode status, std::string_view detail) -> asio::awaitable<void> {
    ctx->phase = Phase::response;
    auto resp = P2PResponse::error(status, detail);
    auto w = co_await write_response(st, std::move(resp), false, opts.head_limits, rec.status);
    if (!w) st.abort(ResetCode::cancelled);
    st.stop(ResetCode::no_error);
  };

  HeadDecoder decoder(FrameType::request_head, opts.head_limits);
  if (auto r = co_await read_head(st, decoder); !r) {
    if (ctx->forced == RequestOutcome::timed_out) {
      rec.outcome = RequestOutcome::timed_out;
      co_await answer(StatusCode::request_timeout, "no request head in time");
    } else if (ctx->forced == RequestOutcome::shut_down) {
      rec.outcome = RequestOutcome::shut_down;
      st.abort(ResetCode::shutdown);
    } else {
      rec.outcome = RequestOutcome::aborted_by_peer;
      st.abort(ResetCode::cancelled);
    }
    co_return;
  }
  if (decoder.state() == HeadDecoder::State::failed) {
    rec.outcome = RequestOutcome::refused;
    logger().debug("router: refused a request head from {:s}: {}", rec.remote, head_error_text(decoder.error()));
    co_await answer(head_error_status(decoder.error()), head_error_text(decoder.error()));
    co_return;
  }
  auto& head = decoder.request();
  rec.method = head.method;
  rec.path = head.path;

  // 0-RTT: an attacker can replay early data into a connection that never completes its handshake.
  // GET and HEAD are served at once (they must be safe to repeat); anything else waits until the
  // handshake proves the connection is the client's own, so it never runs for a replay.
  if (head.method != Method::GET && head.method != Method::HEAD && st.is_early()) {
    ++impl->stats.requests_deferred_0rtt;
    if (auto h = co_await st.handshake(); !h) {
      rec.outcome = RequestOutcome::aborted_by_peer;
      st.abort(ResetCode::cancelled);
      co_return;
    }
  }

  std::optional<std::uint64_t> declared;
  if (const auto cl = head.headers.get("content-length")) {
    declared = parse_content_length(*cl);
    if (!declared) {
      rec.outcome = RequestOutcome::refused;
      co_await answer(StatusCode::bad_request, "invalid content-length");
      co_return;
    }
  }
  std::string target = head.path;
  if (!head.query.empty()) target += "?" + head.query;
  auto input = std::make_shared<StreamBodyInput>(ctx->stream, declared, ResetCode::no_error, false);
  auto request = P2PRequest::create(rec.remote, head.method, target, std::move(head.headers), BodyReader(input));
  input.reset();
  if (!request) {
    rec.outcome = RequestOutcome::refused;
    co_await answer(StatusCode::bad_request, request.error().context());
    co_return;
  }

  ctx->phase = Phase::handler;
  ctx->deadline = impl->env->now() + opts.handler_timeout;
  ctx->idle = opts.idle_timeout;
  impl->arm(ctx->deadline);
  P2PResponse response = co_await impl->router->handle(std::move(*request));

  if (ctx->forced == RequestOutcome::shut_down) {
    rec.outcome = RequestOutcome::shut_down;
    st.abort(ResetCode::shutdown);
    co_return;
  }
  if (ctx->forced == RequestOutcome::timed_out) {
    response = P2PResponse::error(StatusCode::service_unavailable, "the handler did not answer in time");
  }
  ctx->phase = Phase::response;
  if (ctx->strikes == 0) {
    ctx->deadline = impl->env->now() + opts.idle_timeout;
    impl->arm(ctx->deadline);
  }
  auto written =
      co_await write_response(st, std::move(response), rec.method == Method::HEAD, opts.head_limits, rec.status);
  if (!written) {
    if (ctx->forced) {
      rec.outcome = *ctx->forced;
    } else if (peer_went_away(written.error())) {
      rec.outcome = RequestOutcome::aborted_by_peer;
    } else {
      rec.outcome = RequestOutcome::aborted_by_server;
      logger().debug("router: response to {} {} aborted: {}", rec.method, rec.path, written.error().message());
    }
    st.abort(rec.outcome == RequestOutcome::timed_out   ? ResetCode::timeout
             : rec.outcome == RequestOutcome::shut_down ? ResetCode::shutdown
                                                        : ResetCode::internal_error);
    co_return;
  }
  // The response is complete: whatever is left of the request body is not wanted.
  st.stop(ResetCode::no_error);
  rec.outcome = ctx->forced.value_or(RequestOutcome::completed);
}

}  // namespace

std::shared_ptr<ServerCore> ServerCore::create(std::shared_ptr<AnyEnv> env, std::shared_ptr<const P2PRouter> router,
                                               ServeOptions options) {
  MOOSICBOX_P2P_ASSERT(env && router);
  MOOSICBOX_P2P_ASSERT(options.peer_requests_max > 0 && options.requests_max > 0);
  auto core =
      std::make_shared<ServerCore>(std::make_unique<Impl>(std::move(env), std::move(router), std::move(options)));
  spawn_logged(core->impl_->env->executor(), watchdog(core, core->impl_.get()), "router watchdog");
  return core;
}

ServerCore::ServerCore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ServerCore::~ServerCore() = default;

asio::awaitable<void> ServerCore::wait_shutdown() {
  if (impl_->shutting_down) co_return;
  (void)co_await impl_->shutdown_event.wait();
}

void ServerCore::shutdown() {
  if (impl_->shutting_down) return;
  impl_->shutting_down = true;
  impl_->shutdown_event.notify_all();
  impl_->changed.notify_all();
  // Copy first: a cancelled loop may end and unregister while we walk.
  std::vector<std::shared_ptr<ConnectionState>> live;
  for (const auto& w : impl_->connections) {
    if (auto c = w.lock()) live.push_back(std::move(c));
  }
  for (const auto& c : live) c->shutdown.emit(asio::cancellation_type::terminal);
}

void log_connection_end(std::exception_ptr e, P2PResult<void> result) {
  if (e) {
    log_task_failure("router connection", e);
  } else if (!result) {
    logger().debug("router: connection ended: {}", result.error().message());
  }
}

bool ServerCore::shutting_down() const noexcept { return impl_->shutting_down; }

asio::awaitable<void> ServerCore::drain() {
  using namespace asio::experimental::awaitable_operators;
  auto self = shared_from_this();
  Impl& impl = *impl_;
  const TimePoint grace_end = impl.env->now() + impl.options.shutdown_grace;
  auto timer = impl.env->make_timer();
  while (impl.in_flight > 0 && impl.env->now() < grace_end) {
    (void)co_await (impl.changed.wait() || timer->wait_until(grace_end));
  }
  if (impl.in_flight > 0) {
    logger().info("router: aborting {} requests still running after the shutdown grace", impl.in_flight);
    const TimePoint now = impl.env->now();
    for (const auto& [seq, ctx] : impl.active) {
      ctx->forced = RequestOutcome::shut_down;
      ctx->strikes = 0;
      impl.strike(*ctx, RequestOutcome::shut_down, now);
    }
  }
  while (impl.in_flight > 0 || impl.stats.connections_active > 0) (void)co_await impl.changed.wait();
}

void ServerCore::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->watchdog_timer->cancel();
  impl_->watchdog_wake.notify_all();
}

ServerStats ServerCore::stats() const noexcept { return impl_->stats; }

asio::any_io_executor ServerCore::executor() const { return impl_->env->executor(); }

std::shared_ptr<ConnectionState> ServerCore::open_connection(const NodeId& peer) {
  auto conn = std::make_shared<ConnectionState>(peer, impl_->env->executor());
  auto& ps = impl_->peers[peer];
  if (!ps) ps = std::make_shared<PeerState>();
  ++ps->connections;
  conn->peer_state = ps;
  std::erase_if(impl_->connections, [](const std::weak_ptr<ConnectionState>& w) { return w.expired(); });
  impl_->connections.push_back(conn);
  ++impl_->stats.connections_accepted;
  ++impl_->stats.connections_active;
  return conn;
}

asio::cancellation_slot ServerCore::connection_slot(const std::shared_ptr<ConnectionState>& conn) {
  return conn->shutdown.slot();
}

void ServerCore::close_connection(const std::shared_ptr<ConnectionState>& conn) {
  MOOSICBOX_P2P_ASSERT(conn && conn->peer_state->connections > 0);
  --conn->peer_state->connections;
  --impl_->stats.connections_active;
  impl_->forget_peer_if_idle(conn->peer);
  impl_->changed.notify_all();
}

asio::awaitable<P2PResult<void>> ServerCore::admit(std::shared_ptr<ConnectionState> conn) {
  Impl& impl = *impl_;
  auto self = shared_from_this();
  while (true) {
    if (impl.shutting_down) co_return fail(P2PError::cancelled("server shutting down"));
    if (conn->peer_state->in_flight < impl.options.peer_requests_max && impl.in_flight < impl.options.requests_max) {
      ++conn->peer_state->in_flight;
      ++conn->in_flight;
      ++impl.in_flight;
      co_return P2PResult<void>{};
    }
    if (auto r = co_await impl.changed.wait(); !r) co_return r;
  }
}

void ServerCore::start(const std::shared_ptr<ConnectionState>& conn, std::unique_ptr<AnyBiStream> stream) {
  Impl& impl = *impl_;
  auto ctx = std::make_shared<RequestCtx>(conn->peer);
  ctx->stream = std::make_shared<StreamState>(std::move(stream));
  ctx->conn = conn;
  ctx->env = impl.env.get();
  ctx->started = impl.env->now();
  ctx->deadline = ctx->started + impl.options.head_timeout;
  ctx->idle = Duration::zero();  // the head must arrive in time, trickling or not
  ctx->stream->on_progress = [weak = std::weak_ptr<RequestCtx>(ctx)] {
    if (auto c = weak.lock()) c->touch();
  };
  const std::uint64_t seq = impl.next_seq++;
  impl.active.emplace(seq, ctx);
  ++impl.stats.requests_started;
  ++impl.stats.requests_active;
  impl.stats.peak_requests_active = std::max(impl.stats.peak_requests_active, impl.stats.requests_active);
  impl.arm(ctx->deadline);

  auto done = [self = shared_from_this(), ctx, seq](std::exception_ptr e) {
    Impl& im = *self->impl_;
    if (e) {
      log_task_failure("router request", e);
      ctx->record.outcome = RequestOutcome::aborted_by_server;
      ctx->stream->abort(ResetCode::internal_error);
    }
    im.active.erase(seq);
    auto& rec = ctx->record;
    rec.bytes_received = ctx->stream->bytes_in();
    rec.bytes_sent = ctx->stream->bytes_out();
    rec.duration = im.env->now() - ctx->started;
    --im.stats.requests_active;
    switch (rec.outcome) {
      case RequestOutcome::completed:
        ++im.stats.requests_completed;
        break;
      case RequestOutcome::refused:
        ++im.stats.requests_refused;
        break;
      case RequestOutcome::timed_out:
        ++im.stats.requests_timed_out;
        break;
      default:
        ++im.stats.requests_aborted;
        break;
    }
    --im.in_flight;
    --ctx->conn->in_flight;
    --ctx->conn->peer_state->in_flight;
    im.forget_peer_if_idle(ctx->conn->peer);
    ctx->conn->idle.notify_all();
    im.changed.notify_all();
    if (im.options.on_request) im.options.on_request(rec);
    // The stream handle goes with the request: a request that ends is never left half open.
    ctx->stream.reset();
  };
  asio::co_spawn(impl.env->executor(), run_request(shared_from_this(), &impl, ctx),
                 asio::bind_cancellation_slot(ctx->signal.slot(), std::move(done)));
}

asio::awaitable<void> ServerCore::wait_idle(std::shared_ptr<ConnectionState> conn) {
  auto self = shared_from_this();
  while (conn->in_flight > 0) (void)co_await conn->idle.wait();
}

}  // namespace detail
}  // namespace moosicbox::p2p::router
