#include <gtest/gtest.h>
#include <malloc.h>
#include "endpoint/endpoint_fixture.hpp"
#include "p2p/core/spawn.hpp"
namespace p2p { namespace {
using namespace std::chrono_literals;
using testing::run_test; using testing::loopback_config; using testing::bind_or_fail;
TEST(Probe, IdleHeap) {
  for (bool codes : {true, false}) {
  run_test([codes](asio::any_io_executor ex) -> asio::awaitable<void> {
    auto sc = loopback_config("server"); sc.stop_sending_codes = codes;
    auto cc2 = loopback_config("client"); cc2.stop_sending_codes = codes;
    auto server = bind_or_fail(ex, sc);
    auto client = bind_or_fail(ex, cc2);
    auto l = server.listen("t");
    std::vector<Connection> accepted;
    spawn_logged(ex, [](Listener ll, std::vector<Connection>* acc) -> asio::awaitable<void> { for (;;) { auto c = co_await ll.accept(); if (!c) co_return; acc->push_back(*c); } }(std::move(*l), &accepted), "srv");
    std::vector<Connection> conns;
    env::AsioEnv env(ex); auto t = env.make_timer();
    conns.push_back(*co_await client.connect(server.addr(), "t"));
    (void)co_await t.wait_until(env.now() + 200ms);
    auto m0 = mallinfo2().uordblks;
    for (int i = 0; i < 200; ++i) conns.push_back(*co_await client.connect(server.addr(), "t"));
    (void)co_await t.wait_until(env.now() + 500ms);
    auto m1 = mallinfo2().uordblks;
    fprintf(stderr, "codes %d: heap per idle connection (both ends): %.0f bytes\n", codes, double(m1 - m0) / 200);
  });
  }
}
}}
