// SPDX-License-Identifier: MIT OR Apache-2.0
// net_commands.cpp: listen, send and the loopback demo: the real backend used from the command line.
// One single-threaded io_context per command. Errors are one line on stderr and exit code 1.
#include "net_commands.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <iterator>

#include "moosicbox/p2p/core/spawn.hpp"
#include "moosicbox/p2p/endpoint/endpoint.hpp"
#include "moosicbox/p2p/endpoint/quic_p2p.hpp"
#include "moosicbox/p2p/env/asio_env.hpp"
#include "moosicbox/p2p/router/client.hpp"
#include "moosicbox/p2p/router/router.hpp"
#include "moosicbox/p2p/router/server.hpp"

namespace moosicbox::p2p::cli {

namespace {

using namespace std::chrono_literals;
using namespace boost::asio::experimental::awaitable_operators;

int error(const P2PError& e) {
  fmt::print(stderr, "error: {}\n", e.message());
  return 1;
}

P2PResult<EndpointConfig> endpoint_config(const NodeOptions& node) {
  std::optional<SecretKey> key;
  if (node.key) {
    auto loaded = SecretKey::load(*node.key);
    if (!loaded) return fail(loaded.error());
    key = std::move(*loaded);
  } else {
    env::OsRandom rng;
    key = SecretKey::generate(rng);
  }
  EndpointConfig cfg(std::move(*key));
  if (!node.bind.empty()) {
    cfg.bind_addrs.clear();
    for (const auto& text : node.bind) {
      auto addr = SocketAddr::parse(text);
      if (!addr) return fail(addr.error());
      cfg.bind_addrs.push_back(*addr);
    }
  }
  cfg.alpns = {node.alpn};
  return cfg;
}

// printable renders a message for a terminal: text as is, anything else as a size and a hex prefix.
std::string printable(ByteView bytes) {
  bool text = true;
  for (const auto b : bytes) {
    const auto c = static_cast<unsigned char>(b);
    if (c != '\n' && c != '\t' && (c < 0x20 || c == 0x7f)) {
      text = false;
      break;
    }
  }
  if (text) return to_string(bytes);
  std::string hex;
  for (std::size_t i = 0; i < bytes.size() && i < 16; ++i)
    hex += fmt::format("{:02x}", static_cast<unsigned>(bytes[i]));
  return fmt::format("<{} bytes: {}{}>", bytes.size(), hex, bytes.size() > 16 ? "..." : "");
}

// Finish ends a command early with an exit code (from any coroutine of the command).
using Finish = std::function<void(int)>;

// run drives `task` on a fresh io_context and returns its exit code; SIGINT and SIGTERM end it.
int run(const std::function<asio::awaitable<int>(asio::io_context&, Finish)>& task) {
  asio::io_context io(1);
  std::optional<int> code;
  Finish finish = [&](int rc) {
    code = code.value_or(rc);
    io.stop();
  };
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) {
      fmt::print(stderr, "interrupted\n");
      code = code.value_or(130);
      io.stop();
    }
  });
  asio::co_spawn(io, task(io, finish), [&](std::exception_ptr e, int rc) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        fmt::print(stderr, "error: {}\n", ex.what());
      }
      rc = 1;
    }
    code = rc;
    signals.cancel();
  });
  io.run();
  return code.value_or(1);
}

asio::awaitable<void> serve_messages(Connection conn, bool echo, std::uint64_t* received,
                                     std::optional<std::uint64_t> count, Finish finish) {
  const auto peer = conn.remote_node_id().fmt_short();
  fmt::print("{} connected from {}\n", peer, conn.remote_addr());
  std::fflush(stdout);
  while (true) {
    auto msg = co_await conn.recv();
    if (!msg) {
      fmt::print("{} disconnected: {}\n", peer, msg.error().message());
      std::fflush(stdout);
      co_return;
    }
    fmt::print("{}: {}\n", peer, printable(*msg));
    std::fflush(stdout);
    if (echo) {
      if (auto sent = co_await conn.send(*msg); !sent) {
        fmt::print("{}: echo failed: {}\n", peer, sent.error().message());
      }
    }
    ++*received;
    if (count && *received >= *count) {
      (void)co_await conn.close();
      finish(0);
      co_return;
    }
  }
}

}  // namespace

