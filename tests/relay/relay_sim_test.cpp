// SPDX-License-Identifier: MIT OR Apache-2.0
// relay_sim_test.cpp: the relay client and server (and the path layer's relay half) on the
// simulated network, in virtual time only: a relay on a public host, clients behind NAT routers of
// different kinds (one blocking UDP); connecting (the observed address is the NAT's), datagrams both
// ways in batches, peer gone, a relay restart, a partition longer than the pong timeout, a bad
// signature, the handshake and idle timeouts and the rate limit in virtual time, the latency probe,
// determinism of the trace, 200 idle clients with their heap counted, and RelayPaths choosing the
// nearer of two relays.
// Simulation tests: no sleeps, no wall clock; every failure names its seed (P2P_SIM_SEED).
#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <cstdlib>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "endpoint/magicsock/relay_paths.hpp"
#include "moosicbox/p2p/core/node_id.hpp"
#include "moosicbox/p2p/core/secret_key.hpp"
#include "moosicbox/p2p/relay/server.hpp"
#include "moosicbox/p2p/simnet/beast.hpp"
#include "moosicbox/p2p/simnet/network.hpp"
#include "relay/client.hpp"
#include "relay/protocol.hpp"
#include "relay/stun.hpp"
#include "router/support/heap_meter.hpp"

