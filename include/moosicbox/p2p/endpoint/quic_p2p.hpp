// SPDX-License-Identifier: MIT OR Apache-2.0
// quic_p2p.hpp: QuicP2P, the real backend behind the P2PSystem concept: an Endpoint that dials node
// ids through an address book, listens for one application protocol, and has no name discovery yet.
// Application code written against P2PSystem runs on it unchanged (the conformance suite does).
// Layer: endpoint. Same threading rule as Endpoint: use it from its executor only.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "moosicbox/p2p/concepts.hpp"
#include "moosicbox/p2p/endpoint/endpoint.hpp"
#include "moosicbox/p2p/endpoint/node_addr.hpp"

namespace moosicbox::p2p {

/// QuicP2P is a P2PSystem over QUIC.
class QuicP2P {
 public:
  /// NodeId, Connection and Listener are the backend's types.
  ///@{
  using NodeId = p2p::NodeId;
  using Connection = p2p::Connection;
  using Listener = p2p::Listener;
  ///@}

  /// kDefaultAlpn is the application protocol of the message API when none is given.
  static constexpr std::string_view kDefaultAlpn = "moosicbox-p2p/msg/1";

  /// create binds an endpoint with `config` on `ex`; connections speak `alpn`.
  /// Errors: as Endpoint::bind; invalid_configuration for a bad ALPN.
  [[nodiscard]] static P2PResult<QuicP2P> create(asio::any_io_executor ex, EndpointConfig config,
                                                 std::string_view alpn = kDefaultAlpn);
  /// create wraps an endpoint already bound (for example one on a simulated host, see
  /// Endpoint::bind(simnet::Host&, ...)); connections speak `alpn`. Errors: invalid_configuration for
  /// a bad ALPN.
  [[nodiscard]] static P2PResult<QuicP2P> create(Endpoint endpoint, std::string_view alpn = kDefaultAlpn);

  /// connect dials `id` at the addresses known for it (add_node_addr).
  /// Errors: node_not_found (no address known for `id`), and those of Endpoint::connect.
  asio::awaitable<P2PResult<Connection>> connect(const NodeId& id);
  /// listen starts accepting connections. `addr` is empty, or one of the endpoint's bound addresses
  /// ("127.0.0.1:4433"; port 0 matches any port of that address): the endpoint is bound at create().
  /// Errors: invalid_configuration (an address that does not parse or is not bound),
  /// connection_failed (already listening).
  asio::awaitable<P2PResult<Listener>> listen(std::string_view addr);
  /// discover resolves a name to a node id. Discovery is not part of this backend yet.
  /// Errors: discovery_failed, always.
  asio::awaitable<P2PResult<NodeId>> discover(std::string_view name);
  /// local_node_id returns this node's identity.
  [[nodiscard]] NodeId local_node_id() const;

  /// add_node_addr records how to reach a node (merged with what is known). Returns false when the
  /// address book is full (kAddressBookSizeMax nodes).
  bool add_node_addr(const NodeAddr& addr);
  /// node_addr returns what is known about `id`.
  [[nodiscard]] std::optional<NodeAddr> node_addr(const NodeId& id) const;
  /// addr returns this node's NodeAddr (to give to peers).
  [[nodiscard]] NodeAddr addr() const { return endpoint_.addr(); }
  /// endpoint returns the underlying endpoint (streams, datagrams, other protocols).
  [[nodiscard]] Endpoint& endpoint() noexcept { return endpoint_; }
  /// alpn returns the application protocol connections speak.
  [[nodiscard]] const std::string& alpn() const noexcept { return alpn_; }

  /// kAddressBookSizeMax bounds the address book.
  static constexpr std::size_t kAddressBookSizeMax = 65536;

 private:
  QuicP2P(Endpoint ep, std::string alpn) : endpoint_(std::move(ep)), alpn_(std::move(alpn)) {}
  Endpoint endpoint_;
  std::string alpn_;
  std::unordered_map<NodeId, NodeAddr> book_;
};

static_assert(P2PSystem<QuicP2P>);

}  // namespace moosicbox::p2p
