// SPDX-License-Identifier: MIT OR Apache-2.0
// simnet_commands.cpp: `demo --only simnet` and `bench simnet` (see simnet_commands.hpp). Both run
// the real stack on the simulated packet network in virtual time, on a fresh thread whose TLS
// randomness is seeded (env::run_isolated), so a seed replays a run to the byte.
#include "simnet_commands.hpp"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>

#include "moosicbox/p2p/core/log.hpp"
#include "moosicbox/p2p/endpoint/endpoint.hpp"
#include "moosicbox/p2p/env/asio_env.hpp"
#include "moosicbox/p2p/env/sim_entropy.hpp"
#include "moosicbox/p2p/env/sim_env.hpp"
#include "moosicbox/p2p/relay/server.hpp"
#include "moosicbox/p2p/simnet/network.hpp"
#include "simnet_world.hpp"

namespace moosicbox::p2p::cli {
namespace {

using namespace std::chrono_literals;
constexpr std::string_view kAlpn = "moosicbox/demo/1";
const SocketAddr kRelayAddr = SocketAddr::v4({203, 0, 113, 1}, 3340);

// Story prints lines stamped with virtual time (when `print`) and records broken expectations.
class Story {
 public:
  Story(env::SimRuntime& rt, bool print) : rt_(rt), print_(print) {}
  template <class... Args>
  void say(fmt::format_string<Args...> format, Args&&... args) {
    if (!print_) return;
    const auto t = std::chrono::duration<double>(rt_.now().time_since_epoch()).count();
    fmt::print("[{:8.3f}s] {}\n", t, fmt::format(format, std::forward<Args>(args)...));
    std::fflush(stdout);
  }
  void expect(bool ok, std::string_view what) {
    if (ok) return;
    if (print_) fmt::print("UNEXPECTED: {}\n", what);
    failed_ = true;
  }
  [[nodiscard]] bool failed() const noexcept { return failed_; }