namespace moosicbox::p2p::relay {
namespace {

using namespace std::chrono_literals;
using testing::heap_live_bytes;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using simnet::Host;
using simnet::NatConfig;
using simnet::NatMapping;
using simnet::Router;

constexpr std::uint16_t kPort = 3340;
constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

SocketAddr ip4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d, std::uint16_t port = 0) {
  return SocketAddr::v4({a, b, c, d}, port);
}

// seed_or is P2P_SIM_SEED when set, else `fallback`.
std::uint64_t seed_or(std::uint64_t fallback) {
  if (const char* s = std::getenv("P2P_SIM_SEED")) return std::strtoull(s, nullptr, 10);
  return fallback;
}

ByteView view(const std::string& s) { return {reinterpret_cast<const std::byte*>(s.data()), s.size()}; }
std::string text(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// spawn runs a coroutine on the simulation; an exception escaping it fails the run.
template <class Awaitable>
void spawn(env::SimRuntime& rt, Awaitable task, std::function<void()> done = {}) {
  asio::co_spawn(rt.executor(), std::move(task), [done = std::move(done)](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
    if (done) done();
  });
}

// Node is one relay client on a simulated host and what it received.
struct Node {
  explicit Node(NodeId node) : id(node) {}
  std::string name;
  Host* host = nullptr;
  NodeId id;
  std::shared_ptr<Client> client;
  std::vector<std::pair<NodeId, std::string>> got;
  std::vector<std::pair<NodeId, PeerGoneReason>> gone;
  std::vector<ClientState> states;
};

// RelaySim is a network with a relay on a public host and two clients' hosts behind NAT routers:
// "a" behind an endpoint-independent NAT, "b" behind a symmetric one that blocks UDP.
class RelaySim {
 public:
  explicit RelaySim(std::uint64_t root, RelayServerLimits limits = {}) : seed(root), rt(root), net(rt) {
    relay = *net.add_host("relay", net.internet(), {ip4(203, 0, 113, 10)});
    NatConfig easy;
    easy.mapping = NatMapping::endpoint_independent;
    nat_a = *net.add_router("nat-a", net.internet(), ip4(198, 51, 100, 1), easy);
    NatConfig hard;
    hard.mapping = NatMapping::address_and_port_dependent;
    hard.ports = simnet::NatPorts::random;
    hard.udp_blocked = true;
    nat_b = *net.add_router("nat-b", net.internet(), ip4(198, 51, 100, 2), hard);
    host_a = *net.add_host("a", nat_a->lan(), {ip4(192, 168, 1, 2)});
    host_b = *net.add_host("b", nat_b->lan(), {ip4(10, 0, 0, 2)});
    net.add_name("relay.test", ip4(203, 0, 113, 10, kPort));
    limits_ = limits;
    start_server();
  }
  RelaySim(const RelaySim&) = delete;
  RelaySim& operator=(const RelaySim&) = delete;
  ~RelaySim() {
    for (auto& [name, n] : nodes) n->client->close();
    server.reset();
    (void)rt.run_for(5s);
    nodes.clear();
  }

  RelayServerConfig server_config() const {
    RelayServerConfig cfg;
    cfg.bind_addrs = {ip4(203, 0, 113, 10, kPort)};
    cfg.sim_host = relay;
    cfg.limits = limits_;
    return cfg;
  }
  void start_server() {
    auto s = RelayServer::create(rt.executor(), server_config());
    ASSERT_TRUE(s) << s.error().message() << " seed " << seed;
    server.emplace(std::move(*s));
  }
  // restart_server shuts the relay down gracefully (announcing the restart), then starts a new one
  // on the same address. The simulated host frees the port once the old connections' last segments
  // are acknowledged (it models no SO_REUSEADDR), a round trip after the shutdown: it retries
  // until then.
  void restart_server() {
    bool done = false;
    spawn(rt, server->shutdown(true), [&] { done = true; });
    ASSERT_TRUE(run_until([&] { return done; }, 30s)) << "seed " << seed;
    server.reset();
    // At once, like a real server with SO_REUSEADDR: the old sessions may still be finishing.
    auto s = RelayServer::create(rt.executor(), server_config());
    ASSERT_TRUE(s.has_value()) << s.error().message() << " seed " << seed;
    server.emplace(std::move(*s));
  }

  ClientConfig client_config(const std::string& name, Host& h) const {
    ClientConfig cc(test_secret_key(name), "http://relay.test:3340");
    cc.sim_host = &h;
    return cc;
  }
  Node& add(const std::string& name, Host& h, std::optional<ClientConfig> cfg = std::nullopt) {
    auto node = std::make_unique<Node>(test_node_id(name));
    node->name = name;
    node->host = &h;
    auto c = Client::create(rt.executor(), cfg ? std::move(*cfg) : client_config(name, h));
    EXPECT_TRUE(c) << c.error().message() << " seed " << seed;
    node->client = *c;
    Node* raw = node.get();
    raw->client->on_receive([raw](const NodeId& from, ByteView d) { raw->got.emplace_back(from, text(d)); });
    raw->client->on_peer_gone([raw](const NodeId& who, PeerGoneReason why) { raw->gone.emplace_back(who, why); });
    raw->client->on_state([raw](ClientState s, const std::optional<P2PError>&) { raw->states.push_back(s); });
    raw->client->start();
    return *nodes.emplace(name, std::move(node)).first->second;
  }

  // run_until steps the simulation until `done()` or `limit` of virtual time passed.
  bool run_until(const std::function<bool()>& done, Duration limit) {
    if (done()) return true;
    return rt.run_while([&] { return !done(); }, rt.now() + limit) == env::SimRuntime::RunResult::condition_met;
  }
  static bool connected(const Node& n) { return n.client->state() == ClientState::connected; }

  std::uint64_t seed;
  env::SimRuntime rt;
  simnet::Network net;
  Host* relay = nullptr;
  Router* nat_a = nullptr;
  Router* nat_b = nullptr;
  Host* host_a = nullptr;
  Host* host_b = nullptr;
  std::optional<RelayServer> server;
  std::map<std::string, std::unique_ptr<Node>> nodes;

 private:
  RelayServerLimits limits_;
};

// exchange sends `n` datagrams each way between `x` and `y` in one burst and waits for them.
void exchange(RelaySim& sim, Node& x, Node& y, int n, const std::string& tag) {
  const auto x0 = x.got.size();
  const auto y0 = y.got.size();
  for (int i = 0; i < n; ++i) {
    EXPECT_TRUE(x.client->send(y.id, view(fmt::format("{} {}>{} {}", tag, x.name, y.name, i))));
    EXPECT_TRUE(y.client->send(x.id, view(fmt::format("{} {}>{} {}", tag, y.name, x.name, i))));
  }
  ASSERT_TRUE(sim.run_until(
      [&] {
        return x.got.size() >= x0 + static_cast<std::size_t>(n) && y.got.size() >= y0 + static_cast<std::size_t>(n);
      },
      10s))
      << tag << ": " << x.name << " got " << x.got.size() - x0 << ", " << y.name << " got " << y.got.size() - y0
      << " of " << n << "; seed " << sim.seed;
  for (int i = 0; i < n; ++i) {
    const auto& gx = x.got[x0 + static_cast<std::size_t>(i)];
    EXPECT_EQ(gx.first, y.id) << "seed " << sim.seed;
    EXPECT_EQ(gx.second, fmt::format("{} {}>{} {}", tag, y.name, x.name, i)) << "seed " << sim.seed;
    const auto& gy = y.got[y0 + static_cast<std::size_t>(i)];
    EXPECT_EQ(gy.first, x.id) << "seed " << sim.seed;
    EXPECT_EQ(gy.second, fmt::format("{} {}>{} {}", tag, x.name, y.name, i)) << "seed " << sim.seed;
  }
}

TEST(RelaySim, ClientsBehindNatsConnectAndExchangeBatchedDatagrams) {
  for (std::uint64_t seed : {seed_or(1), seed_or(2), seed_or(3)}) {
    RelaySim sim(seed);
    auto& a = sim.add("alice", *sim.host_a);
    auto& b = sim.add("bob", *sim.host_b);
    ASSERT_TRUE(sim.run_until([&] { return RelaySim::connected(a) && RelaySim::connected(b); }, 10s))
        << "seed " << seed;
    // The relay sees each client at its NAT's public address.
    ASSERT_TRUE(a.client->observed_addr()) << "seed " << seed;
    ASSERT_TRUE(b.client->observed_addr()) << "seed " << seed;
    EXPECT_EQ(a.client->observed_addr()->with_port(0), sim.nat_a->public_address().with_port(0)) << "seed " << seed;
    EXPECT_EQ(b.client->observed_addr()->with_port(0), sim.nat_b->public_address().with_port(0)) << "seed " << seed;
    EXPECT_EQ(sim.server->stats().clients, 2U) << "seed " << seed;

    exchange(sim, a, b, 50, "burst");
    // Consecutive datagrams to one node left in few frames.
    EXPECT_EQ(a.client->stats().datagrams_sent, 50U) << "seed " << seed;
    EXPECT_LT(a.client->stats().frames_sent, 50U) << "seed " << seed;
    EXPECT_LT(b.client->stats().frames_sent, 50U) << "seed " << seed;
    EXPECT_EQ(sim.server->stats().datagrams_forwarded, 100U) << "seed " << seed;
    // The session stays up over quiet minutes (pings in virtual time).
    (void)sim.rt.run_for(2min);
    EXPECT_TRUE(RelaySim::connected(a) && RelaySim::connected(b)) << "seed " << seed;
    EXPECT_EQ(a.client->stats().connects, 1U) << "seed " << seed;
    EXPECT_TRUE(a.client->rtt().has_value()) << "seed " << seed;
    exchange(sim, a, b, 3, "later");
  }
}

TEST(RelaySim, UnknownNodeIsReportedGone) {
  const auto seed = seed_or(7);
  RelaySim sim(seed);
  auto& a = sim.add("alice", *sim.host_a);
  ASSERT_TRUE(sim.run_until([&] { return RelaySim::connected(a); }, 10s)) << "seed " << seed;
  const NodeId nobody = test_node_id("nobody");
  EXPECT_TRUE(a.client->send(nobody, view("hello?")));
  ASSERT_TRUE(sim.run_until([&] { return !a.gone.empty(); }, 5s)) << "seed " << seed;
  EXPECT_EQ(a.gone[0].first, nobody) << "seed " << seed;
  EXPECT_EQ(a.gone[0].second, PeerGoneReason::not_connected) << "seed " << seed;
  EXPECT_EQ(sim.server->stats().drops_no_peer, 1U) << "seed " << seed;

  // A peer that leaves is reported to who sent to it.
  auto& b = sim.add("bob", *sim.host_b);
  ASSERT_TRUE(sim.run_until([&] { return RelaySim::connected(b); }, 10s)) << "seed " << seed;
  exchange(sim, a, b, 1, "hi");
  b.client->close();
  ASSERT_TRUE(sim.run_until([&] { return a.gone.size() >= 2; }, 5s)) << "seed " << seed;
  EXPECT_EQ(a.gone[1].first, b.id) << "seed " << seed;
  EXPECT_EQ(a.gone[1].second, PeerGoneReason::disconnected) << "seed " << seed;
}

TEST(RelaySim, RelayRestartClientsReconnectAndTrafficResumes) {
  const auto seed = seed_or(11);
  RelaySim sim(seed);
  auto& a = sim.add("alice", *sim.host_a);
  auto& b = sim.add("bob", *sim.host_b);
  ASSERT_TRUE(sim.run_until([&] { return RelaySim::connected(a) && RelaySim::connected(b); }, 10s)) << "seed " << seed;
  exchange(sim, a, b, 5, "before");
  const auto restart_at = sim.rt.now();
  sim.restart_server();
  if (HasFatalFailure()) return;
  ASSERT_TRUE(sim.run_until(
      [&] {
        return RelaySim::connected(a) && RelaySim::connected(b) && a.client->stats().connects == 2 &&
               b.client->stats().connects == 2;
      },
      30s))
      << "seed " << seed;
  // The clients came back on the relay's schedule (reconnect in about 500 ms), not on a backoff.
  EXPECT_LT(sim.rt.now() - restart_at, 10s) << "seed " << seed;
  EXPECT_EQ(sim.server->stats().clients, 2U) << "seed " << seed;
  exchange(sim, a, b, 5, "after");
}

TEST(RelaySim, PartitionLongerThanPongTimeoutIsNoticedAndHealed) {
  const auto seed = seed_or(13);
  RelaySim sim(seed);
  auto cfg = sim.client_config("alice", *sim.host_a);
  cfg.ping_interval = 2s;
  cfg.pong_timeout = 1s;
  cfg.connect_timeout = 2s;
  cfg.backoff_max = 2s;
  auto& a = sim.add("alice", *sim.host_a, std::move(cfg));
  auto& b = sim.add("bob", *sim.host_b);
  ASSERT_TRUE(sim.run_until([&] { return RelaySim::connected(a) && RelaySim::connected(b); }, 10s)) << "seed " << seed;
  exchange(sim, a, b, 3, "before");

  sim.net.partition({sim.relay}, {sim.host_a});
  const auto cut_at = sim.rt.now();
  ASSERT_TRUE(sim.run_until([&] { return !RelaySim::connected(a); }, 10s)) << "seed " << seed;
  // Noticed within one quiet interval plus the pong timeout (and a little for the last traffic).
  EXPECT_LE(sim.rt.now() - cut_at, 2s + 1s + 500ms) << "seed " << seed;
  ASSERT_TRUE(a.client->last_error()) << "seed " << seed;
  EXPECT_EQ(a.client->last_error()->code(), P2PErrc::timeout) << a.client->last_error()->message() << " seed " << seed;
  // Attempts during the partition fail; the client keeps trying.
  (void)sim.rt.run_for(8s);
  EXPECT_FALSE(RelaySim::connected(a)) << "seed " << seed;
  EXPECT_GE(a.client->stats().connect_failures, 1U) << "seed " << seed;

  sim.net.heal();
  const auto healed_at = sim.rt.now();
  ASSERT_TRUE(sim.run_until([&] { return RelaySim::connected(a); }, 10s)) << "seed " << seed;
  // At most an attempt that started just before the heal (2 s), a backoff (2 s + 25%) and a connect.
  EXPECT_LE(sim.rt.now() - healed_at, 2s + 2500ms + 1s) << "seed " << seed;
  EXPECT_EQ(a.client->stats().connects, 2U) << "seed " << seed;
  exchange(sim, a, b, 3, "after");
}

// bad_signature_handshake speaks the relay protocol by hand over a simulated stream from `host` and
// signs the challenge wrongly; it returns the close code the relay answered with.
asio::awaitable<void> bad_signature_handshake(Host& host, int& close_code, bool& read_failed) {
  auto s = co_await simnet::TcpStream::connect(host, ip4(203, 0, 113, 10, kPort), 5s);
  EXPECT_TRUE(s) << (s ? "" : s.error().message());
  if (!s) co_return;
  websocket::stream<simnet::TcpStream> ws(std::move(*s));
  ws.set_option(websocket::stream_base::decorator(
      [](websocket::request_type& req) { req.set(beast::http::field::sec_websocket_protocol, proto::kSubprotocol); }));
  const std::string host_header = "relay.test:3340";
  auto [hec] = co_await ws.async_handshake(host_header, std::string(proto::kRelayPath), kUse);
  EXPECT_FALSE(hec) << hec.message();
  if (hec) co_return;
  ws.binary(true);
  beast::flat_buffer buf;
  auto [rec, rn] = co_await ws.async_read(buf, kUse);
  (void)rn;
  EXPECT_FALSE(rec) << rec.message();
  if (rec) co_return;
  auto f = proto::decode(ByteView(static_cast<const std::byte*>(buf.data().data()), buf.size()), 64 * 1024);
  EXPECT_TRUE(f);
  const auto* challenge = f ? std::get_if<proto::ServerChallenge>(&*f) : nullptr;
  EXPECT_NE(challenge, nullptr);
  if (challenge == nullptr) co_return;
  auto auth = proto::make_auth(test_secret_key("mallory"), host_header, challenge->challenge);
  EXPECT_TRUE(auth);
  if (!auth) co_return;
  auth->signature[0] ^= 1;
  Bytes out;
  proto::encode(out, *auth);
  auto [wec, wn] = co_await ws.async_write(asio::buffer(out), kUse);
  (void)wn;
  EXPECT_FALSE(wec) << wec.message();
  buf.consume(buf.size());
  auto [ec2, n2] = co_await ws.async_read(buf, kUse);
  (void)n2;
  read_failed = static_cast<bool>(ec2);
  close_code = static_cast<int>(ws.reason().code);
}

TEST(RelaySim, HandshakeWithBadSignatureIsRejected) {
  const auto seed = seed_or(17);
  RelaySim sim(seed);
  int close_code = -1;
  bool read_failed = false;
  bool done = false;
  spawn(sim.rt, bad_signature_handshake(*sim.host_a, close_code, read_failed), [&] { done = true; });
  ASSERT_TRUE(sim.run_until([&] { return done; }, 30s)) << "seed " << seed;
  EXPECT_TRUE(read_failed) << "seed " << seed;
  EXPECT_EQ(close_code, static_cast<int>(websocket::close_code::policy_error)) << "seed " << seed;
  const auto st = sim.server->stats();
  EXPECT_EQ(st.handshake_failures, 1U) << "seed " << seed;
  EXPECT_EQ(st.clients, 0U) << "seed " << seed;
  EXPECT_EQ(st.accepted_total, 0U) << "seed " << seed;
  // A proper client from the same host still gets in.
  auto& a = sim.add("alice", *sim.host_a);
  ASSERT_TRUE(sim.run_until([&] { return RelaySim::connected(a); }, 10s)) << "seed " << seed;
}

TEST(RelaySim, SilentConnectionIsCutAtTheHandshakeTimeout) {
  const auto seed = seed_or(41);
  RelayServerLimits limits;
  limits.handshake_timeout = 2s;
  RelaySim sim(seed, limits);
  TimePoint ended{};
  boost::system::error_code end_ec;
  bool done = false;
  spawn(
      sim.rt,
      [](RelaySim& w, TimePoint& at, boost::system::error_code& out) -> asio::awaitable<void> {
        auto s = co_await simnet::TcpStream::connect(*w.host_a, ip4(203, 0, 113, 10, kPort), 5s);
        EXPECT_TRUE(s);
        if (!s) co_return;
        std::array<std::byte, 64> buf{};
        auto [ec, n] = co_await s->async_read_some(asio::buffer(buf), kUse);
        (void)n;
        out = ec;
        at = w.rt.now();
      }(sim, ended, end_ec),
      [&] { done = true; });
  const auto start = sim.rt.now();
  ASSERT_TRUE(sim.run_until([&] { return done; }, 10s)) << "seed " << seed;
  EXPECT_EQ(end_ec, asio::error::eof) << end_ec.message() << " seed " << seed;
  EXPECT_GE(ended - start, 2s) << "seed " << seed;
  EXPECT_LT(ended - start, 3s) << "seed " << seed;
  EXPECT_EQ(sim.server->stats().handshake_failures, 1U) << "seed " << seed;
  EXPECT_EQ(sim.server->stats().handshakes, 0U) << "seed " << seed;
}

TEST(RelaySim, QuietClientIsClosedAtTheIdleTimeoutAndReconnects) {
  const auto seed = seed_or(43);
  RelayServerLimits limits;
  limits.idle_timeout = 5s;
  RelaySim sim(seed, limits);
  auto cfg = sim.client_config("alice", *sim.host_a);
  cfg.ping_interval = 10min;  // never pings: the relay hears nothing
  auto& a = sim.add("alice", *sim.host_a, std::move(cfg));
  ASSERT_TRUE(sim.run_until([&] { return RelaySim::connected(a); }, 10s)) << "seed " << seed;
  const auto connected_at = sim.rt.now();
  ASSERT_TRUE(sim.run_until([&] { return !RelaySim::connected(a); }, 20s)) << "seed " << seed;
  EXPECT_GE(sim.rt.now() - connected_at, 5s) << "seed " << seed;
  EXPECT_LT(sim.rt.now() - connected_at, 6s) << "seed " << seed;
  ASSERT_TRUE(sim.run_until([&] { return a.client->stats().connects == 2 && RelaySim::connected(a); }, 10s))
      << "seed " << seed;
}

TEST(RelaySim, RateLimitRefillsInVirtualTime) {
  const auto seed = seed_or(47);
  RelayServerLimits limits;
  limits.client_bytes_per_second = 100'000;
  limits.client_burst_bytes = 65'535;
  RelaySim sim(seed, limits);
  auto& a = sim.add("alice", *sim.host_a);
  auto& b = sim.add("bob", *sim.host_b);
  ASSERT_TRUE(sim.run_until([&] { return RelaySim::connected(a) && RelaySim::connected(b); }, 10s)) << "seed " << seed;
  const std::string payload(1000, 'x');
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(a.client->send(b.id, view(payload)));
  (void)sim.rt.run_for(100ms);
  const auto first = b.got.size();
  EXPECT_LT(first, 100U) << "seed " << seed;
  EXPECT_GE(first, 65U) << "seed " << seed;
  EXPECT_EQ(sim.server->stats().drops_rate_limited, 100U - first) << "seed " << seed;
  // A second later the bucket is full again.
  (void)sim.rt.run_for(1s);
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(a.client->send(b.id, view(payload)));
  ASSERT_TRUE(sim.run_until([&] { return b.got.size() == first + 50; }, 1s)) << "seed " << seed;
}

TEST(RelaySim, ConfigurationOnASimulatedHostIsValidated) {
  const auto seed = seed_or(19);
  RelaySim sim(seed);
  auto tls = sim.client_config("alice", *sim.host_a);
  tls.url = "https://relay.test:3340";
  auto r = Client::create(sim.rt.executor(), std::move(tls));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), P2PErrc::invalid_configuration);
  EXPECT_NE(r.error().message().find("TLS relays are not simulated"), std::string::npos) << r.error().message();
  asio::io_context other;
  auto wrong = Client::create(other.get_executor(), sim.client_config("alice", *sim.host_a));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), P2PErrc::invalid_configuration);
  auto scfg = sim.server_config();
  scfg.bind_addrs = {ip4(203, 0, 113, 10, kPort + 1)};
  auto wrong_server = RelayServer::create(other.get_executor(), scfg);
  ASSERT_FALSE(wrong_server);
  EXPECT_EQ(wrong_server.error().code(), P2PErrc::invalid_configuration);
  // The address is taken by the running relay.
  auto taken = RelayServer::create(sim.rt.executor(), sim.server_config());
  EXPECT_FALSE(taken);
}

