#include <gtest/gtest.h>
#include <cstdlib>
#include "quic_commands.hpp"
namespace p2p::cli { namespace {
TEST(Probe, Bench) {
  QuicBenchOptions o;
  auto env = [](const char* n, long d) { const char* v = std::getenv(n); return v ? std::atol(v) : d; };
  o.connect_samples = static_cast<int>(env("CS", 5)); o.cold_samples = static_cast<int>(env("CC", 2)); o.runs = static_cast<int>(env("RUNS", 3));
  o.rpc_run = std::chrono::milliseconds(env("RPCMS", 500)); o.messages = static_cast<std::size_t>(env("MSGS", 100000));
  o.bulk_bytes = static_cast<std::size_t>(env("BULKMB", 256)) << 20; o.idle_connections = static_cast<int>(env("IDLE", 2)); o.loopback_udp_payload_size = static_cast<std::size_t>(env("JUMBO", 16384));
  auto r = run_quic_bench(o);
  ASSERT_TRUE(r) << r.error().message();
  printf("%s\n", to_json(*r).c_str());
}
}}
