// SPDX-License-Identifier: MIT OR Apache-2.0
// simnet_stack_test.cpp: the real Endpoint (ngtcp2, GnuTLS, the path layer) on the simulated packet
// network in virtual time: direct paths between public hosts and out of every kind of NAT, loss,
// jitter, partitions, NAT rebinding mid-transfer, drop bursts, and the determinism of whole runs
// (same seed, same trace hash; TLS randomness seeded through env::run_isolated).
// Layer: tests (sim). Never sleeps: virtual time only. Failures print the seed that replays them.
#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "endpoint/simnet_fixture.hpp"

namespace moosicbox::p2p::testing {
namespace {

using namespace std::chrono_literals;
using simnet::NatFiltering;
using simnet::NatMapping;
using simnet::NatPorts;

constexpr std::string_view kAlpn = "sim/1";

/// pattern returns `size` bytes that depend on `seed`.
Bytes pattern(std::size_t size, std::uint32_t seed) {
  Bytes b(size);
  std::uint32_t x = seed * 2654435761U + 7;
  for (auto& v : b) {
    x = x * 1664525U + 1013904223U;
    v = static_cast<std::byte>(x >> 24);
  }
  return b;
}

/// echo_server accepts one connection and echoes each message until the peer closes; then it
/// echoes one bidirectional stream (if the peer opens one).
asio::awaitable<void> echo_server(Listener listener, bool stream) {
  auto conn = co_await listener.accept();
  if (!conn) co_return;
  if (stream) {
    auto bi = co_await conn->accept_bi();
    if (!bi) co_return;
    auto data = co_await bi->read_to_end(64 * 1024 * 1024);
    if (!data) co_return;
    auto w = co_await bi->write(*data);
    if (!w) co_return;
    (void)co_await bi->finish();
  }
  while (true) {
    auto m = co_await conn->recv();
    if (!m) break;
    auto s = co_await conn->send(*m);
    if (!s) break;
  }
}

/// Exchange is what a client saw.
struct Exchange {
  std::string error;  // empty on success
  Duration connect_time{};
  Duration echo_time{};
  PathInfo path;
};

/// dial_and_echo connects to `server`, sends one message and waits for its echo; with
/// `stream_bytes`, also round-trips that many bytes on a stream and checks them.
asio::awaitable<Exchange> dial_and_echo(SimWorld& w, Endpoint client, NodeAddr server, std::size_t stream_bytes = 0) {
  Exchange out;
  const TimePoint start = w.runtime().now();
  auto conn = co_await client.connect(server, kAlpn);
  if (!conn) {
    out.error = "connect: " + conn.error().message();
    co_return out;
  }
  out.connect_time = w.runtime().now() - start;
  out.path = conn->path();
  if (stream_bytes > 0) {
    auto bi = co_await conn->open_bi();
    if (!bi) {
      out.error = "open_bi: " + bi.error().message();
      co_return out;
    }
    const Bytes data = pattern(stream_bytes, 3);
    auto wr = co_await bi->write(data);
    if (!wr) {
      out.error = "write: " + wr.error().message();
      co_return out;
    }
    auto fin = co_await bi->finish();
    if (!fin) {
      out.error = "finish: " + fin.error().message();
      co_return out;
    }
    auto back = co_await bi->read_to_end(stream_bytes + 1);
    if (!back) {
      out.error = "read: " + back.error().message();
      co_return out;
    }
    if (*back != data) {
      out.error = fmt::format("stream bytes differ ({} of {} came back)", back->size(), data.size());
      co_return out;
    }
  }
  const TimePoint sent = w.runtime().now();
  const Bytes msg = pattern(100, 5);
  auto s = co_await conn->send(msg);
  if (!s) {
    out.error = "send: " + s.error().message();
    co_return out;
  }
  auto r = co_await conn->recv();
  if (!r) {
    out.error = "recv: " + r.error().message();
    co_return out;
  }
  if (*r != msg) out.error = "echo differs";
  out.echo_time = w.runtime().now() - sent;
  (void)co_await conn->close();
  co_return out;
}

/// serve binds an echo endpoint on `host` and starts its listener.
NodeAddr serve(SimWorld& w, simnet::Host& host, bool stream = false) {
  auto ep = w.endpoint(host);
  auto l = ep.listen(kAlpn);
  if (!l) throw std::runtime_error("listen: " + l.error().message());
  asio::co_spawn(w.executor(), echo_server(std::move(*l), stream), [](const std::exception_ptr&) {});
  return ep.addr();
}

TEST(SimStack, PublicHostsConnectInOneRoundTrip) {
  SimWorld w(sim_seed(1));
  simnet::LinkParams link;
  link.latency = 10ms;  // 20 ms one way, 40 ms round trip
  auto& a = w.public_host("a", "198.51.100.1", link);
  auto& b = w.public_host("b", "198.51.100.2", link);
  const NodeAddr server = serve(w, b);
  EXPECT_EQ(server.direct_addresses().size(), 1U) << w.replay();
  auto r = w.run(dial_and_echo(w, w.endpoint(a), server));
  ASSERT_TRUE(r) << "no result in virtual time; " << w.replay();
  ASSERT_EQ(r->error, "") << w.replay();
  // The client is connected when the server's first flight arrives: one round trip.
  EXPECT_GE(r->connect_time, 40ms) << w.replay();
  EXPECT_LT(r->connect_time, 80ms) << w.replay();
  EXPECT_GE(r->echo_time, 40ms) << w.replay();
  EXPECT_LT(r->echo_time, 80ms) << w.replay();
  EXPECT_EQ(r->path.kind, PathKind::direct) << w.replay();
  EXPECT_GT(w.net().stats().packets_delivered, 4U);
}

struct NatCase {
  const char* name;
  NatMapping mapping;
  NatFiltering filtering;
  NatPorts ports;
};

class SimStackNat : public ::testing::TestWithParam<NatCase> {};

TEST_P(SimStackNat, ClientBehindNatDialsAPublicServer) {
  const NatCase& c = GetParam();
  SimWorld w(sim_seed(2));
  auto& server_host = w.public_host("server", "203.0.113.10");
  auto& client_host = w.natted_host("client", "198.51.100.7", nat_config(c.mapping, c.filtering, c.ports));
  const NodeAddr server = serve(w, server_host);
  auto r = w.run(dial_and_echo(w, w.endpoint(client_host), server));
  ASSERT_TRUE(r) << w.replay();
  EXPECT_EQ(r->error, "") << c.name << ", " << w.replay();
  EXPECT_EQ(r->path.kind, PathKind::direct) << w.replay();
  const auto* router = w.net().router("client-nat");
  ASSERT_NE(router, nullptr);
  EXPECT_GE(router->stats().mappings_created, 1U) << w.replay();
  EXPECT_GT(router->stats().translated_in, 2U) << w.replay();
}

INSTANTIATE_TEST_SUITE_P(Kinds, SimStackNat,
                         ::testing::Values(NatCase{"eim_full_cone", NatMapping::endpoint_independent,
                                                   NatFiltering::none, NatPorts::preserve},
                                           NatCase{"eim_port_restricted", NatMapping::endpoint_independent,
                                                   NatFiltering::address_and_port, NatPorts::preserve},
                                           NatCase{"adm_address_restricted", NatMapping::address_dependent,
                                                   NatFiltering::address, NatPorts::sequential},
                                           NatCase{"symmetric_random", NatMapping::address_and_port_dependent,
                                                   NatFiltering::address_and_port, NatPorts::random}),
                         [](const ::testing::TestParamInfo<NatCase>& p) { return std::string(p.param.name); });

TEST(SimStack, UdpBlockedNatFailsWithATimeout) {
  SimWorld w(sim_seed(3));
  auto& server_host = w.public_host("server", "203.0.113.10");
  simnet::NatConfig nat;
  nat.udp_blocked = true;
  auto& client_host = w.natted_host("client", "198.51.100.7", nat);
  const NodeAddr server = serve(w, server_host);
  auto cfg = SimWorld::config("client");
  cfg.connect_timeout = 3s;
  const TimePoint start = w.runtime().now();
  auto r = w.run(dial_and_echo(w, w.endpoint(client_host, cfg), server));
  ASSERT_TRUE(r) << w.replay();
  EXPECT_NE(r->error.find("timed out"), std::string::npos) << r->error << "; " << w.replay();
  EXPECT_GE(w.runtime().now() - start, 3s) << w.replay();
  EXPECT_GT(w.net().router("client-nat")->stats().blocked_udp, 0U) << w.replay();
}

TEST(SimStack, UnsolicitedDialIntoANatFails) {
  SimWorld w(sim_seed(4));
  auto& public_host = w.public_host("dialer", "203.0.113.10");
  auto& hidden = w.natted_host("hidden", "198.51.100.7",
                               nat_config(NatMapping::endpoint_independent, NatFiltering::address_and_port));
  const NodeAddr server = serve(w, hidden);  // its only address is on the private segment
  auto cfg = SimWorld::config("dialer");
  cfg.connect_timeout = 2s;
  auto r = w.run(dial_and_echo(w, w.endpoint(public_host, cfg), server));
  ASSERT_TRUE(r) << w.replay();
  EXPECT_FALSE(r->error.empty()) << w.replay();
  EXPECT_GT(w.net().stats().dropped_no_route, 0U) << w.replay();
}

TEST(SimStack, LossAndJitterLoseNoStreamBytes) {
  SimWorld w(sim_seed(5));
  simnet::LinkParams link;
  link.latency = 15ms;
  link.jitter = 5ms;
  link.loss = 0.03;
  link.reorder = 0.02;
  auto& a = w.public_host("a", "198.51.100.1", link);
  auto& b = w.public_host("b", "198.51.100.2", link);
  const NodeAddr server = serve(w, b, /*stream=*/true);
  auto r = w.run(dial_and_echo(w, w.endpoint(a), server, 1024 * 1024));
  ASSERT_TRUE(r) << w.replay();
  EXPECT_EQ(r->error, "") << w.replay();
  EXPECT_GT(w.net().stats().dropped_loss, 10U) << w.replay();
}

TEST(SimStack, BandwidthBoundsATransfer) {
  SimWorld w(sim_seed(6));
  simnet::LinkParams link;
  link.latency = 5ms;
  link.bandwidth_bps = 8'000'000;  // 1 MB/s each way
  auto& a = w.public_host("a", "198.51.100.1", link);
  auto& b = w.public_host("b", "198.51.100.2", link);
  const NodeAddr server = serve(w, b, true);
  const TimePoint start = w.runtime().now();
  auto r = w.run(dial_and_echo(w, w.endpoint(a), server, 1024 * 1024));
  ASSERT_TRUE(r) << w.replay();
  EXPECT_EQ(r->error, "") << w.replay();
  // 1 MiB each way over 1 MB/s links cannot take less than about two seconds.
  EXPECT_GE(w.runtime().now() - start, 2s) << w.replay();
}

TEST(SimStack, TransferSurvivesNatRebinding) {
  SimWorld w(sim_seed(7));
  simnet::LinkParams link;
  link.latency = 10ms;
  link.bandwidth_bps = 20'000'000;
  auto& server_host = w.public_host("server", "203.0.113.10", link);
  auto& client_host =
      w.natted_host("client", "198.51.100.7",
                    nat_config(NatMapping::endpoint_independent, NatFiltering::address_and_port), "192.168.1.2", link);
  const NodeAddr server = serve(w, server_host, true);
  simnet::Router* router = w.net().router("client-nat");
  // Halfway through the transfer the NAT forgets its mappings: the client's packets leave from a
  // new public port and the server must follow the migration.
  w.runtime().schedule_after(600ms, [router] { router->flush(); });
  auto r = w.run(dial_and_echo(w, w.endpoint(client_host), server, 2 * 1024 * 1024));
  ASSERT_TRUE(r) << w.replay();
  EXPECT_EQ(r->error, "") << w.replay();
  EXPECT_GE(router->stats().mappings_created, 2U) << w.replay();
}

TEST(SimStack, TransferSurvivesADropBurst) {
  SimWorld w(sim_seed(8));
  simnet::LinkParams link;
  link.latency = 10ms;
  link.bandwidth_bps = 20'000'000;
  auto& a = w.public_host("a", "198.51.100.1", link);
  auto& b = w.public_host("b", "198.51.100.2", link);
  const NodeAddr server = serve(w, b, true);
  auto& rt = w.runtime();
  // Three seconds of total loss in the middle of the transfer.
  const TimePoint burst_start = rt.now() + 500ms;
  const TimePoint burst_end = burst_start + 3s;
  w.net().set_drop_filter(
      [&rt, burst_start, burst_end](const simnet::Packet&) { return rt.now() >= burst_start && rt.now() < burst_end; });
  auto r = w.run(dial_and_echo(w, w.endpoint(a), server, 2 * 1024 * 1024));
  ASSERT_TRUE(r) << w.replay();
  EXPECT_EQ(r->error, "") << w.replay();
  EXPECT_GT(w.net().stats().dropped_fault, 10U) << w.replay();
  EXPECT_GE(rt.now(), burst_end) << w.replay();
  w.net().set_drop_filter({});
}

TEST(SimStack, APartitionLongerThanTheIdleTimeoutClosesTheConnection) {
  SimWorld w(sim_seed(9));
  auto& a = w.public_host("a", "198.51.100.1");
  auto& b = w.public_host("b", "198.51.100.2");
  auto cfg = SimWorld::config("a");
  cfg.idle_timeout = 5s;
  cfg.keep_alive_interval = 1s;
  auto server_cfg = SimWorld::config("b");
  server_cfg.idle_timeout = 5s;
  auto server_ep = w.endpoint(b, server_cfg);
  auto listener = server_ep.listen(kAlpn);
  ASSERT_TRUE(listener);
  auto client_ep = w.endpoint(a, cfg);
  auto outcome = w.run([](SimWorld& world, Endpoint c, Listener l, NodeAddr to, simnet::Host* ha,
                          simnet::Host* hb) -> asio::awaitable<std::string> {
    auto conn = co_await c.connect(to, kAlpn);
    if (!conn) co_return "connect: " + conn.error().message();
    auto accepted = co_await l.accept();
    if (!accepted) co_return "accept: " + accepted.error().message();
    world.net().partition({ha}, {hb});
    const TimePoint cut = world.runtime().now();
    auto m = co_await conn->recv();  // nothing comes: the idle timeout ends the connection
    if (m) co_return "a message crossed the partition";
    if (world.runtime().now() - cut < 4500ms) {
      co_return fmt::format("closed {} ms after the cut, before the idle timeout: {}",
                            std::chrono::duration_cast<std::chrono::milliseconds>(world.runtime().now() - cut).count(),
                            m.error().message());
    }
    if (world.runtime().now() - cut > 8s) co_return "closed long after the idle timeout";
    co_return "";
  }(w, client_ep, std::move(*listener), server_ep.addr(), &a, &b));
  ASSERT_TRUE(outcome) << w.replay();
  EXPECT_EQ(*outcome, "") << w.replay();
}

/// trace_of runs one small scenario with `seed` on a fresh thread (seeded TLS) and returns the
/// runtime's trace hash and the packet count.
std::pair<std::uint64_t, std::uint64_t> trace_of(std::uint64_t seed) {
  std::pair<std::uint64_t, std::uint64_t> out{};
  env::run_isolated(seed, [&] {
    SimWorld w(seed);
    simnet::LinkParams link;
    link.latency = 8ms;
    link.jitter = 3ms;
    link.loss = 0.02;
    auto& a = w.natted_host(
        "a", "198.51.100.1",
        nat_config(NatMapping::address_and_port_dependent, NatFiltering::address_and_port, NatPorts::random),
        "192.168.1.2", link);
    auto& b = w.public_host("b", "203.0.113.2", link);
    const NodeAddr server = serve(w, b, true);
    auto cfg = SimWorld::config("a");
    cfg.secret_key = SecretKey::generate(a.env());  // a key from the seed, not from the name
    auto r = w.run(dial_and_echo(w, w.endpoint(a, cfg), server, 256 * 1024));
    EXPECT_TRUE(r && r->error.empty()) << (r ? r->error : "no result") << "; " << w.replay();
    w.close_all();
    out = {w.runtime().trace_hash(), w.net().stats().packets_delivered};
  });
  return out;
}

TEST(SimStack, SameSeedSameTraceDifferentSeedDifferentTrace) {
  const std::uint64_t seed = sim_seed(11);
  const auto first = trace_of(seed);
  const auto second = trace_of(seed);
  EXPECT_EQ(first.first, second.first) << "trace hashes differ for the same seed " << seed << " (packets "
                                       << first.second << " vs " << second.second << ")";
  EXPECT_EQ(first.second, second.second) << "seed " << seed;
  const auto other = trace_of(seed + 1);
  EXPECT_NE(first.first, other.first) << "seeds " << seed << " and " << seed + 1 << " gave the same trace";
}

}  // namespace
}  // namespace moosicbox::p2p::testing
