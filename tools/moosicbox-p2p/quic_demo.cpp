// SPDX-License-Identifier: MIT OR Apache-2.0
// quic_demo.cpp: the loopback part of `moosicbox-p2p demo`: two real QUIC endpoints, messages, the
// router and a short throughput figure, then the same two reaching each other through a relay. One single-threaded
// io_context; errors are one line on stderr and exit code 1.
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <charconv>

#include "moosicbox/p2p/core/spawn.hpp"
#include "moosicbox/p2p/endpoint/endpoint.hpp"
#include "moosicbox/p2p/env/asio_env.hpp"
#include "moosicbox/p2p/relay/server.hpp"
#include "moosicbox/p2p/router/client.hpp"
#include "moosicbox/p2p/router/router.hpp"
#include "moosicbox/p2p/router/server.hpp"
#include "net_common.hpp"

namespace moosicbox::p2p::cli {

namespace {

using namespace boost::asio::experimental::awaitable_operators;

int error(const P2PError& e) {
  fmt::print(stderr, "error: {}\n", e.message());
  return 1;
}

constexpr std::string_view kDemoAlpn = "moosicbox-p2p/demo/1";
constexpr std::uint64_t kDemoBulkBytes = std::uint64_t{64} << 20;

// demo_router is the home server's API: a small JSON listing and a generated download.
P2PResult<router::P2PRouter> demo_router() {
  router::P2PRouter r;
  auto ok = r.get("/tracks", [](const router::P2PRequest&) {
    return router::P2PResponse::json(router::StatusCode::ok, R"([{"id":1,"title":"Moo"},{"id":2,"title":"Cowbell"}])");
  });
  if (!ok) return fail(ok.error());
  ok = r.get("/download/:bytes", [](const router::P2PRequest& req) -> router::P2PResponse {
    const auto text = req.param("bytes").value_or("");
    std::uint64_t n = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || ptr != text.data() + text.size() || n > (std::uint64_t{1} << 30)) {
      return router::P2PResponse::error(router::StatusCode::bad_request, "bytes must be at most 1 GiB");
    }
    router::BodySource source = [n](router::BodyWriter& w) -> asio::awaitable<P2PResult<void>> {
      Bytes chunk(256 * 1024, std::byte{0x5a});
      for (std::uint64_t left = n; left > 0;) {
        const auto len = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk.size()));
        if (auto wrote = co_await w.write(ByteView(chunk).first(len)); !wrote) co_return fail(wrote.error());
        left -= len;
      }
      co_return P2PResult<void>{};
    };
    return router::P2PResponse::stream(router::StatusCode::ok, std::move(source), n);
  });
  if (!ok) return fail(ok.error());
  return r;
}

asio::awaitable<int> demo_phone(env::AsioEnv& env, Endpoint& home, Endpoint& phone);

