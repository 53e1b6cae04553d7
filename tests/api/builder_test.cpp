// SPDX-License-Identifier: MIT OR Apache-2.0
// builder_test.cpp: P2PBuilder builds both backends from one NetworkConfig; DefaultP2P is a backend.
// The QUIC part binds loopback sockets only (label integration).
#include "moosicbox/p2p/p2p.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

namespace moosicbox::p2p {
namespace {

TEST(P2PBuilder, BuildsSimulatorNodesThatTalk) {
  NetworkConfig cfg;
  cfg.packet_loss = 0.0;
  P2PBuilder builder(cfg);
  auto world = builder.build_world(7);
  ASSERT_TRUE(world) << world.error().message();
  auto a = P2PBuilder(cfg).with_name("a").build_simulator(**world);
  auto b = P2PBuilder(cfg).with_name("b").build_simulator(**world);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->local_node_id(), test_node_id("a"));
  ASSERT_TRUE((*world)->link(a->local_node_id(), b->local_node_id()));
  auto got = (*world)->run([&]() -> asio::awaitable<std::string> {
    auto listener = co_await b->listen("b:1");
    auto conn = co_await a->connect(b->local_node_id());
    auto in = co_await listener->accept();
    (void)co_await conn->send(as_bytes("moo"));
    auto msg = co_await in->recv();
    co_return msg ? to_string(*msg) : msg.error().message();
  }());
  ASSERT_TRUE(got.has_value()) << "reproduce with P2P_SIM_SEED=7";
  EXPECT_EQ(*got, "moo");
}

TEST(P2PBuilder, SimulatorKeyOverridesTheName) {
  sim::World world(1);
  auto node = P2PBuilder().with_name("x").with_secret_key(test_secret_key("y")).build_simulator(world);
  ASSERT_TRUE(node);
  EXPECT_EQ(node->local_node_id(), test_node_id("y"));
  EXPECT_FALSE(P2PBuilder().with_name("x").build_simulator(world)) << "duplicate names are refused";
}

TEST(P2PBuilder, BuildsAQuicEndpointOnLoopback) {
  asio::io_context io;
  NetworkConfig cfg;
  cfg.max_message_size = 4096;
  auto node = P2PBuilder(cfg)
                  .with_secret_key(test_secret_key("q"))
                  .with_bind_addrs({SocketAddr::v4_loopback(0)})
                  .build_quic(io.get_executor());
  ASSERT_TRUE(node) << node.error().message();
  EXPECT_EQ(node->local_node_id(), test_node_id("q"));
  EXPECT_EQ(node->addr().node_id(), test_node_id("q"));
  ASSERT_FALSE(node->addr().direct_addresses().empty());
  EXPECT_TRUE(node->addr().direct_addresses().begin()->is_loopback());
}

TEST(P2PBuilder, RejectsAnInvalidConfiguration) {
  asio::io_context io;
  NetworkConfig cfg;
  cfg.max_message_size = 0;
  auto node = P2PBuilder(cfg).with_bind_addrs({SocketAddr::v4_loopback(0)}).build_quic(io.get_executor());
  ASSERT_FALSE(node);
  EXPECT_EQ(node.error().code(), P2PErrc::invalid_configuration);
}

TEST(DefaultP2P, IsTheConfiguredBackend) {
#if MOOSICBOX_P2P_DEFAULT_BACKEND_IS_QUIC
  static_assert(std::is_same_v<DefaultP2P, QuicP2P>);
#else
  static_assert(std::is_same_v<DefaultP2P, SimulatorP2P>);
  sim::World world(3);
  auto node = P2PBuilder().with_name("d").build_default(world);
  ASSERT_TRUE(node);
  EXPECT_EQ(node->local_node_id(), test_node_id("d"));
#endif
}

}  // namespace
}  // namespace moosicbox::p2p
