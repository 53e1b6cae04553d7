// SPDX-License-Identifier: MIT OR Apache-2.0
// main.cpp: the web_server_api example. A music server node serves MusicService through a
// P2PRouter; a phone node connects to it by node id, lists the tracks, streams each one (whole, and
// in Range pieces, several at once), checks every byte against the server's checksums, and starts
// playback. The same service and client code run on the simulator (default) and on QUIC over
// loopback: only the backend types differ.
//
//   web_server_api [--backend sim|quic] [--seed N]
//
// Exit status: 0 when every check passed.
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/json.hpp>

#include "moosicbox/p2p/router/client.hpp"
#include "moosicbox/p2p/router/server.hpp"
#include "moosicbox/p2p/sim/sim.hpp"
#include "music_service.hpp"
#ifdef WEB_SERVER_API_HAS_QUIC
#include <boost/asio/io_context.hpp>

#include "moosicbox/p2p/endpoint/endpoint.hpp"
#include "moosicbox/p2p/env/asio_env.hpp"
#endif

namespace {

using namespace moosicbox::p2p::router;  // NOLINT(google-build-using-namespace): the example reads like a web API
namespace asio = moosicbox::p2p::asio;

struct Checks {
  int passed = 0;
  int failed = 0;
  void expect(bool ok, std::string_view what) {
    std::printf("  [%s] %.*s\n", ok ? "ok" : "FAILED", static_cast<int>(what.size()), what.data());
    ok ? ++passed : ++failed;
  }
};

struct Listed {
  std::string id;
  std::string title;
  std::uint64_t size = 0;
  std::string checksum;
};

// get_all performs a request and reads the whole body (at most 64 MiB).
template <class C>
asio::awaitable<moosicbox::p2p::P2PResult<std::pair<ClientResponse, moosicbox::p2p::Bytes>>> get_all(
    P2PClient<C>& client, Method method, std::string target, Headers headers = {}, Body body = {}) {
  auto resp = co_await client.request(method, target, std::move(headers), std::move(body));
  if (!resp) co_return moosicbox::p2p::fail(std::move(resp.error()));
  auto bytes = co_await resp->body.read_all(std::size_t{64} << 20);
  if (!bytes) co_return moosicbox::p2p::fail(std::move(bytes.error()));
  co_return std::pair<ClientResponse, moosicbox::p2p::Bytes>{std::move(*resp), std::move(*bytes)};
}

std::string hex64(std::uint64_t v) { return fmt::format("{:016x}", v); }

// run_client is the phone's side: generic over the connection type.
template <class C>
asio::awaitable<Checks> run_client(C connection) {
  Checks c;
  P2PClient client(std::move(connection));

  std::printf("GET /tracks\n");
  std::vector<Listed> tracks;
  if (auto r = co_await get_all(client, Method::GET, "/tracks"); r) {
    c.expect(r->first.status == StatusCode::ok, "the library lists with 200");
    boost::system::error_code ec;
    const auto list = boost::json::parse(moosicbox::p2p::to_string(r->second), ec);
    if (!ec && list.is_array()) {
      for (const auto& v : list.as_array()) {
        const auto& o = v.as_object();
        tracks.push_back(Listed{std::string(o.at("id").as_string()), std::string(o.at("title").as_string()),
                                static_cast<std::uint64_t>(o.at("size").template to_number<std::int64_t>()),
                                std::string(o.at("checksum").as_string())});
      }
    }
    c.expect(tracks.size() == 3, fmt::format("{} tracks listed", tracks.size()));
  } else {
    c.expect(false, fmt::format("GET /tracks: {}", r.error().message()));
    co_return c;
  }

  // Whole tracks, all requested at once: three streams in flight on one connection.
  std::printf("GET /tracks/:id/stream (all three at once)\n");
  if (tracks.size() != 3) co_return c;
  using namespace asio::experimental::awaitable_operators;
  auto all = co_await (get_all(client, Method::GET, fmt::format("/tracks/{}/stream", tracks[0].id)) &&
                       get_all(client, Method::GET, fmt::format("/tracks/{}/stream", tracks[1].id)) &&
                       get_all(client, Method::GET, fmt::format("/tracks/{}/stream", tracks[2].id)));
  // (No structured bindings here: g++ 12 miscompiles them inside coroutines.)
  const std::array<const moosicbox::p2p::P2PResult<std::pair<ClientResponse, moosicbox::p2p::Bytes>>*, 3> whole = {
      &std::get<0>(all), &std::get<1>(all), &std::get<2>(all)};
  for (std::size_t i = 0; i < tracks.size(); ++i) {
    const auto& t = tracks[i];
    const auto& r = *whole[i];
    if (!r) {
      c.expect(false, fmt::format("track {}: {}", t.id, r.error().message()));
      continue;
    }
    const auto sum = hex64(music::fnv1a64(music::kFnvOffset, r->second));
    c.expect(r->first.status == StatusCode::ok && r->second.size() == t.size && sum == t.checksum,
             fmt::format("track {} \"{}\": {} bytes, checksum {}", t.id, t.title, r->second.size(), sum));
  }

  // The second track again in Range pieces: a closed range, an open-ended one, a suffix.
  const auto& t = tracks[1];
  std::printf("GET /tracks/%s/stream with Range\n", t.id.c_str());
  moosicbox::p2p::Bytes joined;
  const std::uint64_t cut = 1'000'000;
  // Headers are built before each co_await: g++ 12 cannot keep an initializer_list's array alive
  // across a suspension ("array used as initializer").
  Headers closed;
  closed.add("range", fmt::format("bytes=0-{}", cut - 1));
  Headers open_ended;
  open_ended.add("range", fmt::format("bytes={}-", cut));
  Headers suffix;
  suffix.add("range", "bytes=-44");
  Headers past_end;
  past_end.add("range", fmt::format("bytes={}-", t.size));
  Headers json;
  json.add("content-type", "application/json");
  auto first = co_await get_all(client, Method::GET, fmt::format("/tracks/{}/stream", t.id), closed);
  auto rest = co_await get_all(client, Method::GET, fmt::format("/tracks/{}/stream", t.id), open_ended);
  if (first && rest) {
    c.expect(first->first.status == StatusCode::partial_content &&
                 first->first.headers.get("content-range") == fmt::format("bytes 0-{}/{}", cut - 1, t.size),
             "bytes=0-999999 answers 206 with its Content-Range");
    c.expect(rest->first.status == StatusCode::partial_content, "an open-ended range answers 206");
    joined = std::move(first->second);
    joined.insert(joined.end(), rest->second.begin(), rest->second.end());
    c.expect(hex64(music::fnv1a64(music::kFnvOffset, joined)) == t.checksum, "the two ranges join into the track");
  } else {
    c.expect(false, "range requests failed");
  }
  if (auto tail = co_await get_all(client, Method::GET, fmt::format("/tracks/{}/stream", t.id), suffix);
      tail && joined.size() == t.size) {
    c.expect(tail->second == moosicbox::p2p::Bytes(joined.end() - 44, joined.end()), "bytes=-44 is the last 44 bytes");
  }
  if (auto past = co_await get_all(client, Method::GET, fmt::format("/tracks/{}/stream", t.id), past_end); past) {
    c.expect(past->first.status == StatusCode::range_not_satisfiable &&
                 past->first.headers.get("content-range") == fmt::format("bytes */{}", t.size),
             "a range past the end answers 416");
  }
  if (auto head = co_await get_all(client, Method::HEAD, fmt::format("/tracks/{}/stream", t.id)); head) {
    c.expect(head->first.headers.get("content-length") == std::to_string(t.size) && head->second.empty(),
             "HEAD gives the length and no body");
  }

  std::printf("POST /play\n");
  if (auto play = co_await get_all(client, Method::POST, "/play", json, Body(fmt::format(R"({{"track":"{}"}})", t.id)));
      play) {
    c.expect(play->first.status == StatusCode::ok,
             fmt::format("play track {}: {}", t.id, moosicbox::p2p::to_string(play->second)));
  }
  if (auto now = co_await get_all(client, Method::GET, "/now-playing"); now) {
    c.expect(moosicbox::p2p::to_string(now->second) == fmt::format(R"({{"playing":"{}"}})", t.id),
             "now playing reports it");
  }
  if (auto bad = co_await get_all(client, Method::POST, "/play", {}, Body("not json")); bad) {
    c.expect(bad->first.status == StatusCode::bad_request, "a malformed play request answers 400");
  }
  if (auto missing = co_await get_all(client, Method::POST, "/play", {}, Body(R"({"track":"99"})")); missing) {
    c.expect(missing->first.status == StatusCode::not_found, "an unknown track answers 404");
  }
  if (auto wrong = co_await get_all(client, Method::DELETE, "/tracks"); wrong) {
    c.expect(wrong->first.status == StatusCode::method_not_allowed, "DELETE /tracks answers 405");
  }
  co_return c;
}

moosicbox::p2p::P2PResult<P2PRouter> build_router(const std::filesystem::path& dir) {
  auto svc = music::MusicService::create(dir);
  if (!svc) return moosicbox::p2p::fail(std::move(svc.error()));
  return P2PRouter{}.with_service(std::move(*svc));
}

int report(const Checks& c) {
  std::printf("%d checks passed, %d failed\n", c.passed, c.failed);
  return c.failed == 0 && c.passed > 0 ? 0 : 1;
}

int run_sim(std::uint64_t seed, const std::filesystem::path& dir) {
  std::printf("backend: simulator (seed %llu)\n", static_cast<unsigned long long>(seed));
  moosicbox::p2p::NetworkConfig config;
  config.latency = std::chrono::milliseconds(20);
  config.packet_loss = 0.01;
  moosicbox::p2p::sim::World world(seed, config);
  auto server = world.add_node("music-server");
  auto phone = world.add_node("phone");
  if (!server || !phone || !world.link(server->local_node_id(), phone->local_node_id())) return 1;
  auto router = build_router(dir);
  if (!router) {
    std::fprintf(stderr, "%s\n", router.error().message().c_str());
    return 1;
  }
  Server<moosicbox::p2p::env::SimEnv> http(server->env(), std::move(*router));
  bool served = false;
  asio::co_spawn(
      world.runtime().executor(),
      [&]() -> asio::awaitable<void> {
        auto listener = co_await server->listen();
        if (listener) (void)co_await http.serve(*listener);
        served = true;
      },
      [](std::exception_ptr) {});
  auto checks = world.run([&]() -> asio::awaitable<Checks> {
    auto conn = co_await phone->connect(server->local_node_id());
    if (!conn) {
      Checks c;
      c.expect(false, fmt::format("connect: {}", conn.error().message()));
      co_return c;
    }
    std::printf("phone %s connected to music-server %s\n", phone->local_node_id().fmt_short().c_str(),
                server->local_node_id().fmt_short().c_str());
    co_return co_await run_client(std::move(*conn));
  }());
  http.shutdown();
  world.run_while([&] { return !served; }, world.now() + std::chrono::minutes(1));
  if (!checks) {
    std::printf("the client did not finish\n");
    return 1;
  }
  std::printf("virtual time used: %s\n", moosicbox::p2p::format_duration(world.now().time_since_epoch()).c_str());
  return report(*checks);
}

#ifdef WEB_SERVER_API_HAS_QUIC
int run_quic(const std::filesystem::path& dir) {
  std::printf("backend: QUIC over loopback\n");
  asio::io_context io(1);
  auto endpoint_config = [](std::string_view name) {
    moosicbox::p2p::EndpointConfig cfg(moosicbox::p2p::test_secret_key(name));
    cfg.bind_addrs = {moosicbox::p2p::SocketAddr::v4_loopback(0)};
    return cfg;
  };
  auto server_ep = moosicbox::p2p::Endpoint::bind(io.get_executor(), endpoint_config("music-server"));
  auto phone_ep = moosicbox::p2p::Endpoint::bind(io.get_executor(), endpoint_config("phone"));
  if (!server_ep || !phone_ep) return 1;
  auto listener = server_ep->listen(kAlpn);
  auto router = build_router(dir);
  if (!listener || !router) return 1;
  Server<moosicbox::p2p::env::AsioEnv> http(moosicbox::p2p::env::AsioEnv(io.get_executor()), std::move(*router));
  std::optional<Checks> checks;
  bool finished = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        // Serve in the background; the client runs here; then shut down in order: the server
        // drains, then both endpoints close.
        bool served = false;
        asio::co_spawn(
            io,
            [&]() -> asio::awaitable<void> {
              (void)co_await http.serve(*listener);
              served = true;
            },
            [](std::exception_ptr) {});
        auto conn = co_await phone_ep->connect(server_ep->addr(), kAlpn);
        if (!conn) {
          Checks c;
          c.expect(false, fmt::format("connect: {}", conn.error().message()));
          checks = c;
        } else {
          std::printf("phone %s connected to music-server %s at %s\n", phone_ep->node_id().fmt_short().c_str(),
                      server_ep->node_id().fmt_short().c_str(), conn->remote_addr().to_string().c_str());
          checks = co_await run_client(std::move(*conn));
        }
        http.shutdown();
        moosicbox::p2p::env::AsioEnv env(io.get_executor());
        auto timer = env.make_timer();
        while (!served) (void)co_await timer.wait_until(env.now() + std::chrono::milliseconds(10));
        co_await phone_ep->close();
        co_await server_ep->close();
        finished = true;
      },
      [](std::exception_ptr) {});
  // Bounded: the whole exchange takes well under a second on loopback.
  moosicbox::p2p::env::AsioEnv clock(io.get_executor());
  const auto deadline = clock.now() + std::chrono::seconds(120);
  while (!finished && clock.now() < deadline) io.run_one_for(std::chrono::milliseconds(100));
  if (!checks) {
    std::printf("the client did not finish\n");
    return 1;
  }
  return report(*checks);
}
#endif

}  // namespace

int main(int argc, char** argv) {
  std::string backend = "sim";
  std::uint64_t seed = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--backend" && i + 1 < argc) {
      backend = argv[++i];
    } else if (arg == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: web_server_api [--backend sim|quic] [--seed N]\n");
      return 2;
    }
  }
  const auto dir = std::filesystem::temp_directory_path() / fmt::format("web_server_api-{}", seed);
  int rc = 2;
  if (backend == "sim") {
    rc = run_sim(seed, dir);
#ifdef WEB_SERVER_API_HAS_QUIC
  } else if (backend == "quic") {
    rc = run_quic(dir);
#endif
  } else {
    std::fprintf(stderr, "unknown backend '%s'\n", backend.c_str());
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return rc;
}
