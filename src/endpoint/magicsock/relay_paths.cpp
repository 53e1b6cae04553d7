// SPDX-License-Identifier: MIT OR Apache-2.0
// relay_paths.cpp: RelayPaths (see relay_paths.hpp): virtual addresses, relay sessions, the home
// relay choice.
// Layer: endpoint (path layer). Runs on the endpoint's executor. No locks.
#include "endpoint/magicsock/relay_paths.hpp"

#include <algorithm>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/log.hpp"
#include "endpoint/magicsock/relay_faults.hpp"
#include "moosicbox/p2p/core/spawn.hpp"
#include "moosicbox/p2p/simnet/network.hpp"

namespace moosicbox::p2p::magicsock {

using namespace boost::asio::experimental::awaitable_operators;

namespace {
// Virtual addresses: 100::/64 (RFC 6666, discard-only), the low 64 bits a counter; port 1.
constexpr std::uint16_t kVirtualPort = 1;

relay::detail::EitherEnv make_env(const asio::any_io_executor& ex, const RelayPathsConfig& config) {
  if (config.sim_host != nullptr) return relay::detail::EitherEnv(config.sim_host->env());
  return relay::detail::EitherEnv(ex);
}

SocketAddr make_vaddr(std::uint64_t n) {
  std::array<std::uint8_t, 16> ip{0x01, 0x00};
  for (std::size_t i = 0; i < 8; ++i) ip[15 - i] = static_cast<std::uint8_t>(n >> (8 * i));
  return SocketAddr::v6(ip, kVirtualPort);
}
}  // namespace

const SocketAddr RelayPaths::kLocal = make_vaddr(0);

bool RelayPaths::is_virtual(const SocketAddr& a) noexcept {
  if (!a.is_v6()) return false;
  const auto b = a.v6_bytes();
  return b[0] == 0x01 && b[1] == 0x00 && b[2] == 0 && b[3] == 0 && b[4] == 0 && b[5] == 0 && b[6] == 0 && b[7] == 0;
}

RelayPaths::RelayPaths(asio::any_io_executor ex, RelayPathsConfig config)
    : ex_(std::move(ex)), env_(make_env(ex_, config)), config_(std::move(config)), changed_(ex_), home_ready_(ex_) {}

RelayPaths::~RelayPaths() { close(); }

void RelayPaths::start() {
  if (config_.urls.empty()) return;
  if (config_.urls.size() == 1) {
    set_home(config_.urls.front());
    return;
  }
  spawn_logged(ex_, pick_home(), "relay home choice");
}

asio::awaitable<void> RelayPaths::pick_home() {
  // Probe every candidate at once; the lowest round trip wins. When none answers, the first one is
  // the home and its session keeps retrying (reporting why).
  auto alive = alive_;
  struct Probe {
    std::string url;
    std::optional<Duration> rtt;
    bool done = false;
  };
  auto probes = std::make_shared<std::vector<Probe>>();
  for (const auto& u : config_.urls) probes->push_back({u, std::nullopt, false});
  auto done = std::make_shared<Notifier>(ex_);
  for (std::size_t i = 0; i < probes->size(); ++i) {
    spawn_logged(
        ex_,
        [](asio::any_io_executor ex, std::shared_ptr<std::vector<Probe>> all, std::size_t k,
           std::shared_ptr<Notifier> notify, Duration timeout, std::optional<std::string> ca,
           simnet::Host* host) -> asio::awaitable<void> {
          P2PResult<Duration> r;
          if (host != nullptr) {
            r = co_await relay::probe_latency(*host, (*all)[k].url, timeout);
          } else {
            r = co_await relay::probe_latency(ex, (*all)[k].url, timeout, ca);
          }
          if (r) {
            (*all)[k].rtt = *r;
          } else {
            logger().info("relay: probe of {} failed: {}", (*all)[k].url, r.error().message());
          }
          (*all)[k].done = true;
          notify->notify_all();
        }(ex_, probes, i, done, config_.probe_timeout, config_.ca_file, config_.sim_host),
        "relay probe");
  }
  while (!closed_ && !std::all_of(probes->begin(), probes->end(), [](const Probe& p) { return p.done; })) {
    const bool woke = co_await done->wait();
    if (!woke || !*alive) co_return;
  }
  if (!*alive || closed_) co_return;
  const Probe* best = nullptr;
  for (const auto& p : *probes) {
    if (p.rtt && (best == nullptr || *p.rtt < *best->rtt)) best = &p;
  }
  const std::string url = best != nullptr ? best->url : config_.urls.front();
  if (best != nullptr) {
    logger().info("relay: home relay {} ({} us)", url,
                  std::chrono::duration_cast<std::chrono::microseconds>(*best->rtt).count());
  }
  set_home(url);
}

void RelayPaths::set_home(const std::string& url) {
  auto s = session(url);
  if (!s) {
    logger().warn("relay: cannot use {} as the home relay: {}", url, s.error().message());
    return;
  }
  home_url_ = url;
  home_ready_.notify_all();
  if (auto addrs = (*s)->stun_addrs(); !addrs.empty() && home_stun_) home_stun_(addrs);
}

P2PResult<std::shared_ptr<relay::Client>> RelayPaths::session(const std::string& url) {
  if (closed_) return fail(P2PError::connection_closed("this node (endpoint closed)"));
  if (auto it = clients_.find(url); it != clients_.end()) return it->second;
  if (clients_.size() >= config_.relays_max) {
    return fail(P2PError::connection_failed(fmt::format("{} relay sessions held already", clients_.size())));
  }
  relay::ClientConfig cc(config_.key, url);
  cc.tls_ca_file = config_.ca_file;
  cc.sim_host = config_.sim_host;
  auto c = relay::Client::create(ex_, std::move(cc));
  if (!c) return fail(c.error());
  auto client = *c;
  std::weak_ptr<bool> alive = alive_;
  client->on_receive([this, alive, session = client.get()](const NodeId& from, ByteView datagram) {
    if (alive.expired()) return;
    Peer* p = learn(from, session);
    if (p == nullptr) {
      ++stats_.drops_peers_full;
      return;
    }
    ++stats_.datagrams_received;
    if (!receive_) return;
    if (const auto& fault = relay_receive_fault(); fault) {
      Bytes copy(datagram.begin(), datagram.end());
      fault(copy);
      receive_(p->vaddr, from, copy);
      return;
    }
    receive_(p->vaddr, from, datagram);
  });
  client->on_peer_gone([this, alive](const NodeId& node, relay::PeerGoneReason) {
    if (alive.expired()) return;
    if (auto it = peers_.find(node); it != peers_.end() && peer_gone_) peer_gone_(it->second.vaddr);
  });
  client->on_stun([this, alive, url](const std::vector<SocketAddr>& addrs) {
    if (!alive.expired() && home_url_ && *home_url_ == url && home_stun_) home_stun_(addrs);
  });
  client->on_drain([this, alive] {
    if (!alive.expired() && drain_) drain_();
  });
  client->on_state([this, alive, url](relay::ClientState s, const std::optional<P2PError>& why) {
    if (alive.expired()) return;
    if (s == relay::ClientState::connected) {
      logger().info("relay: connected to {}", url);
      if (home_url_ && *home_url_ == url) home_ready_.notify_all();
    } else if (s == relay::ClientState::waiting && why) {
      logger().warn("relay: session to {} lost, reconnecting: {}", url, why->message());
    }
  });
  client->start();
  clients_.emplace(url, client);
  return client;
}

RelayPaths::Peer* RelayPaths::learn(const NodeId& node, relay::Client* via) {
  if (auto it = peers_.find(node); it != peers_.end()) {
    Peer& p = it->second;
    p.last_used = ++use_clock_;
    if (p.session != via) {
      // The peer speaks to us through another relay now (it moved its home), or its ticket names
      // another: answer there.
      p.session = via;
      changed_.notify_all();
    }
    return &p;
  }
  if (peers_.size() >= config_.peers_max && !evict_one()) return nullptr;
  const SocketAddr vaddr = make_vaddr(next_vaddr_++);
  Peer* p = &peers_.emplace(node, Peer{node, vaddr, via, 0, ++use_clock_}).first->second;
  by_vaddr_.emplace(vaddr, p);
  return p;
}

bool RelayPaths::evict_one() {
  auto victim = peers_.end();
  for (auto it = peers_.begin(); it != peers_.end(); ++it) {
    if (it->second.pins == 0 && (victim == peers_.end() || it->second.last_used < victim->second.last_used)) {
      victim = it;
    }
  }
  if (victim == peers_.end()) return false;
  by_vaddr_.erase(victim->second.vaddr);
  peers_.erase(victim);
  ++stats_.peers_evicted;
  return true;
}

P2PResult<SocketAddr> RelayPaths::peer(const NodeId& node, const std::optional<std::string>& relay_url) {
  std::string via;
  if (relay_url) {
    via = *relay_url;
  } else if (auto it = peers_.find(node); it != peers_.end()) {
    via = it->second.session->url();
  } else if (home_url_) {
    via = *home_url_;
  } else {
    return fail(P2PError::no_route(fmt::format("{}: no relay known for the node and no home relay", node.fmt_short())));
  }
  auto s = session(via);
  if (!s) return fail(s.error());
  Peer* p = learn(node, s->get());
  if (p == nullptr) return fail(P2PError::connection_failed("too many relayed peers held"));
  return p->vaddr;
}

RelayPaths::Peer* RelayPaths::find(const SocketAddr& vaddr) const {
  const auto it = by_vaddr_.find(vaddr);
  return it == by_vaddr_.end() ? nullptr : it->second;
}

std::optional<NodeId> RelayPaths::node_of(const SocketAddr& vaddr) const {
  if (const Peer* p = find(vaddr)) return p->node;
  return std::nullopt;
}

std::optional<std::string> RelayPaths::relay_of(const SocketAddr& vaddr) const {
  if (const Peer* p = find(vaddr)) return p->session->url();
  return std::nullopt;
}

void RelayPaths::pin(const SocketAddr& vaddr) {
  if (Peer* p = find(vaddr)) ++p->pins;
}

void RelayPaths::unpin(const SocketAddr& vaddr) {
  if (Peer* p = find(vaddr); p != nullptr && p->pins > 0) --p->pins;
}

bool RelayPaths::writable(const SocketAddr& vaddr) {
  const Peer* p = find(vaddr);
  return p == nullptr || p->session->writable();
}

bool RelayPaths::send(const SocketAddr& vaddr, ByteView datagram) {
  const Peer* p = find(vaddr);
  if (p == nullptr) {
    ++stats_.drops_no_relay;
    return false;
  }
  if (!p->session->send(p->node, datagram)) {
    ++stats_.drops_refused;
    return false;
  }
  ++stats_.datagrams_sent;
  return true;
}

bool RelayPaths::home_connected() const {
  if (!home_url_) return false;
  const auto c = clients_.find(*home_url_);
  return c != clients_.end() && c->second->state() == relay::ClientState::connected;
}

std::optional<Duration> RelayPaths::home_rtt() const {
  if (!home_url_) return std::nullopt;
  const auto c = clients_.find(*home_url_);
  return c == clients_.end() ? std::nullopt : c->second->rtt();
}

std::shared_ptr<relay::Client> RelayPaths::client(const std::string& url) const {
  const auto c = clients_.find(url);
  return c == clients_.end() ? nullptr : c->second;
}

asio::awaitable<P2PResult<std::string>> RelayPaths::wait_home(TimePoint deadline) {
  auto alive = alive_;
  if (config_.urls.empty()) co_return fail(P2PError::invalid_configuration("endpoint: no relay configured"));
  auto timer = env_.make_timer();
  for (;;) {
    if (closed_) co_return fail(P2PError::connection_closed("this node (endpoint closed)"));
    if (home_url_) {
      auto c = client(*home_url_);
      if (c && c->state() == relay::ClientState::connected) co_return *home_url_;
    }
    if (env_.now() >= deadline) {
      std::string why = home_url_ ? "no answer yet" : "no relay answered the latency probe yet";
      if (home_url_) {
        if (auto c = client(*home_url_); c && c->last_error()) why = c->last_error()->message();
      }
      co_return fail(P2PError::connection_failed(fmt::format("home relay not connected: {}", why)));
    }
    auto r = co_await (home_ready_.wait() || timer.wait_until(deadline));
    if (!*alive) co_return fail(P2PError::connection_closed("this node (endpoint closed)"));
    if (r.index() == 0 && !std::get<0>(r)) co_return fail(P2PError::cancelled("waiting for the home relay"));
  }
}

asio::awaitable<void> RelayPaths::drain(TimePoint deadline) {
  auto alive = alive_;
  auto timer = env_.make_timer();
  for (;;) {
    if (!*alive || closed_) co_return;
    bool pending = false;
    for (const auto& [url, c] : clients_) {
      pending = pending || (c->state() == relay::ClientState::connected && c->queued_bytes() > 0);
    }
    if (!pending || env_.now() >= deadline) co_return;
    // Writes complete within a round trip to the relay; look again shortly.
    (void)co_await timer.wait_until(std::min(deadline, env_.now() + std::chrono::milliseconds(1)));
  }
}

void RelayPaths::close() {
  if (closed_) return;
  closed_ = true;
  *alive_ = false;
  for (auto& [url, c] : clients_) c->close();
  // Peers point at the sessions: they go together.
  by_vaddr_.clear();
  peers_.clear();
  clients_.clear();
  home_ready_.notify_all();
  changed_.notify_all();
}

}  // namespace moosicbox::p2p::magicsock
