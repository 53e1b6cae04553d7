// SPDX-License-Identifier: MIT OR Apache-2.0
// client_sim.cpp: relay::Client and probe_latency on a simulated host: the loops of client_impl.hpp
// over simnet streams, in virtual time, with the host's seeded random stream. Plain ws:// only (a
// simulated relay speaks no TLS).
// Layer: relay (internal). Everything runs on the simulation's executor (one thread): no locks.
#include "moosicbox/p2p/simnet/beast.hpp"
#include "relay/client_impl.hpp"

namespace moosicbox::p2p::relay {

namespace detail {

P2PResult<SocketAddr> sim_address(simnet::Host& host, const RelayUrl& url) {
  if (auto ip = SocketAddr::parse_ip(url.host, url.port); ip) return *ip;
  if (auto named = host.network().resolve(url.host); named) return named->with_port(url.port);
  return fail(
      P2PError::connection_failed(fmt::format("relay: cannot resolve '{}' on the simulated network", url.host)));
}

P2PResult<std::shared_ptr<Client>> create_sim_client(asio::any_io_executor ex, ClientConfig config, RelayUrl url) {
  simnet::Host& host = *config.sim_host;
  if (url.tls) {
    return fail(P2PError::invalid_configuration(
        fmt::format("relay client: {}: TLS relays are not simulated (use http://)", config.url)));
  }
  if (ex != host.env().executor()) {
    return fail(P2PError::invalid_configuration(
        fmt::format("relay client: the executor is not the runtime executor of simulated host '{}'", host.name())));
  }
  SimTransport transport(host);
  return std::shared_ptr<Client>(
      std::make_shared<ClientImpl<SimTransport>>(ex, std::move(config), std::move(url), transport));
}

}  // namespace detail

asio::awaitable<P2PResult<Duration>> probe_latency(simnet::Host& host, std::string url, Duration timeout) {
  auto p = co_await probe_relay(host, std::move(url), timeout);
  co_return detail::check_probe(p);
}

asio::awaitable<P2PResult<RelayProbe>> probe_relay(simnet::Host& host, std::string url, Duration timeout) {
  auto u = parse_relay_url(url);
  if (!u) co_return fail(u.error());
  if (u->tls) {
    co_return fail(P2PError::invalid_configuration(
        fmt::format("relay probe: {}: TLS relays are not simulated (use http://)", url)));
  }
  auto addr = detail::sim_address(host, *u);
  if (!addr) co_return fail(P2PError::network(fmt::format("relay probe: {}", addr.error().context())));
  auto stream = co_await simnet::TcpStream::connect(host, *addr, timeout);
  if (!stream) {
    if (stream.error().code() == P2PErrc::timeout) co_return fail(P2PError::timeout(timeout));
    co_return fail(
        P2PError::network(fmt::format("relay probe: cannot connect to {}: {}", url, stream.error().message())));
  }
  auto& env = host.env();
  detail::SimDeadline guard(env.runtime());
  guard.arm(env.now() + timeout, [s = &*stream] { s->close(); });
  auto r = co_await detail::probe_request(*stream, env, *u, timeout, &guard);
  co_return r;
}

}  // namespace moosicbox::p2p::relay
