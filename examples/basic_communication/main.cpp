// SPDX-License-Identifier: MIT OR Apache-2.0
// basic_communication: two nodes exchange messages by node id, written once against the P2PSystem
// concept and run on both backends: first on the simulator (virtual time, a lossy link), then on
// real QUIC endpoints over loopback. Exits 0 when every message arrived intact and in order.
#include <moosicbox/p2p/p2p.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>

namespace p2p = moosicbox::p2p;

namespace {

using namespace std::chrono_literals;

// exchange is the application: `alice` dials `bob` by node id; bob answers every message. It knows
// nothing of the backend it runs on.
template <p2p::P2PSystem S>
boost::asio::awaitable<int> exchange(S& alice, S& bob, typename S::Listener& bob_listener) {
  auto dialed = co_await alice.connect(bob.local_node_id());
  if (!dialed) {
    std::fprintf(stderr, "connect failed: %s\n", dialed.error().message().c_str());
    co_return 1;
  }
  auto accepted = co_await bob_listener.accept();
  if (!accepted) co_return 1;
  auto& to_bob = *dialed;
  auto& to_alice = *accepted;
  std::printf("  alice %s connected to bob %s\n", alice.local_node_id().fmt_short().c_str(),
              to_bob.remote_node_id().fmt_short().c_str());
  for (int i = 0; i < 5; ++i) {
    const auto text = fmt::format("message {}", i);
    if (auto awaited = co_await to_bob.send(p2p::as_bytes(text)); !awaited) co_return 1;
    auto got = co_await to_alice.recv();
    if (!got || p2p::to_string(*got) != text) co_return 1;
    if (auto awaited = co_await to_alice.send(p2p::as_bytes("ack " + text)); !awaited) co_return 1;
    auto ack = co_await to_bob.recv();
    if (!ack || p2p::to_string(*ack) != "ack " + text) co_return 1;
    std::printf("  alice -> bob: \"%s\", bob -> alice: \"%s\"\n", text.c_str(), p2p::to_string(*ack).c_str());
  }
  // An oversized message is refused locally with a clear error; the connection stays usable.
  p2p::Bytes big(2 << 20);
  auto refused = co_await to_bob.send(big);
  std::printf("  2 MiB message: %s\n", refused ? "sent?!" : refused.error().message().c_str());
  const auto stats = to_bob.stats();
  std::printf("  alice sent %llu messages (%llu bytes), received %llu\n",
              static_cast<unsigned long long>(stats.messages_sent), static_cast<unsigned long long>(stats.bytes_sent),
              static_cast<unsigned long long>(stats.messages_received));
  (void)co_await to_bob.close();
  co_return refused ? 1 : 0;
}

int on_simulator() {
  std::printf("simulator (virtual time, 20 ms links with 5%% loss):\n");
  p2p::NetworkConfig cfg;
  cfg.latency = 20ms;
  cfg.packet_loss = 0.05;
  auto world = p2p::P2PBuilder(cfg).build_world(42);
  if (!world) return 1;
  auto alice = p2p::P2PBuilder(cfg).with_name("alice").build_simulator(**world);
  auto bob = p2p::P2PBuilder(cfg).with_name("bob").build_simulator(**world);
  if (!alice || !bob || !(*world)->link(alice->local_node_id(), bob->local_node_id())) return 1;
  auto rc = (*world)->run([&]() -> boost::asio::awaitable<int> {
    auto listener = co_await bob->listen("bob");
    if (!listener) co_return 1;
    co_return co_await exchange(*alice, *bob, *listener);
  }());
  std::printf("  simulated time: %s\n", p2p::format_duration((*world)->now().time_since_epoch()).c_str());
  return rc.value_or(1);
}

int on_quic() {
  std::printf("QUIC over loopback:\n");
  boost::asio::io_context io;
  auto make = [&](const char* name) {
    return p2p::P2PBuilder()
        .with_secret_key(p2p::test_secret_key(name))
        .with_bind_addrs({p2p::SocketAddr::v4_loopback(0)})
        .build_quic(io.get_executor());
  };
  auto alice = make("alice");
  auto bob = make("bob");
  if (!alice || !bob) return 1;
  alice->add_node_addr(bob->addr());  // how alice learns where bob's node id can be reached
  int rc = 1;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<int> {
        auto listener = co_await bob->listen("");
        if (!listener) co_return 1;
        const int result = co_await exchange(*alice, *bob, *listener);
        co_await alice->endpoint().close();
        co_await bob->endpoint().close();
        co_return result;
      },
      [&](std::exception_ptr e, int result) { rc = e ? 1 : result; });
  io.run();
  return rc;
}

}  // namespace

int main() {
  const int sim = on_simulator();
  const int quic = on_quic();
  std::printf("%s\n", sim == 0 && quic == 0 ? "ok" : "FAILED");
  return sim == 0 && quic == 0 ? 0 : 1;
}
