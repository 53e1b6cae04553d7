// SPDX-License-Identifier: MIT OR Apache-2.0
// conformance_quic_test.cpp: the generic conformance suite on the real QUIC backend (QuicP2P) over
// loopback UDP: every system is an endpoint bound to 127.0.0.1, and all of them know each other's
// addresses.
#include "conformance/conformance_suite.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <vector>

#include "moosicbox/p2p/endpoint/quic_p2p.hpp"

namespace moosicbox::p2p::testing {

/// QuicHarness runs every system on one io_context driven by run() with a one-minute watchdog.
class QuicHarness {
 public:
  using System = QuicP2P;

  QuicHarness() = default;
  QuicHarness(const QuicHarness&) = delete;
  QuicHarness& operator=(const QuicHarness&) = delete;
  ~QuicHarness() {
    // Close every endpoint gracefully while the io_context still runs.
    (void)run([](std::vector<std::unique_ptr<System>>* systems) -> asio::awaitable<int> {
      for (auto& s : *systems) co_await s->endpoint().close();
      co_return 0;
    }(&systems_));
  }

  System& make_system(std::string_view name) {
    EndpointConfig cfg(test_secret_key(name));
    cfg.bind_addrs = {SocketAddr::v4_loopback(0)};
    cfg.close_timeout = std::chrono::seconds(2);
    auto s = QuicP2P::create(io_.get_executor(), std::move(cfg));
    EXPECT_TRUE(s) << s.error().message();
    for (auto& other : systems_) {
      other->add_node_addr(s->addr());
      s->add_node_addr(other->addr());
    }
    systems_.push_back(std::make_unique<System>(std::move(*s)));
    return *systems_.back();
  }
  std::string listen_addr() const { return "127.0.0.1:0"; }
  std::size_t max_message_size() const { return EndpointLimits{}.max_message_size; }
  template <class T>
  std::optional<T> run(asio::awaitable<T> task) {
    std::optional<T> out;
    std::exception_ptr error;
    bool done = false;
    asio::co_spawn(
        io_,
        [](asio::awaitable<T> t, std::optional<T>* dst) -> asio::awaitable<void> {
          dst->emplace(co_await std::move(t));
        }(std::move(task), &out),
        [&](std::exception_ptr e) {
          error = e;
          done = true;
          io_.stop();
        });
    io_.restart();
    io_.run_for(std::chrono::minutes(1));
    if (error) std::rethrow_exception(error);
    if (!done) return std::nullopt;
    return out;
  }
  std::string context() const { return "QUIC backend over loopback UDP"; }

 private:
  asio::io_context io_{1};
  std::vector<std::unique_ptr<System>> systems_;
};

}  // namespace moosicbox::p2p::testing

namespace moosicbox::p2p::conformance {
using QuicHarnesses = ::testing::Types<testing::QuicHarness>;
INSTANTIATE_TYPED_TEST_SUITE_P(Quic, P2PConformance, QuicHarnesses);
INSTANTIATE_TYPED_TEST_SUITE_P(Quic, P2PStreamConformance, QuicHarnesses);
}  // namespace moosicbox::p2p::conformance
