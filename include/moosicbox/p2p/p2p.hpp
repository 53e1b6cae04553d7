// SPDX-License-Identifier: MIT OR Apache-2.0
// p2p.hpp: the umbrella header: both backends, the router, DefaultP2P (the backend chosen when the
// library was configured, -DMOOSICBOX_P2P_DEFAULT_BACKEND=simulator|quic) and P2PBuilder, which builds either
// backend from one NetworkConfig.
// Layer: public API. A P2PBuilder is a plain value; what it builds follows that backend's threading rule.
//
// Linking: moosicbox_p2p::p2p provides QuicP2P and the router; build_simulator(), build_world() and a
// simulator DefaultP2P need moosicbox_p2p::sim.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "moosicbox/p2p/build_config.hpp"
#include "moosicbox/p2p/concepts.hpp"
#include "moosicbox/p2p/core/config.hpp"
#include "moosicbox/p2p/core/node_id.hpp"
#include "moosicbox/p2p/core/secret_key.hpp"
#include "moosicbox/p2p/endpoint/endpoint.hpp"
#include "moosicbox/p2p/endpoint/quic_p2p.hpp"
#include "moosicbox/p2p/env/asio_env.hpp"
#include "moosicbox/p2p/sim/sim.hpp"
#include "moosicbox/p2p/streams.hpp"

namespace moosicbox::p2p {

/// SimulatorNodeId is the simulator's node id type: the real NodeId, so one id type serves both.
using SimulatorNodeId = NodeId;
/// SimulatorP2P, SimulatorConnection, SimulatorListener are the simulator backend (p2p::sim).
using SimulatorP2P = sim::SimulatorP2P;
using SimulatorConnection = sim::SimulatorConnection;
using SimulatorListener = sim::SimulatorListener;
using sim::LinkInfo;
using sim::NetworkGraph;
using sim::NodeInfo;

#if MOOSICBOX_P2P_DEFAULT_BACKEND_IS_QUIC
/// DefaultP2P is the backend chosen at configure time: QuicP2P.
using DefaultP2P = QuicP2P;
/// DefaultContext is what build_default() needs to build DefaultP2P: the executor it runs on.
using DefaultContext = asio::any_io_executor;
#else
/// DefaultP2P is the backend chosen at configure time: SimulatorP2P.
using DefaultP2P = SimulatorP2P;
/// DefaultContext is what build_default() needs to build DefaultP2P: the world it lives in.
using DefaultContext = sim::World&;
#endif

static_assert(P2PSystem<DefaultP2P>);
static_assert(P2PStreamConnection<DefaultP2P::Connection>);

/// P2PBuilder builds a backend from a NetworkConfig plus the identity and addresses of the node.
class P2PBuilder {
 public:
  /// P2PBuilder starts from `config` (NetworkConfig's defaults when omitted).
  explicit P2PBuilder(NetworkConfig config = {}) : config_(config) {}

  /// from_env starts from the environment variables of DefaultP2P's backend: SIMULATOR_* for the
  /// simulator, P2P_CONNECTION_TIMEOUT_SECS and P2P_MAX_MESSAGE_SIZE for QUIC (see
  /// NetworkConfig::EnvNames). Errors: invalid_configuration naming the variable and value.
  [[nodiscard]] static P2PResult<P2PBuilder> from_env() {
#if MOOSICBOX_P2P_DEFAULT_BACKEND_IS_QUIC
    return from_env(NetworkConfig::EnvNames::quic);
#else
    return from_env(NetworkConfig::EnvNames::simulator);
#endif
  }
  /// from_env starts from the variables of `names`, whichever backend is built later.
  /// Errors: invalid_configuration naming the variable and value.
  [[nodiscard]] static P2PResult<P2PBuilder> from_env(NetworkConfig::EnvNames names) {
    auto cfg = NetworkConfig::from_env(names);
    if (!cfg) return fail(cfg.error());
    return P2PBuilder(*cfg);
  }

  /// with_secret_key sets the node's identity (default: a fresh key, or test_secret_key(name) in
  /// the simulator).
  P2PBuilder& with_secret_key(SecretKey key) {
    key_ = std::move(key);
    return *this;
  }
  /// with_name sets the simulator node's name (default "node").
  P2PBuilder& with_name(std::string name) {
    name_ = std::move(name);
    return *this;
  }
  /// with_bind_addrs sets the UDP addresses of the real backend (default: dual-stack [::]:0).
  P2PBuilder& with_bind_addrs(std::vector<SocketAddr> addrs) {
    bind_addrs_ = std::move(addrs);
    return *this;
  }
  /// with_alpn sets the application protocol of the real backend's connections.
  P2PBuilder& with_alpn(std::string alpn) {
    alpn_ = std::move(alpn);
    return *this;
  }
  /// with_node_options sets the simulated node's NAT type and relay role.
  P2PBuilder& with_node_options(sim::NodeOptions options) {
    node_options_ = std::move(options);
    return *this;
  }

  /// config returns the network configuration.
  [[nodiscard]] const NetworkConfig& config() const noexcept { return config_; }

  /// build_world creates a simulated world using this configuration; the seed is `seed`, else
  /// P2P_SIM_SEED, else random (printed). Errors: invalid_configuration.
  [[nodiscard]] P2PResult<std::unique_ptr<sim::World>> build_world(std::optional<std::uint64_t> seed = {}) const {
    sim::WorldOptions options;
    options.seed = seed;
    options.config = config_;
    return sim::World::create(std::move(options));
  }

  /// build_simulator adds this node to `world` (the world's configuration applies to its links).
  /// Errors: invalid_configuration (duplicate name or id).
  [[nodiscard]] P2PResult<SimulatorP2P> build_simulator(sim::World& world) const {
    auto options = node_options_;
    if (key_) options.key = *key_;
    return world.add_node(name_, std::move(options));
  }

  /// build_quic binds a real endpoint on `ex`. The configuration's max_message_size becomes the
  /// message limit, and connection_timeout bounds connect() and idle connections.
  /// Errors: as QuicP2P::create (invalid_configuration, network_error).
  [[nodiscard]] P2PResult<QuicP2P> build_quic(asio::any_io_executor ex) const {
    if (auto ok = config_.validate(); !ok) return fail(ok.error());
    std::optional<SecretKey> key = key_;
    if (!key) {
      env::OsRandom rng;
      key = SecretKey::generate(rng);
    }
    EndpointConfig cfg(std::move(*key));
    if (!bind_addrs_.empty()) cfg.bind_addrs = bind_addrs_;
    cfg.limits.max_message_size = config_.max_message_size;
    cfg.connect_timeout = config_.connection_timeout;
    cfg.idle_timeout = config_.connection_timeout;
    return QuicP2P::create(std::move(ex), std::move(cfg), alpn_);
  }

  /// build_default builds DefaultP2P. Errors: those of the chosen backend's build function.
  [[nodiscard]] P2PResult<DefaultP2P> build_default(DefaultContext context) const {
#if MOOSICBOX_P2P_DEFAULT_BACKEND_IS_QUIC
    return build_quic(std::move(context));
#else
    return build_simulator(context);
#endif
  }

 private:
  NetworkConfig config_;
  std::optional<SecretKey> key_;
  std::string name_ = "node";
  std::vector<SocketAddr> bind_addrs_;
  std::string alpn_ = std::string(QuicP2P::kDefaultAlpn);
  sim::NodeOptions node_options_;
};

}  // namespace moosicbox::p2p
