// SPDX-License-Identifier: MIT OR Apache-2.0
// relay_bench.cpp: `moosicbox-p2p bench relay`. The relay server runs in a child process (as a relay
// runs on its own machine; its memory per client is read from /proc/<pid>/status), the two
// endpoints in this process on two threads, as `bench quic` runs them, with direct paths off so
// every packet crosses the relay. The direct path's request/response rate is measured in the same
// run, so the relay's added round trip compares like with like.
// Layer: tools. Forks before any thread exists; every step is bounded; the child is always ended.
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "moosicbox/p2p/core/secret_key.hpp"
#include "moosicbox/p2p/env/asio_env.hpp"
#include "moosicbox/p2p/relay/server.hpp"
#include "quic_commands.hpp"
#include "relay/client.hpp"
#include "relay_commands.hpp"

namespace moosicbox::p2p::cli {

namespace {

// RelayChild is the relay server process: started by start(), ended (SIGTERM, then waited for) by
// the destructor.
class RelayChild {
 public:
  RelayChild() = default;
  RelayChild(const RelayChild&) = delete;
  RelayChild& operator=(const RelayChild&) = delete;
  ~RelayChild() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }

  P2PResult<std::string> start(std::size_t clients_per_ip) {
    int fds[2];
    if (::pipe(fds) != 0) return fail(P2PError::network("bench relay: pipe failed"));
    pid_ = ::fork();
    if (pid_ < 0) return fail(P2PError::network("bench relay: fork failed"));
    if (pid_ == 0) {
      ::close(fds[0]);
      serve(fds[1], clients_per_ip);
      ::_exit(0);
    }
    ::close(fds[1]);
    // The child writes its URL and a newline once it listens.
    std::string url;
    pollfd p{fds[0], POLLIN, 0};
    while (url.empty() || url.back() != '\n') {
      if (::poll(&p, 1, 10'000) <= 0) break;
      char buf[256];
      const auto n = ::read(fds[0], buf, sizeof(buf));
      if (n <= 0) break;
      url.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    if (url.empty() || url.back() != '\n') return fail(P2PError::network("bench relay: the relay did not start"));
    url.pop_back();
    return url;
  }

  [[nodiscard]] double rss_bytes() const {
    std::ifstream in(fmt::format("/proc/{}/status", pid_));
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) * 1024.0;
    }
    return 0;
  }

 private:
  static void serve(int fd, std::size_t clients_per_ip) {
    asio::io_context io(1);
    relay::RelayServerConfig cfg;
    cfg.bind_addrs = {env::SocketAddr::v4_loopback(0)};
    cfg.limits.clients_per_ip_max = clients_per_ip;  // every bench client comes from 127.0.0.1
    auto server = relay::RelayServer::create(io.get_executor(), std::move(cfg));
    if (!server) {
      std::fprintf(stderr, "bench relay: %s\n", server.error().message().c_str());
      return;
    }
    const std::string line = server->url() + "\n";
    (void)!::write(fd, line.data(), line.size());
    ::close(fd);
    asio::signal_set signals(io, SIGTERM, SIGINT);
    signals.async_wait([&](const boost::system::error_code&, int) { io.stop(); });
    io.run();
  }

  pid_t pid_ = -1;
};

// measure_idle_clients holds `count` relay sessions (distinct node keys) to the relay and returns
// the relay process's RSS growth per session.
P2PResult<double> measure_idle_clients(RelayChild& child, const std::string& url, int count) {
  asio::io_context io(1);
  std::vector<std::shared_ptr<relay::Client>> clients;
  std::optional<P2PResult<double>> out;
  const double before = child.rss_bytes();
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        env::AsioEnv env(io.get_executor());
        for (int i = 0; i < count; ++i) {
          relay::ClientConfig cc(test_secret_key(fmt::format("bench-idle-{}", i)), url);
          auto c = relay::Client::create(io.get_executor(), std::move(cc));
          if (!c) {
            out = fail(c.error());
            co_return;
          }
          (*c)->start();
          clients.push_back(*c);
        }
        const TimePoint deadline = env.now() + std::chrono::seconds(60);
        for (auto& c : clients) {
          auto up = co_await c->wait_connected(deadline);
          if (!up) {
            out = fail(up.error());
            co_return;
          }
        }
        // Let the relay settle (buffers of the handshakes freed) before reading its memory.
        auto timer = env.make_timer();
        (void)co_await timer.wait_until(env.now() + std::chrono::milliseconds(500));
        out = (child.rss_bytes() - before) / static_cast<double>(count);
        for (auto& c : clients) c->close();
      },
      [](std::exception_ptr) {});
  io.run_for(std::chrono::seconds(90));
  if (!out) return fail(P2PError::timeout(std::chrono::seconds(90)));
  return *out;
}

