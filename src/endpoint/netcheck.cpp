// SPDX-License-Identifier: MIT OR Apache-2.0
// netcheck.cpp: netcheck on real sockets and on a simulated host. One run, written once over a
// backend (Real: asio, env::UdpSocket; Sim: a simnet host): probe every relay's /generate_204 at
// once, resolve the relays that announced STUN ports, then one task per UDP socket that sends
// Binding requests to every STUN destination (resent at 0, 100, 300 ms), reads the answers, and
// sends one hairpin probe to its own reflexive address; the report compares what the destinations
// saw. Each phase waits at most config.timeout, in the backend's time (virtual under simulation).
// Layer: endpoint. Everything runs on one executor: no locks.
#include "moosicbox/p2p/endpoint/netcheck.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <span>

#include <fmt/format.h>

#include "core/log.hpp"
#include "endpoint/notifier.hpp"
#include "moosicbox/p2p/core/spawn.hpp"
#include "moosicbox/p2p/env/asio_env.hpp"
#include "moosicbox/p2p/env/sim_env.hpp"
#include "moosicbox/p2p/env/udp_socket.hpp"
#include "moosicbox/p2p/simnet/network.hpp"
#include "relay/client.hpp"
#include "relay/stun.hpp"
#include "relay/url.hpp"

namespace moosicbox::p2p {

using namespace boost::asio::experimental::awaitable_operators;
using env::SocketAddr;

namespace {

// When unanswered STUN requests are sent again, after the first send.
constexpr std::array<Duration, 3> kStunSchedule = {Duration::zero(), std::chrono::milliseconds(100),
                                                   std::chrono::milliseconds(300)};
// How long a hairpin probe may take to come back (bounded by the phase's deadline too).
constexpr Duration kHairpinWait = std::chrono::milliseconds(500);
constexpr std::size_t kBatch = 8;
constexpr std::size_t kBufferSize = 1500;
// A hairpin probe: not STUN, not QUIC (first byte), and a random token.
constexpr std::string_view kHairpinMagic = "moosicbox-p2p netcheck hairpin ";

// RealBackend: asio sockets and time.
struct RealBackend {
  using Env = env::AsioEnv;
  using Socket = env::UdpSocket;
  asio::any_io_executor ex;
  Env environment;
  std::optional<std::string> ca;

  Env& env() { return environment; }
  asio::any_io_executor executor() const { return ex; }
  std::vector<SocketAddr> default_binds() const { return {SocketAddr::v4_any(0), SocketAddr::v6_any(0)}; }
  P2PResult<Socket> bind(const SocketAddr& a) const {
    env::UdpSocketOptions o;
    o.v6_only = true;
    o.gso = false;
    o.gro = false;
    return Socket::bind(ex, a, o);
  }
  asio::awaitable<P2PResult<relay::RelayProbe>> probe(std::string url, Duration timeout) const {
    co_return co_await relay::probe_relay(ex, std::move(url), timeout, ca);
  }
  asio::awaitable<std::vector<SocketAddr>> resolve(const relay::RelayUrl& u) const {
    if (auto ip = SocketAddr::parse_ip(u.host, 0); ip) co_return std::vector<SocketAddr>{*ip};
    asio::ip::tcp::resolver resolver(ex);
    auto [ec, results] = co_await resolver.async_resolve(u.host, "0", asio::as_tuple(asio::use_awaitable));
    std::vector<SocketAddr> out;
    if (ec) co_return out;
    for (const auto& r : results) {
      const auto ip = r.endpoint().address();
      SocketAddr a =
          ip.is_v4() ? SocketAddr::v4(ip.to_v4().to_bytes(), 0) : SocketAddr::v6(ip.to_v6().to_bytes(), 0).canonical();
      if (std::ranges::find(out, a) == out.end()) out.push_back(a);
    }
    co_return out;
  }
};

// SimBackend: a simulated host, in virtual time.
struct SimBackend {
  using Env = env::SimEnv;
  using Socket = simnet::UdpSocket;
  simnet::Host* host;

