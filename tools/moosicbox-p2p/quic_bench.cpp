// SPDX-License-Identifier: MIT OR Apache-2.0
// quic_bench.cpp: `moosicbox-p2p bench quic`: the QUIC backend measured on loopback, both ends in this
// process. Each end has its own single-threaded io_context on its own thread (the machine's two
// cores), so the two ends run in parallel like two processes would and talk only through UDP.
// Every step is bounded in time; the whole run stops by itself.
// Layer: tools.
#include "quic_commands.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "moosicbox/p2p/core/spawn.hpp"
#include "moosicbox/p2p/endpoint/endpoint.hpp"
#include "moosicbox/p2p/env/asio_env.hpp"

namespace moosicbox::p2p::cli {

namespace {

using namespace std::chrono_literals;
using namespace boost::asio::experimental::awaitable_operators;

constexpr std::string_view kAlpn = "moosicbox-p2p/bench/1";
constexpr Duration kStepLimit = std::chrono::seconds(120);

// BenchFailure carries a P2PError out of the benchmark's coroutines.
struct BenchFailure {
  P2PError error;
};

template <class T>
T must(P2PResult<T> r) {
  if (!r) throw BenchFailure{r.error()};
  return std::move(*r);
}
inline void must(P2PResult<void> r) {
  if (!r) throw BenchFailure{r.error()};
}

template <class T>
asio::awaitable<std::optional<T>> as_optional(asio::awaitable<T> task) {
  co_return co_await std::move(task);
}

// on runs `task` on executor `ex` (another endpoint's strand) and waits for it.
template <class T>
asio::awaitable<T> on(asio::any_io_executor ex, asio::awaitable<T> task) {
  // co_spawn needs a default-constructible result; an optional is one.
  auto r = co_await asio::co_spawn(ex, as_optional(std::move(task)), asio::use_awaitable);
  co_return std::move(*r);
}
inline asio::awaitable<void> on(asio::any_io_executor ex, asio::awaitable<void> task) {
  co_await asio::co_spawn(ex, std::move(task), asio::use_awaitable);
}

// bounded fails the benchmark when `op` takes longer than kStepLimit.
template <class T>
asio::awaitable<T> bounded(asio::any_io_executor ex, asio::awaitable<T> op, std::string_view what) {
  env::AsioEnv env(ex);
  auto timer = env.make_timer();
  auto r = co_await (std::move(op) || timer.wait_until(env.now() + kStepLimit));
  if (r.index() == 1)
    throw BenchFailure{P2PError(P2PErrc::timeout, fmt::format("{} ({})", format_duration(kStepLimit), what))};
  co_return std::move(std::get<0>(r));
}

// The datagram size both ends use on loopback (0: real-path datagrams, PMTU discovery up to 1452)
// and the busy polling override (set before the endpoints of a measurement exist).
std::size_t g_loopback_udp_payload_size = 0;
std::optional<std::chrono::microseconds> g_busy_poll;
bool g_stop_sending_codes = true;
bool g_zero_rtt = true;                  // resumption and 0-RTT on both ends (EndpointConfig::zero_rtt)
std::optional<std::string> g_relay_url;  // relay paths only, through this relay

EndpointConfig bench_config(std::string_view name) {
  EndpointConfig cfg(test_secret_key(name));
  cfg.bind_addrs = {SocketAddr::v4_loopback(0)};
  cfg.limits.concurrent_handshakes = 1024;
  cfg.loopback_udp_payload_size = g_loopback_udp_payload_size;
  cfg.stop_sending_codes = g_stop_sending_codes;
  cfg.zero_rtt = g_zero_rtt;
  if (g_relay_url) {
    cfg.relay_urls = {*g_relay_url};
    cfg.direct_paths = false;
  }
  if (g_busy_poll) {
    cfg.busy_poll = *g_busy_poll;
    cfg.busy_poll_handshake = *g_busy_poll;
  }
  return cfg;
}

double seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

double median(std::vector<double> xs) {
  if (xs.empty()) return 0;
  std::sort(xs.begin(), xs.end());
  const std::size_t n = xs.size();
  return n % 2 == 1 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
}

double process_cpu_s() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// kernel_udp_drops returns the kernel's count of UDP datagrams dropped for a full receive buffer
// plus the packets softnet dropped (a full backlog), over all CPUs.
double kernel_udp_drops() {
  double drops = 0;
  {
    std::ifstream in("/proc/net/snmp");
    std::string names;
    std::string values;
    while (std::getline(in, names) && std::getline(in, values)) {
      if (names.rfind("Udp:", 0) != 0) continue;
      std::istringstream n(names.substr(4));
      std::istringstream v(values.substr(4));
      std::string name;
      double value = 0;
      while (n >> name && v >> value) {
        if (name == "RcvbufErrors") drops += value;
      }
      break;
    }
  }
  std::ifstream softnet("/proc/net/softnet_stat");
  std::string line;
  while (std::getline(softnet, line)) {
    std::istringstream fields(line);
    std::string processed;
    std::string dropped;
    if (fields >> processed >> dropped) drops += static_cast<double>(std::stoull(dropped, nullptr, 16));
  }
  return drops;
}

double rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) * 1024.0;
  }
  return 0;
}

