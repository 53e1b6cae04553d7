// SPDX-License-Identifier: MIT OR Apache-2.0
// network_test.cpp: links and routing of the simulated network: latency, jitter, loss, MTU,
// bandwidth, queue, reordering, link down, partitions, the drop filter, no route.
#include <algorithm>
#include <cmath>

#include "simnet/simnet_test_support.hpp"

namespace moosicbox::p2p::simnet::test {
namespace {

LinkParams latency(Duration d) {
  LinkParams p;
  p.latency = d;
  return p;
}

TEST(SimnetLink, DeliveryTakesBothLinksLatencyExactly) {
  World w;
  auto& a = w.host("a", ip4(1, 0, 0, 1), latency(5ms));
  auto& b = w.host("b", ip4(2, 0, 0, 1), latency(7ms));
  auto sa = bind(a, ip4(1, 0, 0, 1, 1000));
  auto sb = bind(b, ip4(0, 0, 0, 0, 2000));
  Recorder rec;
  rec.start(w.rt, sb);
  w.rt.run_for(1ms);
  send(sa, ip4(2, 0, 0, 1, 2000), "hello");
  w.rt.run_for(1s);
  ASSERT_EQ(rec.got.size(), 1U);
  EXPECT_EQ(text(rec.got[0].data), "hello");
  EXPECT_EQ(rec.got[0].at, at(1ms + 12ms));
  EXPECT_EQ(rec.got[0].meta.source, ip4(1, 0, 0, 1, 1000));
  EXPECT_EQ(rec.got[0].meta.destination, ip4(2, 0, 0, 1, 2000));
  EXPECT_FALSE(rec.got[0].meta.truncated);
  EXPECT_EQ(w.net.stats().packets_sent, 1U);
  EXPECT_EQ(w.net.stats().packets_delivered, 1U);
  EXPECT_EQ(w.net.stats().bytes_delivered, 5U);
}

TEST(SimnetLink, JitterStaysInBoundsAndKeepsOrder) {
  World w;
  LinkParams jittery = latency(10ms);
  jittery.jitter = 4ms;
  auto& a = w.host("a", ip4(1, 0, 0, 1), jittery);
  auto& b = w.host("b", ip4(2, 0, 0, 1), latency(0ms));
  auto sa = bind(a, ip4(1, 0, 0, 1, 1000));
  auto sb = bind(b, ip4(2, 0, 0, 1, 2000));
  Recorder rec;
  rec.start(w.rt, sb);
  constexpr int kCount = 200;
  std::vector<TimePoint> sent;
  for (int i = 0; i < kCount; ++i) {
    sent.push_back(w.rt.now());
    send(sa, ip4(2, 0, 0, 1, 2000), std::to_string(i));
    w.rt.run_for(1ms);
  }
  w.rt.run_for(1s);
  ASSERT_EQ(rec.got.size(), static_cast<std::size_t>(kCount));
  bool varied = false;
  for (int i = 0; i < kCount; ++i) {
    const auto& g = rec.got[static_cast<std::size_t>(i)];
    EXPECT_EQ(text(g.data), std::to_string(i)) << "jitter reordered";
    const Duration delay = g.at - sent[static_cast<std::size_t>(i)];
    EXPECT_GE(delay, 10ms);
    // Keeping order may hold a packet behind its predecessor, at most by that one's jitter.
    EXPECT_LE(delay, 14ms);
    if (delay != 10ms) varied = true;
  }
  EXPECT_TRUE(varied);
}

TEST(SimnetLink, LossRateMatchesTheProbability) {
  const std::uint64_t seed = sim_seed(42);
  World w(seed);
  LinkParams lossy = latency(1ms);
  lossy.loss = 0.2;
  auto& a = w.host("a", ip4(1, 0, 0, 1), lossy);
  auto& b = w.host("b", ip4(2, 0, 0, 1));
  auto sa = bind(a, ip4(1, 0, 0, 1, 1000));
  auto sb = bind(b, ip4(2, 0, 0, 1, 2000));
  constexpr int kCount = 5000;
  int got = 0;
  for (int i = 0; i < kCount; ++i) {
    send(sa, ip4(2, 0, 0, 1, 2000), "x");
    w.rt.run_for(1ms);
    got += static_cast<int>(drain(sb, w.rt.now()).size());
  }
  w.rt.run_for(1s);
  got += static_cast<int>(drain(sb, w.rt.now()).size());
  const double rate = 1.0 - static_cast<double>(got) / kCount;
  // Binomial: sigma = sqrt(0.2 * 0.8 / 5000) = 0.0057; 5 sigma.
  EXPECT_NEAR(rate, 0.2, 0.03) << "seed " << seed;
  EXPECT_EQ(w.net.stats().dropped_loss, static_cast<std::uint64_t>(kCount - got)) << "seed " << seed;
}

TEST(SimnetLink, DatagramsAboveTheMtuAreDropped) {
  World w;
  LinkParams small = latency(1ms);
  small.mtu = 1280;
  auto& a = w.host("a", ip4(1, 0, 0, 1), small);
  auto& b = w.host("b", ip4(2, 0, 0, 1));
  auto sa = bind(a, ip4(1, 0, 0, 1, 1000));
  auto sb = bind(b, ip4(2, 0, 0, 1, 2000));
  const std::vector<std::byte> fits(1280 - 28);
  const std::vector<std::byte> too_big(1280 - 27);
  send(sa, ip4(2, 0, 0, 1, 2000), fits);
  send(sa, ip4(2, 0, 0, 1, 2000), too_big);
  w.rt.run_for(1s);
  const auto got = drain(sb, w.rt.now());
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].data.size(), fits.size());
  EXPECT_EQ(w.net.stats().dropped_mtu, 1U);
}

