// SPDX-License-Identifier: MIT OR Apache-2.0
// network_graph_test.cpp: NetworkGraph: nodes, links, partitions and route searches.
#include "moosicbox/p2p/sim/network_graph.hpp"

#include <gtest/gtest.h>

#include "sim/sim_test_support.hpp"

namespace moosicbox::p2p::sim {
namespace {

using namespace testing;

NodeInfo node(std::string_view name) { return NodeInfo{.id = test_node_id(name), .name = std::string(name)}; }

TEST(NetworkGraph, FindPathIsBreadthFirstAndLowestLatencyPrefersFastLinks) {
  NetworkGraph g;
  for (const auto* n : {"a", "b", "c", "d"}) ASSERT_TRUE(g.add_node(node(n)));
  const auto a = test_node_id("a");
  const auto b = test_node_id("b");
  const auto c = test_node_id("c");
  const auto d = test_node_id("d");
  // a-d directly but slowly; a-b-c-d quickly.
  ASSERT_TRUE(g.connect_nodes(a, d, quiet_link(ms(100))));
  ASSERT_TRUE(g.connect_nodes(a, b, quiet_link(ms(5))));
  ASSERT_TRUE(g.connect_nodes(b, c, quiet_link(ms(5))));
  ASSERT_TRUE(g.connect_nodes(c, d, quiet_link(ms(5))));
  EXPECT_EQ(g.find_path(a, d), (std::vector<NodeId>{a, d}));
  auto fast = g.find_lowest_latency_path(a, d);
  ASSERT_TRUE(fast);
  EXPECT_EQ(fast->nodes, (std::vector<NodeId>{a, b, c, d}));
  EXPECT_EQ(fast->latency, ms(15));
  EXPECT_EQ(fast->links.size(), 3U);
  EXPECT_EQ(g.link_count(), 8U);
}

TEST(NetworkGraph, OneWayLinksMakeAsymmetricRoutes) {
  NetworkGraph g;
  for (const auto* n : {"a", "b", "c"}) ASSERT_TRUE(g.add_node(node(n)));
  const auto a = test_node_id("a");
  const auto b = test_node_id("b");
  const auto c = test_node_id("c");
  ASSERT_TRUE(g.connect_one_way(a, b, quiet_link(ms(1))));
  ASSERT_TRUE(g.connect_one_way(b, c, quiet_link(ms(1))));
  ASSERT_TRUE(g.connect_one_way(c, a, quiet_link(ms(1))));
  EXPECT_EQ(g.find_path(a, c), (std::vector<NodeId>{a, b, c}));
  EXPECT_EQ(g.find_path(c, b), (std::vector<NodeId>{c, a, b}));
  EXPECT_NE(g.get_link(a, b), nullptr);
  EXPECT_EQ(g.get_link(b, a), nullptr);
}

TEST(NetworkGraph, PartitionCutsLinksBetweenGroupsUntilHealed) {
  NetworkGraph g;
  for (const auto* n : {"a", "b", "c"}) ASSERT_TRUE(g.add_node(node(n)));
  const auto a = test_node_id("a");
  const auto b = test_node_id("b");
  const auto c = test_node_id("c");
  ASSERT_TRUE(g.connect_nodes(a, b, quiet_link(ms(1))));
  ASSERT_TRUE(g.connect_nodes(b, c, quiet_link(ms(1))));
  auto p = g.add_partition(std::vector{a}, std::vector{b, c});
  ASSERT_TRUE(p);
  EXPECT_TRUE(g.is_partitioned(a, c));
  EXPECT_FALSE(g.is_partitioned(b, c));
  EXPECT_FALSE(g.find_path(a, c));
  EXPECT_TRUE(g.find_path(b, c));
  EXPECT_TRUE(g.find_lowest_latency_path(a, c, Reach::topology));
  ASSERT_TRUE(g.heal_partition(*p));
  EXPECT_TRUE(g.find_path(a, c));
  EXPECT_FALSE(g.heal_partition(*p));
}

TEST(NetworkGraph, OfflineNodesAndInactiveLinksCarryNothing) {
  NetworkGraph g;
  for (const auto* n : {"a", "b"}) ASSERT_TRUE(g.add_node(node(n)));
  const auto a = test_node_id("a");
  const auto b = test_node_id("b");
  ASSERT_TRUE(g.connect_nodes(a, b, quiet_link(ms(1))));
  ASSERT_TRUE(g.set_online(b, false));
  EXPECT_FALSE(g.find_path(a, b));
  ASSERT_TRUE(g.set_online(b, true));
  ASSERT_TRUE(g.set_link_active(a, b, false));
  EXPECT_FALSE(g.find_path(a, b));
  ASSERT_TRUE(g.set_link_active(b, a, true));
  EXPECT_TRUE(g.find_path(a, b));
  ASSERT_TRUE(g.update_link(a, b, [](LinkInfo& l) { l.packet_loss = 1.0; }));
  EXPECT_FALSE(g.find_path(a, b));
}

TEST(NetworkGraph, RejectsBadInput) {
  NetworkGraph g;
  ASSERT_TRUE(g.add_node(node("a")));
  EXPECT_EQ(g.add_node(node("a")).error().code(), P2PErrc::invalid_configuration);
  const auto a = test_node_id("a");
  const auto z = test_node_id("z");
  EXPECT_EQ(g.connect_nodes(a, z, quiet_link(ms(1))).error().code(), P2PErrc::node_not_found);
  EXPECT_EQ(g.connect_nodes(a, a, quiet_link(ms(1))).error().code(), P2PErrc::invalid_configuration);
  ASSERT_TRUE(g.add_node(node("b")));
  const auto b = test_node_id("b");
  LinkInfo bad;
  bad.packet_loss = 1.5;
  EXPECT_EQ(g.connect_nodes(a, b, bad).error().code(), P2PErrc::invalid_configuration);
  bad.packet_loss = 0;
  bad.latency = ms(-1);
  EXPECT_EQ(g.connect_nodes(a, b, bad).error().code(), P2PErrc::invalid_configuration);
  EXPECT_EQ(g.disconnect_nodes(a, b).error().code(), P2PErrc::invalid_configuration);
  EXPECT_EQ(g.add_partition(std::vector{a}, std::vector{a}).error().code(), P2PErrc::invalid_configuration);
  EXPECT_EQ(g.add_partition({}, std::vector{a}).error().code(), P2PErrc::invalid_configuration);
  EXPECT_EQ(g.remove_node(z).error().code(), P2PErrc::node_not_found);
}

TEST(NetworkGraph, RemoveNodeDropsItsLinks) {
  NetworkGraph g;
  for (const auto* n : {"a", "b", "c"}) ASSERT_TRUE(g.add_node(node(n)));
  const auto a = test_node_id("a");
  const auto b = test_node_id("b");
  const auto c = test_node_id("c");
  ASSERT_TRUE(g.connect_nodes(a, b, quiet_link(ms(1))));
  ASSERT_TRUE(g.connect_nodes(b, c, quiet_link(ms(1))));
  ASSERT_TRUE(g.remove_node(b));
  EXPECT_EQ(g.get_node(b), nullptr);
  EXPECT_EQ(g.link_count(), 0U);
  EXPECT_FALSE(g.find_path(a, c));
  EXPECT_EQ(g.nodes(), (std::vector<NodeId>{a, c}));
}

TEST(NatRules, HolePunchingFollowsTheMappingBehaviour) {
  using enum NatType;
  const NatType all[] = {none, full_cone, address_restricted, port_restricted, symmetric};
  for (const auto a : all) {
    for (const auto b : all) {
      const bool expected = !((a == symmetric && b == symmetric) || (a == symmetric && b == port_restricted) ||
                              (a == port_restricted && b == symmetric));
      EXPECT_EQ(direct_connection_possible(a, b), expected) << to_string(a) << " / " << to_string(b);
    }
  }
  EXPECT_FALSE(hole_punch_needed(none));
  EXPECT_FALSE(hole_punch_needed(full_cone));
  EXPECT_TRUE(hole_punch_needed(port_restricted));
}

}  // namespace
}  // namespace moosicbox::p2p::sim
