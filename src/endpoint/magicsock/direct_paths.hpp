// SPDX-License-Identifier: MIT OR Apache-2.0
// direct_paths.hpp: DirectPaths, the direct half of the endpoint's path layer. A connection to a
// peer that has a relay path keeps the peer's virtual address (relay_paths.hpp) for its whole life;
// DirectPaths finds a direct UDP path to the peer and, once validated, the endpoint sends the
// connection's packets there instead of through the relay. QUIC never notices: it sees one
// unchanging path. How (docs/protocol.md, "Path discovery (disco)"; docs/architecture.md):
// - Candidates: the peer's ticket addresses, the addresses it lists in CallMeMaybe, and the sources
//   its pings come from; ours are the interface addresses, the reflexive addresses the relays' STUN
//   responders report, and the addresses our pongs say the peer saw.
// - Hole punching: when a connection starts using a peer (and whenever our candidates change while
//   it is relayed), we send CallMeMaybe through the relay and ping every candidate, retrying on a
//   bounded schedule; the peer pings ours on CallMeMaybe. Pings leave from the same sockets as QUIC,
//   so they open the NAT mappings QUIC then uses. The first Pong validates a path.
// - Choice: the validated candidate with the lowest round trip, with hysteresis; heartbeats keep
//   the active path (and its NAT mappings) alive while it carries traffic.
// - Loss: a path that carries traffic but stays silent is probed; when probes stay unanswered for a
//   few round trips the peer falls back to the relay (QUIC retransmits what was lost) and punching
//   starts again with backoff, so the connection goes back to direct when the path heals or a new
//   one (NAT rebinding) is found.
// Layer: endpoint (path layer). Runs on the endpoint's executor, driven by the endpoint: no locks,
// no timers of its own (tick() returns when it wants to run next).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <unordered_map>
#include <vector>

#include "endpoint/magicsock/disco.hpp"
#include "moosicbox/p2p/core/bytes.hpp"
#include "moosicbox/p2p/core/node_id.hpp"
#include "moosicbox/p2p/core/time.hpp"
#include "moosicbox/p2p/env/socket_addr.hpp"

namespace moosicbox::p2p::magicsock {

/// DirectPathsConfig tunes DirectPaths (defaults suit the internet; tests may shorten them).
struct DirectPathsConfig {
  Duration heartbeat = std::chrono::seconds(2);          // ping the active path this often while it is used
  Duration in_use = std::chrono::seconds(5);             // a peer sent to within this is in use
  Duration trust = std::chrono::milliseconds(6500);      // a pong keeps a non-active candidate eligible this long
  Duration silence_min = std::chrono::milliseconds(80);  // probe the active path after this much silence
  Duration lost_min = std::chrono::milliseconds(200);    // an unanswered probe this old loses the path
  Duration repunch_min = std::chrono::seconds(2);        // first pause between punch rounds of a relayed peer
  Duration repunch_max = std::chrono::seconds(60);       // longest pause between punch rounds
  Duration stun_refresh = std::chrono::seconds(20);      // re-learn reflexive addresses this often
  std::size_t peers_max = 4096;
  std::size_t candidates_max = 16;  // per peer
};

/// DirectPathsStats counts the direct half of the path layer.
struct DirectPathsStats {
  std::uint64_t pings_sent = 0;
  std::uint64_t pongs_sent = 0;
  std::uint64_t pongs_received = 0;
  std::uint64_t call_me_maybe_sent = 0;
  std::uint64_t call_me_maybe_received = 0;
  std::uint64_t paths_validated = 0;  // first pong of a candidate (or after it was lost)
  std::uint64_t switches_direct = 0;  // a peer's route moved to a direct path (or between two)
  std::uint64_t fallbacks_relay = 0;  // a peer's direct path was lost: back to the relay
  std::uint64_t stun_requests = 0;
  std::uint64_t stun_responses = 0;
  std::uint64_t disco_refused = 0;  // malformed, forged, replayed disco packets (see codec stats)
  std::uint64_t pongs_unexpected = 0;
};

/// DirectRoute is where a peer's packets go when it has a direct path.
struct DirectRoute {
  std::size_t socket = 0;
  env::SocketAddr addr;
  std::optional<env::SocketAddr> source;  // the local IP to send from (wildcard sockets)
  Duration rtt{};
};

/// DirectPaths is the direct half of the path layer (see the file comment).
class DirectPaths {
 public:
  /// Io is how DirectPaths reaches the endpoint.
  struct Io {
    /// send_udp sends one datagram on socket `socket` (best effort).
    std::function<void(std::size_t socket, const env::SocketAddr& to, ByteView data,
                       const std::optional<env::SocketAddr>& source)>
        send_udp;
    /// send_relay sends one datagram to the peer at virtual address `vaddr` through its relay.
    std::function<bool(const env::SocketAddr& vaddr, ByteView data)> send_relay;
    /// socket_for returns the socket that can reach `to` (its address family), if any.
    std::function<std::optional<std::size_t>(const env::SocketAddr& to)> socket_for;
    /// local_candidates returns our interface addresses (with the sockets' ports).
    std::function<std::vector<env::SocketAddr>()> local_candidates;
    /// route_changed runs when a peer's route changed (direct <-> relay, or another direct path).
    std::function<void(const env::SocketAddr& vaddr)> route_changed;
    /// wake asks the endpoint to call tick() at `when` (or earlier).
    std::function<void(TimePoint when)> wake;
    /// random fills a buffer with random bytes (transaction ids).
    std::function<void(std::span<std::byte>)> random;
  };

