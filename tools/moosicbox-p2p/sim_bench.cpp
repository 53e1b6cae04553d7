// SPDX-License-Identifier: MIT OR Apache-2.0
// sim_bench.cpp: `moosicbox-p2p bench sim`: the simulator's figures. Every workload is a fixed,
// seeded simulation; wall time comes from the real environment's clock (env::AsioEnv), resident
// memory from /proc/self/statm. The workloads are documented in docs/simulation.md.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <vector>

#include <fmt/format.h>

#include "moosicbox/p2p/core/spawn.hpp"
#include "moosicbox/p2p/env/asio_env.hpp"
#include "moosicbox/p2p/sim/sim.hpp"
#include "sim_commands.hpp"

namespace moosicbox::p2p::cli {
namespace {

using namespace std::chrono_literals;
using sim::SimulatorConnection;
using sim::SimulatorP2P;
using sim::World;

constexpr std::uint64_t kSeed = 20240601;
constexpr std::size_t kSmallMessage = 32;

// WallClock reads the monotonic clock through the environment seam.
class WallClock {
 public:
  [[nodiscard]] TimePoint now() const noexcept { return env_.now(); }

 private:
  asio::io_context ctx_;
  env::AsioEnv env_{ctx_.get_executor()};
};

double seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

std::size_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages_total = 0;
  std::size_t pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// Network is a random topology: a ring for connectivity plus two random chords per node, links of
// 5 to 30 ms with the configured default loss (1 %) and 1 ms of jitter.
struct Network {
  Network(std::size_t n, NetworkConfig config = {}) : world(kSeed, config) {
    env::Rng rng(env::derive_seed(kSeed, "bench-topology"));
    nodes.reserve(n);
    for (std::size_t i = 0; i < n; ++i) nodes.push_back(*world.add_node(fmt::format("n{}", i)));
    auto link = [&](std::size_t a, std::size_t b) {
      if (a == b || world.graph().get_link(nodes[a].local_node_id(), nodes[b].local_node_id()) != nullptr) return;
      sim::LinkInfo l = sim::LinkInfo::from_config(world.config());
      l.latency = std::chrono::milliseconds(5 + rng.uniform(26));
      l.jitter = 1ms;
      (void)world.link(nodes[a].local_node_id(), nodes[b].local_node_id(), l);
    };
    for (std::size_t i = 0; i < n; ++i) {
      link(i, (i + 1) % n);
      if (n > 2) {
        link(i, rng.uniform(n));
        link(i, rng.uniform(n));
      }
    }
  }
  // connect_pairs listens on every node and opens `count` connections from node i to node i+1 (mod
  // n, spreading over the ring), returning both sides of each.
  std::vector<std::pair<SimulatorConnection, SimulatorConnection>> connect_pairs(std::size_t count) {
    std::vector<std::optional<sim::SimulatorListener>> listeners(nodes.size());
    std::vector<std::pair<SimulatorConnection, SimulatorConnection>> out;
    out.reserve(count);
    const auto stride = std::max<std::size_t>(1, nodes.size() / std::max<std::size_t>(count, 1));
    for (std::size_t k = 0; k < count; ++k) {
      const auto from = (k * stride) % nodes.size();
      const auto to = (from + 1) % nodes.size();
      if (!listeners[to]) listeners[to] = world.run(nodes[to].listen())->value();
      auto c = world.run(nodes[from].connect(nodes[to].local_node_id()));
      auto s = world.run(listeners[to]->accept());
      if (!c || !*c || !s || !*s) {
        fmt::print(stderr, "bench: connection {} failed\n", k);
        continue;
      }
      out.emplace_back(**c, **s);
    }
    return out;
  }
  World world;
  std::vector<SimulatorP2P> nodes;
};

asio::awaitable<void> send_n(SimulatorConnection c, std::size_t count) {
  const Bytes payload(kSmallMessage, std::byte{0x2a});
  for (std::size_t i = 0; i < count; ++i) {
    if (const auto ok = co_await c.send(ByteView(payload)); !ok) co_return;
  }
}

asio::awaitable<void> recv_n(SimulatorConnection c, std::size_t count, std::size_t* received) {
  for (std::size_t i = 0; i < count; ++i) {
    if (const auto ok = co_await c.recv(); !ok) co_return;
    ++*received;
  }
}

// deliveries_per_second pushes `per_connection` small messages through each of `connections`
// connections of an n-node network at once and counts deliveries per wall second (setup excluded).
double deliveries_per_second(std::size_t nodes, std::size_t connections, std::size_t per_connection) {
  Network net(nodes);
  auto pairs = net.connect_pairs(connections);
  std::size_t received = 0;
  const auto total = pairs.size() * per_connection;
  for (auto& [c, s] : pairs) {
    spawn_logged(net.world.runtime().executor(), send_n(c, per_connection), "bench-send");
    spawn_logged(net.world.runtime().executor(), recv_n(s, per_connection, &received), "bench-recv");
  }
  const WallClock wall;
  const auto start = wall.now();
  net.world.run_while([&] { return received < total; });
  const auto elapsed = wall.now() - start;
  if (received != total) fmt::print(stderr, "bench: only {} of {} messages arrived\n", received, total);
  return static_cast<double>(received) / seconds(elapsed);
}

// paced sends one `size`-byte message every `gap` until `until` (virtual time).
asio::awaitable<void> paced(SimulatorConnection c, SimulatorP2P node, Duration gap, TimePoint until, std::size_t size) {
  auto timer = node.env().make_timer();
  const Bytes payload(size, std::byte{1});
  for (auto t = node.env().now() + gap; t < until; t += gap) {
    if (const auto ok = co_await timer.wait_until(t); !ok) co_return;
    if (const auto ok = co_await c.send(ByteView(payload)); !ok) co_return;
  }
}

asio::awaitable<void> drain(SimulatorConnection c) {
  // The await stays out of the loop condition: g++ 12 miscompiles co_await in a while condition.
  while (true) {
    if (const auto ok = co_await c.recv(); !ok) co_return;
  }
}

// speedup runs 50 connections of a 100-node network, each sending a `size`-byte message every
// `gap`, for `span` of virtual time, and returns simulated seconds per wall second.
double speedup(Duration gap, Duration span, std::size_t size) {
  Network net(100);
  auto pairs = net.connect_pairs(50);
  const auto until = net.world.now() + span;
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    auto& [c, s] = pairs[i];
    spawn_logged(net.world.runtime().executor(), paced(c, net.nodes[(i * 2) % net.nodes.size()], gap, until, size),
                 "bench-paced");
    spawn_logged(net.world.runtime().executor(), drain(s), "bench-drain");
  }
  const WallClock wall;
  const auto start = wall.now();
  net.world.run_until(until);
  return seconds(span) / seconds(wall.now() - start);
}

// rss_per_node builds a 10,000-node network, every node listening and half of them connected to a
// neighbour, and returns the resident memory it added per node.
double rss_per_node(std::size_t nodes) {
  const auto before = rss_bytes();
  Network net(nodes);
  auto pairs = net.connect_pairs(nodes / 2);
  net.world.run_for(1s);
  const auto after = rss_bytes();
  return static_cast<double>(after - before) / static_cast<double>(nodes);
}

}  // namespace