  Env& env() { return host->env(); }
  asio::any_io_executor executor() const { return host->env().executor(); }
  std::vector<SocketAddr> default_binds() const {
    std::vector<SocketAddr> out;
    for (const auto& a : host->addresses()) {
      const auto any = a.is_v4() ? SocketAddr::v4_any(0) : SocketAddr::v6_any(0);
      if (std::ranges::find(out, any) == out.end()) out.push_back(any);
    }
    return out;
  }
  P2PResult<Socket> bind(const SocketAddr& a) const { return Socket::bind(*host, a); }
  asio::awaitable<P2PResult<relay::RelayProbe>> probe(std::string url, Duration timeout) const {
    co_return co_await relay::probe_relay(*host, std::move(url), timeout);
  }
  asio::awaitable<std::vector<SocketAddr>> resolve(const relay::RelayUrl& u) const {
    if (auto ip = SocketAddr::parse_ip(u.host, 0); ip) co_return std::vector<SocketAddr>{*ip};
    if (auto named = host->network().resolve(u.host); named) co_return std::vector<SocketAddr>{named->with_port(0)};
    co_return std::vector<SocketAddr>{};
  }
};

// Gather counts finished tasks; the waiter wakes on every completion.
struct Gather {
  explicit Gather(asio::any_io_executor ex) : changed(std::move(ex)) {}
  detail::Notifier changed;
  std::size_t done = 0;
  void finished() {
    ++done;
    changed.notify_all();
  }
};

// wait_gather waits until `n` tasks finished or `deadline` passed.
template <class Env>
asio::awaitable<void> wait_gather(Env& env, Gather& g, std::size_t n, TimePoint deadline) {
  auto timer = env.make_timer();
  while (g.done < n && env.now() < deadline) {
    auto r = co_await (g.changed.wait() || timer.wait_until(deadline));
    if (r.index() == 1) break;
  }
}

// Dest is one STUN destination and what it saw.
struct Dest {
  SocketAddr addr;
  std::size_t relay = 0;
  stun::TxId tx{};
  std::optional<SocketAddr> mapped;
  std::optional<SocketAddr> local_ip;  // the local IP the answer arrived at (packet info)
};

// SocketResult is what one socket learned.
struct SocketResult {
  SocketAddr local;
  std::vector<Dest> dests;
  std::optional<bool> hairpin;
};

template <class Backend>
asio::awaitable<void> stun_task(Backend b, std::shared_ptr<typename Backend::Socket> sock,
                                std::shared_ptr<SocketResult> res, std::shared_ptr<Gather> g, TimePoint deadline) {
  auto& env = b.env();
  auto timer = env.make_timer();
  const TimePoint start = env.now();
  std::size_t round = 0;
  std::array<std::byte, 16> token{};
  env.fill_random(token);
  Bytes hairpin_probe(reinterpret_cast<const std::byte*>(kHairpinMagic.data()),
                      reinterpret_cast<const std::byte*>(kHairpinMagic.data()) + kHairpinMagic.size());
  hairpin_probe.insert(hairpin_probe.end(), token.begin(), token.end());
  std::optional<TimePoint> hairpin_sent;
  std::vector<std::byte> storage(kBatch * kBufferSize);
  std::array<std::span<std::byte>, kBatch> buffers;
  for (std::size_t i = 0; i < kBatch; ++i) {
    buffers[i] = std::span(storage).subspan(i * kBufferSize, kBufferSize);
  }
  std::array<env::RecvMeta, kBatch> metas{};
  const auto send_one = [&](const SocketAddr& to, ByteView bytes) {
    env::Transmit t;
    t.destination = to;
    t.contents = bytes;
    auto r = sock->try_send_batch(std::span<const env::Transmit>(&t, 1));
    (void)r;
  };
  const auto all_answered = [&] {
    return std::ranges::all_of(res->dests, [](const Dest& d) { return d.mapped.has_value(); });
  };
  for (;;) {
    const TimePoint now = env.now();
    if (now >= deadline) break;
    while (round < kStunSchedule.size() && now >= start + kStunSchedule[round]) {
      for (const auto& d : res->dests) {
        if (d.mapped) continue;
        const Bytes req = stun::binding_request(d.tx);
        send_one(d.addr, req);
      }
      ++round;
    }
    // The hairpin probe, once behind a NAT with a reflexive address.
    if (!hairpin_sent) {
      for (const auto& d : res->dests) {
        if (!d.mapped || !d.local_ip) continue;
        if (*d.mapped == d.local_ip->with_port(res->local.port())) break;  // no NAT: nothing to test
        send_one(*d.mapped, hairpin_probe);
        hairpin_sent = now;
        res->hairpin = false;
        break;
      }
    }
    const bool hairpin_pending = hairpin_sent && res->hairpin == false && now < *hairpin_sent + kHairpinWait;
    // Done when every destination answered and the hairpin probe (sent above as soon as an answer
    // showed a NAT) came back or had its time.
    if (all_answered() && !hairpin_pending) break;
    TimePoint wake = deadline;
    if (round < kStunSchedule.size()) wake = std::min(wake, start + kStunSchedule[round]);
    if (hairpin_pending) wake = std::min(wake, *hairpin_sent + kHairpinWait);
    if (wake > now) {
      auto r = co_await (sock->wait_readable() || timer.wait_until(wake));
      if (r.index() == 0 && !std::get<0>(r)) {
        if (std::get<0>(r).error().code() != P2PErrc::cancelled) break;
      }
    }
    for (;;) {
      auto n = sock->try_receive_batch(buffers, metas);
      if (!n || *n == 0) break;
      for (std::size_t i = 0; i < *n; ++i) {
        for (const ByteView d : env::Segments(buffers[i], metas[i])) {
          if (std::ranges::equal(d, hairpin_probe)) {
            if (res->hairpin) res->hairpin = true;
            continue;
          }
          if (!stun::looks_like_stun(d)) continue;
          auto answer = stun::parse_binding_response(d);
          if (!answer) continue;
          for (auto& dest : res->dests) {
            if (dest.tx != answer->tx || dest.mapped) continue;
            dest.mapped = answer->mapped.canonical();
            dest.local_ip =
                metas[i].destination ? metas[i].destination->canonical().with_port(0) : res->local.with_port(0);
          }
        }
      }
    }
  }
  g->finished();
}

// is_local tells a reflexive address that is the socket's own (no NAT).
bool is_local(const Dest& d, std::uint16_t local_port) {
  return d.mapped && d.local_ip && *d.mapped == d.local_ip->with_port(local_port);
}

template <class Backend>
asio::awaitable<P2PResult<NetReport>> run(Backend b, NetcheckConfig config) {
  if (config.relay_urls.empty()) co_return fail(P2PError::invalid_configuration("netcheck: no relay URL"));
  if (config.timeout <= Duration::zero()) {
    co_return fail(P2PError::invalid_configuration("netcheck: the timeout must be positive"));
  }
  std::vector<relay::RelayUrl> urls;
  for (const auto& u : config.relay_urls) {
    auto parsed = relay::parse_relay_url(u);
    if (!parsed) co_return fail(parsed.error());
    urls.push_back(*parsed);
  }
  auto& env = b.env();
  NetReport report;
  for (const auto& u : config.relay_urls) report.relays.push_back(RelayReport{.url = u});

  // Phase 1: every relay's /generate_204 at once.
  {
    struct Probes {
      std::vector<std::optional<P2PResult<relay::RelayProbe>>> results;
    };
    auto probes = std::make_shared<Probes>();
    probes->results.resize(urls.size());
    auto g = std::make_shared<Gather>(b.executor());
    for (std::size_t i = 0; i < urls.size(); ++i) {
      spawn_logged(
          b.executor(),
          [](Backend be, std::string url, Duration timeout, std::shared_ptr<Probes> p, std::shared_ptr<Gather> gg,
             std::size_t idx) -> asio::awaitable<void> {
            auto r = co_await be.probe(std::move(url), timeout);
            p->results[idx] = std::move(r);
            gg->finished();
          }(b, config.relay_urls[i], config.timeout, probes, g, i),
          "netcheck probe");
    }
    co_await wait_gather(env, *g, urls.size(), env.now() + config.timeout);
    for (std::size_t i = 0; i < urls.size(); ++i) {
      auto& rr = report.relays[i];
      const auto& r = probes->results[i];
      if (!r) {
        rr.error = fmt::format("no answer in {}", format_duration(config.timeout));
      } else if (!*r) {
        rr.error = r->error().message();
      } else {
        rr.latency = (*r)->latency;
        rr.http_status = (*r)->status;
        rr.genuine = (*r)->challenge_echoed;
        rr.stun_ports = (*r)->stun_ports;
      }
    }
  }
  bool any_genuine = false;
  bool any_http = false;
  const RelayReport* best = nullptr;
  for (const auto& rr : report.relays) {
    any_http = any_http || rr.http_status != 0;
    any_genuine = any_genuine || rr.genuine;
    if (rr.genuine && rr.latency && (best == nullptr || *rr.latency < *best->latency)) best = &rr;
  }
  if (best != nullptr) report.preferred_relay = best->url;
  if (any_http) report.captive_portal = !any_genuine;

  // Phase 2: STUN from one socket per bind address to every announced port.
  std::vector<Dest> dests;
  for (std::size_t i = 0; i < urls.size(); ++i) {
    if (report.relays[i].stun_ports.empty() || !report.relays[i].genuine) continue;
    auto ips = co_await b.resolve(urls[i]);
    for (const auto& ip : ips) {
      for (auto port : report.relays[i].stun_ports) {
        Dest d;
        d.addr = ip.with_port(port);
        d.relay = i;
        env.fill_random(std::as_writable_bytes(std::span(d.tx)));
        dests.push_back(d);
      }
    }
  }
  const auto binds = config.bind_addrs.empty() ? b.default_binds() : config.bind_addrs;
  std::vector<std::shared_ptr<typename Backend::Socket>> sockets;
  std::vector<std::shared_ptr<SocketResult>> results;
  std::optional<P2PError> bind_error;
  for (const auto& a : binds) {
    auto s = b.bind(a);
    if (!s) {
      logger().debug("netcheck: cannot bind {}: {}", a, s.error().message());
      bind_error = s.error();
      continue;
    }
    auto res = std::make_shared<SocketResult>();
    res->local = s->local_addr();
    for (const auto& d : dests) {
      if (d.addr.is_v4() == res->local.is_v4()) res->dests.push_back(d);
    }
    sockets.push_back(std::make_shared<typename Backend::Socket>(std::move(*s)));
    results.push_back(std::move(res));
  }
  if (sockets.empty()) {
    co_return fail(P2PError::network(
        fmt::format("netcheck: no UDP socket could be bound: {}", bind_error ? bind_error->message() : "no address")));
  }
  {
    auto g = std::make_shared<Gather>(b.executor());
    const TimePoint deadline = env.now() + config.timeout;
    for (std::size_t i = 0; i < sockets.size(); ++i) {
      spawn_logged(b.executor(), stun_task(b, sockets[i], results[i], g, deadline), "netcheck stun");
    }
    co_await wait_gather(env, *g, sockets.size(), deadline + std::chrono::milliseconds(1));
    // A task still running (it cannot be: each ends at its deadline) would keep its socket.
    for (auto& s : sockets) s->cancel();
  }

  // The report.
  const SocketResult* primary = nullptr;
  for (const auto& res : results) {
    for (const auto& d : res->dests) {
      if (!d.mapped) continue;
      report.udp = true;
      report.relays[d.relay].stun_answered = true;
      if (res->local.is_v4() && !report.ipv4) report.ipv4 = d.mapped;
      if (res->local.is_v6() && !report.ipv6) report.ipv6 = d.mapped;
    }
  }
  for (const bool v4 : {true, false}) {
    if (primary != nullptr) break;
    for (const auto& res : results) {
      if (res->local.is_v4() != v4) continue;
      if (std::ranges::any_of(res->dests, [](const Dest& d) { return d.mapped.has_value(); })) {
        primary = res.get();
        break;
      }
    }
  }
  if (primary != nullptr) {
    std::vector<const Dest*> answered;
    for (const auto& d : primary->dests) {
      if (d.mapped) answered.push_back(&d);
    }
    if (answered.size() >= 2) {
      report.mapping_varies_by_destination =
          std::ranges::any_of(answered, [&](const Dest* d) { return *d->mapped != *answered.front()->mapped; });
    }
    const bool no_nat =
        std::ranges::all_of(answered, [&](const Dest* d) { return is_local(*d, primary->local.port()); });
    if (no_nat) {
      report.nat_kind = "none";
    } else if (report.mapping_varies_by_destination) {
      report.nat_kind = *report.mapping_varies_by_destination ? "hard" : "easy";
    }
    report.hairpinning = primary->hairpin;
  }
  co_return report;
}

}  // namespace

asio::awaitable<P2PResult<NetReport>> netcheck(asio::any_io_executor ex, NetcheckConfig config) {
  RealBackend b{ex, env::AsioEnv(ex), config.relay_ca_file};
  co_return co_await run(std::move(b), std::move(config));
}

asio::awaitable<P2PResult<NetReport>> netcheck(simnet::Host& host, NetcheckConfig config) {
  SimBackend b{&host};
  co_return co_await run(b, std::move(config));
}

}  // namespace moosicbox::p2p