TEST(RelaySim, LatencyProbeRunsInVirtualTime) {
  const auto seed = seed_or(23);
  RelaySim sim(seed);
  sim.relay->link().latency = 20ms;
  P2PResult<Duration> rtt = fail(P2PError::cancelled("not run"));
  bool done = false;
  spawn(
      sim.rt,
      [](Host& h, P2PResult<Duration>& out) -> asio::awaitable<void> {
        out = co_await probe_latency(h, "http://relay.test:3340", 5s);
      }(*sim.host_a, rtt),
      [&] { done = true; });
  ASSERT_TRUE(sim.run_until([&] { return done; }, 10s)) << "seed " << seed;
  ASSERT_TRUE(rtt) << rtt.error().message() << " seed " << seed;
  // Two links each way, 20 ms on the relay's and the default 5 ms on the others.
  EXPECT_GE(*rtt, 40ms) << "seed " << seed;
  EXPECT_LT(*rtt, 200ms) << "seed " << seed;
  P2PResult<Duration> none = fail(P2PError::cancelled("not run"));
  done = false;
  spawn(
      sim.rt,
      [](Host& h, P2PResult<Duration>& out) -> asio::awaitable<void> {
        out = co_await probe_latency(h, "http://203.0.113.99:3340", 2s);
      }(*sim.host_a, none),
      [&] { done = true; });
  ASSERT_TRUE(sim.run_until([&] { return done; }, 10s)) << "seed " << seed;
  EXPECT_FALSE(none) << "seed " << seed;
}