int sim_bench(bool json) {
  // Memory first: later workloads leave freed heap behind that would hide the growth.
  const double rss = rss_per_node(10'000);
  const double d2 = deliveries_per_second(2, 1, 2'000'000);
  const double d1000 = deliveries_per_second(1000, 500, 4'000);
  const double idle = speedup(1s, 1h, 16);
  const double busy = speedup(1ms, 10s, 1024);
  if (json) {
    fmt::print(
        "{{\"sim_deliveries_per_s_2_nodes\": {:.0f}, \"sim_deliveries_per_s_1000_nodes\": {:.0f}, "
        "\"sim_speedup_idle\": {:.1f}, \"sim_speedup_busy\": {:.1f}, \"sim_rss_bytes_per_node_10000\": {:.0f}}}\n",
        d2, d1000, idle, busy, rss);
    return 0;
  }
  fmt::print("simulator figures (seed {}, wall-clock rates on this machine)\n", kSeed);
  fmt::print("  deliveries per wall second, 2 nodes:      {:>12.0f}\n", d2);
  fmt::print("  deliveries per wall second, 1,000 nodes:  {:>12.0f}\n", d1000);
  fmt::print("  simulated seconds per wall second, idle:  {:>12.1f}\n", idle);
  fmt::print("  simulated seconds per wall second, busy:  {:>12.1f}\n", busy);
  fmt::print("  resident bytes per node at 10,000 nodes:  {:>12.0f}\n", rss);
  return 0;
}

}  // namespace moosicbox::p2p::cli