asio::awaitable<void> read_exact(BiStream& s, std::span<std::byte> out) {
  std::size_t got = 0;
  while (got < out.size()) {
    const std::size_t n = must(co_await s.read(out.subspan(got)));
    if (n == 0) throw BenchFailure{P2PError::protocol("stream ended early")};
    got += n;
  }
}

// --- the server side: echo bi streams, count messages and uni-stream bytes ---

asio::awaitable<void> serve_bi(BiStream s) {
  std::vector<std::byte> buf(64 * 1024);
  for (;;) {
    auto n = co_await s.read(buf);
    if (!n || *n == 0) break;
    if (auto awaited = co_await s.write(ByteView(buf).first(*n)); !awaited) co_return;
  }
  (void)co_await s.finish();
}

asio::awaitable<void> serve_streams(Connection c) {
  const auto ex = co_await asio::this_coro::executor;
  for (;;) {
    auto s = co_await c.accept_bi();
    if (!s) co_return;
    spawn_logged(ex, serve_bi(std::move(*s)), "bench echo");
  }
}

asio::awaitable<void> serve_uni(Connection c) {
  for (;;) {
    auto s = co_await c.accept_uni();
    if (!s) co_return;
    std::vector<std::byte> buf(1 << 20);
    std::uint64_t total = 0;
    for (;;) {
      auto n = co_await s->read(buf);
      if (!n || *n == 0) break;
      total += *n;
    }
    if (auto awaited = co_await c.send(as_bytes(fmt::format("bulk:{}", total))); !awaited) co_return;
  }
}

// serve_messages counts 1 KiB messages after an "N:<count>" message and answers "ok" at the count.
asio::awaitable<void> serve_messages(Connection c) {
  std::uint64_t expected = 0;
  std::uint64_t seen = 0;
  for (;;) {
    auto m = co_await c.recv();
    if (!m) co_return;
    if (m->size() != 1024) {
      const std::string text = to_string(*m);
      if (text.rfind("N:", 0) == 0) {
        expected = std::stoull(text.substr(2));
        seen = 0;
      }
      continue;
    }
    if (++seen == expected) {
      if (auto awaited = co_await c.send(as_bytes("ok")); !awaited) co_return;
    }
  }
}

asio::awaitable<void> serve(Listener l) {
  const auto ex = co_await asio::this_coro::executor;
  for (;;) {
    auto c = co_await l.accept();
    if (!c) co_return;
    spawn_logged(ex, serve_streams(*c), "bench streams");
    spawn_logged(ex, serve_uni(*c), "bench uni");
    spawn_logged(ex, serve_messages(*c), "bench messages");
  }
}

