// SPDX-License-Identifier: MIT OR Apache-2.0
// quic_p2p.cpp: the P2PSystem adapter over Endpoint.
// Layer: endpoint. Endpoint executor only.
#include "moosicbox/p2p/endpoint/quic_p2p.hpp"

#include <algorithm>

namespace moosicbox::p2p {

namespace {
P2PResult<void> check_alpn(std::string_view alpn) {
  if (alpn.empty() || alpn.size() > 255) {
    return fail(P2PError::invalid_configuration(fmt::format("ALPN must be 1 to 255 bytes, got {}", alpn.size())));
  }
  return {};
}
}  // namespace

P2PResult<QuicP2P> QuicP2P::create(asio::any_io_executor ex, EndpointConfig config, std::string_view alpn) {
  if (auto ok = check_alpn(alpn); !ok) return fail(ok.error());
  auto ep = Endpoint::bind(std::move(ex), std::move(config));
  if (!ep) return fail(ep.error());
  return QuicP2P(std::move(*ep), std::string(alpn));
}

P2PResult<QuicP2P> QuicP2P::create(Endpoint endpoint, std::string_view alpn) {
  if (auto ok = check_alpn(alpn); !ok) return fail(ok.error());
  return QuicP2P(std::move(endpoint), std::string(alpn));
}

asio::awaitable<P2PResult<Connection>> QuicP2P::connect(const NodeId& id) {
  const auto it = book_.find(id);
  if (it == book_.end() || it->second.direct_addresses().empty()) {
    co_return fail(P2PError::node_not_found(
        fmt::format("{}: no address known (add one with add_node_addr, e.g. from its ticket)", id.to_string())));
  }
  co_return co_await endpoint_.connect(it->second, alpn_);
}

asio::awaitable<P2PResult<Listener>> QuicP2P::listen(std::string_view addr) {
  if (!addr.empty()) {
    auto wanted = SocketAddr::parse(addr);
    if (!wanted) co_return fail(wanted.error());
    const auto bound = endpoint_.local_addrs();
    const bool ok = std::any_of(bound.begin(), bound.end(), [&](const SocketAddr& b) {
      const bool port_ok = wanted->port() == 0 || wanted->port() == b.port();
      const bool ip_ok = b.with_port(0) == wanted->with_port(0) || b.is_unspecified();
      return port_ok && ip_ok;
    });
    if (!ok) {
      std::string list;
      for (const auto& b : bound) list += (list.empty() ? "" : ", ") + b.to_string();
      co_return fail(P2PError::invalid_configuration(fmt::format(
          "cannot listen on {}: the endpoint is bound to {} (set EndpointConfig::bind_addrs)", addr, list)));
    }
  }
  co_return endpoint_.listen(alpn_);
}

asio::awaitable<P2PResult<NodeId>> QuicP2P::discover(std::string_view name) {
  co_return fail(P2PError::discovery_failed(
      fmt::format("cannot resolve '{}': name discovery arrives with the discovery work; dial a node id with a "
                  "known address (add_node_addr) meanwhile",
                  name)));
}

NodeId QuicP2P::local_node_id() const { return endpoint_.node_id(); }

bool QuicP2P::add_node_addr(const NodeAddr& addr) {
  auto it = book_.find(addr.node_id());
  if (it == book_.end()) {
    if (book_.size() >= kAddressBookSizeMax) return false;
    book_.emplace(addr.node_id(), addr);
    return true;
  }
  for (const auto& a : addr.direct_addresses()) (void)it->second.add_direct_address(a);
  if (addr.relay_url()) (void)it->second.set_relay_url(*addr.relay_url());
  return true;
}

std::optional<NodeAddr> QuicP2P::node_addr(const NodeId& id) const {
  const auto it = book_.find(id);
  if (it == book_.end()) return std::nullopt;
  return it->second;
}

}  // namespace moosicbox::p2p
