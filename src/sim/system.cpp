// SPDX-License-Identifier: MIT OR Apache-2.0
// system.cpp: SimulatorP2P (dial, listen, discover, the directory) and SimulatorListener.
// Layer: sim. Single-threaded.
#include "sim/internal.hpp"

namespace moosicbox::p2p::sim {

using detail::WaitQueue;

// ---- SimulatorListener -----------------------------------------------------------------------------------

asio::awaitable<P2PResult<SimulatorConnection>> SimulatorListener::accept() {
  MOOSICBOX_P2P_ASSERT(ref_);
  const auto keep = ref_->st;
  auto& st = *keep;
  while (true) {
    if (!st.backlog.empty()) co_return detail::Access::connection(st.backlog.pop_front());
    if (st.closed) co_return fail(P2PError::connection_closed(st.close_reason));
    if (const auto wake = co_await st.waiters.wait(); wake == WaitQueue::Wake::cancelled)
      co_return fail(P2PError::cancelled("accept"));
  }
}

std::string SimulatorListener::local_addr() const {
  MOOSICBOX_P2P_ASSERT(ref_);
  return ref_->st->addr;
}

void SimulatorListener::close() {
  MOOSICBOX_P2P_ASSERT(ref_);
  ref_->st->close("closing the listener");
}

// ---- SimulatorP2P ----------------------------------------------------------------------------------------

NodeId SimulatorP2P::local_node_id() const { return node_->id; }
const std::string& SimulatorP2P::name() const { return node_->name; }
env::SimEnv& SimulatorP2P::env() const { return node_->env; }
World& SimulatorP2P::world() const { return *node_->world->world; }
bool SimulatorP2P::is_up() const { return node_->up(); }

P2PResult<void> SimulatorP2P::register_peer(std::string_view name, const NodeId& id) {
  return world().register_peer(name, id);
}

asio::awaitable<P2PResult<SimulatorConnection>> SimulatorP2P::connect(const NodeId& id) {
  const auto node = node_;
  auto& w = *node->world;
  if (!node->up()) co_return fail(P2PError::connection_failed(fmt::format("{} is down", node->name)));
  auto* target = w.find(id);
  if (target == nullptr) co_return fail(P2PError::node_not_found(id.to_string()));
  if (target == node.get()) co_return fail(P2PError::connection_failed("a node cannot connect to itself"));
  auto route = w.compute_route(*node, *target, Reach::current);
  // No route even with every link up and every partition healed: the NATs and relays rule it out.
  // (Without a current route the dial waits for one, up to the connection timeout.)
  if (!route && !w.compute_route(*node, *target, Reach::topology)) {
    w.rt.trace(fmt::format("dial {}->{} no route", node->name, target->name));
    co_return fail(P2PError::no_route(id.to_string()));
  }
  auto pair = std::make_shared<detail::ConnPair>(w, w.next_pair_id++, node, target->shared_from_this());
  auto ref = std::make_shared<detail::EndRef>(pair, 0);
  pair->route = std::move(route);
  pair->route_usable = pair->route.has_value();
  pair->trace_line(fmt::format("dial {}->{} {}", node->name, target->name,
                               pair->route ? to_string(pair->route->kind) : std::string_view("waiting for a path")));
  pair->start_handshake();
  auto& e = pair->end[0];
  while (true) {
    if (e.established) co_return detail::Access::connection(ref);
    if (pair->failed) co_return fail(*e.error);
    if (const auto wake = co_await e.connect_waiters.wait(); wake == WaitQueue::Wake::cancelled)
      co_return fail(P2PError::cancelled("connect"));
  }
}

asio::awaitable<P2PResult<SimulatorConnection>> SimulatorP2P::connect_by_name(std::string_view name) {
  const std::string copy(name);  // the caller's view may not outlive the discovery delay
  auto id = co_await discover(copy);
  if (!id) co_return fail(id.error());
  co_return co_await connect(*id);
}

asio::awaitable<P2PResult<SimulatorListener>> SimulatorP2P::listen(std::string_view addr) {
  const auto node = node_;
  auto& w = *node->world;
  if (!node->up()) co_return fail(P2PError::connection_failed(fmt::format("{} is down", node->name)));
  if (node->listener != nullptr) {
    co_return fail(P2PError::connection_failed(fmt::format("{} is already listening", node->name)));
  }
  auto st = std::make_shared<detail::ListenerState>(
      w, node, addr.empty() ? fmt::format("sim://{}", node->name) : std::string(addr));
  node->listener = st.get();
  w.rt.trace(fmt::format("listen {}", node->name));
  co_return detail::Access::listener(std::make_shared<detail::ListenerRef>(std::move(st)));
}

asio::awaitable<P2PResult<NodeId>> SimulatorP2P::discover(std::string_view name) {
  const auto node = node_;
  const std::string key(name);
  auto& w = *node->world;
  if (!node->up()) co_return fail(P2PError::discovery_failed(fmt::format("{} is down", node->name)));
  auto timer = node->env.make_timer();
  if (const auto ok = co_await timer.wait_until(w.rt.now() + w.config.discovery_delay); !ok) {
    co_return fail(P2PError::cancelled("discover"));
  }
  const auto it = w.directory.find(key);
  if (it == w.directory.end()) co_return fail(P2PError::node_not_found(key));
  co_return it->second;
}

}  // namespace moosicbox::p2p::sim
