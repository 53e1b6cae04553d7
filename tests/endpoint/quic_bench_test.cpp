// quic_bench_test.cpp: the benchmark behind `moosicbox-p2p bench quic` runs end to end with small
// sizes and reports every key with a plausible value.
#include <gtest/gtest.h>

#include <cstdio>

#include "quic_commands.hpp"

namespace p2p::cli {
namespace {

TEST(QuicBench, SmallRunReportsEveryKey) {
  QuicBenchOptions o;
  o.connect_samples = 5;
  o.cold_samples = 3;
  o.runs = 1;
  o.rpc_run = std::chrono::milliseconds(100);
  o.messages = 2000;
  o.bulk_bytes = 8 << 20;
  o.idle_connections = 10;
  auto r = run_quic_bench(o);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_GT(r->connect_ms, 0);
  EXPECT_LT(r->connect_ms, 1000);
  EXPECT_GT(r->connect_cold_ms, 0);
  EXPECT_GT(r->rpc_64b_per_s, 100);
  EXPECT_GT(r->msgs_1k_per_s, 100);
  EXPECT_GT(r->bulk_mb_per_s, 1);
  EXPECT_GT(r->cpu_s_per_gib, 0);
  const std::string json = to_json(*r);
  for (const char* key : {"connect_ms", "connect_cold_ms", "rpc_64b_per_s", "msgs_1k_per_s", "bulk_mb_per_s",
                          "rss_bytes_per_idle_conn", "cpu_s_per_gib"}) {
    EXPECT_NE(json.find(fmt::format("\"{}\":", key)), std::string::npos) << key;
  }
}

}  // namespace
}  // namespace p2p::cli

namespace p2p::cli {
namespace {

// The full benchmark, as `moosicbox-p2p bench quic --json` runs it. Disabled in normal runs (it
// takes about half a minute); run with --gtest_also_run_disabled_tests --gtest_filter=*FullRun*.
TEST(QuicBench, DISABLED_FullRun) { EXPECT_EQ(quic_bench(true), 0); }

// The same with the internet's 1452-byte datagrams on loopback as well (what quinn uses there).
TEST(QuicBench, DISABLED_FullRunInternetDatagrams) {
  QuicBenchOptions o;
  o.loopback_udp_payload_size = 0;
  auto r = run_quic_bench(o);
  ASSERT_TRUE(r) << r.error().message();
  std::printf("%s\n", to_json(*r).c_str());
}

}  // namespace
}  // namespace p2p::cli
