// SPDX-License-Identifier: MIT OR Apache-2.0
// tunnel_bench.cpp: `moosicbox-p2p bench tunnel`: MoosicBox's tunnel pattern measured on loopback.
// A Boost.Beast WebSocket server accepts two clients and forwards each binary message to the other
// one: per client one reader, and one writer with a bounded queue (one write in flight; a reader
// whose destination queue is full stops reading, so TCP pushes back on the sender). The server runs
// on its own thread and io_context, the two clients share the calling thread's io_context: two
// threads for the machine's two cores, the split the router benchmark uses, where a deployment would
// have the server in one process and each client in its own. Client A then (1) sends a 64-byte
// message that B answers with 64 bytes, one at a time, and (2) streams 64 KiB messages to B for a
// few seconds (bounded in bytes too). Every run has a hard time limit.
// Layer: tools.
#include "tunnel_bench.hpp"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include "moosicbox/p2p/env/asio_env.hpp"
#include "server_thread.hpp"

namespace moosicbox::p2p::cli {

namespace {

namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;
using Ws = websocket::stream<tcp::socket>;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// The hard limit of the whole client task (connect, rpc run, bulk run, close).
constexpr Duration kRunLimit = std::chrono::seconds(60);
// Control messages from A to B, told apart from data by their sizes (data is never 1 or 2 bytes).
constexpr std::size_t kBulkEndSize = 1;
constexpr std::size_t kQuitSize = 2;
constexpr std::size_t kWarmupRoundTrips = 200;

void tune(Ws& ws, std::size_t message_max) {
  ws.binary(true);
  // Whole messages in one frame, as the tunnel's clients send them.
  ws.auto_fragment(false);
  ws.read_message_max(message_max);
  ws.next_layer().set_option(tcp::no_delay(true));
}

// ---- the tunnel server ------------------------------------------------------------------------------

// Wakeup is a condition a coroutine waits for on one io_context thread: a timer that never
// expires, cancelled by notify().
class Wakeup {
 public:
  explicit Wakeup(const asio::any_io_executor& ex) : timer_(ex) {}
  asio::awaitable<void> wait() {
    timer_.expires_at(asio::steady_timer::time_point::max());
    auto [ec] = co_await timer_.async_wait(kTuple);
    (void)ec;  // operation_aborted: notified
  }
  void notify() { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
};

// TunnelClient is the server's side of one client: its WebSocket and what waits to be written to it.
struct TunnelClient {
  explicit TunnelClient(tcp::socket s) : ws(std::move(s)), wake(ws.get_executor()), space(ws.get_executor()) {}
  Ws ws;
  std::deque<std::vector<unsigned char>> queue;  // messages to write to this client
  std::size_t queued_bytes = 0;
  Wakeup wake;   // its writer waits here for a message
  Wakeup space;  // the other client's reader waits here for room in `queue`
  bool closed = false;
};

struct Tunnel {
  std::unique_ptr<TunnelClient> a;
  std::unique_ptr<TunnelClient> b;
  std::size_t queue_bytes_max = 0;
  void close_all() {
    for (auto* c : {a.get(), b.get()}) {
      c->closed = true;
      c->wake.notify();
      c->space.notify();
    }
  }
};

// forward reads messages from `from` and queues them to `to`.
asio::awaitable<void> forward(std::shared_ptr<Tunnel> t, TunnelClient& from, TunnelClient& to) {
  boost::beast::flat_buffer buffer;
  while (!to.closed) {
    if (to.queued_bytes >= t->queue_bytes_max) {
      co_await to.space.wait();
      continue;
    }
    auto [ec, n] = co_await from.ws.async_read(buffer, kTuple);
    if (ec) break;
    const auto data = buffer.cdata();
    const auto* p = static_cast<const unsigned char*>(data.data());
    to.queue.emplace_back(p, p + data.size());
    to.queued_bytes += data.size();
    buffer.consume(buffer.size());
    to.wake.notify();
  }
  t->close_all();
}

// drain writes `c`'s queue to it, one message at a time.
asio::awaitable<void> drain(std::shared_ptr<Tunnel> t, TunnelClient& c) {
  while (true) {
    if (c.queue.empty()) {
      if (c.closed) break;
      co_await c.wake.wait();
      continue;
    }
    auto message = std::move(c.queue.front());
    c.queue.pop_front();
    auto [ec, n] = co_await c.ws.async_write(asio::buffer(message), kTuple);
    c.queued_bytes -= message.size();
    c.space.notify();
    if (ec) break;
  }
  t->close_all();
  boost::system::error_code ignored;
  c.ws.next_layer().close(ignored);
}

asio::awaitable<void> tunnel_server(tcp::acceptor& acceptor, std::size_t message_max, std::size_t queue_bytes_max) {
  auto t = std::make_shared<Tunnel>();
  t->queue_bytes_max = queue_bytes_max;
  for (auto* slot : {&t->a, &t->b}) {
    auto [ec, socket] = co_await acceptor.async_accept(kTuple);
    if (ec) co_return;
    *slot = std::make_unique<TunnelClient>(std::move(socket));
    tune((*slot)->ws, message_max);
    auto [aec] = co_await (*slot)->ws.async_accept(kTuple);
    if (aec) co_return;
  }
  const auto ex = co_await asio::this_coro::executor;
  const auto log = [](std::exception_ptr) {};
  asio::co_spawn(ex, forward(t, *t->a, *t->b), log);
  asio::co_spawn(ex, forward(t, *t->b, *t->a), log);
  asio::co_spawn(ex, drain(t, *t->a), log);
  asio::co_spawn(ex, drain(t, *t->b), log);
}

// ---- the two clients ---------------------------------------------------------------------------------

asio::awaitable<std::unique_ptr<Ws>> connect(tcp::endpoint server, std::size_t message_max) {
  auto ws = std::make_unique<Ws>(co_await asio::this_coro::executor);
  auto [ec] = co_await ws->next_layer().async_connect(server, kTuple);
  if (ec) throw std::runtime_error("connect: " + ec.message());
  tune(*ws, message_max);
  auto [hec] = co_await ws->async_handshake(fmt::format("127.0.0.1:{}", server.port()), "/tunnel", kTuple);
  if (hec) throw std::runtime_error("websocket handshake: " + hec.message());
  co_return ws;
}

void check(const boost::system::error_code& ec, const char* what) {
  if (ec) throw std::runtime_error(fmt::format("{}: {}", what, ec.message()));
}

// BulkEnd is what B reports of the bulk run.
struct BulkEnd {
  std::uint64_t bytes = 0;
  TimePoint at{};
};

// answer is client B: it answers small messages, counts bulk bytes and acknowledges the bulk end.
asio::awaitable<void> answer(Ws& b, env::AsioEnv clock, std::size_t rpc_size, BulkEnd& bulk) {
  boost::beast::flat_buffer buffer;
  while (true) {
    auto [ec, n] = co_await b.async_read(buffer, kTuple);
    check(ec, "B read");
    const auto size = buffer.size();
    if (size == kQuitSize) break;
    if (size == rpc_size) {
      auto [wec, wn] = co_await b.async_write(buffer.cdata(), kTuple);
      check(wec, "B answer");
    } else if (size == kBulkEndSize) {
      bulk.at = clock.now();
      auto [wec, wn] = co_await b.async_write(buffer.cdata(), kTuple);
      check(wec, "B bulk end");
    } else {
      bulk.bytes += size;
    }
    buffer.consume(size);
  }
  auto [cec] = co_await b.async_close(websocket::close_code::normal, kTuple);
  (void)cec;
}

double us_between(TimePoint a, TimePoint b) { return std::chrono::duration<double, std::micro>(b - a).count(); }
double seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

// drive is client A: the rpc run, then the bulk run, then it tells B to quit.
asio::awaitable<void> drive(Ws& a, env::AsioEnv clock, const TunnelBenchOptions& o, const BulkEnd& bulk,
                            TunnelBenchResult& out) {
  boost::beast::flat_buffer buffer;
  const std::vector<unsigned char> request(o.rpc_message_size, 0x42);
  std::vector<double> rtts;
  const auto round_trip = [&]() -> asio::awaitable<void> {
    auto [wec, wn] = co_await a.async_write(asio::buffer(request), kTuple);
    check(wec, "A write");
    auto [rec, rn] = co_await a.async_read(buffer, kTuple);
    check(rec, "A read");
    if (buffer.size() != o.rpc_message_size) throw std::runtime_error("A: unexpected answer size");
    buffer.consume(buffer.size());
  };
  for (std::size_t i = 0; i < kWarmupRoundTrips; ++i) co_await round_trip();
  const auto rpc_start = clock.now();
  const auto rpc_end = rpc_start + o.rpc_run;
  while (clock.now() < rpc_end) {
    const auto t0 = clock.now();
    co_await round_trip();
    rtts.push_back(us_between(t0, clock.now()));
  }
  const auto rpc_elapsed = clock.now() - rpc_start;
  std::ranges::sort(rtts);
  out.round_trips = rtts.size();
  if (!rtts.empty()) {
    out.rtt_us = rtts[rtts.size() / 2];
    out.rtt_p99_us = rtts[std::min(rtts.size() - 1, rtts.size() * 99 / 100)];
  }
  out.rpc_per_s = static_cast<double>(rtts.size()) / seconds(rpc_elapsed);

  const std::vector<unsigned char> chunk(o.bulk_message_size, 0x5a);
  const auto bulk_start = clock.now();
  const auto bulk_end = bulk_start + o.bulk_run;
  std::uint64_t sent = 0;
  while (sent < o.bulk_bytes_max && clock.now() < bulk_end) {
    auto [wec, wn] = co_await a.async_write(asio::buffer(chunk), kTuple);
    check(wec, "A bulk write");
    sent += chunk.size();
  }
  const std::vector<unsigned char> end_marker(kBulkEndSize, 0);
  auto [eec, en] = co_await a.async_write(asio::buffer(end_marker), kTuple);
  check(eec, "A bulk end");
  auto [aec, an] = co_await a.async_read(buffer, kTuple);
  check(aec, "A bulk acknowledgement");
  if (buffer.size() != kBulkEndSize) throw std::runtime_error("A: unexpected bulk acknowledgement");
  buffer.consume(buffer.size());
  if (bulk.bytes != sent) throw std::runtime_error("B did not receive every bulk byte");
  out.bulk_bytes = bulk.bytes;
  const double secs = seconds(bulk.at - bulk_start);
  out.bulk_mb_per_s = static_cast<double>(bulk.bytes) / 1e6 / secs;
  out.bulk_mib_per_s = static_cast<double>(bulk.bytes) / (1024.0 * 1024.0) / secs;

  const std::vector<unsigned char> quit(kQuitSize, 0);
  auto [qec, qn] = co_await a.async_write(asio::buffer(quit), kTuple);
  check(qec, "A quit");
  // B closes; A reads until the close frame arrives.
  while (true) {
    auto [cec, cn] = co_await a.async_read(buffer, kTuple);
    if (cec) break;
    buffer.consume(buffer.size());
  }
}

asio::awaitable<void> clients(tcp::endpoint server, const TunnelBenchOptions& o, TunnelBenchResult& out) {
  const auto ex = co_await asio::this_coro::executor;
  env::AsioEnv clock(ex);
  const std::size_t message_max = std::max(o.bulk_message_size, o.rpc_message_size);
  auto a = co_await connect(server, message_max);
  auto b = co_await connect(server, message_max);
  BulkEnd bulk;
  bool b_done = false;
  std::exception_ptr b_error;
  asio::co_spawn(ex, answer(*b, clock, o.rpc_message_size, bulk), [&](std::exception_ptr e) {
    b_error = e;
    b_done = true;
  });
  co_await drive(*a, clock, o, bulk, out);
  auto timer = clock.make_timer();
  while (!b_done) (void)co_await timer.wait_until(clock.now() + std::chrono::milliseconds(1));
  if (b_error) std::rethrow_exception(b_error);
}

}  // namespace

P2PResult<TunnelBenchResult> measure_tunnel(const TunnelBenchOptions& options) {
  ServerThread server_thread;
  tcp::acceptor acceptor(server_thread.io());
  boost::system::error_code ec;
  const tcp::endpoint loopback(asio::ip::address_v4::loopback(), 0);
  acceptor.open(loopback.protocol(), ec);
  if (!ec) acceptor.bind(loopback, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail(P2PError::network(fmt::format("tunnel listen: {}", ec.message())));
  const auto server = acceptor.local_endpoint();
  const std::size_t message_max = std::max(options.bulk_message_size, options.rpc_message_size);
  asio::post(server_thread.io(), [&] {
    asio::co_spawn(server_thread.io(), tunnel_server(acceptor, message_max, options.server_queue_bytes_max),
                   [](std::exception_ptr) {});
  });

  TunnelBenchResult result;
  asio::io_context client_io(1);
  bool done = false;
  std::exception_ptr error;
  asio::co_spawn(client_io, clients(server, options, result), [&](std::exception_ptr e) {
    error = e;
    done = true;
  });
  env::AsioEnv clock(client_io.get_executor());
  const auto end = clock.now() + kRunLimit;
  while (!done && clock.now() < end) {
    if (client_io.stopped()) client_io.restart();
    client_io.run_one_for(std::chrono::milliseconds(100));
  }
  asio::post(server_thread.io(), [&] { acceptor.close(); });
  server_thread.stop();
  if (!done) return fail(P2PError::timeout(kRunLimit));
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      return fail(P2PError::network(e.what()));
    }
  }
  return result;
}

int run_tunnel_bench(bool json) {
  auto r = measure_tunnel();
  if (!r) {
    std::fprintf(stderr, "error: bench tunnel: %s\n", r.error().message().c_str());
    return 1;
  }
  if (json) {
    std::printf(
        "%s\n",
        fmt::format(R"({{"tunnel_bulk_mb_per_s": {:.1f}, "tunnel_bulk_mib_per_s": {:.1f}, "tunnel_bulk_bytes": {}, )"
                    R"("tunnel_rpc_64b_per_s": {:.0f}, "tunnel_rtt_us": {:.1f}, "tunnel_rtt_p99_us": {:.1f}, )"
                    R"("tunnel_round_trips": {}, "threads": "server 1, both clients 1"}})",
                    r->bulk_mb_per_s, r->bulk_mib_per_s, r->bulk_bytes, r->rpc_per_s, r->rtt_us, r->rtt_p99_us,
                    r->round_trips)
            .c_str());
    return 0;
  }
  std::printf("WebSocket tunnel pattern on loopback (Boost.Beast server forwarding between two clients;\n");
  std::printf("server on one thread, both clients on another)\n");
  std::printf("  %-22s %10.1f  (MB/s, 64 KiB messages A to B; %.1f MiB/s, %.0f MB moved)\n", "tunnel_bulk_mb_per_s",
              r->bulk_mb_per_s, r->bulk_mib_per_s, static_cast<double>(r->bulk_bytes) / 1e6);
  std::printf("  %-22s %10.0f  (64-byte request, 64-byte answer, one at a time)\n", "tunnel_rpc_64b_per_s",
              r->rpc_per_s);
  std::printf("  %-22s %10.1f  (median round trip; p99 %.1f us)\n", "tunnel_rtt_us", r->rtt_us, r->rtt_p99_us);
  return 0;
}

}  // namespace moosicbox::p2p::cli