int listen(const ListenOptions& options) {
  auto cfg = endpoint_config(options.node);
  if (!cfg) return error(cfg.error());
  return run([&](asio::io_context& io, Finish finish) -> asio::awaitable<int> {
    auto ep = Endpoint::bind(io.get_executor(), std::move(*cfg));
    if (!ep) co_return error(ep.error());
    auto listener = ep->listen(options.node.alpn);
    if (!listener) co_return error(listener.error());
    fmt::print("node id: {}\n", ep->node_id());
    for (const auto& a : ep->local_addrs()) fmt::print("bound:   {}\n", a);
    fmt::print("ticket:  {}\n", ep->addr().to_ticket());
    std::fflush(stdout);
    std::uint64_t received = 0;
    while (true) {
      auto conn = co_await listener->accept();
      if (!conn) co_return error(conn.error());
      spawn_logged(io.get_executor(), serve_messages(std::move(*conn), options.echo, &received, options.count, finish),
                   "cli listen connection");
    }
  });
}

int send(const SendOptions& options) {
  auto peer = NodeAddr::parse(options.ticket);
  if (!peer) return error(peer.error());
  Bytes message;
  if (options.file) {
    std::ifstream in(*options.file, std::ios::binary);
    if (!in) return error(P2PError::invalid_configuration(fmt::format("cannot read {}", options.file->string())));
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    message = to_bytes(content);
  } else if (options.text) {
    message = to_bytes(*options.text);
  } else {
    return error(P2PError::invalid_configuration("nothing to send: give a text or --file"));
  }
  auto cfg = endpoint_config(options.node);
  if (!cfg) return error(cfg.error());
  if (message.size() > cfg->limits.max_message_size) {
    return error(P2PError::message_too_large(message.size(), cfg->limits.max_message_size));
  }
  return run([&](asio::io_context& io, const Finish&) -> asio::awaitable<int> {
    env::AsioEnv env(io.get_executor());
    auto ep = Endpoint::bind(io.get_executor(), std::move(*cfg));
    if (!ep) co_return error(ep.error());
    auto work = [&]() -> asio::awaitable<int> {
      const auto start = env.now();
      auto conn = co_await ep->connect(*peer, options.node.alpn);
      if (!conn) co_return error(conn.error());
      const auto connected = env.now();
      if (auto ok = co_await conn->send(message); !ok) co_return error(ok.error());
      if (options.wait_reply) {
        auto reply = co_await conn->recv();
        if (!reply) co_return error(reply.error());
        fmt::print("reply: {}\n", printable(*reply));
      }
      const auto stats = conn->stats();
      fmt::print("sent {} bytes to {} at {} (connect {}, rtt {})\n", message.size(), conn->remote_node_id().fmt_short(),
                 conn->remote_addr(), format_duration(connected - start),
                 stats.rtt ? format_duration(*stats.rtt) : std::string("n/a"));
      (void)co_await conn->close();
      co_return 0;
    };
    auto timer = env.make_timer();
    auto r = co_await (work() || timer.wait_until(env.now() + std::chrono::seconds(options.timeout_secs)));
    co_await ep->close();
    if (r.index() == 1) co_return error(P2PError::timeout(std::chrono::seconds(options.timeout_secs)));
    co_return std::get<0>(r);
  });
}

}  // namespace moosicbox::p2p::cli

namespace moosicbox::p2p::cli {

namespace {

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

}  // namespace

int quic_demo() {
  return run([](asio::io_context& io, const Finish&) -> asio::awaitable<int> {
    env::AsioEnv env(io.get_executor());
    auto timer = env.make_timer();
    // The demo is bounded: it stops by itself even if something hangs.
    auto r = co_await (demo_steps(io) || timer.wait_until(env.now() + std::chrono::seconds(60)));
    if (r.index() == 1) co_return error(P2PError::timeout(std::chrono::seconds(60)));
    co_return std::get<0>(r);
  });
}

}  // namespace moosicbox::p2p::cli
