// SPDX-License-Identifier: MIT OR Apache-2.0
// netcheck_sim_test.cpp: netcheck on the simulated network, in virtual time: a relay with two STUN
// ports on a public host, and clients on a public host (no NAT), behind full-cone and
// port-restricted NATs (easy, the router's public address), a symmetric NAT (hard: the mapping
// varies by destination), a hairpinning NAT, a router that blocks UDP (no UDP, the relay's latency
// still reported), and a captive portal that answers 200 to everything. Every run is bounded in
// virtual time; the same seed gives the same report.
// Simulation tests: no sleeps, no wall clock; every failure names its seed (P2P_SIM_SEED).
#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstdlib>
#include <exception>
#include <functional>
#include <optional>
#include <string>

#include "moosicbox/p2p/endpoint/netcheck.hpp"
#include "moosicbox/p2p/relay/server.hpp"
#include "moosicbox/p2p/simnet/beast.hpp"
#include "moosicbox/p2p/simnet/network.hpp"

namespace moosicbox::p2p {
namespace {

using namespace std::chrono_literals;
using env::SocketAddr;
using simnet::Host;
using simnet::NatConfig;
using simnet::NatFiltering;
using simnet::NatMapping;

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

SocketAddr ip4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d, std::uint16_t port = 0) {
  return SocketAddr::v4({a, b, c, d}, port);
}

std::uint64_t seed_or(std::uint64_t fallback) {
  if (const char* s = std::getenv("P2P_SIM_SEED")) return std::strtoull(s, nullptr, 10);
  return fallback;
}

// portal answers every HTTP request on its connection with 200 and a login page, then closes.
asio::awaitable<void> portal_connection(simnet::TcpStream s) {
  std::string got;
  std::array<char, 512> buf{};
  while (got.find("\r\n\r\n") == std::string::npos && got.size() < 8192) {
    auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), kUse);
    if (ec) co_return;
    got.append(buf.data(), n);
  }
  const std::string res =
      "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 6\r\nConnection: close\r\n\r\nlogin\n";
  auto [ec, n] = co_await asio::async_write(s, asio::buffer(res), kUse);
  (void)ec;
  (void)n;
  s.close();
}

