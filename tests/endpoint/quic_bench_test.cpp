// SPDX-License-Identifier: MIT OR Apache-2.0
// quic_bench_test.cpp: the benchmark behind `moosicbox-p2p bench quic` runs end to end with small
// sizes and reports every key with a plausible value.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "quic_commands.hpp"
#include "relay_commands.hpp"

namespace moosicbox::p2p::cli {
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
  EXPECT_GT(r->connect_full_ms, 0);
  EXPECT_GT(r->reconnect_0rtt_ms, 0);
  EXPECT_GT(r->connect_cold_ms, 0);
  EXPECT_GT(r->rpc_64b_per_s, 100);
  EXPECT_GT(r->msgs_1k_per_s, 100);
  EXPECT_GT(r->bulk_mb_per_s, 1);
  EXPECT_GT(r->cpu_s_per_gib, 0);
  // Real-path datagrams by default: PMTU discovery from 1200 reaches 1452 on loopback.
  EXPECT_EQ(r->udp_payload_bytes, 1452);
  EXPECT_GE(r->bulk_lost_packets, 0);
  EXPECT_GE(r->bulk_kernel_drops, 0);
  EXPECT_TRUE(std::isnan(r->bulk_16k_mb_per_s));
  const std::string json = to_json(*r);
  for (const char* key :
       {"connect_ms", "connect_full_ms", "reconnect_0rtt_ms", "connect_cold_ms", "rpc_64b_per_s", "msgs_1k_per_s",
        "bulk_mb_per_s", "rss_bytes_per_idle_conn", "cpu_s_per_gib", "udp_payload_bytes", "bulk_lost_packets",
        "bulk_kernel_drops", "bulk_16k_mb_per_s", "jumbo_udp_payload_bytes"}) {
    EXPECT_NE(json.find(fmt::format("\"{}\":", key)), std::string::npos) << key;
  }
}

// `bench relay` with small sizes: the relay child starts, every figure is measured, the child ends.
TEST(RelayBench, SmallRunReportsEveryFigure) {
  RelayBenchOptions o;
  o.connect_samples = 3;
  o.runs = 1;
  o.rpc_run = std::chrono::milliseconds(100);
  o.bulk_bytes = 8 << 20;
  o.idle_clients = 20;
  auto r = run_relay_bench(o);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_GT(r->relay_connect_ms, 0);
  EXPECT_GT(r->relay_rpc_64b_per_s, 100);
  EXPECT_GT(r->relay_bulk_mb_per_s, 1);
  EXPECT_GT(r->direct_rpc_64b_per_s, 100);
  EXPECT_FALSE(std::isnan(r->relay_added_rtt_us));
  EXPECT_GT(r->relay_rss_bytes_per_client, 0);
  const std::string json = to_json(*r);
  for (const char* key : {"relay_connect_ms", "relay_rpc_64b_per_s", "relay_bulk_mb_per_s", "direct_rpc_64b_per_s",
                          "relay_added_rtt_us", "relay_rss_bytes_per_client"}) {
    EXPECT_NE(json.find(fmt::format("\"{}\":", key)), std::string::npos) << key;
  }
}

// --only measures the named parts; the others are null in the JSON. Bad lists are refused.
TEST(QuicBench, OnlyMeasuresTheNamedParts) {
  QuicBenchOptions o;
  o.runs = 1;
  o.rpc_run = std::chrono::milliseconds(50);
  o.messages = 500;
  o.parts = "rpc,msgs";
  auto r = run_quic_bench(o);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_GT(r->rpc_64b_per_s, 100);
  EXPECT_GT(r->msgs_1k_per_s, 100);
  EXPECT_TRUE(std::isnan(r->connect_ms));
  EXPECT_TRUE(std::isnan(r->bulk_mb_per_s));
  const std::string json = to_json(*r);
  EXPECT_NE(json.find("\"connect_ms\":null"), std::string::npos) << json;
  EXPECT_NE(json.find("\"cpu_s_per_gib\":null"), std::string::npos) << json;
  EXPECT_EQ(json.find("\"rpc_64b_per_s\":null"), std::string::npos) << json;

  for (const char* bad : {"rpc,", ",rpc", "RPC", "rpc;bulk", "connect,,cold", " rpc"}) {
    EXPECT_FALSE(check_quic_bench_parts(bad)) << bad;
    o.parts = bad;
    auto refused = run_quic_bench(o);
    ASSERT_FALSE(refused) << bad;
    EXPECT_EQ(refused.error().code(), P2PErrc::invalid_configuration) << bad;
  }
  EXPECT_TRUE(check_quic_bench_parts(""));
  EXPECT_TRUE(check_quic_bench_parts("connect,0rtt,cold,rpc,msgs,bulk,rss"));
}

// --udp-payload N adds a bulk run on N-byte loopback datagrams; sizes outside [1200, 65527] are refused.
TEST(QuicBench, JumboBulkRunsOnTheGivenDatagramSize) {
  QuicBenchOptions o;
  o.runs = 1;
  o.bulk_bytes = 4 << 20;
  o.parts = "bulk";
  o.jumbo_udp_payload_size = 16384;
  auto r = run_quic_bench(o);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_GT(r->bulk_16k_mb_per_s, 1);
  EXPECT_EQ(r->jumbo_udp_payload_bytes, 16384);
  EXPECT_EQ(r->udp_payload_bytes, 1452);
  for (const std::size_t bad : {std::size_t{1}, std::size_t{1199}, std::size_t{65528}}) {
    o.jumbo_udp_payload_size = bad;
    auto refused = run_quic_bench(o);
    ASSERT_FALSE(refused) << bad;
    EXPECT_EQ(refused.error().code(), P2PErrc::invalid_configuration) << bad;
  }
}

// Busy polling off still measures every part (the receive loop sleeps between datagrams).
TEST(QuicBench, RunsWithBusyPollingOff) {
  QuicBenchOptions o;
  o.connect_samples = 3;
  o.runs = 1;
  o.rpc_run = std::chrono::milliseconds(50);
  o.busy_poll = std::chrono::microseconds(0);
  o.parts = "connect,rpc";
  auto r = run_quic_bench(o);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_GT(r->connect_ms, 0);
  EXPECT_GT(r->rpc_64b_per_s, 100);
}

}  // namespace
}  // namespace moosicbox::p2p::cli

namespace moosicbox::p2p::cli {
namespace {

// The full benchmark, as `moosicbox-p2p bench quic --json` runs it. Disabled in normal runs (it
// takes about half a minute); run with --gtest_also_run_disabled_tests --gtest_filter=*FullRun*.
TEST(QuicBench, DISABLED_FullRun) { EXPECT_EQ(quic_bench(true), 0); }

// The same with the extra bulk run on 16 KiB loopback datagrams.
TEST(QuicBench, DISABLED_FullRunWithJumboBulk) {
  QuicBenchOptions o;
  o.jumbo_udp_payload_size = 16384;
  auto r = run_quic_bench(o);
  ASSERT_TRUE(r) << r.error().message();
  std::printf("%s\n", to_json(*r).c_str());
}

}  // namespace
}  // namespace moosicbox::p2p::cli