// start_server binds a server endpoint on `ex` and serves it; runs on `ex`.
asio::awaitable<Endpoint> start_server(asio::any_io_executor ex, std::string name) {
  auto ep = must(Endpoint::bind(ex, bench_config(name)));
  if (g_relay_url) (void)must(co_await ep.wait_home_relay(std::chrono::seconds(10)));
  auto l = must(ep.listen(kAlpn));
  spawn_logged(ex, serve(std::move(l)), "bench server");
  co_return ep;
}

asio::awaitable<void> close_endpoint(Endpoint ep) { co_await ep.close(); }

// connect_and_echo dials and does one 1-byte echo on a bidirectional stream (early: with
// connect_early, so the echo goes as 0-RTT data when the client holds a ticket).
asio::awaitable<Connection> connect_and_echo(Endpoint& client, const NodeAddr& server, bool early = false) {
  // Two statements: g++ 12 miscompiles co_await inside a conditional expression.
  std::optional<P2PResult<Connection>> dialled;
  if (early) {
    dialled = co_await client.connect_early(server, kAlpn);
  } else {
    dialled = co_await client.connect(server, kAlpn);
  }
  auto c = must(std::move(*dialled));
  auto s = must(co_await c.open_bi());
  const std::array<std::byte, 1> one{std::byte{42}};
  must(co_await s.write(one));
  std::array<std::byte, 1> back{};
  co_await read_exact(s, back);
  if (back[0] != one[0]) throw BenchFailure{P2PError::protocol("echo mismatch")};
  co_return c;
}

// --- the measurements (run on the client strand) ---

struct Context {
  asio::any_io_executor client_ex;
  asio::any_io_executor server_ex;
  env::AsioEnv env;
  const QuicBenchOptions& options;
};

// measure_connect times reconnects of one client to one server: connect() (resuming the session
// from the previous connection's ticket unless g_zero_rtt is off) or, with `early`, connect_early()
// (the echo rides in 0-RTT).
asio::awaitable<double> measure_connect(Context& cx, bool early = false) {
  auto server = co_await on(cx.server_ex, start_server(cx.server_ex, "bench-server"));
  auto client = must(Endpoint::bind(cx.client_ex, bench_config("bench-client")));
  const NodeAddr to = server.addr();
  std::vector<double> ms;
  for (int i = 0; i < cx.options.connect_samples + 3; ++i) {
    const TimePoint t0 = cx.env.now();
    auto c = co_await bounded(cx.client_ex, connect_and_echo(client, to, early), "connect");
    if (early && i >= 3 && c.zero_rtt() != ZeroRtt::accepted) {
      throw BenchFailure{P2PError::protocol("a reconnect did not get its 0-RTT data accepted")};
    }
    const double dt = seconds(cx.env.now() - t0) * 1e3;
    if (i >= 3) ms.push_back(dt);
    (void)co_await c.close();
  }
  co_await client.close();
  co_await on(cx.server_ex, close_endpoint(std::move(server)));
  co_return median(ms);
}

asio::awaitable<double> measure_cold(Context& cx) {
  std::vector<double> ms;
  for (int i = 0; i < cx.options.cold_samples + 2; ++i) {
    const TimePoint t0 = cx.env.now();
    auto server = co_await on(cx.server_ex, start_server(cx.server_ex, "bench-cold-server"));
    auto client = must(Endpoint::bind(cx.client_ex, bench_config("bench-cold-client")));
    auto c = co_await bounded(cx.client_ex, connect_and_echo(client, server.addr()), "cold connect");
    const double dt = seconds(cx.env.now() - t0) * 1e3;
    if (i >= 2) ms.push_back(dt);
    (void)co_await c.close();
    co_await client.close();
    co_await on(cx.server_ex, close_endpoint(std::move(server)));
  }
  co_return median(ms);
}

