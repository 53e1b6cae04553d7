// SPDX-License-Identifier: MIT OR Apache-2.0
// relay_paths.hpp: RelayPaths, the relay half of the endpoint's path layer. Every peer reached
// through a relay gets one stable virtual address (an IPv6 address in the discard-only prefix
// 100::/64, RFC 6666, which no real path uses), so the QUIC engine above sees one unchanging path
// whichever relay carries the packets. Underneath, RelayPaths holds the node's home relay session
// (picked by measured latency among the configured relays) and sessions to the relays peers are
// homed on, sends a peer's datagrams through the relay the peer was last heard on (or the one its
// ticket names), and hands datagrams that arrive to the endpoint by virtual address.
// With RelayPathsConfig::sim_host it runs on a simulated host: relay sessions and latency probes on
// the simulated network, every wait in virtual time.
// Layer: endpoint (path layer). Runs on the endpoint's executor; callbacks run there. No locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "endpoint/notifier.hpp"
#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/node_id.hpp"
#include "moosicbox/p2p/core/secret_key.hpp"
#include "moosicbox/p2p/env/socket_addr.hpp"
#include "relay/client.hpp"
#include "relay/either_env.hpp"

namespace moosicbox::p2p::magicsock {

using detail::Notifier;
using env::SocketAddr;

/// RelayPathsConfig configures RelayPaths.
struct RelayPathsConfig {
  explicit RelayPathsConfig(SecretKey k) : key(std::move(k)) {}
  SecretKey key;                       // the node's identity
  std::vector<std::string> urls;       // candidate home relays
  std::optional<std::string> ca_file;  // TLS trust for https relays (else the system's)
  std::size_t peers_max = 4096;        // virtual addresses held (peers heard from or dialed)
  std::size_t relays_max = 16;         // relay sessions held (home + peers' home relays)
  Duration probe_timeout = std::chrono::seconds(3);
  // sim_host, when set, is the simulated host this node runs on (it must outlive RelayPaths): every
  // relay session and latency probe goes over the simulated network, every wait in virtual time,
  // and the executor given to RelayPaths must be the host's runtime executor.
  simnet::Host* sim_host = nullptr;
};

/// RelayPathsStats counts the relay half of the path layer.
struct RelayPathsStats {
  std::uint64_t datagrams_sent = 0;
  std::uint64_t datagrams_received = 0;
  std::uint64_t drops_no_relay = 0;    // a send to a peer without a usable relay
  std::uint64_t drops_refused = 0;     // the relay session's queue refused the datagram
  std::uint64_t drops_peers_full = 0;  // a datagram from a new peer while peers_max are held and pinned
  std::uint64_t peers_evicted = 0;
};

/// RelayPaths is the relay half of the path layer (see the file comment).
class RelayPaths {
 public:
  /// ReceiveFn gets a datagram that arrived through a relay: the sender's virtual address, the
  /// node id the relay authenticated, and the bytes (valid during the call).
  using ReceiveFn = std::function<void(const SocketAddr& vaddr, const NodeId& from, ByteView datagram)>;
  /// DrainFn runs when a relay session that refused more (writable() false) has drained.
  using DrainFn = std::function<void()>;
  /// PeerGoneFn gets the relay's report that a peer (by virtual address) is not connected to it.
  using PeerGoneFn = std::function<void(const SocketAddr& vaddr)>;
  /// HomeStunFn gets the home relay's STUN responder addresses: when the home relay is picked and
  /// whenever its session (re)learns them.
  using HomeStunFn = std::function<void(const std::vector<SocketAddr>& stun)>;

  RelayPaths(asio::any_io_executor ex, RelayPathsConfig config);
  RelayPaths(const RelayPaths&) = delete;
  RelayPaths& operator=(const RelayPaths&) = delete;
  ~RelayPaths();

  /// kLocal is the local address of every relay path (what the QUIC engine sees as ours).
  static const SocketAddr kLocal;
  /// is_virtual reports whether `a` is a virtual address of a relay path.
  [[nodiscard]] static bool is_virtual(const SocketAddr& a) noexcept;

