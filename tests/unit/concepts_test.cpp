// SPDX-License-Identifier: MIT OR Apache-2.0
// concepts_test.cpp: the P2P concepts accept a conforming backend and reject near misses.
#include "moosicbox/p2p/concepts.hpp"

#include <gtest/gtest.h>

#include "moosicbox/p2p/core/node_id.hpp"

namespace moosicbox::p2p {
namespace {

struct FakeConnection {
  using NodeId = p2p::NodeId;
  asio::awaitable<P2PResult<void>> send(ByteView);
  asio::awaitable<P2PResult<Bytes>> recv();
  NodeId remote_node_id() const;
  bool is_connected() const;
  asio::awaitable<P2PResult<void>> close();
  ConnectionStats stats() const;
};

struct FakeListener {
  using Connection = FakeConnection;
  asio::awaitable<P2PResult<Connection>> accept();
  std::string local_addr() const;
};

struct FakeSystem {
  using NodeId = p2p::NodeId;
  using Connection = FakeConnection;
  using Listener = FakeListener;
  asio::awaitable<P2PResult<Connection>> connect(const NodeId&);
  asio::awaitable<P2PResult<Listener>> listen(std::string_view);
  asio::awaitable<P2PResult<NodeId>> discover(std::string_view);
  NodeId local_node_id() const;
};

// A connection whose recv does not wait (returns the value directly) is not a P2PConnection.
struct SyncRecvConnection : FakeConnection {
  P2PResult<Bytes> recv();
};

struct SystemWithoutDiscover {
  using NodeId = p2p::NodeId;
  using Connection = FakeConnection;
  using Listener = FakeListener;
  asio::awaitable<P2PResult<Connection>> connect(const NodeId&);
  asio::awaitable<P2PResult<Listener>> listen(std::string_view);
  NodeId local_node_id() const;
};

static_assert(P2PNodeId<NodeId>);
static_assert(!P2PNodeId<int*>);
static_assert(P2PConnection<FakeConnection>);
static_assert(!P2PConnection<SyncRecvConnection>);
static_assert(P2PListener<FakeListener>);
static_assert(P2PSystem<FakeSystem>);
static_assert(!P2PSystem<SystemWithoutDiscover>);

TEST(Concepts, CheckedAtCompileTime) { SUCCEED(); }

}  // namespace
}  // namespace moosicbox::p2p