 private:
  env::SimRuntime& rt_;
  bool print_;
  bool failed_ = false;
};

std::string describe(const PathInfo& p) {
  if (p.kind == PathKind::relay) return fmt::format("relay {}", p.relay_url.value_or("?"));
  return fmt::format("direct {}", p.remote_addr.to_string());
}

double ms(Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// serve echoes every message of every connection, and streams back what a stream brings.
asio::awaitable<void> serve_one(Connection c) {
  auto bi = co_await c.accept_bi();
  if (bi) {
    auto data = co_await bi->read_to_end(16 * 1024 * 1024);
    if (data) {
      auto w = co_await bi->write(*data);
      if (w) (void)co_await bi->finish();
    }
  }
}
asio::awaitable<void> serve_messages(Connection c) {
  while (true) {
    auto m = co_await c.recv();
    if (!m) co_return;
    auto s = co_await c.send(*m);
    if (!s) co_return;
  }
}
asio::awaitable<void> serve(Listener l, asio::any_io_executor ex) {
  while (true) {
    auto c = co_await l.accept();
    if (!c) co_return;
    asio::co_spawn(ex, serve_messages(*c), [](const std::exception_ptr&) {});
    asio::co_spawn(ex, serve_one(*c), [](const std::exception_ptr&) {});
  }
}

asio::awaitable<P2PResult<Duration>> round_trip(Connection& c, env::SimRuntime& rt, std::string_view text) {
  const TimePoint start = rt.now();
  const Bytes msg(reinterpret_cast<const std::byte*>(text.data()),
                  reinterpret_cast<const std::byte*>(text.data()) + text.size());
  auto s = co_await c.send(msg);
  if (!s) co_return fail(s.error());
  auto r = co_await c.recv();
  if (!r) co_return fail(r.error());
  if (*r != msg) co_return fail(P2PError::protocol("the echo differs"));
  co_return rt.now() - start;
}

struct DemoResult {
  bool ok = false;
  std::uint64_t trace_hash = 0;
  std::uint64_t packets = 0;
};

// run_story builds the world and plays it; `print` narrates.
DemoResult run_story(std::uint64_t seed, bool print) {
  DemoResult out;
  env::SimRuntime rt(seed);
  const env::VirtualCalendarScope calendar(rt);
  auto net = std::make_unique<simnet::Network>(rt);
  Story story(rt, print);
  simnet::LinkParams home_link;
  home_link.latency = 8ms;
  home_link.jitter = 1ms;
  home_link.bandwidth_bps = 50'000'000;
  simnet::LinkParams mobile_link;
  mobile_link.latency = 25ms;
  mobile_link.jitter = 5ms;
  mobile_link.loss = 0.01;
  mobile_link.bandwidth_bps = 20'000'000;

  auto relay_host = net->add_host("relay", net->internet(), {kRelayAddr.with_port(0)}, {});
  simnet::NatConfig home_nat;  // a typical home router: endpoint-independent, port-restricted
  auto home_router =
      net->add_router("home-router", net->internet(), SocketAddr::v4({198, 51, 100, 10}, 0), home_nat, home_link);
  simnet::NatConfig carrier_nat;  // a carrier-grade NAT: a new random port per destination
  carrier_nat.mapping = simnet::NatMapping::address_and_port_dependent;
  carrier_nat.ports = simnet::NatPorts::random;
  auto carrier =
      net->add_router("carrier-nat", net->internet(), SocketAddr::v4({198, 51, 100, 20}, 0), carrier_nat, mobile_link);
  if (!relay_host || !home_router || !carrier) {
    story.expect(false, "building the network");
    return out;
  }
  auto home = net->add_host("home", (*home_router)->lan(), {SocketAddr::v4({192, 168, 1, 2}, 0)}, {});
  auto phone = net->add_host("phone", (*carrier)->lan(), {SocketAddr::v4({100, 64, 7, 9}, 0)}, {});
  auto backup = net->add_host("backup", net->internet(), {SocketAddr::v4({203, 0, 113, 50}, 0)}, home_link);
  if (!home || !phone || !backup) {
    story.expect(false, "building the hosts");
    return out;
  }
  story.say("simulated internet: relay 203.0.113.1, home router 198.51.100.10 (port-restricted NAT),");
  story.say("  carrier NAT 198.51.100.20 (symmetric, random ports), backup box 203.0.113.50 (public)");

  relay::RelayServerConfig rc;
  rc.bind_addrs = {kRelayAddr};
  rc.sim_host = *relay_host;
  std::optional<relay::RelayServer> relay;
  if (auto r = relay::RelayServer::create(rt.executor(), rc)) {
    relay.emplace(std::move(*r));
  } else {
    story.expect(false, "relay: " + r.error().message());
    return out;
  }
  const std::string url = relay->url();

  auto make = [&](simnet::Host* h) -> std::optional<Endpoint> {
    EndpointConfig cfg(SecretKey::generate(h->env()));
    cfg.bind_addrs = {SocketAddr::v4_any(0)};
    cfg.relay_urls = {url};
    cfg.connect_timeout = 20s;
    auto ep = Endpoint::bind(*h, std::move(cfg));
    if (!ep) {
      story.expect(false, "bind on " + h->name() + ": " + ep.error().message());
      return std::nullopt;
    }
    return std::move(*ep);
  };
  auto home_ep = make(*home);
  auto phone_ep = make(*phone);
  auto backup_ep = make(*backup);
  if (!home_ep || !phone_ep || !backup_ep) return out;

  bool done = false;
  auto script = [&]() -> asio::awaitable<void> {
    auto l1 = home_ep->listen(kAlpn);
    auto l2 = backup_ep->listen(kAlpn);
    if (!l1 || !l2) {
      story.expect(false, "listen");
      co_return;
    }
    asio::co_spawn(rt.executor(), serve(std::move(*l1), rt.executor()), [](const std::exception_ptr&) {});
    asio::co_spawn(rt.executor(), serve(std::move(*l2), rt.executor()), [](const std::exception_ptr&) {});
    for (auto* ep : {&*home_ep, &*phone_ep, &*backup_ep}) {
      auto h = co_await ep->wait_home_relay(30s);
      story.expect(h.has_value(), "home relay");
    }
    story.say("home, phone and backup are connected to their home relay {}", url);

    // 1. The phone reaches the music server at home: its only direct address is on the home LAN, so
    //    the path is the relay.
    TimePoint t0 = rt.now();
    auto to_home = co_await phone_ep->connect(home_ep->addr(), kAlpn);
    if (!to_home) {
      story.expect(false, "phone -> home: " + to_home.error().message());
      co_return;
    }
    story.say("phone -> home: connected ({}) in {:.1f} ms", describe(to_home->path()), ms(rt.now() - t0));
    story.expect(to_home->path().kind == PathKind::relay, "phone -> home goes through the relay");
    auto rtt = co_await round_trip(*to_home, rt, "GET /albums");
    story.expect(rtt.has_value(), "phone -> home request");
    if (rtt) story.say("phone -> home: request answered in {:.1f} ms", ms(*rtt));

    // 2. The phone reaches the public backup box directly, out of its symmetric NAT (unless the
    //    lossy mobile link loses the direct handshake's first packets and the relay wins).
    t0 = rt.now();
    auto to_backup = co_await phone_ep->connect(backup_ep->addr(), kAlpn);
    if (!to_backup) {
      story.expect(false, "phone -> backup: " + to_backup.error().message());
      co_return;
    }
    story.say("phone -> backup: connected ({}) in {:.1f} ms", describe(to_backup->path()), ms(rt.now() - t0));
    if (to_backup->path().kind == PathKind::relay) {
      // The mobile link lost a packet of the direct handshake and the relay attempt, started
      // 250 ms later, completed first; the connection stays on the relay (no relay-to-direct
      // upgrade yet).
      story.say("  (the relay won the race; the lossy links have dropped {} packet(s) so far)",
                net->stats().dropped_loss);
    }

    // 3. The carrier NAT forgets its mappings in the middle of a 1 MiB upload: the phone's packets
    //    come from a new port, QUIC follows the new path, no byte is lost.
    simnet::Router* cgnat = *carrier;
    rt.schedule_after(300ms, [cgnat, &story] {
      cgnat->flush();
      story.say("carrier NAT flushed its mappings (rebinding) mid-upload");
    });
    auto bi = co_await to_backup->open_bi();
    Bytes upload(1024 * 1024);
    for (std::size_t i = 0; i < upload.size(); ++i) upload[i] = static_cast<std::byte>(i * 31 + 7);
    bool intact = false;
    if (bi) {
      t0 = rt.now();
      auto w = co_await bi->write(upload);
      P2PResult<void> f = w;
      if (w) f = co_await bi->finish();
      if (f) {
        auto back = co_await bi->read_to_end(upload.size() + 1);
        intact = back && *back == upload;
      }
      story.say("phone -> backup: 1 MiB up and back {} in {:.0f} ms", intact ? "intact" : "BROKEN", ms(rt.now() - t0));
    }
    story.expect(intact, "upload intact across the NAT rebinding");

    // 4. The relay restarts: the old process announces it and winds down while the new one takes
    //    the port; the clients reconnect and the relayed connection carries on.
    story.say("relay restarts (announcing it to its clients)");
    auto old = std::make_shared<relay::RelayServer>(std::move(*relay));
    relay.reset();
    bool old_done = false;
    asio::co_spawn(
        rt.executor(),
        [](std::shared_ptr<relay::RelayServer> r, bool* flag) -> asio::awaitable<void> {
          co_await r->shutdown(true);
          *flag = true;
        }(old, &old_done),
        [](const std::exception_ptr&) {});
    auto pause = (*relay_host)->env().make_timer();
    (void)co_await pause.wait_until(rt.now() + 100ms);
    relay::RelayServerConfig rc2;
    rc2.bind_addrs = {kRelayAddr};
    rc2.sim_host = *relay_host;
    auto again = relay::RelayServer::create(rt.executor(), rc2);
    story.expect(again.has_value(), "relay back on the same address");
    if (again) relay.emplace(std::move(*again));
    for (auto* ep : {&*home_ep, &*phone_ep}) {
      auto h = co_await ep->wait_home_relay(30s);
      story.expect(h.has_value(), "home relay again after the restart");
    }
    story.say("home and phone are back on the relay");
    auto after = co_await round_trip(*to_home, rt, "GET /albums/2");
    story.expect(after.has_value(), "phone -> home after the relay restart");
    if (after) story.say("phone -> home after the restart: request answered in {:.1f} ms", ms(*after));

    (void)co_await to_home->close();
    (void)co_await to_backup->close();
    for (auto* ep : {&*home_ep, &*phone_ep, &*backup_ep}) co_await ep->close();
    if (relay) co_await relay->shutdown(false);
    while (!old_done) (void)co_await pause.wait_until(rt.now() + 100ms);
    done = true;
  };
  asio::co_spawn(rt.executor(), script(), [&](const std::exception_ptr& e) {
    if (e) story.expect(false, "the story threw");
  });
  rt.run_while([&] { return !done; }, rt.now() + 10min);
  story.expect(done, "the story finished within 10 minutes of virtual time");
  out.ok = !story.failed();
  out.trace_hash = rt.trace_hash();
  out.packets = net->stats().packets_delivered + net->stats().stream_packets_delivered;
  home_ep.reset();
  phone_ep.reset();
  backup_ep.reset();
  relay.reset();
  rt.shutdown();
  net.reset();
  return out;
}

std::uint64_t pick_seed(std::optional<std::uint64_t> given) {
  if (given) return *given;
  if (const char* s = std::getenv("P2P_SIM_SEED")) return std::strtoull(s, nullptr, 10);
  env::OsRandom os;
  std::uint64_t seed = 0;
  os.fill_random(std::as_writable_bytes(std::span(&seed, 1)));
  return seed % 1'000'000;
}

}  // namespace

int simnet_demo(std::optional<std::uint64_t> seed_option) {
  const std::uint64_t seed = pick_seed(seed_option);
  // The story narrates; the library's warnings (a relay's clients reconnecting) would drown it.
  const LogLevel level = log_level();
  if (level < LogLevel::error) set_log_level(LogLevel::error);
  fmt::print("== the real stack on a simulated network (seed {}) ==\n", seed);
  DemoResult first;
  DemoResult second;
  env::run_isolated(seed, [&] { first = run_story(seed, true); });
  env::run_isolated(seed, [&] { second = run_story(seed, false); });
  fmt::print("trace hash {:016x} over {} packets; a second run of seed {}: {:016x} ({})\n", first.trace_hash,
             first.packets, seed, second.trace_hash, first.trace_hash == second.trace_hash ? "the same" : "DIFFERENT");
  fmt::print("replay: moosicbox-p2p demo --only simnet --seed {}\n", seed);
  set_log_level(level);
  return first.ok && second.ok && first.trace_hash == second.trace_hash ? 0 : 1;
}

int simnet_bench(bool json, const SimnetBenchOptions& options) {
  SwarmConfig cfg;
  cfg.seed = options.seed;
  cfg.endpoints = options.endpoints;
  cfg.messages = options.messages;
  SwarmReport r;
  env::run_isolated(cfg.seed, [&] { r = run_swarm(cfg); });
  if (json) {
    fmt::print(
        "{{\"endpoints\": {}, \"pairs\": {}, \"connected\": {}, \"via_direct\": {}, \"via_relay\": {}, "
        "\"handshakes_per_wall_s\": {:.1f}, \"packets_per_wall_s\": {:.0f}, \"virtual_s_per_wall_s\": {:.2f}, "
        "\"rss_bytes_per_endpoint\": {:.0f}, \"connect_ms_median\": {:.1f}, \"trace_hash\": \"{:016x}\", "
        "\"seed\": {}, \"messages\": {}, \"packets\": {}, \"wall_s\": {:.3f}, \"setup_wall_s\": {:.3f}}}\n",
        r.endpoints, r.pairs, r.connected, r.via_direct, r.via_relay, r.handshakes_per_wall_s(), r.packets_per_wall_s(),
        r.virtual_s_per_wall_s(), r.rss_bytes_per_endpoint, r.connect_ms_median, r.trace_hash, r.seed, cfg.messages,
        r.packets, r.wall_s, r.setup_wall_s);
  } else {
    fmt::print("simnet swarm, seed {}: {} real endpoints, {} pairs dialing over NATs with a relay\n", r.seed,
               r.endpoints, r.pairs);
    for (const auto& [kind, n] : r.kinds) fmt::print("  {:<18} {}\n", kind, n);
    fmt::print("connected              {} of {} ({} direct, {} relay)\n", r.connected, r.pairs, r.via_direct,
               r.via_relay);
    fmt::print("handshakes per wall s  {:.1f}\n", r.handshakes_per_wall_s());
    fmt::print("packets per wall s     {:.0f} ({} packets)\n", r.packets_per_wall_s(), r.packets);
    fmt::print("virtual s per wall s   {:.2f} ({:.2f} s virtual in {:.2f} s; setup {:.2f} s)\n",
               r.virtual_s_per_wall_s(), r.virtual_s, r.wall_s, r.setup_wall_s);
    fmt::print("RSS per endpoint       {:.0f} bytes\n", r.rss_bytes_per_endpoint);
    fmt::print("connect median         {:.1f} ms (virtual)\n", r.connect_ms_median);
    fmt::print("trace hash             {:016x}\n", r.trace_hash);
  }
  for (const auto& f : r.failures) std::fprintf(stderr, "failure: %s\n", f.c_str());
  if (!r.failures.empty()) {
    std::fprintf(stderr, "replay: moosicbox-p2p bench simnet --seed %llu --endpoints %zu\n",
                 static_cast<unsigned long long>(r.seed), r.endpoints);
  }
  return r.connected == r.pairs ? 0 : 1;
}

}  // namespace moosicbox::p2p::cli
