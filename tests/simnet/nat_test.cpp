// SPDX-License-Identifier: MIT OR Apache-2.0
// nat_test.cpp: NAT routers of the simulated network: mapping kinds, port allocation, filtering,
// expiry and refresh, flush, hairpinning, UDP blocking, nested NAT and a full table.
#include "simnet/simnet_test_support.hpp"

namespace moosicbox::p2p::simnet::test {
namespace {

const SocketAddr kPublic = ip4(100, 0, 0, 1);
const SocketAddr kS1 = ip4(5, 0, 0, 1);
const SocketAddr kS2 = ip4(6, 0, 0, 1);
const SocketAddr kLan1 = ip4(192, 168, 1, 10);
const SocketAddr kLan2 = ip4(192, 168, 1, 11);

// NatWorld is two public servers and a NAT router with hosts behind it.
struct NatWorld : World {
  explicit NatWorld(NatConfig nat, std::uint64_t seed = 1)
      : World(seed),
        s1(host("s1", kS1)),
        s2(host("s2", kS2)),
        r(router("r", kPublic, nat)),
        h1(host_on(r.lan(), "h1", kLan1)),
        h2(host_on(r.lan(), "h2", kLan2)),
        u1(bind(s1, kS1.with_port(3478))),
        u1b(bind(s1, kS1.with_port(3479))),
        u2(bind(s2, kS2.with_port(3478))) {}

  // seen sends from `from` to `to` and returns the source the receiver saw (nullopt: dropped).
  std::optional<SocketAddr> seen(UdpSocket& from, UdpSocket& to, SocketAddr to_addr) {
    send(from, to_addr, "probe");
    rt.run_for(1s);
    auto got = drain(to, rt.now());
    if (got.empty()) return std::nullopt;
    return got.back().meta.source;
  }

  Host& s1;
  Host& s2;
  Router& r;
  Host& h1;
  Host& h2;
  UdpSocket u1;
  UdpSocket u1b;
  UdpSocket u2;
};

NatConfig config(NatMapping m, NatFiltering f = NatFiltering::address_and_port, NatPorts p = NatPorts::preserve) {
  NatConfig c;
  c.mapping = m;
  c.filtering = f;
  c.ports = p;
  return c;
}

TEST(SimnetNat, EndpointIndependentMappingKeepsOnePortForEveryDestination) {
  NatWorld w(config(NatMapping::endpoint_independent));
  auto h = bind(w.h1, kLan1.with_port(5000));
  const auto a = w.seen(h, w.u1, kS1.with_port(3478));
  const auto b = w.seen(h, w.u2, kS2.with_port(3478));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, kPublic.with_port(5000));  // preserved
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(w.r.mapping_count(), 1U);
  EXPECT_EQ(w.r.stats().mappings_created, 1U);
  EXPECT_EQ(w.r.stats().translated_out, 2U);
}

TEST(SimnetNat, AddressDependentMappingChangesPortPerDestinationAddress) {
  NatWorld w(config(NatMapping::address_dependent));
  auto h = bind(w.h1, kLan1.with_port(5000));
  const auto a = w.seen(h, w.u1, kS1.with_port(3478));
  const auto a2 = w.seen(h, w.u1b, kS1.with_port(3479));
  const auto b = w.seen(h, w.u2, kS2.with_port(3478));
  ASSERT_TRUE(a && a2 && b);
  EXPECT_EQ(*a, *a2);
  EXPECT_NE(a->port(), b->port());
  EXPECT_EQ(b->port(), 5001);  // preserve, then the next free one
  EXPECT_EQ(w.r.mapping_count(), 2U);
}

TEST(SimnetNat, AddressAndPortDependentMappingChangesPortPerDestinationPort) {
  NatWorld w(config(NatMapping::address_and_port_dependent));
  auto h = bind(w.h1, kLan1.with_port(5000));
  const auto a = w.seen(h, w.u1, kS1.with_port(3478));
  const auto a2 = w.seen(h, w.u1b, kS1.with_port(3479));
  ASSERT_TRUE(a && a2);
  EXPECT_NE(a->port(), a2->port());
  EXPECT_EQ(w.r.mapping_count(), 2U);
}

TEST(SimnetNat, SequentialPortsIncrement) {
  NatWorld w(config(NatMapping::endpoint_independent, NatFiltering::address_and_port, NatPorts::sequential));
  auto h = bind(w.h1, kLan1.with_port(5000));
  auto g = bind(w.h2, kLan2.with_port(5000));
  const auto a = w.seen(h, w.u1, kS1.with_port(3478));
  const auto b = w.seen(g, w.u1, kS1.with_port(3478));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->port(), 1024);  // port_min
  EXPECT_EQ(b->port(), 1025);
}

