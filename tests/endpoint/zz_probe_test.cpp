#include <gtest/gtest.h>
#include "endpoint/endpoint_fixture.hpp"
#include "p2p/core/spawn.hpp"
namespace p2p { namespace {
using namespace std::chrono_literals;
using testing::run_test; using testing::loopback_config; using testing::bind_or_fail;
TEST(Probe, ConnectTiming) {
  for (int rtt_ms : {333, 100, 30, 10, 1}) {
  fprintf(stderr, "initial_rtt %d ms\n", rtt_ms);
  run_test([rtt_ms](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto sc = loopback_config("server"); sc.initial_rtt = std::chrono::milliseconds(rtt_ms);
    auto ccfg = loopback_config("client"); ccfg.initial_rtt = std::chrono::milliseconds(rtt_ms);
    auto server = bind_or_fail(ex, sc);
    auto client = bind_or_fail(ex, ccfg);
    auto l = server.listen("t");
    env::AsioEnv env(ex);
    spawn_logged(ex, [](Listener ll) -> asio::awaitable<void> { for (;;) { auto c = co_await ll.accept(); if (!c) co_return; spawn_logged(co_await asio::this_coro::executor, [](Connection cc) -> asio::awaitable<void> { auto s = co_await cc.accept_bi(); if (!s) co_return; std::array<std::byte,1> b{}; auto n = co_await s->read(b); if (!n) co_return; (void)co_await s->write(b); }(*c), "h"); } }(std::move(*l)), "srv");
    for (int i = 0; i < 4; ++i) {
      auto t0 = env.now();
      auto c = co_await client.connect(server.addr(), "t");
      auto t1 = env.now();
      auto s = co_await c->open_bi();
      std::array<std::byte,1> b{std::byte{1}};
      (void)co_await s->write(b);
      auto n = co_await s->read(b);
      auto t2 = env.now();
      fprintf(stderr, "connect %.3f ms echo %.3f ms\n", std::chrono::duration<double, std::milli>(t1-t0).count(), std::chrono::duration<double, std::milli>(t2-t1).count());
      (void)co_await c->close();
    }
  });
  }
}
}}