struct Pair {
  Endpoint server;
  Endpoint client;
  Connection conn;
};

asio::awaitable<Pair> open_pair(Context& cx) {
  auto server = co_await on(cx.server_ex, start_server(cx.server_ex, "bench-server"));
  auto client = must(Endpoint::bind(cx.client_ex, bench_config("bench-client")));
  auto c = co_await bounded(cx.client_ex, connect_and_echo(client, server.addr()), "connect");
  co_return Pair{std::move(server), std::move(client), std::move(c)};
}

asio::awaitable<void> close_pair(Context& cx, Pair p) {
  (void)co_await p.conn.close();
  co_await p.client.close();
  co_await on(cx.server_ex, close_endpoint(std::move(p.server)));
}

asio::awaitable<double> rpc_run(Context& cx, BiStream& s) {
  std::array<std::byte, 64> req{};
  req.fill(std::byte{7});
  std::array<std::byte, 64> resp{};
  const TimePoint t0 = cx.env.now();
  const TimePoint end = t0 + cx.options.rpc_run;
  std::uint64_t k = 0;
  while (cx.env.now() < end) {
    must(co_await s.write(req));
    co_await read_exact(s, resp);
    ++k;
  }
  co_return static_cast<double>(k) / seconds(cx.env.now() - t0);
}

asio::awaitable<double> measure_rpc(Context& cx) {
  auto p = co_await open_pair(cx);
  auto s = must(co_await p.conn.open_bi());
  std::vector<double> rates;
  for (int run = 0; run < cx.options.runs + 1; ++run) {
    const double r = co_await bounded(cx.client_ex, rpc_run(cx, s), "request/response");
    if (run > 0) rates.push_back(r);
  }
  co_await close_pair(cx, std::move(p));
  co_return median(rates);
}

asio::awaitable<double> messages_run(Context& cx, Connection& c) {
  const std::size_t n = cx.options.messages;
  const Bytes msg(1024, std::byte{9});
  const TimePoint t0 = cx.env.now();
  must(co_await c.send(as_bytes(fmt::format("N:{}", n))));
  for (std::size_t i = 0; i < n; ++i) must(co_await c.send(msg));
  auto ok = must(co_await c.recv());
  if (to_string(ok) != "ok") throw BenchFailure{P2PError::protocol("unexpected answer")};
  co_return static_cast<double>(n) / seconds(cx.env.now() - t0);
}

asio::awaitable<double> measure_messages(Context& cx) {
  auto p = co_await open_pair(cx);
  std::vector<double> rates;
  for (int run = 0; run < cx.options.runs + 1; ++run) {
    const double r = co_await bounded(cx.client_ex, messages_run(cx, p.conn), "messages");
    if (run > 0) rates.push_back(r);
  }
  co_await close_pair(cx, std::move(p));
  co_return median(rates);
}

struct BulkSample {
  double mb_per_s = 0;
  double cpu_s = 0;
  double lost = 0;          // packets the sender declared lost
  double udp_payload = 0;   // the sender's datagram size at the end
  double kernel_drops = 0;  // over all runs
};

asio::awaitable<BulkSample> bulk_run(Context& cx, Connection& c) {
  const std::size_t total = cx.options.bulk_bytes;
  const Bytes chunk(1 << 20, std::byte{0xab});
  const double cpu0 = process_cpu_s();
  const auto lost0 = c.transport_stats().packets_lost;
  const TimePoint t0 = cx.env.now();
  auto s = must(co_await c.open_uni());
  for (std::size_t sent = 0; sent < total; sent += chunk.size()) {
    must(co_await s.write(ByteView(chunk).first(std::min(chunk.size(), total - sent))));
  }
  must(co_await s.finish());
  auto done = must(co_await c.recv());
  const double dt = seconds(cx.env.now() - t0);
  if (to_string(done) != fmt::format("bulk:{}", total)) {
    throw BenchFailure{P2PError::protocol(fmt::format("bulk: the receiver reported '{}'", to_string(done)))};
  }
  const auto ts = c.transport_stats();
  BulkSample out;
  out.mb_per_s = static_cast<double>(total) / dt / 1e6;
  out.cpu_s = process_cpu_s() - cpu0;
  out.lost = static_cast<double>(ts.packets_lost - lost0);
  out.udp_payload = static_cast<double>(ts.udp_payload_size);
  co_return out;
}