  void on_receive(ReceiveFn fn) { receive_ = std::move(fn); }
  void on_peer_gone(PeerGoneFn fn) { peer_gone_ = std::move(fn); }
  void on_drain(DrainFn fn) { drain_ = std::move(fn); }
  void on_home_stun(HomeStunFn fn) { home_stun_ = std::move(fn); }
  /// writable reports whether the session that carries `vaddr` has room (below half its queue);
  /// when it has not, the on_drain callback runs once it drained. Unknown peers are writable (send
  /// drops and counts them).
  [[nodiscard]] bool writable(const SocketAddr& vaddr);
  /// start picks the home relay (probing latency when there are several) and connects to it.
  void start();
  /// close ends every relay session.
  void close();
  /// drain waits (until `deadline` at the latest) for the sessions to write what they queued, so
  /// the last packets of closing connections leave before close().
  asio::awaitable<void> drain(TimePoint deadline);

  /// peer returns the virtual address of `node`, creating it; `relay_url`, when set, is where the
  /// node is homed (used until the node is heard through another relay). Errors: no_route (no
  /// relay known for the node and no home relay), invalid_configuration (bad URL),
  /// connection_failed (relays_max sessions are held).
  [[nodiscard]] P2PResult<SocketAddr> peer(const NodeId& node, const std::optional<std::string>& relay_url);
  /// knows reports whether `node` has a virtual address (dialed, or heard through a relay).
  [[nodiscard]] bool knows(const NodeId& node) const { return peers_.contains(node); }
  /// node_of returns the node a virtual address stands for.
  [[nodiscard]] std::optional<NodeId> node_of(const SocketAddr& vaddr) const;
  /// relay_of returns the URL of the relay a peer's datagrams go through now.
  [[nodiscard]] std::optional<std::string> relay_of(const SocketAddr& vaddr) const;
  /// pin / unpin count the connections using a virtual address (pinned ones are never evicted).
  void pin(const SocketAddr& vaddr);
  void unpin(const SocketAddr& vaddr);
  /// send forwards one datagram to the peer at `vaddr`. Returns false when it was dropped.
  bool send(const SocketAddr& vaddr, ByteView datagram);

  /// home_url returns the home relay once picked.
  [[nodiscard]] const std::optional<std::string>& home_url() const noexcept { return home_url_; }
  /// home_connected reports whether the home relay session is up.
  [[nodiscard]] bool home_connected() const;
  /// home_rtt returns the home session's last ping round trip.
  [[nodiscard]] std::optional<Duration> home_rtt() const;
  /// wait_home waits until the home relay session is connected. Errors: timeout (with the last
  /// connect error), connection_closed (closed), cancelled.
  asio::awaitable<P2PResult<std::string>> wait_home(TimePoint deadline);
  /// changed is notified when a peer's relay changes (virtual addresses stay).
  Notifier& changed() noexcept { return changed_; }
  /// client returns the session to `url`, if one is held.
  [[nodiscard]] std::shared_ptr<relay::Client> client(const std::string& url) const;

  [[nodiscard]] const RelayPathsStats& stats() const noexcept { return stats_; }

 private:
  struct Peer {
    NodeId node;
    SocketAddr vaddr;
    relay::Client* session = nullptr;  // the relay the peer's datagrams go through (owned by clients_)
    std::uint32_t pins = 0;
    std::uint64_t last_used = 0;
  };

  P2PResult<std::shared_ptr<relay::Client>> session(const std::string& url);
  Peer* learn(const NodeId& node, relay::Client* via);
  [[nodiscard]] Peer* find(const SocketAddr& vaddr) const;
  bool evict_one();
  void set_home(const std::string& url);
  asio::awaitable<void> pick_home();

  asio::any_io_executor ex_;
  relay::detail::EitherEnv env_;
  RelayPathsConfig config_;
  ReceiveFn receive_;
  PeerGoneFn peer_gone_;
  DrainFn drain_;
  HomeStunFn home_stun_;
  std::optional<std::string> home_url_;
  std::map<std::string, std::shared_ptr<relay::Client>> clients_;
  std::unordered_map<NodeId, Peer> peers_;
  std::unordered_map<SocketAddr, Peer*> by_vaddr_;  // into peers_ (node-based: pointers are stable)
  std::uint64_t next_vaddr_ = 1;
  std::uint64_t use_clock_ = 0;
  Notifier changed_;
  Notifier home_ready_;
  bool closed_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  RelayPathsStats stats_;
};

}  // namespace moosicbox::p2p::magicsock
