// SPDX-License-Identifier: MIT OR Apache-2.0
// stream_test.cpp: streams of SimulatorConnection: open/accept order, data both ways, finish and
// end-of-stream, reset and stop with codes, flow control that bounds buffering, independence of
// streams from each other and from messages, the stream limit, and handle drop semantics.
#include <gtest/gtest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "moosicbox/p2p/sim/sim.hpp"
#include "sim/sim_test_support.hpp"

namespace moosicbox::p2p::sim {
namespace {

using namespace testing;
using namespace boost::asio::experimental::awaitable_operators;

struct Net {
  explicit Net(std::uint64_t seed = 3, LinkInfo link = quiet_link(ms(20)), SimLimits limits = {})
      : world(seed, config(), limits), alice(*world.add_node("alice")), bob(*world.add_node("bob")) {
    EXPECT_TRUE(world.link(alice.local_node_id(), bob.local_node_id(), link));
    auto l = *world.run(bob.listen());
    listener.emplace(*l);
    client.emplace(world.run(alice.connect(bob.local_node_id()))->value());
    server.emplace(world.run(listener->accept())->value());
  }
  static NetworkConfig config() {
    NetworkConfig c;
    c.packet_loss = 0;
    return c;
  }
  World world;
  SimulatorP2P alice;
  SimulatorP2P bob;
  std::optional<SimulatorListener> listener;
  std::optional<SimulatorConnection> client;
  std::optional<SimulatorConnection> server;
};

Bytes pattern(std::size_t n, std::uint32_t seed) {
  Bytes b(n);
  std::uint32_t x = seed * 2654435761U + 1;
  for (auto& v : b) {
    x = x * 1103515245U + 12345U;
    v = static_cast<std::byte>(x >> 24);
  }
  return b;
}

// read_all reads until the end of the stream (or an error).
asio::awaitable<P2PResult<Bytes>> read_all(SimulatorBiStream& s) {
  Bytes out;
  std::array<std::byte, 7000> buf{};
  while (true) {
    auto n = co_await s.read(buf);
    if (!n) co_return fail(n.error());
    if (*n == 0) co_return out;
    out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
  }
}

TEST(SimulatorStream, DataFlowsBothWaysUntilFinish) {
  Net n;
  auto result = n.world.run([](SimulatorConnection c, SimulatorConnection s) -> asio::awaitable<bool> {
    auto out = co_await c.open_bi();
    if (!out) co_return false;
    if (const auto ok = co_await out->write(as_bytes("ping")); !ok) co_return false;
    if (const auto ok = co_await out->finish(); !ok) co_return false;
    auto in = co_await s.accept_bi();
    if (!in || in->id() != out->id()) co_return false;
    auto request = co_await read_all(*in);
    if (!request || to_string(*request) != "ping") co_return false;
    if (const auto ok = co_await in->write(as_bytes("pong")); !ok) co_return false;
    if (const auto ok = co_await in->finish(); !ok) co_return false;
    auto response = co_await read_all(*out);
    co_return response&& to_string(*response) == "pong";
  }(*n.client, *n.server));
  ASSERT_TRUE(result);
  EXPECT_TRUE(*result);
}

TEST(SimulatorStream, AcceptReturnsStreamsInOpeningOrder) {
  Net n;
  auto ids =
      n.world.run([](SimulatorConnection c, SimulatorConnection s) -> asio::awaitable<std::vector<std::uint64_t>> {
        std::vector<SimulatorBiStream> opened;
        for (int i = 0; i < 3; ++i) opened.push_back(std::move(*co_await c.open_bi()));
        // Only the last one carries data: its arrival still opens the earlier ones first.
        (void)co_await opened[2].write(as_bytes("x"));
        std::vector<std::uint64_t> out;
        for (int i = 0; i < 3; ++i) out.push_back((co_await s.accept_bi())->id());
        for (const auto& o : opened) out.push_back(o.id());
        co_return out;
      }(*n.client, *n.server));
  ASSERT_TRUE(ids);
  EXPECT_EQ(*ids, (std::vector<std::uint64_t>{0, 4, 8, 0, 4, 8}));
}

TEST(SimulatorStream, ResetFailsThePeersReadsWithItsCode) {
  Net n;
  auto r = n.world.run([](SimulatorConnection c, SimulatorConnection s) -> asio::awaitable<P2PResult<Bytes>> {
    auto out = std::move(*co_await c.open_bi());
    (void)co_await out.write(as_bytes("partial"));
    out.reset(42);
    out.reset(43);  // no-op: already reset
    auto in = std::move(*co_await s.accept_bi());
    co_return co_await read_all(in);
  }(*n.client, *n.server));
  ASSERT_TRUE(r);
  ASSERT_FALSE(*r);
  EXPECT_EQ(r->error().code(), P2PErrc::stream_reset);
  EXPECT_EQ(r->error().message(), "Stream reset: application code 42");
}

TEST(SimulatorStream, StopFailsThePeersWritesWithItsCode) {
  Net n;
  auto r = n.world.run([](SimulatorConnection c, SimulatorConnection s, World* w) -> asio::awaitable<P2PResult<void>> {
    auto out = std::move(*co_await c.open_bi());
    (void)co_await out.write(as_bytes("first"));
    auto in = std::move(*co_await s.accept_bi());
    in.stop(7);
    // Writes fail once the STOP arrives (one link latency later).
    auto timer = env::SimEnv::Timer(w->runtime());
    (void)co_await timer.wait_until(w->now() + ms(100));
    co_return co_await out.write(as_bytes("second"));
  }(*n.client, *n.server, &n.world));
  ASSERT_TRUE(r);
  ASSERT_FALSE(*r);
  EXPECT_EQ(r->error().code(), P2PErrc::stream_reset);
  EXPECT_EQ(r->error().message(), "Stream reset: application code 7");
}

TEST(SimulatorStream, FlowControlBoundsWhatAWriterMayBuffer) {
  SimLimits limits;
  limits.stream_window = 64 * 1024;
  Net n(3, quiet_link(ms(20)), limits);
  const Bytes data = pattern(1 << 20, 1);
  std::size_t written = 0;
  bool write_done = false;
  auto writer = [](SimulatorConnection c, const Bytes* d, bool* done, std::size_t* progress) -> asio::awaitable<void> {
    auto out = std::move(*co_await c.open_bi());
    for (std::size_t off = 0; off < d->size(); off += 4096) {
      if (const auto ok = co_await out.write(ByteView(*d).subspan(off, 4096)); !ok) co_return;
      *progress = off + 4096;
    }
    (void)co_await out.finish();
    *done = true;
  };
  n.world.run(writer(*n.client, &data, &write_done, &written), std::chrono::seconds(10));
  // Nobody reads: the writer is stuck after one window, not after the whole megabyte.
  EXPECT_FALSE(write_done);
  EXPECT_EQ(written, limits.stream_window);
  auto got = n.world.run([](SimulatorConnection s) -> asio::awaitable<P2PResult<Bytes>> {
    auto in = std::move(*co_await s.accept_bi());
    co_return co_await read_all(in);
  }(*n.server));
  ASSERT_TRUE(got && *got);
  EXPECT_TRUE(write_done);
  EXPECT_EQ(**got, data);
}

TEST(SimulatorStream, ABlockedStreamDoesNotBlockOtherStreamsOrMessages) {
  SimLimits limits;
  limits.stream_window = 16 * 1024;
  Net n(3, quiet_link(ms(20)), limits);
  auto r = n.world.run([](SimulatorConnection c, SimulatorConnection s, World* w) -> asio::awaitable<bool> {
    auto blocked = std::move(*co_await c.open_bi());
    auto free = std::move(*co_await c.open_bi());
    auto in_blocked = std::move(*co_await s.accept_bi());
    auto in_free = std::move(*co_await s.accept_bi());
    const Bytes big = pattern(64 * 1024, 2);
    // Fill the first stream's window; its writer waits (raced against a timer, it loses).
    auto timer = env::SimEnv::Timer(w->runtime());
    auto first = co_await (blocked.write(big) || timer.wait_until(w->now() + std::chrono::seconds(5)));
    if (first.index() != 1) co_return false;
    // The other stream and the message API still flow.
    if (const auto ok = co_await free.write(as_bytes("free")); !ok) co_return false;
    if (const auto ok = co_await free.finish(); !ok) co_return false;
    if (const auto ok = co_await c.send(as_bytes("message")); !ok) co_return false;
    auto got = co_await read_all(in_free);
    auto msg = co_await s.recv();
    co_return got&& to_string(*got) == "free" && msg&& to_string(*msg) == "message";
  }(*n.client, *n.server, &n.world));
  ASSERT_TRUE(r);
  EXPECT_TRUE(*r);
}

TEST(SimulatorStream, OpenWaitsAtTheStreamLimitUntilAStreamCloses) {
  SimLimits limits;
  limits.max_streams = 2;
  Net n(3, quiet_link(ms(10)), limits);
  std::vector<SimulatorBiStream> streams;
  streams.reserve(3);
  auto opened = n.world.run(
      [](SimulatorConnection c, std::vector<SimulatorBiStream>* out) -> asio::awaitable<int> {
        int count = 0;
        for (int i = 0; i < 3; ++i) {
          auto s = co_await c.open_bi();
          if (!s) co_return -1;
          out->push_back(std::move(*s));
          ++count;
        }
        co_return count;
      }(*n.client, &streams),
      std::chrono::seconds(5));
  EXPECT_FALSE(opened);  // the third open waits
  EXPECT_EQ(streams.size(), 2U);
  // The acceptor finishes both halves of the first stream; its slot comes back.
  n.world.run([](SimulatorConnection s, SimulatorBiStream* first) -> asio::awaitable<void> {
    auto in = std::move(*co_await s.accept_bi());
    (void)co_await first->finish();
    (void)co_await read_all(in);
    (void)co_await in.finish();
  }(*n.server, streams.data()));
  n.world.run_until_idle();
  EXPECT_EQ(streams.size(), 3U);
}

TEST(SimulatorStream, DroppingAnUnfinishedStreamResetsIt) {
  Net n;
  auto r = n.world.run([](SimulatorConnection c, SimulatorConnection s) -> asio::awaitable<P2PResult<Bytes>> {
    {
      auto out = std::move(*co_await c.open_bi());
      (void)co_await out.write(as_bytes("abandoned"));
    }
    auto in = std::move(*co_await s.accept_bi());
    co_return co_await read_all(in);
  }(*n.client, *n.server));
  ASSERT_TRUE(r);
  ASSERT_FALSE(*r);
  EXPECT_EQ(r->error().code(), P2PErrc::stream_reset);
}

TEST(SimulatorStream, WriteAfterFinishIsRejected) {
  Net n;
  auto r = n.world.run([](SimulatorConnection c) -> asio::awaitable<P2PResult<void>> {
    auto out = std::move(*co_await c.open_bi());
    (void)co_await out.finish();
    co_return co_await out.write(as_bytes("late"));
  }(*n.client));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->error().code(), P2PErrc::protocol_error);
}

TEST(SimulatorStream, ClosingTheConnectionEndsItsStreams) {
  Net n;
  auto r = n.world.run([](SimulatorConnection c, SimulatorConnection s) -> asio::awaitable<P2PResult<Bytes>> {
    auto out = std::move(*co_await c.open_bi());
    (void)co_await out.write(as_bytes("before close"));
    (void)co_await c.close();
    auto local = co_await out.write(as_bytes("after"));
    if (local || local.error().code() != P2PErrc::connection_closed) co_return Bytes{};
    auto in = std::move(*co_await s.accept_bi());
    std::array<std::byte, 64> buf{};
    auto k = co_await in.read(buf);
    if (!k) co_return fail(k.error());
    auto end = co_await in.read(buf);
    if (end) co_return Bytes{};
    if (end.error().code() != P2PErrc::connection_closed) co_return fail(end.error());
    co_return Bytes(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*k));
  }(*n.client, *n.server));
  ASSERT_TRUE(r && *r);
  EXPECT_EQ(to_string(**r), "before close");
}

