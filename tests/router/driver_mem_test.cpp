// SPDX-License-Identifier: MIT OR Apache-2.0
// driver_mem_test.cpp: the driver suite on the in-memory stream double, plus what only the double
// can show deterministically: small responses overtake bulk bodies on a congested link, and the
// transport's buffers stay bounded.
#include "router/driver_suite.hpp"

namespace moosicbox::p2p::testing {

INSTANTIATE_TYPED_TEST_SUITE_P(Mem, RouterDriverSuite, ::testing::Types<MemBackend>);

TEST(RouterMem, SmallResponsesOvertakeBulkBodies) {
  MemLinkConfig link;
  link.latency = std::chrono::milliseconds(5);
  link.bytes_per_second = 10'000'000;
  MemBackend b(test_seed(), link);
  SCOPED_TRACE(fmt::format("reproduce with P2P_SIM_SEED={}", b.seed()));
  constexpr int kBulk = 16;
  static constexpr std::uint64_t kBulkSize = 4 << 20;
  P2PRouter r;
  ASSERT_TRUE(r.get("/bulk", [](P2PRequest) {
                 return P2PResponse::stream(StatusCode::ok, pattern_source(kBulkSize), kBulkSize);
               }).has_value());
  ASSERT_TRUE(r.get("/ping", [](P2PRequest) { return P2PResponse::text(StatusCode::ok, "pong"); }).has_value());
  ServerRun<MemBackend> server(b, std::move(r));
  int bulk_done = 0;
  std::optional<Duration> ping_time;
  std::optional<typename MemBackend::Connection> conn;
  auto& rt = b.runtime();
  start(b.executor(), [&]() -> asio::awaitable<void> {
    auto c = co_await b.connect("alice");
    if (!c) co_return;
    conn = std::move(*c);
    for (int i = 0; i < kBulk; ++i) {
      start(b.executor(), [&]() -> asio::awaitable<void> {
        P2PClient client(*conn);
        auto f = co_await fetch(client, Method::GET, "/bulk");
        EXPECT_TRUE(f.ok() && f.body.size() == kBulkSize);
        ++bulk_done;
      });
    }
    co_await sleep_on(b.client_env(), std::chrono::seconds(1));
    P2PClient client(*conn);
    const auto t0 = rt.now();
    auto f = co_await fetch(client, Method::GET, "/ping");
    EXPECT_TRUE(f.ok());
    ping_time = rt.now() - t0;
  });
  ASSERT_TRUE(b.run_until([&] { return bulk_done == kBulk && ping_time.has_value(); }));
  // 64 MiB at 10 MB/s take about 6.7 s; the ping needs one round trip (10 ms) and a chunk or two of
  // serialisation. Without priorities it would queue behind one chunk of each bulk stream (27 ms).
  EXPECT_LT(*ping_time, std::chrono::milliseconds(16)) << format_duration(*ping_time);
  EXPECT_LT(b.net().peak_buffered_bytes(), std::uint64_t{kBulk + 2} * link.stream_window);
  conn.reset();
}

TEST(RouterMem, TransportBuffersStayWithinTheWindows) {
  MemBackend b(test_seed());
  SCOPED_TRACE(fmt::format("reproduce with P2P_SIM_SEED={}", b.seed()));
  P2PRouter r;
  ASSERT_TRUE(r.get("/big", [](P2PRequest) {
                 return P2PResponse::stream(StatusCode::ok, pattern_source(50 << 20), 50 << 20);
               }).has_value());
  ServerRun<MemBackend> server(b, std::move(r));
  std::optional<Fetched> got;
  start(b.executor(), [&]() -> asio::awaitable<void> {
    auto c = co_await b.connect("alice");
    if (!c) co_return;
    P2PClient client(*c);
    got = co_await fetch(client, Method::GET, "/big");
  });
  ASSERT_TRUE(b.run_until([&] { return got.has_value(); }));
  ASSERT_TRUE(got->ok());
  EXPECT_LE(b.net().peak_buffered_bytes(), 2 * MemLinkConfig{}.stream_window);
}

}  // namespace moosicbox::p2p::testing