TEST(SimnetLink, BandwidthSerialisesPackets) {
  World w;
  LinkParams slow = latency(0ms);
  slow.bandwidth_bps = 1'000'000;  // 1 Mbit/s
  auto& a = w.host("a", ip4(1, 0, 0, 1), slow);
  auto& b = w.host("b", ip4(2, 0, 0, 1), latency(0ms));
  auto sa = bind(a, ip4(1, 0, 0, 1, 1000));
  auto sb = bind(b, ip4(2, 0, 0, 1, 2000));
  Recorder rec;
  rec.start(w.rt, sb);
  w.rt.run_for(0ms);
  // 100 datagrams of 1222 + 28 = 1250 bytes on the wire = 10 kbit each: 10 ms apiece.
  const std::vector<std::byte> payload(1222);
  for (int i = 0; i < 100; ++i) send(sa, ip4(2, 0, 0, 1, 2000), payload);
  w.rt.run_for(10s);
  ASSERT_EQ(rec.got.size(), 100U);
  EXPECT_EQ(rec.got.front().at, at(10ms));
  EXPECT_EQ(rec.got.back().at, at(1000ms));  // N * 8 / R = 125000 * 8 / 1e6 s
}

TEST(SimnetLink, AFullQueueDropsTheTail) {
  World w;
  LinkParams slow = latency(0ms);
  slow.bandwidth_bps = 1'000'000;
  slow.queue_bytes = 10 * 1250;
  auto& a = w.host("a", ip4(1, 0, 0, 1), slow);
  auto& b = w.host("b", ip4(2, 0, 0, 1));
  auto sa = bind(a, ip4(1, 0, 0, 1, 1000));
  auto sb = bind(b, ip4(2, 0, 0, 1, 2000));
  const std::vector<std::byte> payload(1222);
  for (int i = 0; i < 30; ++i) send(sa, ip4(2, 0, 0, 1, 2000), payload);
  w.rt.run_for(10s);
  EXPECT_EQ(drain(sb, w.rt.now()).size(), 10U);
  EXPECT_EQ(w.net.stats().dropped_queue, 20U);
  // Once the queue drained, packets go again.
  send(sa, ip4(2, 0, 0, 1, 2000), payload);
  w.rt.run_for(1s);
  EXPECT_EQ(drain(sb, w.rt.now()).size(), 1U);
}

TEST(SimnetLink, ReorderHoldsChosenPacketsBack) {
  const std::uint64_t seed = sim_seed(3);
  World w(seed);
  LinkParams p = latency(5ms);
  p.reorder = 0.25;
  p.reorder_delay = 20ms;
  auto& a = w.host("a", ip4(1, 0, 0, 1), p);
  auto& b = w.host("b", ip4(2, 0, 0, 1), latency(0ms));
  auto sa = bind(a, ip4(1, 0, 0, 1, 1000));
  auto sb = bind(b, ip4(2, 0, 0, 1, 2000));
  Recorder rec;
  rec.start(w.rt, sb);
  for (int i = 0; i < 100; ++i) {
    send(sa, ip4(2, 0, 0, 1, 2000), std::to_string(i));
    w.rt.run_for(1ms);
  }
  w.rt.run_for(1s);
  ASSERT_EQ(rec.got.size(), 100U) << "seed " << seed;
  int out_of_order = 0;
  int late = 0;
  for (std::size_t i = 1; i < rec.got.size(); ++i) {
    if (std::stoi(text(rec.got[i].data)) < std::stoi(text(rec.got[i - 1].data))) ++out_of_order;
  }
  for (std::size_t i = 0; i < rec.got.size(); ++i) {
    const auto n = std::stoi(text(rec.got[i].data));
    if (rec.got[i].at - at(std::chrono::milliseconds(n)) >= 25ms) ++late;
  }
  EXPECT_GT(out_of_order, 5) << "seed " << seed;
  EXPECT_GT(late, 10) << "seed " << seed;
  EXPECT_LT(late, 45) << "seed " << seed;
}

TEST(SimnetLink, ADownLinkDropsEverything) {
  World w;
  auto& a = w.host("a", ip4(1, 0, 0, 1));
  auto& b = w.host("b", ip4(2, 0, 0, 1));
  auto sa = bind(a, ip4(1, 0, 0, 1, 1000));
  auto sb = bind(b, ip4(2, 0, 0, 1, 2000));
  b.link().up = false;
  send(sa, ip4(2, 0, 0, 1, 2000), "x");
  w.rt.run_for(1s);
  EXPECT_TRUE(drain(sb, w.rt.now()).empty());
  EXPECT_EQ(w.net.stats().dropped_link_down, 1U);
  b.link().up = true;
  send(sa, ip4(2, 0, 0, 1, 2000), "y");
  w.rt.run_for(1s);
  EXPECT_EQ(drain(sb, w.rt.now()).size(), 1U);
}

