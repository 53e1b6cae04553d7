// SPDX-License-Identifier: MIT OR Apache-2.0
// sim_demo.cpp: `moosicbox-p2p demo` on the simulator: a music server at home behind a
// port-restricted NAT, a phone behind a symmetric NAT, a laptop behind a full-cone NAT and a relay.
// The phone reaches the server through the relay (the NATs forbid a direct path), the laptop
// directly after hole punching; a short partition stalls and heals, a long one fails both ends
// after the connection timeout, and the phone reconnects. Everything runs in virtual time and is
// printed as it happens; the seed reproduces the run exactly.
#include <fmt/format.h>

#include "moosicbox/p2p/core/spawn.hpp"
#include "moosicbox/p2p/sim/sim.hpp"
#include "sim_commands.hpp"

namespace moosicbox::p2p::cli {
namespace {

using namespace std::chrono_literals;
using sim::PathKind;
using sim::SimulatorConnection;
using sim::SimulatorListener;
using sim::SimulatorP2P;
using sim::World;

// Story holds the world and prints lines stamped with virtual time.
class Story {
 public:
  explicit Story(World& w) : world_(w) {}
  template <class... Args>
  void say(fmt::format_string<Args...> format, Args&&... args) {
    const auto t = std::chrono::duration<double>(world_.now().time_since_epoch()).count();
    fmt::print("[{:8.3f}s] {}\n", t, fmt::format(format, std::forward<Args>(args)...));
  }
  // expect records a broken expectation; the demo then exits non-zero.
  void expect(bool ok, std::string_view what) {
    if (ok) return;
    say("UNEXPECTED: {}", what);
    failed_ = true;
  }
  [[nodiscard]] bool failed() const noexcept { return failed_; }