  DirectPaths(disco::Codec codec, Io io, DirectPathsConfig config);
  DirectPaths(const DirectPaths&) = delete;
  DirectPaths& operator=(const DirectPaths&) = delete;
  ~DirectPaths();

  /// add_candidates adds addresses where `node` may be reached (its ticket's direct addresses).
  void add_candidates(const NodeId& node, std::span<const env::SocketAddr> addrs);
  /// activate says a connection uses `node` at virtual address `vaddr`: punching starts.
  void activate(const NodeId& node, const env::SocketAddr& vaddr, TimePoint now);
  /// punch starts hole punching towards `node` (at `vaddr`) before a connection uses it (a dial
  /// that first looks for a direct path), unless it has a direct route.
  void punch(const NodeId& node, const env::SocketAddr& vaddr, TimePoint now);
  /// deactivate says one connection of the peer at `vaddr` ended.
  void deactivate(const env::SocketAddr& vaddr);
  /// route returns the direct route of the peer at `vaddr`, if it has one, and notes that the peer
  /// is in use (this is the send path: one hash lookup).
  [[nodiscard]] const DirectRoute* route(const env::SocketAddr& vaddr, TimePoint now);
  /// route_of returns the direct route of the peer at `vaddr` without noting use.
  [[nodiscard]] const DirectRoute* route_of(const env::SocketAddr& vaddr) const;
  /// has_route reports whether `node` has a validated direct route (without noting use).
  [[nodiscard]] bool has_route(const NodeId& node) const;

  /// on_udp_disco handles a disco packet that arrived on socket `socket` from `from`, addressed to
  /// `destination` (the local IP, when the socket reports it).
  void on_udp_disco(std::size_t socket, const env::SocketAddr& from, const std::optional<env::SocketAddr>& destination,
                    ByteView packet, TimePoint now);
  /// on_relay_disco handles a disco packet that came through a relay from `node` (at `vaddr`).
  void on_relay_disco(const NodeId& node, const env::SocketAddr& vaddr, ByteView packet, TimePoint now);
  /// heard notes that a datagram of the peer at `vaddr` arrived directly from `from`.
  void heard(const env::SocketAddr& vaddr, const env::SocketAddr& from, TimePoint now);

  /// set_stun_servers sets the STUN responders to learn reflexive addresses from.
  void set_stun_servers(std::vector<env::SocketAddr> servers, TimePoint now);
  /// on_stun handles a STUN message that arrived on socket `socket` from `from`.
  void on_stun(std::size_t socket, const env::SocketAddr& from, ByteView packet, TimePoint now);
  /// reflexive returns the reflexive addresses learned (STUN and pongs).
  [[nodiscard]] std::vector<env::SocketAddr> reflexive() const;

