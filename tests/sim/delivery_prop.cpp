// SPDX-License-Identifier: MIT OR Apache-2.0
// delivery_prop.cpp: properties of the simulator's delivery model, over random networks and fault
// schedules: any message up to the maximum size arrives intact; under loss (0 to 30 %), latency,
// jitter, bandwidth limits and partition/heal schedules, every message is delivered exactly once and
// in order, or the connection fails with an error on both ends, never silently; stream bytes arrive
// intact whatever the write and read sizes.
#include <gtest/gtest.h>

#include <rapidcheck/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "moosicbox/p2p/sim/sim.hpp"
#include "sim/sim_test_support.hpp"

namespace moosicbox::p2p::sim {
namespace {

using namespace testing;
using namespace std::chrono_literals;
using namespace boost::asio::experimental::awaitable_operators;

// NetParams is a random network between two nodes.
struct NetParams {
  std::int64_t latency_ms;
  std::int64_t jitter_ms;
  double loss;
  std::uint64_t bandwidth;
};

// full draws from the whole range of `gen` in every case (rapidcheck otherwise starts small and
// grows with the case number, which would leave most cases with tiny transfers).
template <class T>
rc::Gen<T> full(rc::Gen<T> gen) {
  return rc::gen::resize(rc::kNominalSize, std::move(gen));
}

rc::Gen<NetParams> gen_net() {
  return rc::gen::build<NetParams>(
      rc::gen::set(&NetParams::latency_ms, rc::gen::inRange<std::int64_t>(0, 200)),
      rc::gen::set(&NetParams::jitter_ms, rc::gen::inRange<std::int64_t>(0, 30)),
      rc::gen::set(&NetParams::loss, rc::gen::map(rc::gen::inRange(0, 31), [](int p) { return p / 100.0; })),
      rc::gen::set(&NetParams::bandwidth, rc::gen::element<std::uint64_t>(0, 100'000, 1'000'000, 50'000'000)));
}

LinkInfo link_of(const NetParams& p) {
  LinkInfo l;
  l.latency = std::chrono::milliseconds(p.latency_ms);
  l.jitter = std::chrono::milliseconds(p.jitter_ms);
  l.packet_loss = p.loss;
  l.bandwidth = p.bandwidth;
  return l;
}

Bytes pattern(std::size_t n, std::uint64_t seed) {
  Bytes b(n);
  env::Rng rng(seed);
  rng.fill_random(b);
  return b;
}

// TwoNodes is a world with a and b linked by `link`, b listening, and one connection a -> b.
struct TwoNodes {
  TwoNodes(std::uint64_t seed, const LinkInfo& link, NetworkConfig config = {}) : world(seed, config) {
    a.emplace(*world.add_node("a"));
    b.emplace(*world.add_node("b"));
    RC_ASSERT(world.link(a->local_node_id(), b->local_node_id(), link).has_value());
    listener.emplace(world.run(b->listen())->value());
    auto c = world.run(a->connect(b->local_node_id()));
    RC_ASSERT(c.has_value());
    if (!*c) {
      // Under heavy loss the handshake may need more retransmissions (1 s each) than the timeout
      // allows: a clean timeout is a correct outcome, and the case has nothing more to check.
      RC_ASSERT(c->error().code() == P2PErrc::timeout);
      return;
    }
    client.emplace(**c);
    server.emplace(world.run(listener->accept())->value());
  }
  [[nodiscard]] bool connected() const { return client.has_value(); }
  World world;
  std::optional<SimulatorP2P> a;
  std::optional<SimulatorP2P> b;
  std::optional<SimulatorListener> listener;
  std::optional<SimulatorConnection> client;
  std::optional<SimulatorConnection> server;
};

RC_GTEST_PROP(SimDelivery, AnyMessageUpToTheMaximumArrivesIntact, ()) {
  const auto seed = *rc::gen::arbitrary<std::uint64_t>();
  RC_LOG() << reproduce_line(seed) << " (world seed of this case)\n";
  const auto net = *full(gen_net());
  NetworkConfig config;
  const std::size_t max = config.max_message_size;
  const auto size =
      *rc::gen::oneOf(rc::gen::element<std::size_t>(0, 1, max - 1, max), rc::gen::inRange<std::size_t>(0, max + 1));
  TwoNodes n(seed, link_of(net), config);
  RC_PRE(n.connected());
  const Bytes data = pattern(size, seed);
  auto sent = n.world.run(n.client->send(data));
  RC_ASSERT(sent.has_value());
  RC_ASSERT(sent->has_value());
  auto got = n.world.run(n.server->recv());
  RC_ASSERT(got.has_value());
  RC_ASSERT(got->has_value());
  RC_ASSERT(**got == data);
}

RC_GTEST_PROP(SimDelivery, OversizedMessagesAreRejectedBeforeSending, ()) {
  const auto seed = *rc::gen::arbitrary<std::uint64_t>();
  NetworkConfig config;
  config.max_message_size = *rc::gen::inRange<std::size_t>(1, 100'000);
  const auto extra = *rc::gen::inRange<std::size_t>(1, 1000);
  TwoNodes n(seed, link_of(NetParams{10, 0, 0, 0}), config);
  RC_PRE(n.connected());
  auto r = n.world.run(n.client->send(Bytes(config.max_message_size + extra)));
  RC_ASSERT(r.has_value());
  RC_ASSERT(!r->has_value());
  RC_ASSERT(r->error().code() == P2PErrc::message_too_large);
  RC_ASSERT(n.client->is_connected());
}

// Fault is a partition that starts `start_ms` into the transfer and lasts `length_ms`.
struct Fault {
  std::int64_t start_ms;
  std::int64_t length_ms;
};

RC_GTEST_PROP(SimDelivery, ExactlyOnceInOrderOrBothEndsFail, ()) {
  const auto seed = *rc::gen::arbitrary<std::uint64_t>();
  RC_LOG() << reproduce_line(seed) << " (world seed of this case)\n";
  const auto net = *full(gen_net());
  const auto count = *full(rc::gen::inRange(1, 400));
  const auto size = *full(rc::gen::inRange<std::size_t>(0, 3000));
  const auto gap_ms = *full(rc::gen::inRange<std::int64_t>(0, 30));  // paces the sender across the faults
  NetworkConfig config;
  config.connection_timeout = 5s;  // short, so some partitions outlast it
  const auto faults = *rc::gen::container<std::vector<Fault>>(
      *full(rc::gen::inRange<std::size_t>(0, 4)),
      full(rc::gen::build<Fault>(rc::gen::set(&Fault::start_ms, rc::gen::inRange<std::int64_t>(0, 6'000)),
                                 rc::gen::set(&Fault::length_ms, rc::gen::inRange<std::int64_t>(1, 8'000)))));
  TwoNodes n(seed, link_of(net), config);
  RC_PRE(n.connected());
  const auto a = n.a->local_node_id();
  const auto b = n.b->local_node_id();
  auto& rt = n.world.runtime();
  for (const auto& f : faults) {
    rt.schedule_after(std::chrono::milliseconds(f.start_ms), [&n, a, b, f] {
      auto p = n.world.graph().add_partition(std::vector{a}, std::vector{b});
      if (!p) return;
      n.world.runtime().schedule_after(std::chrono::milliseconds(f.length_ms),
                                       [&n, id = *p] { (void)n.world.graph().heal_partition(id); });
    });
  }
  std::vector<std::uint32_t> received;
  std::optional<P2PError> recv_error;
  std::optional<P2PError> send_error;
  auto sender = [](SimulatorConnection c, SimulatorP2P node, int total, std::size_t bytes, std::int64_t gap,
                   std::optional<P2PError>* err) -> asio::awaitable<void> {
    auto timer = node.env().make_timer();
    for (std::uint32_t i = 0; i < static_cast<std::uint32_t>(total); ++i) {
      if (gap > 0) (void)co_await timer.wait_until(node.env().now() + std::chrono::milliseconds(gap));
      Bytes m(std::max<std::size_t>(bytes, sizeof(i)));
      std::memcpy(m.data(), &i, sizeof(i));
      if (auto r = co_await c.send(std::move(m)); !r) {
        *err = r.error();
        co_return;
      }
    }
  };
  auto receiver = [](SimulatorConnection s, int total, std::vector<std::uint32_t>* got,
                     std::optional<P2PError>* err) -> asio::awaitable<void> {
    while (static_cast<int>(got->size()) < total) {
      auto m = co_await s.recv();
      if (!m) {
        *err = m.error();
        co_return;
      }
      std::uint32_t v = 0;
      std::memcpy(&v, m->data(), sizeof(v));
      got->push_back(v);
    }
  };
  const bool done = n.world.run([&]() -> asio::awaitable<void> {
    co_await (sender(*n.client, *n.a, count, size, gap_ms, &send_error) &&
              receiver(*n.server, count, &received, &recv_error));
  }());
  RC_ASSERT(done);
  // Exactly once and in order: what arrived is 0, 1, 2, ... without gaps or repeats.
  for (std::size_t i = 0; i < received.size(); ++i) RC_ASSERT(received[i] == i);
  if (static_cast<int>(received.size()) < count) {
    // Not everything arrived: that must be a failure both ends know about.
    RC_ASSERT(recv_error.has_value());
    RC_ASSERT(recv_error->code() == P2PErrc::timeout);
    RC_ASSERT(!n.client->is_connected());
    RC_ASSERT(!n.server->is_connected());
    auto probe = n.world.run(n.client->send(as_bytes("probe")));
    RC_ASSERT(probe.has_value());
    RC_ASSERT(!probe->has_value());
    RC_ASSERT(probe->error().code() == P2PErrc::timeout);
  } else {
    RC_ASSERT(!recv_error.has_value());
  }
  RC_CLASSIFY(static_cast<int>(received.size()) < count, "failed");
}

RC_GTEST_PROP(SimDelivery, StreamBytesArriveIntactWhateverTheWriteAndReadSizes, ()) {
  const auto seed = *rc::gen::arbitrary<std::uint64_t>();
  RC_LOG() << reproduce_line(seed) << " (world seed of this case)\n";
  const auto net = *full(gen_net());
  const auto total = *full(rc::gen::inRange<std::size_t>(0, 600'000));
  const auto write_size = *full(rc::gen::inRange<std::size_t>(1, 100'000));
  const auto read_size = *full(rc::gen::inRange<std::size_t>(1, 70'000));
  TwoNodes n(seed, link_of(net));
  RC_PRE(n.connected());
  const Bytes data = pattern(total, seed);
  std::optional<Bytes> got;
  std::optional<P2PError> error;
  auto writer = [](SimulatorConnection c, const Bytes* d, std::size_t chunk) -> asio::awaitable<bool> {
    auto s = co_await c.open_bi();
    if (!s) co_return false;
    for (std::size_t off = 0; off < d->size(); off += chunk) {
      if (const auto ok = co_await s->write(ByteView(*d).subspan(off, std::min(chunk, d->size() - off))); !ok)
        co_return false;
    }
    co_return (co_await s->finish()).has_value();
  };
  auto reader = [](SimulatorConnection c, std::size_t chunk, std::optional<Bytes>* out,
                   std::optional<P2PError>* err) -> asio::awaitable<void> {
    auto s = co_await c.accept_bi();
    if (!s) {
      *err = s.error();
      co_return;
    }
    Bytes all;
    Bytes buf(chunk);
    while (true) {
      auto k = co_await s->read(buf);
      if (!k) {
        *err = k.error();
        co_return;
      }
      if (*k == 0) break;
      all.insert(all.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*k));
    }
    *out = std::move(all);
  };
  auto ok = n.world.run([&]() -> asio::awaitable<bool> {
    auto [w, unused] = co_await (writer(*n.client, &data, write_size) && [&]() -> asio::awaitable<int> {
      co_await reader(*n.server, read_size, &got, &error);
      co_return 0;
    }());
    co_return w;
  }());
  RC_ASSERT(ok.has_value());
  RC_ASSERT(*ok);
  RC_ASSERT(!error.has_value());
  RC_ASSERT(got.has_value());
  RC_ASSERT(*got == data);
}

}  // namespace
}  // namespace moosicbox::p2p::sim