TEST(SimnetNat, PreservedPortsFallBackToTheNextFree) {
  NatWorld w(config(NatMapping::endpoint_independent));
  auto h = bind(w.h1, kLan1.with_port(5000));
  auto g = bind(w.h2, kLan2.with_port(5000));
  const auto a = w.seen(h, w.u1, kS1.with_port(3478));
  const auto b = w.seen(g, w.u1, kS1.with_port(3478));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->port(), 5000);
  EXPECT_EQ(b->port(), 5001);
}

TEST(SimnetNat, RandomPortsComeFromTheRouterStream) {
  auto ports_for = [](std::uint64_t seed) {
    NatConfig c = config(NatMapping::address_and_port_dependent, NatFiltering::address_and_port, NatPorts::random);
    c.port_min = 20000;
    c.port_max = 30000;
    NatWorld w(c, seed);
    auto h = bind(w.h1, kLan1.with_port(5000));
    std::vector<std::uint16_t> ports;
    for (auto* to : {&w.u1, &w.u1b, &w.u2}) {
      const auto dst = to->local_addr();
      const auto s = w.seen(h, *to, dst);
      EXPECT_TRUE(s);
      if (s) ports.push_back(s->port());
    }
    return ports;
  };
  const std::uint64_t seed = sim_seed(5);
  const auto a = ports_for(seed);
  ASSERT_EQ(a.size(), 3U);
  for (const auto p : a) {
    EXPECT_GE(p, 20000) << "seed " << seed;
    EXPECT_LE(p, 30000) << "seed " << seed;
  }
  EXPECT_NE(a[0], a[1]) << "seed " << seed;
  EXPECT_EQ(a, ports_for(seed)) << "seed " << seed;
  EXPECT_NE(a, ports_for(seed + 1)) << "seed " << seed;
}

TEST(SimnetNat, NoFilteringLetsAnyoneIn) {
  NatWorld w(config(NatMapping::endpoint_independent, NatFiltering::none));
  auto h = bind(w.h1, kLan1.with_port(5000));
  ASSERT_TRUE(w.seen(h, w.u1, kS1.with_port(3478)));
  const auto from_s2 = w.seen(w.u2, h, kPublic.with_port(5000));
  ASSERT_TRUE(from_s2);
  EXPECT_EQ(*from_s2, kS2.with_port(3478));
  EXPECT_EQ(w.r.stats().translated_in, 1U);
}

TEST(SimnetNat, AddressFilteringAdmitsOnlyAddressesSentTo) {
  NatWorld w(config(NatMapping::endpoint_independent, NatFiltering::address));
  auto h = bind(w.h1, kLan1.with_port(5000));
  ASSERT_TRUE(w.seen(h, w.u1, kS1.with_port(3478)));
  EXPECT_TRUE(w.seen(w.u1b, h, kPublic.with_port(5000)));  // same address, other port
  EXPECT_FALSE(w.seen(w.u2, h, kPublic.with_port(5000)));  // another address
  EXPECT_EQ(w.r.stats().filtered_in, 1U);
}

TEST(SimnetNat, AddressAndPortFilteringAdmitsOnlyPairsSentTo) {
  NatWorld w(config(NatMapping::endpoint_independent, NatFiltering::address_and_port));
  auto h = bind(w.h1, kLan1.with_port(5000));
  ASSERT_TRUE(w.seen(h, w.u1, kS1.with_port(3478)));
  EXPECT_TRUE(w.seen(w.u1, h, kPublic.with_port(5000)));
  EXPECT_FALSE(w.seen(w.u1b, h, kPublic.with_port(5000)));
  EXPECT_FALSE(w.seen(w.u2, h, kPublic.with_port(5000)));
  EXPECT_EQ(w.r.stats().filtered_in, 2U);
  EXPECT_EQ(w.net.stats().dropped_nat, 2U);
}

TEST(SimnetNat, UnsolicitedInboundIsDropped) {
  NatWorld w(config(NatMapping::endpoint_independent, NatFiltering::none));
  auto h = bind(w.h1, kLan1.with_port(5000));
  EXPECT_FALSE(w.seen(w.u1, h, kPublic.with_port(5000)));
  EXPECT_EQ(w.r.stats().unmapped_in, 1U);
}

TEST(SimnetNat, MappingsExpireWhenIdleAndOutboundRefreshes) {
  NatConfig c = config(NatMapping::endpoint_independent, NatFiltering::address_and_port);
  c.udp_timeout = 30s;
  NatWorld w(c);
  auto h = bind(w.h1, kLan1.with_port(5000));
  const auto first = w.seen(h, w.u1, kS1.with_port(3478));
  ASSERT_TRUE(first);
  // Outbound every 20 s keeps the mapping; inbound traffic alone does not.
  for (int i = 0; i < 5; ++i) {
    w.rt.run_for(19s);
    EXPECT_EQ(w.seen(h, w.u1, kS1.with_port(3478)), first);
  }
  EXPECT_EQ(w.r.stats().mappings_created, 1U);
  for (int i = 0; i < 3; ++i) {
    w.rt.run_for(8s);
    EXPECT_TRUE(w.seen(w.u1, h, *first)) << "inbound " << i;
  }
  w.rt.run_for(9s);  // 37 s after the last outbound packet
  EXPECT_EQ(w.r.mapping_count(), 0U);
  EXPECT_FALSE(w.seen(w.u1, h, *first));
  EXPECT_EQ(w.r.stats().mappings_expired, 1U);
}