asio::awaitable<void> portal_server(simnet::TcpListener* l) {
  for (;;) {
    auto s = co_await l->accept();
    if (!s) co_return;
    auto ex = s->get_executor();
    asio::co_spawn(ex, portal_connection(std::move(*s)), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
  }
}

// World is a network with a relay (HTTP 3340, STUN 3478 and 3479) on 203.0.113.10, a captive
// portal on 203.0.113.66:80, and one client host placed by the test.
class World {
 public:
  explicit World(std::uint64_t root) : seed(root), rt(root), net(rt) {
    relay_host = *net.add_host("relay", net.internet(), {ip4(203, 0, 113, 10)});
    relay::RelayServerConfig cfg;
    cfg.bind_addrs = {ip4(203, 0, 113, 10, 3340)};
    cfg.stun_bind_addrs = {ip4(203, 0, 113, 10, 3478), ip4(203, 0, 113, 10, 3479)};
    auto s = relay::RelayServer::create(*relay_host, cfg);
    EXPECT_TRUE(s) << s.error().message() << " seed " << seed;
    if (s) server.emplace(std::move(*s));
    portal_host = *net.add_host("portal", net.internet(), {ip4(203, 0, 113, 66)});
    auto l = simnet::TcpListener::listen(*portal_host, ip4(203, 0, 113, 66, 80));
    EXPECT_TRUE(l) << l.error().message();
    portal.emplace(std::move(*l));
    asio::co_spawn(rt.executor(), portal_server(&*portal), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
    net.add_name("relay.test", ip4(203, 0, 113, 10));
  }
  World(const World&) = delete;
  World& operator=(const World&) = delete;
  ~World() {
    portal->close();
    server.reset();
    (void)rt.run_for(5s);
  }

  // behind adds a client host behind a new router with `nat`.
  Host* behind(NatConfig nat) {
    auto* r = *net.add_router("nat", net.internet(), ip4(198, 51, 100, 1), nat);
    router = r;
    return *net.add_host("client", r->lan(), {ip4(192, 168, 1, 2)});
  }
  Host* public_host() { return *net.add_host("client", net.internet(), {ip4(203, 0, 113, 50)}); }

  // check runs netcheck on `h` and returns its result; the run must end within 2 x timeout + 1 s.
  P2PResult<NetReport> check(Host& h, std::vector<std::string> urls = {"http://relay.test:3340"}) {
    NetcheckConfig cfg;
    cfg.relay_urls = std::move(urls);
    cfg.timeout = 2s;
    std::optional<P2PResult<NetReport>> out;
    const auto start = rt.now();
    asio::co_spawn(rt.executor(), netcheck(h, cfg), [&](std::exception_ptr e, P2PResult<NetReport> r) {
      if (e) std::rethrow_exception(e);
      out = std::move(r);
    });
    const auto res = rt.run_while([&] { return !out.has_value(); }, rt.now() + 30s);
    EXPECT_EQ(res, env::SimRuntime::RunResult::condition_met) << "seed " << seed;
    EXPECT_LE(rt.now() - start, 2 * cfg.timeout + 1s) << "seed " << seed;
    if (!out) return fail(P2PError::timeout(30s));
    return std::move(*out);
  }

  std::uint64_t seed;
  env::SimRuntime rt;
  simnet::Network net;
  Host* relay_host = nullptr;
  Host* portal_host = nullptr;
  simnet::Router* router = nullptr;
  std::optional<relay::RelayServer> server;
  std::optional<simnet::TcpListener> portal;
};

TEST(NetcheckSim, PublicHostHasNoNat) {
  const auto seed = seed_or(1);
  World w(seed);
  auto* h = w.public_host();
  auto r = w.check(*h);
  ASSERT_TRUE(r) << r.error().message() << " seed " << seed;
  EXPECT_TRUE(r->udp) << "seed " << seed;
  ASSERT_TRUE(r->ipv4) << "seed " << seed;
  EXPECT_EQ(r->ipv4->with_port(0), ip4(203, 0, 113, 50)) << "seed " << seed;
  EXPECT_FALSE(r->ipv6) << "seed " << seed;
  EXPECT_EQ(r->nat_kind, "none") << "seed " << seed;
  EXPECT_EQ(r->mapping_varies_by_destination, std::optional<bool>(false)) << "seed " << seed;
  EXPECT_FALSE(r->hairpinning) << "seed " << seed;
  EXPECT_EQ(r->captive_portal, std::optional<bool>(false)) << "seed " << seed;
  EXPECT_EQ(r->preferred_relay, std::optional<std::string>("http://relay.test:3340")) << "seed " << seed;
  ASSERT_EQ(r->relays.size(), 1U);
  EXPECT_TRUE(r->relays[0].genuine);
  EXPECT_EQ(r->relays[0].http_status, 204U);
  EXPECT_EQ(r->relays[0].stun_ports, (std::vector<std::uint16_t>{3478, 3479})) << "seed " << seed;
  EXPECT_TRUE(r->relays[0].stun_answered);
  ASSERT_TRUE(r->relays[0].latency);
  // Two links each way at the default 5 ms.
  EXPECT_GE(*r->relays[0].latency, 20ms) << "seed " << seed;
  EXPECT_EQ(w.server->stats().stun_requests, 2U) << "seed " << seed;
}

TEST(NetcheckSim, FullConeAndPortRestrictedNatsAreEasy) {
  for (const auto filtering : {NatFiltering::none, NatFiltering::address_and_port}) {
    const auto seed = seed_or(2);
    World w(seed);
    NatConfig nat;
    nat.mapping = NatMapping::endpoint_independent;
    nat.filtering = filtering;
    nat.ports = simnet::NatPorts::random;
    auto* h = w.behind(nat);
    auto r = w.check(*h);
    ASSERT_TRUE(r) << r.error().message() << " seed " << seed;
    EXPECT_TRUE(r->udp) << "seed " << seed;
    ASSERT_TRUE(r->ipv4) << "seed " << seed;
    EXPECT_EQ(r->ipv4->with_port(0), ip4(198, 51, 100, 1)) << "seed " << seed;
    EXPECT_EQ(r->mapping_varies_by_destination, std::optional<bool>(false)) << "seed " << seed;
    EXPECT_EQ(r->nat_kind, "easy") << "seed " << seed;
    // The router does not hairpin (the default): the probe to our own public address is lost.
    EXPECT_EQ(r->hairpinning, std::optional<bool>(false)) << "seed " << seed;
    EXPECT_EQ(r->captive_portal, std::optional<bool>(false)) << "seed " << seed;
  }
}

TEST(NetcheckSim, HairpinningNatIsReported) {
  const auto seed = seed_or(3);
  World w(seed);
  NatConfig nat;
  nat.mapping = NatMapping::endpoint_independent;
  nat.filtering = NatFiltering::address_and_port;
  nat.hairpin = true;
  auto* h = w.behind(nat);
  auto r = w.check(*h);
  ASSERT_TRUE(r) << r.error().message() << " seed " << seed;
  EXPECT_EQ(r->nat_kind, "easy") << "seed " << seed;
  EXPECT_EQ(r->hairpinning, std::optional<bool>(true)) << "seed " << seed;
  EXPECT_GE(w.router->stats().hairpinned, 1U) << "seed " << seed;
}

TEST(NetcheckSim, SymmetricNatIsHard) {
  const auto seed = seed_or(4);
  World w(seed);
  NatConfig nat;
  nat.mapping = NatMapping::address_and_port_dependent;
  nat.ports = simnet::NatPorts::random;
  auto* h = w.behind(nat);
  auto r = w.check(*h);
  ASSERT_TRUE(r) << r.error().message() << " seed " << seed;
  EXPECT_TRUE(r->udp) << "seed " << seed;
  ASSERT_TRUE(r->ipv4) << "seed " << seed;
  EXPECT_EQ(r->ipv4->with_port(0), ip4(198, 51, 100, 1)) << "seed " << seed;
  EXPECT_EQ(r->mapping_varies_by_destination, std::optional<bool>(true)) << "seed " << seed;
  EXPECT_EQ(r->nat_kind, "hard") << "seed " << seed;
}

TEST(NetcheckSim, BlockedUdpStillReportsTheRelay) {
  const auto seed = seed_or(5);
  World w(seed);
  NatConfig nat;
  nat.udp_blocked = true;
  auto* h = w.behind(nat);
  auto r = w.check(*h);
  ASSERT_TRUE(r) << r.error().message() << " seed " << seed;
  EXPECT_FALSE(r->udp) << "seed " << seed;
  EXPECT_FALSE(r->ipv4) << "seed " << seed;
  EXPECT_EQ(r->nat_kind, "unknown") << "seed " << seed;
  EXPECT_FALSE(r->mapping_varies_by_destination) << "seed " << seed;
  EXPECT_FALSE(r->hairpinning) << "seed " << seed;
  ASSERT_EQ(r->relays.size(), 1U);
  EXPECT_TRUE(r->relays[0].latency) << "seed " << seed;
  EXPECT_TRUE(r->relays[0].genuine) << "seed " << seed;
  EXPECT_FALSE(r->relays[0].stun_answered) << "seed " << seed;
  EXPECT_EQ(r->captive_portal, std::optional<bool>(false)) << "seed " << seed;
  EXPECT_GE(w.router->stats().blocked_udp, 2U) << "seed " << seed;
}

TEST(NetcheckSim, CaptivePortalIsDetected) {
  const auto seed = seed_or(6);
  World w(seed);
  auto* h = w.public_host();
  auto r = w.check(*h, {"http://203.0.113.66:80"});
  ASSERT_TRUE(r) << r.error().message() << " seed " << seed;
  EXPECT_EQ(r->captive_portal, std::optional<bool>(true)) << "seed " << seed;
  ASSERT_EQ(r->relays.size(), 1U);
  EXPECT_EQ(r->relays[0].http_status, 200U) << "seed " << seed;
  EXPECT_FALSE(r->relays[0].genuine) << "seed " << seed;
  EXPECT_FALSE(r->preferred_relay) << "seed " << seed;
  EXPECT_FALSE(r->udp) << "seed " << seed;
  // With the real relay next to it, the relay's answer wins: no portal in the way.
  auto both = w.check(*h, {"http://203.0.113.66:80", "http://relay.test:3340"});
  ASSERT_TRUE(both) << both.error().message() << " seed " << seed;
  EXPECT_EQ(both->captive_portal, std::optional<bool>(false)) << "seed " << seed;
  EXPECT_EQ(both->preferred_relay, std::optional<std::string>("http://relay.test:3340")) << "seed " << seed;
}

TEST(NetcheckSim, UnreachableRelayAndBadConfiguration) {
  const auto seed = seed_or(7);
  World w(seed);
  auto* h = w.public_host();
  auto r = w.check(*h, {"http://203.0.113.99:3340"});
  ASSERT_TRUE(r) << r.error().message() << " seed " << seed;
  EXPECT_FALSE(r->captive_portal) << "seed " << seed;
  EXPECT_FALSE(r->udp) << "seed " << seed;
  EXPECT_FALSE(r->relays[0].error.empty()) << "seed " << seed;
  EXPECT_EQ(r->relays[0].http_status, 0U);
  auto none = w.check(*h, {});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), P2PErrc::invalid_configuration);
  auto bad = w.check(*h, {"ftp://relay.test"});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), P2PErrc::invalid_configuration);
}

TEST(NetcheckSim, SameSeedSameReport) {
  const auto run = [](std::uint64_t seed) {
    World w(seed);
    NatConfig nat;
    nat.mapping = NatMapping::address_and_port_dependent;
    nat.ports = simnet::NatPorts::random;
    auto* h = w.behind(nat);
    auto r = w.check(*h);
    EXPECT_TRUE(r) << "seed " << seed;
    return r && r->ipv4 ? r->ipv4->to_string() + " " + r->nat_kind : std::string("none");
  };
  const auto seed = seed_or(8);
  EXPECT_EQ(run(seed), run(seed)) << "seed " << seed;
}

}  // namespace
}  // namespace moosicbox::p2p