 private:
  World& world_;
  bool failed_ = false;
};

std::string name_of(const World& w, const NodeId& id) {
  const auto node = w.node(id);
  return node ? node->name() : id.fmt_short();
}

std::string describe(const SimulatorConnection& c, const World& w) {
  if (c.path() == PathKind::direct) return "direct";
  const auto relay = c.relay();
  const auto node = relay ? w.node(*relay) : std::nullopt;
  return fmt::format("relayed via {}", node ? node->name() : std::string("a relay"));
}

// serve answers every request on every connection to the music server.
asio::awaitable<void> serve(SimulatorListener listener, const World* w, Story* story) {
  while (true) {
    auto conn = co_await listener.accept();
    if (!conn) co_return;
    spawn_logged(
        co_await asio::this_coro::executor,
        [](SimulatorConnection c, const World* world, Story* s) -> asio::awaitable<void> {
          const auto peer = name_of(*world, c.remote_node_id());
          while (true) {
            auto request = co_await c.recv();
            if (!request) {
              s->say("server: connection from {} ended: {}", peer, request.error().message());
              co_return;
            }
            s->say("server: got \"{}\" from {}", to_string(*request), peer);
            const auto reply = co_await c.send(as_bytes(fmt::format("ok: {}", to_string(*request))));
            if (!reply) co_return;
          }
        }(*conn, w, story),
        "demo-handler");
  }
}

// ask sends one request and waits for its answer.
asio::awaitable<bool> ask(SimulatorConnection c, const World* w, std::string_view who, std::string request, Story* s) {
  s->say("{}: sends \"{}\"", who, request);
  const auto start = w->now();
  const auto sent = co_await c.send(as_bytes(request));
  if (!sent) {
    s->say("{}: send failed: {}", who, sent.error().message());
    co_return false;
  }
  auto answer = co_await c.recv();
  if (!answer) {
    s->say("{}: no answer: {}", who, answer.error().message());
    co_return false;
  }
  s->say("{}: got \"{}\" ({} after sending)", who, to_string(*answer), format_duration(w->now() - start));
  co_return true;
}

asio::awaitable<void> story(World& w, SimulatorP2P server, SimulatorP2P phone, SimulatorP2P laptop, Story* s) {
  // The server listens and registers a name the others can discover.
  auto listener = co_await server.listen("music-server");
  s->expect(listener.has_value(), "the server listens");
  if (!listener) co_return;
  (void)server.register_peer("music-server", server.local_node_id());
  spawn_logged(co_await asio::this_coro::executor, serve(*listener, &w, s), "demo-serve");

  // The phone (symmetric NAT) dials by name: the NATs rule out a direct path, so the relay carries it.
  s->say("phone: discovering \"music-server\"");
  auto phone_conn = co_await phone.connect_by_name("music-server");
  s->expect(phone_conn.has_value(), "the phone connects");
  if (!phone_conn) co_return;
  s->say("phone: connected to {} ({}, round trip {})", name_of(w, phone_conn->remote_node_id()),
         describe(*phone_conn, w), format_duration(*phone_conn->stats().rtt));
  s->expect(phone_conn->path() == PathKind::relayed, "symmetric to port-restricted goes through the relay");
  const auto asked = co_await ask(*phone_conn, &w, "phone", "GET /tracks", s);
  s->expect(asked, "the phone gets its answer");

  // The laptop (full cone) punches a hole and talks to the server directly.
  auto laptop_conn = co_await laptop.connect(server.local_node_id());
  s->expect(laptop_conn.has_value(), "the laptop connects");
  if (!laptop_conn) co_return;
  s->say("laptop: connected to {} ({} after hole punching, round trip {})", name_of(w, laptop_conn->remote_node_id()),
         describe(*laptop_conn, w), format_duration(*laptop_conn->stats().rtt));
  s->expect(laptop_conn->path() == PathKind::direct, "full cone to port-restricted is direct");
  const auto laptop_asked = co_await ask(*laptop_conn, &w, "laptop", "GET /tracks/7/stream", s);
  s->expect(laptop_asked, "the laptop gets its answer");

  // A short partition: the phone's request stalls, then goes through after the heal.
  std::vector<NodeId> cut_off{phone.local_node_id()};
  std::vector<NodeId> rest{server.local_node_id(), laptop.local_node_id(), w.lookup("relay").value()};
  auto short_cut = w.graph().add_partition(cut_off, rest);
  s->say("network: the phone loses its network for 4 s");
  w.runtime().schedule_after(4s, [&w, s, id = *short_cut] {
    (void)w.graph().heal_partition(id);
    s->say("network: the phone's network is back");
  });
  const auto stalled = co_await ask(*phone_conn, &w, "phone", "POST /play 7", s);
  s->expect(stalled, "the request sent during the partition arrives after the heal");

  // A partition longer than the connection timeout: both ends give up with a clear error.
  auto long_cut = w.graph().add_partition(cut_off, rest);
  s->say("network: the phone loses its network for 20 s (the connection timeout is {})",
         format_duration(w.config().connection_timeout));
  auto lost = co_await phone_conn->recv();
  s->expect(!lost && lost.error().code() == P2PErrc::timeout, "the phone's connection times out");
  if (!lost) s->say("phone: connection failed: {}", lost.error().message());
  auto timer = phone.env().make_timer();
  (void)co_await timer.wait_until(w.now() + 10s);
  (void)w.graph().heal_partition(*long_cut);
  s->say("network: the phone's network is back");

  // The phone reconnects with a new connection.
  auto again = co_await phone.connect(server.local_node_id());
  s->expect(again.has_value(), "the phone reconnects");
  if (!again) co_return;
  s->say("phone: reconnected ({})", describe(*again, w));
  const auto resumed = co_await ask(*again, &w, "phone", "GET /queue", s);
  s->expect(resumed, "the phone is served again");
  (void)co_await again->close();
  (void)co_await laptop_conn->close();
}

}  // namespace

int sim_demo(std::optional<std::uint64_t> seed_option) {
  auto seed = sim::resolve_seed(seed_option);
  if (!seed) {
    fmt::print(stderr, "error: {}\n", seed.error().message());
    return 1;
  }
  NetworkConfig config;
  config.connection_timeout = 10s;
  config.packet_loss = 0.01;
  World w(*seed, config);
  Story s(w);
  fmt::print("moosicbox-p2p simulated network, seed {} (the same seed replays the same run)\n", *seed);
  auto add = [&](std::string_view name, sim::NodeOptions options) {
    auto node = w.add_node(name, options);
    if (node) {
      fmt::print("  {:7} {:s}  nat {:18} {}\n", name, node->local_node_id(), sim::to_string(options.nat),
                 node->local_node_id());
    }
    return node;
  };
  auto relay = add("relay", {.relay = true});
  auto server = add("server", {.nat = sim::NatType::port_restricted});
  auto phone = add("phone", {.nat = sim::NatType::symmetric});
  auto laptop = add("laptop", {.nat = sim::NatType::full_cone});
  if (!relay || !server || !phone || !laptop) return 1;
  auto link = [&](const SimulatorP2P& a, const SimulatorP2P& b, Duration latency) {
    sim::LinkInfo info = sim::LinkInfo::from_config(w.config());
    info.latency = latency;
    info.jitter = 2ms;
    (void)w.link(a.local_node_id(), b.local_node_id(), info);
  };
  link(*server, *relay, 15ms);
  link(*phone, *relay, 40ms);
  link(*laptop, *relay, 20ms);
  link(*server, *phone, 35ms);
  link(*server, *laptop, 10ms);
  w.set_trace_sink([&s](TimePoint, std::string_view line) {
    // Show the simulator's own view of stalls, recoveries and failures as they happen.
    if (line.find(" stall") != std::string_view::npos || line.find(" resume") != std::string_view::npos ||
        line.find(" failed:") != std::string_view::npos || line.find(" reroute") != std::string_view::npos) {
      s.say("sim: {}", line);
    }
  });
  const bool done = w.run(story(w, *server, *phone, *laptop, &s), 1h);
  s.expect(done, "the story completes");
  w.set_trace_sink({});
  fmt::print("trace hash {:016x}; reproduce with P2P_SIM_SEED={} or --seed {}\n", w.trace_hash(), *seed, *seed);
  return s.failed() ? 1 : 0;
}

}  // namespace moosicbox::p2p::cli