TEST(SimnetNat, FlushGivesFlowsNewPorts) {
  NatWorld w(config(NatMapping::endpoint_independent));
  auto h = bind(w.h1, kLan1.with_port(5000));
  const auto before = w.seen(h, w.u1, kS1.with_port(3478));
  ASSERT_TRUE(before);
  w.r.flush();
  EXPECT_EQ(w.r.mapping_count(), 0U);
  EXPECT_FALSE(w.seen(w.u1, h, *before));
  const auto after = w.seen(h, w.u1, kS1.with_port(3478));
  ASSERT_TRUE(after);
  EXPECT_NE(before->port(), after->port());
}

TEST(SimnetNat, HairpinTurnsPacketsAroundWhenEnabled) {
  for (const bool hairpin : {true, false}) {
    NatConfig c = config(NatMapping::endpoint_independent, NatFiltering::none);
    c.hairpin = hairpin;
    NatWorld w(c);
    auto a = bind(w.h1, kLan1.with_port(5000));
    auto b = bind(w.h2, kLan2.with_port(6000));
    ASSERT_TRUE(w.seen(b, w.u1, kS1.with_port(3478)));  // b's public mapping: 100.0.0.1:6000
    const auto seen = w.seen(a, b, kPublic.with_port(6000));
    if (hairpin) {
      ASSERT_TRUE(seen);
      EXPECT_EQ(*seen, kPublic.with_port(5000));  // a's mapping, as an outside peer would see it
      EXPECT_EQ(w.r.stats().hairpinned, 1U);
    } else {
      EXPECT_FALSE(seen);
      EXPECT_EQ(w.net.stats().dropped_nat, 1U);
    }
  }
}

TEST(SimnetNat, BlockedUdpDropsDatagramsBothWays) {
  NatConfig c = config(NatMapping::endpoint_independent, NatFiltering::none);
  c.udp_blocked = true;
  NatWorld w(c);
  auto h = bind(w.h1, kLan1.with_port(5000));
  EXPECT_FALSE(w.seen(h, w.u1, kS1.with_port(3478)));
  EXPECT_FALSE(w.seen(w.u1, h, kPublic.with_port(5000)));
  EXPECT_EQ(w.r.stats().blocked_udp, 2U);
  EXPECT_EQ(w.r.mapping_count(), 0U);
}

TEST(SimnetNat, NestedNatTranslatesTwice) {
  World w;
  auto& s = w.host("s", kS1);
  auto& outer = w.router("isp", ip4(100, 0, 0, 1), config(NatMapping::endpoint_independent, NatFiltering::none));
  auto& inner = w.router_on(outer.lan(), "home", ip4(10, 0, 0, 2));
  auto& h = w.host_on(inner.lan(), "h", ip4(192, 168, 0, 2));
  auto us = bind(s, kS1.with_port(3478));
  auto uh = bind(h, ip4(192, 168, 0, 2, 5000));
  send(uh, kS1.with_port(3478), "out");
  w.rt.run_for(1s);
  auto got = drain(us, w.rt.now());
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].meta.source, ip4(100, 0, 0, 1, 5000));
  send(us, got[0].meta.source, "back");
  w.rt.run_for(1s);
  auto back = drain(uh, w.rt.now());
  ASSERT_EQ(back.size(), 1U);
  EXPECT_EQ(back[0].meta.source, kS1.with_port(3478));
  EXPECT_EQ(text(back[0].data), "back");
  EXPECT_EQ(inner.stats().translated_out, 1U);
  EXPECT_EQ(outer.stats().translated_in, 1U);
  EXPECT_EQ(inner.stats().translated_in, 1U);
}

TEST(SimnetNat, AFullTableDropsNewFlows) {
  NatConfig c = config(NatMapping::endpoint_independent);
  c.mappings_max = 2;
  NatWorld w(c);
  auto a = bind(w.h1, kLan1.with_port(5000));
  auto b = bind(w.h1, kLan1.with_port(5001));
  auto d = bind(w.h1, kLan1.with_port(5002));
  EXPECT_TRUE(w.seen(a, w.u1, kS1.with_port(3478)));
  EXPECT_TRUE(w.seen(b, w.u1, kS1.with_port(3478)));
  EXPECT_FALSE(w.seen(d, w.u1, kS1.with_port(3478)));
  EXPECT_EQ(w.r.stats().table_full, 1U);
  EXPECT_TRUE(w.seen(a, w.u1, kS1.with_port(3478)));  // existing flows go on
}

}  // namespace
}  // namespace moosicbox::p2p::simnet::test