asio::awaitable<int> demo_steps(asio::io_context& io) {
  env::AsioEnv env(io.get_executor());
  auto make = [&](std::string_view name) -> P2PResult<Endpoint> {
    EndpointConfig cfg(test_secret_key(name));
    cfg.bind_addrs = {SocketAddr::v4_loopback(0)};
    cfg.alpns = {std::string(kDemoAlpn)};
    return Endpoint::bind(io.get_executor(), std::move(cfg));
  };
  auto home = make("demo-home");
  if (!home) co_return error(home.error());
  auto phone = make("demo-phone");
  if (!phone) co_return error(phone.error());
  auto listener = home->listen(kDemoAlpn);
  if (!listener) co_return error(listener.error());
  auto routes = demo_router();
  if (!routes) co_return error(routes.error());
  router::Server<env::AsioEnv> server(env, std::move(*routes));

  fmt::print("part 1: two real QUIC endpoints on loopback\n");
  fmt::print("  home  {}  at {}\n", home->node_id(), home->local_addrs().front());
  fmt::print("  phone {}  at {}\n", phone->node_id(), phone->local_addrs().front());
  fmt::print("  phone knows only home's ticket: {}\n", home->addr().to_ticket());

  // Home: echo messages and serve the router on every connection it accepts.
  auto serve_home = [&]() -> asio::awaitable<int> {
    auto conn = co_await listener->accept();
    if (!conn) co_return 0;
    spawn_logged(
        io.get_executor(),
        [](Connection c) -> asio::awaitable<void> {
          while (true) {
            auto msg = co_await c.recv();
            if (!msg) co_return;
            const auto reply = "home got: " + to_string(*msg);
            if (auto awaited = co_await c.send(as_bytes(reply)); !awaited) co_return;
          }
        }(*conn),
        "demo echo");
    (void)co_await server.serve_connection(*conn);
    co_return 0;
  };
  auto phone_side = [&]() -> asio::awaitable<int> {
    const int rc = co_await demo_phone(env, *home, *phone);
    // Whatever happened, let the home side end: no more connections, requests drained.
    listener->close();
    server.shutdown();
    co_return rc;
  };
  auto [served, rc] = co_await (serve_home() && phone_side());
  (void)served;
  co_await phone->close();
  co_await home->close();
  co_return rc;
}

asio::awaitable<int> demo_phone(env::AsioEnv& env, Endpoint& home, Endpoint& phone) {
  auto peer = NodeAddr::from_ticket(home.addr().to_ticket());
  if (!peer) co_return error(peer.error());
  const auto t0 = env.now();
  auto conn = co_await phone.connect(*peer, kDemoAlpn);
  if (!conn) co_return error(conn.error());
  const auto t1 = env.now();
  fmt::print("  phone dialed home by node id {}: authenticated in {}, path direct {}\n",
             conn->remote_node_id().fmt_short(), format_duration(t1 - t0), conn->remote_addr());

  for (std::string_view text : {"hello from the phone", "play track 2 please"}) {
    if (auto sent = co_await conn->send(as_bytes(text)); !sent) co_return error(sent.error());
    auto reply = co_await conn->recv();
    if (!reply) co_return error(reply.error());
    fmt::print("  message  phone -> home: \"{}\"  reply: \"{}\"\n", text, to_string(*reply));
  }

  router::P2PClient<Connection> client(*conn);
  auto listing = co_await client.get("/tracks");
  if (!listing) co_return error(listing.error());
  auto body = co_await listing->body.read_text();
  if (!body) co_return error(body.error());
  fmt::print("  request  GET /tracks -> {} {}\n", static_cast<int>(listing->status), *body);

  const auto t2 = env.now();
  auto download = co_await client.get(fmt::format("/download/{}", kDemoBulkBytes));
  if (!download) co_return error(download.error());
  std::vector<std::byte> buffer(256 * 1024);
  std::uint64_t got = 0;
  while (true) {
    auto n = co_await download->body.read(buffer);
    if (!n) co_return error(n.error());
    if (*n == 0) break;
    got += *n;
  }
  const auto t3 = env.now();
  const double secs = std::chrono::duration<double>(t3 - t2).count();
  const auto stats = conn->stats();
  fmt::print("  stream   GET /download/{} -> {} MiB in {:.3f} s = {:.0f} MB/s\n", kDemoBulkBytes, got >> 20, secs,
             static_cast<double>(got) / secs / 1e6);
  fmt::print("  rtt {}, {} messages sent, {} received\n", stats.rtt ? format_duration(*stats.rtt) : "n/a",
             stats.messages_sent, stats.messages_received);
  if (got != kDemoBulkBytes) co_return error(P2PError::protocol("download came back short"));

  (void)co_await conn->close();
  co_return 0;
}

