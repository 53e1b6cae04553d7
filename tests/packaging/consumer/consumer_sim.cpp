// SPDX-License-Identifier: MIT OR Apache-2.0
// consumer_sim.cpp: a program built against the installed simulator target; exits 0 when a message
// crosses a simulated link.
#include <moosicbox/p2p/sim/sim.hpp>

#include <cstdio>

namespace p2p = moosicbox::p2p;

int main() {
  p2p::sim::World world(1);
  auto a = world.add_node("a");
  auto b = world.add_node("b");
  if (!a || !b || !world.link(a->local_node_id(), b->local_node_id())) return 1;
  auto got = world.run([&]() -> boost::asio::awaitable<bool> {
    auto listener = co_await b->listen("b");
    auto conn = co_await a->connect(b->local_node_id());
    if (!listener || !conn) co_return false;
    auto in = co_await listener->accept();
    auto sent = co_await conn->send(p2p::as_bytes("moo"));
    if (!in || !sent) co_return false;
    auto msg = co_await in->recv();
    co_return msg&& p2p::to_string(*msg) == "moo";
  }());
  std::printf("%s\n", got.value_or(false) ? "ok" : "failed");
  return got.value_or(false) ? 0 : 1;
}
