// SPDX-License-Identifier: MIT OR Apache-2.0
// simnet_world.cpp: the swarm behind `bench simnet` and the scenario tests (see simnet_world.hpp).
// Topology: a relay at 203.0.113.1:3340 on the simulated internet; member i is either a public host
// at 198.18.x.y, or a host at 192.168.1.2 behind its own NAT router at 198.18.x.y (every home LAN
// uses the same private range, as real ones do). Pair k is members 2k (dialer) and 2k+1 (listener):
// the dialer connects to the listener's NodeAddr (its direct addresses and home relay), sends one
// message and waits for the echo.
// Layer: tools. Single-threaded on the simulation's runtime.
#include "simnet_world.hpp"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>

#include "moosicbox/p2p/endpoint/endpoint.hpp"
#include "moosicbox/p2p/env/asio_env.hpp"
#include "moosicbox/p2p/env/sim_entropy.hpp"
#include "moosicbox/p2p/env/sim_env.hpp"
#include "moosicbox/p2p/relay/server.hpp"
#include "moosicbox/p2p/simnet/network.hpp"

namespace moosicbox::p2p::cli {

std::string_view nat_kind_name(NatKind k) noexcept {
  switch (k) {
    case NatKind::public_host:
      return "public";
    case NatKind::full_cone:
      return "full_cone";
    case NatKind::port_restricted:
      return "port_restricted";
    case NatKind::address_dependent:
      return "address_dependent";
    case NatKind::symmetric:
      return "symmetric";
    case NatKind::udp_blocked:
      return "udp_blocked";
  }
  return "?";
}

namespace {

using namespace std::chrono_literals;
constexpr std::string_view kAlpn = "simnet-swarm/1";
constexpr std::size_t kFailuresKept = 10;

std::size_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages_total = 0;
  std::size_t pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// WallClock reads the monotonic clock through the environment seam (the figures' wall time; the
// simulation never sees it).
class WallClock {
 public:
  [[nodiscard]] TimePoint now() const noexcept { return env_.now(); }