asio::awaitable<BulkSample> measure_bulk(Context& cx) {
  auto p = co_await open_pair(cx);
  std::vector<double> rates;
  std::vector<double> cpu;
  std::vector<double> lost;
  BulkSample out;
  const double drops0 = kernel_udp_drops();
  for (int run = 0; run < cx.options.runs; ++run) {
    const auto r = co_await bounded(cx.client_ex, bulk_run(cx, p.conn), "bulk");
    rates.push_back(r.mb_per_s);
    cpu.push_back(r.cpu_s);
    lost.push_back(r.lost);
    out.udp_payload = r.udp_payload;
  }
  out.kernel_drops = kernel_udp_drops() - drops0;
  co_await close_pair(cx, std::move(p));
  const double gib = static_cast<double>(cx.options.bulk_bytes) / static_cast<double>(1ULL << 30);
  out.mb_per_s = median(rates);
  out.cpu_s = median(cpu) / gib;
  out.lost = median(lost);
  co_return out;
}

asio::awaitable<void> pause(Context& cx, Duration d) {
  auto t = cx.env.make_timer();
  (void)co_await t.wait_until(cx.env.now() + d);
}

asio::awaitable<double> measure_idle_memory(Context& cx) {
  auto server = co_await on(cx.server_ex, start_server(cx.server_ex, "bench-mem-server"));
  auto client = must(Endpoint::bind(cx.client_ex, bench_config("bench-mem-client")));
  const NodeAddr to = server.addr();
  std::vector<Connection> conns;
  conns.push_back(co_await bounded(cx.client_ex, connect_and_echo(client, to), "connect"));
  co_await pause(cx, 300ms);
  const double rss1 = rss_bytes();
  const int n = std::max(2, cx.options.idle_connections);
  while (static_cast<int>(conns.size()) < n) {
    conns.push_back(co_await bounded(cx.client_ex, connect_and_echo(client, to), "connect"));
  }
  co_await pause(cx, 1s);
  const double rss_n = rss_bytes();
  for (auto& c : conns) (void)co_await c.close();
  conns.clear();
  co_await client.close();
  co_await on(cx.server_ex, close_endpoint(std::move(server)));
  co_return (rss_n - rss1) / static_cast<double>(n - 1);
}

std::vector<std::string_view> split_parts(std::string_view parts) {
  std::vector<std::string_view> out;
  if (parts.empty()) return out;
  for (;;) {
    const auto comma = parts.find(',');
    out.push_back(parts.substr(0, comma));
    if (comma == std::string_view::npos) return out;
    parts = parts.substr(comma + 1);  // "a," leaves an empty last part, which is refused
  }
}

bool wanted(const QuicBenchOptions& o, std::string_view part) {
  if (o.parts.empty()) return true;
  const auto parts = split_parts(o.parts);
  return std::ranges::find(parts, part) != parts.end();
}