TEST(SimulatorStream, LargeTransferSurvivesLossAndABandwidthLimit) {
  LinkInfo link = quiet_link(ms(15));
  link.packet_loss = 0.05;
  link.jitter = ms(3);
  link.bandwidth = 10'000'000;
  Net n(9, link);
  const Bytes data = pattern(4 << 20, 3);
  const auto start = n.world.now();
  auto r = n.world.run(
      [](SimulatorConnection c, SimulatorConnection s, const Bytes* d) -> asio::awaitable<P2PResult<Bytes>> {
        auto out = std::move(*co_await c.open_bi());
        auto in = std::move(*co_await s.accept_bi());
        auto [w, got] = co_await ([](SimulatorBiStream& o, const Bytes* bytes) -> asio::awaitable<bool> {
          if (const auto ok = co_await o.write(*bytes); !ok) co_return false;
          co_return (co_await o.finish()).has_value();
        }(out, d) && read_all(in));
        if (!w) co_return fail(P2PError::protocol("writer failed"));
        co_return got;
      }(*n.client, *n.server, &data));
  ASSERT_TRUE(r && *r);
  EXPECT_EQ(**r, data);
  // 4 MiB at 10 MB/s cannot take less than the serialisation time.
  EXPECT_GE(n.world.now() - start, ms(400));
}

}  // namespace
}  // namespace moosicbox::p2p::sim