// stun_exchange sends one Binding request from a fresh socket on `h` to `to`, runs the simulation
// for a second of virtual time and returns the parsed answer, if one came.
std::optional<stun::BindingResponse> stun_exchange(RelaySim& sim, Host& h, SocketAddr to) {
  auto sock = simnet::UdpSocket::bind(h, h.addresses().front());
  EXPECT_TRUE(sock) << sock.error().message();
  if (!sock) return std::nullopt;
  stun::TxId tx{};
  tx[3] = std::byte{9};
  const Bytes req = stun::binding_request(tx);
  env::Transmit t;
  t.destination = to;
  t.contents = req;
  EXPECT_TRUE(sock->try_send_batch(std::span<const env::Transmit>(&t, 1)));
  (void)sim.rt.run_for(1s);
  std::array<std::byte, 1500> buf{};
  std::array<std::span<std::byte>, 1> bufs{std::span(buf)};
  std::array<env::RecvMeta, 1> metas{};
  auto n = sock->try_receive_batch(bufs, metas);
  if (!n || *n == 0) return std::nullopt;
  auto parsed = stun::parse_binding_response(ByteView(buf).first(metas[0].length));
  EXPECT_TRUE(parsed) << parsed.error().message();
  if (!parsed) return std::nullopt;
  EXPECT_EQ(parsed->tx, tx);
  return *parsed;
}