 private:
  asio::io_context ctx_;
  env::AsioEnv env_{ctx_.get_executor()};
};

simnet::NatConfig nat_of(NatKind k) {
  simnet::NatConfig c;
  switch (k) {
    case NatKind::public_host:
    case NatKind::full_cone:
      c.mapping = simnet::NatMapping::endpoint_independent;
      c.filtering = simnet::NatFiltering::none;
      break;
    case NatKind::port_restricted:
      c.mapping = simnet::NatMapping::endpoint_independent;
      c.filtering = simnet::NatFiltering::address_and_port;
      break;
    case NatKind::address_dependent:
      c.mapping = simnet::NatMapping::address_dependent;
      c.filtering = simnet::NatFiltering::address;
      c.ports = simnet::NatPorts::sequential;
      break;
    case NatKind::symmetric:
      c.mapping = simnet::NatMapping::address_and_port_dependent;
      c.filtering = simnet::NatFiltering::address_and_port;
      c.ports = simnet::NatPorts::random;
      break;
    case NatKind::udp_blocked:
      c.udp_blocked = true;
      break;
  }
  return c;
}

SocketAddr public_ip(std::size_t i) {
  // 198.18.0.0/15 (benchmarking, RFC 2544): room for 130,000 members, never a real destination.
  const std::size_t n = i + 2;
  return SocketAddr::v4({198, static_cast<std::uint8_t>(18 + (n >> 16)), static_cast<std::uint8_t>((n >> 8) & 0xff),
                         static_cast<std::uint8_t>(n & 0xff)},
                        0);
}

struct Member {
  simnet::Host* host = nullptr;
  NatKind kind = NatKind::public_host;
  std::optional<Endpoint> ep;
};

struct Shared {
  SwarmReport* report = nullptr;
  env::SimRuntime* rt = nullptr;
  std::size_t finished = 0;
  std::size_t messages = 1;
  std::vector<Duration> connect_times;
  void fail(std::string what) {
    if (report->failures.size() < kFailuresKept) report->failures.push_back(std::move(what));
  }
};

asio::awaitable<void> listen_one(Endpoint ep, std::shared_ptr<Shared> sh) {
  auto l = ep.listen(kAlpn);
  if (!l) co_return;
  auto conn = co_await l->accept();
  if (!conn) co_return;
  // Echo until the dialer closes.
  while (true) {
    auto m = co_await conn->recv();
    if (!m) break;
    auto s = co_await conn->send(*m);
    if (!s) break;
  }
  (void)sh;
}

asio::awaitable<void> dial_one(std::size_t pair, Member* dialer, Member* listener, std::shared_ptr<Shared> sh) {
  auto done = [&] { ++sh->finished; };
  auto home_l = co_await listener->ep->wait_home_relay(60s);
  auto home_d = co_await dialer->ep->wait_home_relay(60s);
  if (!home_l || !home_d) {
    sh->fail(
        fmt::format("pair {}: no home relay: {}", pair, !home_l ? home_l.error().message() : home_d.error().message()));
    done();
    co_return;
  }
  const TimePoint start = sh->rt->now();
  auto conn = co_await dialer->ep->connect(listener->ep->addr(), kAlpn);
  if (!conn) {
    sh->fail(fmt::format("pair {} ({} -> {}): {}", pair, nat_kind_name(dialer->kind), nat_kind_name(listener->kind),
                         conn.error().message()));
    done();
    co_return;
  }
  sh->connect_times.push_back(sh->rt->now() - start);
  std::string problem;
  for (std::size_t i = 0; i < sh->messages && problem.empty(); ++i) {
    const Bytes msg(64, static_cast<std::byte>(i));
    auto s = co_await conn->send(msg);
    if (!s) {
      problem = s.error().message();
      break;
    }
    auto r = co_await conn->recv();
    if (!r) {
      problem = r.error().message();
    } else if (*r != msg) {
      problem = "bytes differ";
    }
  }
  if (!problem.empty()) {
    sh->fail(fmt::format("pair {}: echo failed: {}", pair, problem));
  } else {
    ++sh->report->connected;
    if (conn->path().kind == PathKind::direct) {
      ++sh->report->via_direct;
    } else {
      ++sh->report->via_relay;
    }
  }
  (void)co_await conn->close();
  done();
}

}  // namespace

SwarmReport run_swarm(const SwarmConfig& config) {
  SwarmReport report;
  report.seed = config.seed;
  const std::size_t pairs = config.endpoints / 2;
  report.endpoints = pairs * 2;
  report.pairs = pairs;
  auto log = [&](std::string_view line) {
    if (config.log) config.log(line);
  };

  const WallClock wall;
  const std::size_t rss_before = rss_bytes();
  const TimePoint wall_start = wall.now();

  env::SimRuntime rt(config.seed);
  const env::VirtualCalendarScope calendar(rt);
  auto net = std::make_unique<simnet::Network>(rt);
  simnet::LinkParams access;
  access.latency = config.latency;
  access.jitter = config.jitter;
  access.loss = config.loss;

  auto relay_host = net->add_host("relay", net->internet(), {SocketAddr::v4({203, 0, 113, 1}, 0)}, {});
  if (!relay_host) throw std::runtime_error(relay_host.error().message());
  relay::RelayServerConfig rc;
  rc.bind_addrs = {SocketAddr::v4({203, 0, 113, 1}, 3340)};
  rc.limits.clients_per_ip_max = std::max<std::size_t>(rc.limits.clients_per_ip_max, 4);
  rc.sim_host = *relay_host;
  auto created = relay::RelayServer::create(rt.executor(), std::move(rc));
  if (!created) throw std::runtime_error("relay: " + created.error().message());
  std::optional<relay::RelayServer> relay(std::move(*created));
  const std::string relay_url = relay->url();
  log(fmt::format("relay on the simulated internet at {}", relay_url));

  env::Rng kinds_rng(env::derive_seed(config.seed, "swarm/kinds"));
  static constexpr NatKind kKinds[] = {NatKind::public_host,       NatKind::full_cone, NatKind::port_restricted,
                                       NatKind::address_dependent, NatKind::symmetric, NatKind::udp_blocked};
  std::vector<Member> members(report.endpoints);
  for (std::size_t i = 0; i < members.size(); ++i) {
    Member& m = members[i];
    m.kind = config.random_nats ? kKinds[kinds_rng.uniform(std::size(kKinds))] : NatKind::public_host;
    ++report.kinds[std::string(nat_kind_name(m.kind))];
    const std::string name = fmt::format("m{}", i);
    if (m.kind == NatKind::public_host) {
      auto h = net->add_host(name, net->internet(), {public_ip(i)}, access);
      if (!h) throw std::runtime_error(h.error().message());
      m.host = *h;
    } else {
      auto r = net->add_router(name + "-nat", net->internet(), public_ip(i), nat_of(m.kind), access);
      if (!r) throw std::runtime_error(r.error().message());
      auto h = net->add_host(name, (*r)->lan(), {SocketAddr::v4({192, 168, 1, 2}, 0)}, {});
      if (!h) throw std::runtime_error(h.error().message());
      m.host = *h;
    }
    EndpointConfig cfg(SecretKey::generate(m.host->env()));
    cfg.bind_addrs = {SocketAddr::v4_any(0)};
    cfg.relay_urls = {relay_url};
    cfg.direct_paths = config.direct_paths;
    cfg.connect_timeout = 30s;
    cfg.close_timeout = 2s;
    auto ep = Endpoint::bind(*m.host, std::move(cfg));
    if (!ep) throw std::runtime_error("bind " + name + ": " + ep.error().message());
    m.ep.emplace(std::move(*ep));
  }
  log(fmt::format("{} endpoints on {} hosts; NAT kinds drawn from seed {}", members.size(), members.size(),
                  config.seed));

  auto shared = std::make_shared<Shared>();
  shared->report = &report;
  shared->rt = &rt;
  shared->messages = std::max<std::size_t>(1, config.messages);
  report.setup_wall_s = std::chrono::duration<double>(wall.now() - wall_start).count();
  const TimePoint run_start = wall.now();
  const std::uint64_t packets_before = net->stats().packets_delivered + net->stats().stream_packets_delivered;
  for (std::size_t k = 0; k < pairs; ++k) {
    Member* dialer = &members[2 * k];
    Member* listener = &members[2 * k + 1];
    asio::co_spawn(rt.executor(), listen_one(*listener->ep, shared), [](const std::exception_ptr&) {});
    asio::co_spawn(rt.executor(), dial_one(k, dialer, listener, shared), [](const std::exception_ptr&) {});
  }
  if (config.partition_for > Duration::zero()) {
    rt.schedule_after(config.partition_at, [&] {
      std::vector<simnet::Host*> cut;
      std::vector<simnet::Host*> rest{*relay_host};
      for (std::size_t i = 0; i < members.size(); ++i) (i % 2 == 1 ? cut : rest).push_back(members[i].host);
      net->partition(cut, rest);
      rt.schedule_after(config.partition_for, [&] { net->heal(); });
    });
  }
  const TimePoint virtual_start = rt.now();
  rt.run_while([&] { return shared->finished < pairs; }, rt.now() + config.limit);
  report.virtual_s = std::chrono::duration<double>(rt.now() - virtual_start).count();
  report.wall_s = std::chrono::duration<double>(wall.now() - run_start).count();
  report.packets = net->stats().packets_delivered + net->stats().stream_packets_delivered - packets_before;
  const std::size_t rss_peak = rss_bytes();
  report.rss_bytes_per_endpoint =
      rss_peak > rss_before ? static_cast<double>(rss_peak - rss_before) / static_cast<double>(members.size()) : 0;
  if (shared->finished < pairs) {
    shared->fail(fmt::format("{} of {} pairs unfinished after {} s of virtual time", pairs - shared->finished, pairs,
                             report.virtual_s));
  }
  log(fmt::format("{} of {} pairs connected ({} direct, {} through the relay) in {:.3f} s of virtual time",
                  report.connected, pairs, report.via_direct, report.via_relay, report.virtual_s));

  // Close everything (bounded), then measure.
  std::size_t open = 0;
  for (auto& m : members) {
    ++open;
    asio::co_spawn(
        rt.executor(),
        [](Endpoint ep, std::size_t* left) -> asio::awaitable<void> {
          co_await ep.close();
          --*left;
        }(*m.ep, &open),
        [](const std::exception_ptr&) {});
    m.ep.reset();
  }
  rt.run_while([&] { return open > 0; }, rt.now() + 60s);
  bool relay_down = false;
  asio::co_spawn(
      rt.executor(),
      [](relay::RelayServer* r, bool* down) -> asio::awaitable<void> {
        co_await r->shutdown(false);
        *down = true;
      }(&*relay, &relay_down),
      [](const std::exception_ptr&) {});
  rt.run_while([&] { return !relay_down; }, rt.now() + 30s);

  auto times = shared->connect_times;
  if (!times.empty()) {
    std::nth_element(times.begin(), times.begin() + static_cast<std::ptrdiff_t>(times.size() / 2), times.end());
    report.connect_ms_median = std::chrono::duration<double, std::milli>(times[times.size() / 2]).count();
  }
  report.trace_hash = rt.trace_hash();
  relay.reset();
  rt.shutdown();
  members.clear();
  net.reset();
  return report;
}

}  // namespace moosicbox::p2p::cli