std::string json_figure(double v, int decimals) {
  if (std::isnan(v)) return "null";
  return fmt::format("{:.{}f}", v, decimals);
}

}  // namespace

P2PResult<RelayBenchResult> run_relay_bench(const RelayBenchOptions& options) {
  RelayChild child;
  auto url = child.start(static_cast<std::size_t>(options.idle_clients) + 64);
  if (!url) return fail(url.error());
  RelayBenchResult r;

  QuicBenchOptions q;
  q.connect_samples = options.connect_samples;
  q.runs = options.runs;
  q.bulk_bytes = options.bulk_bytes;
  q.rpc_run = options.rpc_run;
  q.parts = "connect,rpc,bulk";
  q.relay_url = *url;
  q.busy_poll = options.busy_poll;
  q.one_thread = options.one_thread;
  auto relayed = run_quic_bench(q);
  if (!relayed) return fail(relayed.error());
  r.relay_connect_ms = relayed->connect_ms;
  r.relay_rpc_64b_per_s = relayed->rpc_64b_per_s;
  r.relay_bulk_mb_per_s = relayed->bulk_mb_per_s;

  QuicBenchOptions d;
  d.runs = options.runs;
  d.rpc_run = options.rpc_run;
  d.parts = "rpc";
  d.busy_poll = options.busy_poll;
  d.one_thread = options.one_thread;
  auto direct = run_quic_bench(d);
  if (!direct) return fail(direct.error());
  r.direct_rpc_64b_per_s = direct->rpc_64b_per_s;
  r.relay_added_rtt_us = (1.0 / r.relay_rpc_64b_per_s - 1.0 / r.direct_rpc_64b_per_s) * 1e6;

  if (options.idle_clients > 0) {
    auto per_client = measure_idle_clients(child, *url, options.idle_clients);
    if (!per_client) return fail(per_client.error());
    r.relay_rss_bytes_per_client = *per_client;
  }
  return r;
}

std::string to_json(const RelayBenchResult& r) {
  return fmt::format(
      "{{\"relay_connect_ms\":{},\"relay_rpc_64b_per_s\":{},\"relay_bulk_mb_per_s\":{},\"direct_rpc_64b_per_s\":{},"
      "\"relay_added_rtt_us\":{},\"relay_rss_bytes_per_client\":{}}}",
      json_figure(r.relay_connect_ms, 3), json_figure(r.relay_rpc_64b_per_s, 0), json_figure(r.relay_bulk_mb_per_s, 1),
      json_figure(r.direct_rpc_64b_per_s, 0), json_figure(r.relay_added_rtt_us, 1),
      json_figure(r.relay_rss_bytes_per_client, 0));
}

int relay_bench(bool json, const RelayBenchOptions& options) {
  auto r = run_relay_bench(options);
  if (!r) {
    std::fprintf(stderr, "bench relay: %s\n", r.error().message().c_str());
    return 1;
  }
  if (json) {
    std::printf("%s\n", to_json(*r).c_str());
    return 0;
  }
  std::printf("Relay path on loopback (relay in a child process; both endpoints in this one, two threads)\n");
  const auto row = [](const char* key, double v, int decimals, const char* what) {
    const std::string figure = std::isnan(v) ? std::string("-") : fmt::format("{:.{}f}", v, decimals);
    std::printf("  %-28s %10s  (%s)\n", key, figure.c_str(), what);
  };
  row("relay_connect_ms", r->relay_connect_ms, 3, "bound endpoints: dial over the relay + first echo, median");
  row("relay_rpc_64b_per_s", r->relay_rpc_64b_per_s, 0, "64 B request/response through the relay");
  row("relay_bulk_mb_per_s", r->relay_bulk_mb_per_s, 1, "256 MiB on one stream, real-path datagrams");
  row("direct_rpc_64b_per_s", r->direct_rpc_64b_per_s, 0, "the same exchange on a direct path");
  row("relay_added_rtt_us", r->relay_added_rtt_us, 1, "round trip over the relay minus direct");
  row("relay_rss_bytes_per_client", r->relay_rss_bytes_per_client, 0, "relay process RSS per idle client");
  return 0;
}

}  // namespace moosicbox::p2p::cli