TEST(RelaySim, StunAnswersWithTheNatsPublicAddress) {
  const auto seed = seed_or(21);
  RelaySim sim(seed);
  sim.server.reset();
  auto cfg = sim.server_config();
  cfg.stun_bind_addrs = {ip4(203, 0, 113, 10, stun::kDefaultPort)};
  auto s = RelayServer::create(sim.rt.executor(), cfg);
  ASSERT_TRUE(s) << s.error().message() << " seed " << seed;
  sim.server.emplace(std::move(*s));
  EXPECT_EQ(sim.server->local_stun_addrs(), std::vector<SocketAddr>{ip4(203, 0, 113, 10, 3478)});
  // Behind the endpoint-independent NAT: the router's public address.
  auto a = stun_exchange(sim, *sim.host_a, ip4(203, 0, 113, 10, 3478));
  ASSERT_TRUE(a) << "seed " << seed;
  EXPECT_EQ(a->mapped.with_port(0), sim.nat_a->public_address()) << "seed " << seed;
  EXPECT_NE(a->mapped.port(), 0) << "seed " << seed;
  // Behind the router that blocks UDP: no answer.
  EXPECT_FALSE(stun_exchange(sim, *sim.host_b, ip4(203, 0, 113, 10, 3478))) << "seed " << seed;
  // A public host sees its own address.
  auto pub = *sim.net.add_host("pub", sim.net.internet(), {ip4(203, 0, 113, 20)});
  auto p = stun_exchange(sim, *pub, ip4(203, 0, 113, 10, 3478));
  ASSERT_TRUE(p) << "seed " << seed;
  EXPECT_EQ(p->mapped.with_port(0), ip4(203, 0, 113, 20)) << "seed " << seed;
  EXPECT_EQ(sim.server->stats().stun_requests, 2U) << "seed " << seed;
  // The relay client learns the port from the StunInfo frame.
  auto& alice = sim.add("alice", *sim.host_a);
  ASSERT_TRUE(sim.run_until([&] { return !alice.client->stun_ports().empty(); }, 10s)) << "seed " << seed;
  EXPECT_EQ(alice.client->stun_ports(), std::vector<std::uint16_t>{3478}) << "seed " << seed;
}
// scenario runs connects, an exchange, a partition and a restart, and returns the trace hash.
std::uint64_t scenario(std::uint64_t seed) {
  RelaySim sim(seed);
  auto cfg = sim.client_config("alice", *sim.host_a);
  cfg.ping_interval = 2s;
  cfg.pong_timeout = 1s;
  auto& a = sim.add("alice", *sim.host_a, std::move(cfg));
  auto& b = sim.add("bob", *sim.host_b);
  EXPECT_TRUE(sim.run_until([&] { return RelaySim::connected(a) && RelaySim::connected(b); }, 10s)) << "seed " << seed;
  exchange(sim, a, b, 20, "one");
  sim.net.partition({sim.relay}, {sim.host_a});
  (void)sim.rt.run_for(6s);
  sim.net.heal();
  EXPECT_TRUE(sim.run_until([&] { return RelaySim::connected(a); }, 20s)) << "seed " << seed;
  sim.restart_server();
  EXPECT_TRUE(sim.run_until([&] { return a.client->stats().connects >= 3 && b.client->stats().connects >= 2; }, 30s))
      << "seed " << seed;
  EXPECT_TRUE(sim.run_until([&] { return RelaySim::connected(a) && RelaySim::connected(b); }, 10s)) << "seed " << seed;
  exchange(sim, a, b, 20, "two");
  (void)sim.rt.run_for(30s);
  return sim.rt.trace_hash();
}

