#include <gtest/gtest.h>
#include "quic/quic_pair.hpp"
namespace p2p::quic { namespace {
using namespace testing;
TEST(Probe, HandshakeLan) {
  for (int rtt : {333, 100, 10}) {
    PairConfig cfg; cfg.to_server.latency = std::chrono::microseconds(50); cfg.to_client.latency = std::chrono::microseconds(50);
    cfg.client_transport.initial_rtt = std::chrono::milliseconds(rtt); cfg.server_transport.initial_rtt = std::chrono::milliseconds(rtt);
    Pair pair(cfg);
    auto t0 = pair.now();
    pair.on_event = [&](Side s, const Event& e) { fprintf(stderr, "  %.3f ms %s ev %d\n", std::chrono::duration<double,std::milli>(pair.now()-t0).count(), s==Side::client?"C":"S", int(e.kind)); };
    ASSERT_TRUE(pair.handshake());
    fprintf(stderr, "rtt %d: %.3f ms, delivered %lu\n", rtt, std::chrono::duration<double,std::milli>(pair.now()-t0).count(), pair.delivered);
  }
}
}}