asio::awaitable<QuicBenchResult> bench_all(Context& cx) {
  QuicBenchResult r;
  const auto& o = cx.options;
  if (wanted(o, "connect")) {
    r.connect_ms = co_await measure_connect(cx);
    g_zero_rtt = false;
    r.connect_full_ms = co_await measure_connect(cx);
    g_zero_rtt = true;
  }
  if (wanted(o, "0rtt")) r.reconnect_0rtt_ms = co_await measure_connect(cx, true);
  if (wanted(o, "cold")) r.connect_cold_ms = co_await measure_cold(cx);
  if (wanted(o, "rpc")) r.rpc_64b_per_s = co_await measure_rpc(cx);
  if (wanted(o, "msgs")) r.msgs_1k_per_s = co_await measure_messages(cx);
  if (wanted(o, "bulk")) {
    const auto bulk = co_await measure_bulk(cx);
    r.bulk_mb_per_s = bulk.mb_per_s;
    r.cpu_s_per_gib = bulk.cpu_s;
    r.udp_payload_bytes = bulk.udp_payload;
    r.bulk_lost_packets = bulk.lost;
    r.bulk_kernel_drops = bulk.kernel_drops;
    if (o.jumbo_udp_payload_size != 0) {
      // Jumbo loopback datagrams: what the engine does when the path is not the bottleneck.
      g_loopback_udp_payload_size = o.jumbo_udp_payload_size;
      const auto jumbo = co_await measure_bulk(cx);
      g_loopback_udp_payload_size = 0;
      r.bulk_16k_mb_per_s = jumbo.mb_per_s;
      r.jumbo_udp_payload_bytes = jumbo.udp_payload;
    }
  }
  if (wanted(o, "rss")) r.rss_bytes_per_idle_conn = co_await measure_idle_memory(cx);
  co_return r;
}

}  // namespace

P2PResult<void> check_quic_bench_parts(std::string_view parts) {
  for (const auto part : split_parts(parts)) {
    if (std::ranges::find(kQuicBenchParts, part) == std::end(kQuicBenchParts)) {
      return fail(
          P2PError::invalid_configuration(fmt::format("unknown benchmark part '{}' (expected a comma-separated list of "
                                                      "connect, 0rtt, cold, rpc, msgs, bulk, rss)",
                                                      part)));
    }
  }
  return {};
}

P2PResult<QuicBenchResult> run_quic_bench(const QuicBenchOptions& options) {
  if (auto ok = check_quic_bench_parts(options.parts); !ok) return fail(ok.error());
  if (options.jumbo_udp_payload_size != 0 &&
      (options.jumbo_udp_payload_size < 1200 || options.jumbo_udp_payload_size > 65527)) {
    return fail(P2PError::invalid_configuration(
        fmt::format("udp payload {} is outside [1200, 65527]", options.jumbo_udp_payload_size)));
  }
  g_loopback_udp_payload_size = 0;
  g_busy_poll = options.busy_poll;
  g_zero_rtt = true;
  g_stop_sending_codes = options.stop_sending_codes;
  g_relay_url = options.relay_url;
  asio::io_context client_io(1);
  asio::io_context server_io(1);
  auto server_work = asio::make_work_guard(server_io);
  const asio::any_io_executor client_ex = client_io.get_executor();
  const asio::any_io_executor server_ex = options.one_thread ? client_ex : server_io.get_executor();
  Context cx{client_ex, server_ex, env::AsioEnv(client_ex), options};
  std::optional<P2PResult<QuicBenchResult>> out;
  asio::co_spawn(client_ex, bench_all(cx), [&](std::exception_ptr e, QuicBenchResult r) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const BenchFailure& f) {
        out = fail(f.error);
      } catch (const std::exception& ex) {
        out = fail(P2PError::network(ex.what()));
      }
    } else {
      out = r;
    }
    // Whatever still runs (closing periods) is abandoned: the measurements are done.
    client_io.stop();
    server_io.stop();
  });
  std::thread server_thread([&] { server_io.run(); });
  client_io.run();
  server_work.reset();
  server_io.stop();
  server_thread.join();
  if (!out) return fail(P2PError::network("the benchmark did not finish"));
  return *out;
}

// json_number renders a figure with `decimals` digits, or null when it was not measured.
std::string json_number(double v, int decimals) {
  if (std::isnan(v)) return "null";
  return fmt::format("{:.{}f}", v, decimals);
}