TEST(RelaySim, SameSeedGivesTheSameTrace) {
  const auto seed = seed_or(29);
  const auto first = scenario(seed);
  const auto second = scenario(seed);
  EXPECT_EQ(first, second) << "seed " << seed;
  // The hash moved from its initial value: the packets of the scenario went into it.
  EXPECT_NE(first, env::SimRuntime(seed).trace_hash()) << "seed " << seed;
}

TEST(RelaySim, TwoHundredIdleClientsOnOneRelay) {
  constexpr int kClients = 200;
  const auto seed = seed_or(31);
  RelaySim sim(seed);
  // Distinct public addresses (the per-IP limit is 64): ten NAT routers of 20 clients each.
  std::vector<Host*> hosts;
  for (int r = 0; r < 10; ++r) {
    NatConfig nat;
    nat.mapping = r % 2 == 0 ? NatMapping::endpoint_independent : NatMapping::address_and_port_dependent;
    auto router = sim.net.add_router(fmt::format("nat{}", r), sim.net.internet(),
                                     ip4(100, 64, 0, static_cast<std::uint8_t>(r + 1)), nat);
    ASSERT_TRUE(router) << router.error().message();
    for (int i = 0; i < kClients / 10; ++i) {
      auto h = sim.net.add_host(fmt::format("h{}-{}", r, i), (*router)->lan(),
                                {ip4(10, 1, static_cast<std::uint8_t>(r), static_cast<std::uint8_t>(i + 2))});
      ASSERT_TRUE(h) << h.error().message();
      hosts.push_back(*h);
    }
  }
  (void)sim.rt.run_for(1s);
  const auto before = heap_live_bytes();
  std::vector<Node*> nodes;
  for (int i = 0; i < kClients; ++i)
    nodes.push_back(&sim.add(fmt::format("idle{}", i), *hosts[static_cast<std::size_t>(i)]));
  const auto all_connected = [&] {
    return std::all_of(nodes.begin(), nodes.end(), [](const Node* n) { return RelaySim::connected(*n); });
  };
  ASSERT_TRUE(sim.run_until(all_connected, 30s)) << "seed " << seed;
  EXPECT_EQ(sim.server->stats().clients, static_cast<std::uint64_t>(kClients)) << "seed " << seed;
  (void)sim.rt.run_for(10s);
  const auto connected = heap_live_bytes();
  // Idle for three minutes (pings every 15 s, the relay's idle timeout is 60 s).
  (void)sim.rt.run_for(3min);
  const auto idle = heap_live_bytes();
  EXPECT_TRUE(all_connected()) << "seed " << seed;
  for (const auto* n : nodes) EXPECT_EQ(n->client->stats().connects, 1U) << n->name << " seed " << seed;
  EXPECT_EQ(sim.server->stats().clients, static_cast<std::uint64_t>(kClients)) << "seed " << seed;
  const auto per_client = (connected - before) / kClients;
  std::printf("200 idle relay clients: %lld bytes of heap each (client, its server session, both stream ends)\n",
              static_cast<long long>(per_client));
  // Bounded: the client's and the session's buffers are released when idle.
  EXPECT_LT(per_client, 96 * 1024) << "seed " << seed;
  // No growth while idle.
  EXPECT_LT(idle - connected, (connected - before) / 20 + 64 * 1024) << "seed " << seed;
}