TEST(SimnetLink, PartitionCutsBothDirectionsUntilHealed) {
  World w;
  auto& a = w.host("a", ip4(1, 0, 0, 1));
  auto& b = w.host("b", ip4(2, 0, 0, 1));
  auto& c = w.host("c", ip4(3, 0, 0, 1));
  auto sa = bind(a, ip4(1, 0, 0, 1, 1000));
  auto sb = bind(b, ip4(2, 0, 0, 1, 2000));
  auto sc = bind(c, ip4(3, 0, 0, 1, 3000));
  w.net.partition({&a}, {&b});
  send(sa, ip4(2, 0, 0, 1, 2000), "ab");
  send(sb, ip4(1, 0, 0, 1, 1000), "ba");
  send(sa, ip4(3, 0, 0, 1, 3000), "ac");
  w.rt.run_for(1s);
  EXPECT_TRUE(drain(sa, w.rt.now()).empty());
  EXPECT_TRUE(drain(sb, w.rt.now()).empty());
  EXPECT_EQ(drain(sc, w.rt.now()).size(), 1U);
  EXPECT_EQ(w.net.stats().dropped_partition, 2U);
  w.net.heal();
  send(sa, ip4(2, 0, 0, 1, 2000), "ab");
  w.rt.run_for(1s);
  EXPECT_EQ(drain(sb, w.rt.now()).size(), 1U);
}

TEST(SimnetLink, TheDropFilterSeesEveryCrossing) {
  World w;
  auto& a = w.host("a", ip4(1, 0, 0, 1));
  auto& b = w.host("b", ip4(2, 0, 0, 1));
  auto sa = bind(a, ip4(1, 0, 0, 1, 1000));
  auto sb = bind(b, ip4(2, 0, 0, 1, 2000));
  int seen = 0;
  w.net.set_drop_filter([&](const Packet& p) {
    ++seen;
    return p.size == 4;
  });
  send(sa, ip4(2, 0, 0, 1, 2000), "drop");
  send(sa, ip4(2, 0, 0, 1, 2000), "keep!");
  w.rt.run_for(1s);
  EXPECT_EQ(drain(sb, w.rt.now()).size(), 1U);
  EXPECT_EQ(seen, 3);  // "drop" once, "keep!" on both links
  EXPECT_EQ(w.net.stats().dropped_fault, 1U);
}

TEST(SimnetRouting, UnknownDestinationsHaveNoRoute) {
  World w;
  auto& a = w.host("a", ip4(1, 0, 0, 1));
  auto sa = bind(a, ip4(1, 0, 0, 1, 1000));
  send(sa, ip4(9, 9, 9, 9, 9), "x");
  w.rt.run_for(1s);
  EXPECT_EQ(w.net.stats().dropped_no_route, 1U);
  EXPECT_EQ(w.net.stats().packets_dropped, 1U);
}

TEST(SimnetRouting, HostsAndNamesAreChecked) {
  World w;
  w.host("a", ip4(1, 0, 0, 1));
  EXPECT_FALSE(w.net.add_host("a", w.net.internet(), {ip4(1, 0, 0, 2)}));
  EXPECT_FALSE(w.net.add_host("b", w.net.internet(), {ip4(1, 0, 0, 1)}));
  EXPECT_FALSE(w.net.add_host("c", w.net.internet(), {}));
  EXPECT_FALSE(w.net.add_router("a", w.net.internet(), ip4(5, 0, 0, 1)));
  EXPECT_NE(w.net.host("a"), nullptr);
  EXPECT_EQ(w.net.host("zz"), nullptr);
  w.net.add_name("relay.example", ip4(1, 0, 0, 1, 443));
  EXPECT_EQ(w.net.resolve("relay.example"), ip4(1, 0, 0, 1, 443));
  EXPECT_FALSE(w.net.resolve("nope.example"));
}

TEST(SimnetRouting, ChangedAddressesMoveTheHost) {
  World w;
  auto& a = w.host("a", ip4(1, 0, 0, 1));
  auto& b = w.host("b", ip4(2, 0, 0, 1));
  auto sa = bind(a, ip4(1, 0, 0, 1, 1000));
  auto sb = bind(b, ip4(0, 0, 0, 0, 2000));
  ASSERT_TRUE(b.set_addresses({ip4(2, 0, 0, 2)}));
  send(sa, ip4(2, 0, 0, 1, 2000), "old");
  send(sa, ip4(2, 0, 0, 2, 2000), "new");
  w.rt.run_for(1s);
  const auto got = drain(sb, w.rt.now());
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(text(got[0].data), "new");
  EXPECT_FALSE(b.set_addresses({ip4(1, 0, 0, 1)}));  // a's
}

}  // namespace
}  // namespace moosicbox::p2p::simnet::test