std::string to_json(const QuicBenchResult& r) {
  return fmt::format(
      "{{\"connect_ms\":{},\"connect_full_ms\":{},\"reconnect_0rtt_ms\":{},\"connect_cold_ms\":{},\"rpc_64b_per_s\":{},"
      "\"msgs_1k_per_s\":{},"
      "\"bulk_mb_per_s\":{},\"rss_bytes_per_idle_conn\":{},\"cpu_s_per_gib\":{},\"udp_payload_bytes\":{},"
      "\"bulk_lost_packets\":{},\"bulk_kernel_drops\":{},\"bulk_16k_mb_per_s\":{},\"jumbo_udp_payload_bytes\":{}}}",
      json_number(r.connect_ms, 3), json_number(r.connect_full_ms, 3), json_number(r.reconnect_0rtt_ms, 3),
      json_number(r.connect_cold_ms, 3), json_number(r.rpc_64b_per_s, 0), json_number(r.msgs_1k_per_s, 0),
      json_number(r.bulk_mb_per_s, 1), json_number(r.rss_bytes_per_idle_conn, 0), json_number(r.cpu_s_per_gib, 3),
      json_number(r.udp_payload_bytes, 0), json_number(r.bulk_lost_packets, 0), json_number(r.bulk_kernel_drops, 0),
      json_number(r.bulk_16k_mb_per_s, 1), json_number(r.jumbo_udp_payload_bytes, 0));
}

int quic_bench(bool json, const QuicBenchOptions& options) {
  auto r = run_quic_bench(options);
  if (!r) {
    std::fprintf(stderr, "bench quic: %s\n", r.error().message().c_str());
    return 1;
  }
  if (json) {
    std::printf("%s\n", to_json(*r).c_str());
    return 0;
  }
  std::printf("QUIC backend on loopback (both ends in one process, two threads; real-path datagrams)\n");
  const auto row = [](const char* key, double v, int decimals, const char* what) {
    const std::string figure = std::isnan(v) ? std::string("-") : fmt::format("{:.{}f}", v, decimals);
    std::printf("  %-24s %10s  (%s)\n", key, figure.c_str(), what);
  };
  row("connect_ms", r->connect_ms, 3, "reconnect (resumed) + first 1-byte echo, median");
  row("connect_full_ms", r->connect_full_ms, 3, "the same with resumption off: full handshakes");
  row("reconnect_0rtt_ms", r->reconnect_0rtt_ms, 3, "connect_early + the echo in 0-RTT, median");
  row("connect_cold_ms", r->connect_cold_ms, 3, "bind both endpoints + connect + echo, median");
  row("rpc_64b_per_s", r->rpc_64b_per_s, 0, "64 B request/response on one stream");
  row("msgs_1k_per_s", r->msgs_1k_per_s, 0, "1 KiB messages through send/recv");
  row("bulk_mb_per_s", r->bulk_mb_per_s, 1, "256 MiB on one stream, MB = 10^6 bytes");
  row("rss_bytes_per_idle_conn", r->rss_bytes_per_idle_conn, 0, "both ends, per idle connection pair");
  row("cpu_s_per_gib", r->cpu_s_per_gib, 3, "CPU seconds of both ends per GiB moved");
  row("udp_payload_bytes", r->udp_payload_bytes, 0, "the sender's datagram size at the end of bulk");
  row("bulk_lost_packets", r->bulk_lost_packets, 0, "packets the sender declared lost in a bulk run, median");
  row("bulk_kernel_drops", r->bulk_kernel_drops, 0, "UDP receive-buffer and softnet drops during bulk");
  row("bulk_16k_mb_per_s", r->bulk_16k_mb_per_s, 1, "bulk with --udp-payload datagrams on loopback");
  return 0;
}

}  // namespace moosicbox::p2p::cli