// demo_relay: the home server behind a firewall that lets no UDP in, reachable only through a relay
// (here on loopback, as `moosicbox-p2p-relay` would run on a public host): the phone dials the same
// kind of ticket, now naming the relay instead of addresses, and the relay forwards QUIC packets it
// cannot read.
asio::awaitable<int> demo_relay(asio::io_context& io) {
  env::AsioEnv env(io.get_executor());
  relay::RelayServerConfig rc;
  rc.bind_addrs = {SocketAddr::v4_loopback(0)};
  auto relay = relay::RelayServer::create(io.get_executor(), std::move(rc));
  if (!relay) co_return error(relay.error());
  auto make = [&](std::string_view name) -> P2PResult<Endpoint> {
    EndpointConfig cfg(test_secret_key(name));
    cfg.bind_addrs = {SocketAddr::v4_loopback(0)};
    cfg.relay_urls = {relay->url()};
    cfg.direct_paths = false;
    return Endpoint::bind(io.get_executor(), std::move(cfg));
  };
  auto home = make("demo-home");
  if (!home) co_return error(home.error());
  auto phone = make("demo-phone");
  if (!phone) co_return error(phone.error());
  auto listener = home->listen(kDemoAlpn);
  if (!listener) co_return error(listener.error());
  auto up = co_await home->wait_home_relay(std::chrono::seconds(10));
  if (!up) co_return error(up.error());
  fmt::print("part 2: the home server behind a firewall, reached through a relay on loopback\n");
  fmt::print("  relay {}\n", relay->url());
  fmt::print("  home's ticket names the relay, no address: {}\n", home->addr().to_ticket());
  spawn_logged(
      io.get_executor(),
      [](Listener l) -> asio::awaitable<void> {
        auto c = co_await l.accept();
        if (!c) co_return;
        while (true) {
          auto msg = co_await c->recv();
          if (!msg) co_return;
          if (auto sent = co_await c->send(*msg); !sent) co_return;
        }
      }(*listener),
      "demo relay echo");
  const auto t0 = env.now();
  auto conn = co_await phone->connect(home->addr(), kDemoAlpn);
  if (!conn) co_return error(conn.error());
  const auto t1 = env.now();
  const auto path = conn->path();
  fmt::print("  phone dialed home: authenticated in {}, path {}\n", format_duration(t1 - t0), path_text(path));
  Duration best = Duration::max();
  for (int i = 0; i < 5; ++i) {
    const auto s0 = env.now();
    if (auto sent = co_await conn->send(as_bytes("ping over the relay")); !sent) co_return error(sent.error());
    auto back = co_await conn->recv();
    if (!back) co_return error(back.error());
    best = std::min(best, env.now() - s0);
  }
  const auto rs = relay->stats();
  fmt::print(
      "  5 messages echoed through the relay, best round trip {}; the relay forwarded {} datagrams ({} bytes) "
      "it cannot decrypt\n",
      format_duration(best), rs.datagrams_forwarded, rs.bytes_forwarded);
  (void)co_await conn->close();
  listener->close();
  co_await phone->close();
  co_await home->close();
  co_await relay->shutdown(false);
  co_return path.kind == PathKind::relay ? 0 : error(P2PError::protocol("the connection did not use the relay"));
}

}  // namespace

int quic_demo() {
  return run([](asio::io_context& io, const Finish&) -> asio::awaitable<int> {
    env::AsioEnv env(io.get_executor());
    auto timer = env.make_timer();
    // The demo is bounded: it stops by itself even if something hangs.
    auto r = co_await (demo_steps(io) || timer.wait_until(env.now() + std::chrono::seconds(60)));
    if (r.index() == 1) co_return error(P2PError::timeout(std::chrono::seconds(60)));
    if (std::get<0>(r) != 0) co_return std::get<0>(r);
    auto relayed = co_await (demo_relay(io) || timer.wait_until(env.now() + std::chrono::seconds(30)));
    if (relayed.index() == 1) co_return error(P2PError::timeout(std::chrono::seconds(30)));
    co_return std::get<0>(relayed);
  });
}

}  // namespace moosicbox::p2p::cli