  /// tick runs what is due and returns when it wants to run next (kTimePointMax: nothing pending).
  TimePoint tick(TimePoint now);

  [[nodiscard]] const DirectPathsStats& stats() const noexcept { return stats_; }

 private:
  struct Outstanding {
    disco::TxId tx{};
    env::SocketAddr to;
    TimePoint sent{};
  };
  struct Candidate {
    env::SocketAddr addr;
    std::size_t socket = 0;
    std::optional<env::SocketAddr> source;  // local IP a pong from it arrived on
    TimePoint next_ping = kTimePointMax;    // a scheduled (re)try
    std::uint32_t tries_left = 0;           // pings left in the current punch round
    Duration retry{};                       // the pause before the next try (doubles)
    TimePoint last_ping{};
    TimePoint last_pong{};
    TimePoint last_rx{};
    TimePoint first_unanswered = kTimePointMax;  // the oldest ping to it since it last answered
    Duration rtt{};
    bool validated = false;
  };
  struct Peer {
    NodeId node;
    std::optional<env::SocketAddr> vaddr;
    std::vector<Candidate> candidates;
    std::vector<Outstanding> outstanding;  // bounded (kOutstandingMax)
    std::optional<std::size_t> best;       // index into candidates
    DirectRoute route;                     // valid while best is set
    std::uint32_t conns = 0;
    TimePoint last_send{};
    TimePoint last_cmm_sent{};
    TimePoint last_cmm_received{};
    TimePoint next_round = kTimePointMax;  // the next punch round while relayed and in use
    Duration round_pause{};
    TimePoint due = kTimePointMax;  // key in due_
    std::uint64_t last_used = 0;
  };
  struct StunServer {
    env::SocketAddr addr;
    std::size_t socket = 0;
    disco::TxId tx{};
    TimePoint next = kTimePointMax;
    std::uint32_t tries_left = 0;
    Duration retry{};
    std::optional<env::SocketAddr> mapped;
  };

  Peer* find(const NodeId& node);
  Peer& get(const NodeId& node);
  void evict_one();
  Candidate* candidate(Peer& p, const env::SocketAddr& addr, std::optional<std::size_t> socket);
  void start_round(Peer& p, TimePoint now);
  void send_ping(Peer& p, Candidate& c, TimePoint now);
  void send_call_me_maybe(Peer& p, TimePoint now);
  void on_message(Peer& p, const disco::Message& m, std::optional<std::size_t> socket, const env::SocketAddr& from,
                  const std::optional<env::SocketAddr>& destination, TimePoint now);
  void on_pong(Peer& p, const disco::Pong& pong, const env::SocketAddr& from,
               const std::optional<env::SocketAddr>& destination, TimePoint now);
  void choose(Peer& p, TimePoint now);
  void lose(Peer& p, TimePoint now);
  void run_peer(Peer& p, TimePoint now);
  void schedule(Peer& p, TimePoint when);
  void reschedule(Peer& p);
  void learn_reflexive(const env::SocketAddr& a, TimePoint now);
  void candidates_changed(TimePoint now);
  void send_stun(StunServer& s, TimePoint now);
  void restart_stun(TimePoint now);
  std::vector<env::SocketAddr> our_candidates() const;
  disco::TxId new_tx();
  [[nodiscard]] bool in_use(const Peer& p, TimePoint now) const;

  disco::Codec codec_;
  Io io_;
  DirectPathsConfig config_;
  std::unordered_map<NodeId, Peer> peers_;
  std::unordered_map<env::SocketAddr, Peer*> by_vaddr_;
  std::set<std::pair<TimePoint, Peer*>> due_;
  std::vector<StunServer> stun_;
  TimePoint stun_next_refresh = kTimePointMax;
  std::vector<env::SocketAddr> reflexive_;  // learned, newest last, bounded
  std::uint64_t use_clock_ = 0;
  std::uint64_t tx_counter_ = 0;
  DirectPathsStats stats_;
};

}  // namespace moosicbox::p2p::magicsock