TEST(RelaySim, RelayPathsPickTheNearestRelayAndCarryDatagrams) {
  const auto seed = seed_or(37);
  RelaySim sim(seed);
  // A second, farther relay.
  auto far = sim.net.add_host("relay-far", sim.net.internet(), {ip4(203, 0, 113, 20)});
  ASSERT_TRUE(far) << far.error().message();
  (*far)->link().latency = 80ms;
  RelayServerConfig far_cfg = sim.server_config();
  far_cfg.bind_addrs = {ip4(203, 0, 113, 20, kPort)};
  far_cfg.sim_host = nullptr;
  auto far_server = RelayServer::create(**far, far_cfg);
  ASSERT_TRUE(far_server) << far_server.error().message();

  const std::vector<std::string> urls = {"http://203.0.113.20:3340", "http://relay.test:3340"};
  magicsock::RelayPathsConfig ca(test_secret_key("alice"));
  ca.urls = urls;
  ca.sim_host = sim.host_a;
  magicsock::RelayPathsConfig cb(test_secret_key("bob"));
  cb.urls = urls;
  cb.sim_host = sim.host_b;
  auto pa = std::make_unique<magicsock::RelayPaths>(sim.rt.executor(), ca);
  auto pb = std::make_unique<magicsock::RelayPaths>(sim.rt.executor(), cb);
  std::vector<std::string> got_a;
  std::vector<std::string> got_b;
  pa->on_receive([&](const SocketAddr&, const NodeId&, ByteView d) { got_a.push_back(text(d)); });
  pb->on_receive([&](const SocketAddr&, const NodeId&, ByteView d) { got_b.push_back(text(d)); });
  pa->start();
  pb->start();
  P2PResult<std::string> home_a = fail(P2PError::cancelled("not run"));
  P2PResult<std::string> home_b = fail(P2PError::cancelled("not run"));
  int done = 0;
  const auto wait_home = [](magicsock::RelayPaths& p, P2PResult<std::string>& out,
                            TimePoint deadline) -> asio::awaitable<void> { out = co_await p.wait_home(deadline); };
  spawn(sim.rt, wait_home(*pa, home_a, sim.rt.now() + 20s), [&] { ++done; });
  spawn(sim.rt, wait_home(*pb, home_b, sim.rt.now() + 20s), [&] { ++done; });
  ASSERT_TRUE(sim.run_until([&] { return done == 2; }, 30s)) << "seed " << seed;
  ASSERT_TRUE(home_a) << home_a.error().message() << " seed " << seed;
  ASSERT_TRUE(home_b) << home_b.error().message() << " seed " << seed;
  EXPECT_EQ(*home_a, "http://relay.test:3340") << "seed " << seed;
  EXPECT_EQ(*home_b, "http://relay.test:3340") << "seed " << seed;

  auto va = pa->peer(test_node_id("bob"), std::nullopt);
  ASSERT_TRUE(va) << va.error().message();
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(pa->send(*va, view(fmt::format("a{}", i))));
  ASSERT_TRUE(sim.run_until([&] { return got_b.size() == 10; }, 5s)) << "seed " << seed;
  auto vb = pb->peer(test_node_id("alice"), std::nullopt);
  ASSERT_TRUE(vb) << vb.error().message();
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(pb->send(*vb, view(fmt::format("b{}", i))));
  ASSERT_TRUE(sim.run_until([&] { return got_a.size() == 10; }, 5s)) << "seed " << seed;
  EXPECT_EQ(got_b.front(), "a0");
  EXPECT_EQ(got_a.back(), "b9");
  EXPECT_EQ(pa->stats().datagrams_sent, 10U);
  EXPECT_EQ(pb->stats().datagrams_received, 10U);

  pa->close();
  pb->close();
  (void)sim.rt.run_for(1s);
  pa.reset();
  pb.reset();
}

}  // namespace
}  // namespace moosicbox::p2p::relay
