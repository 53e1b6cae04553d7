// SPDX-License-Identifier: MIT OR Apache-2.0
// netcheck.hpp: netcheck, a one-shot report of what the network between this machine and its
// relays allows: whether UDP gets through (a STUN answer from a relay), the reflexive (public)
// addresses, whether the NAT maps one socket to the same public port for every destination (easy)
// or not (hard), hairpinning, each relay's HTTP latency and STUN ports, and whether a captive
// portal answers in the relays' place. It runs on real sockets or on a simulated host (virtual time).
// How to read a report: docs/operations.md, "Checking the network (netcheck)".
// Layer: endpoint. Runs on the given executor (or the host's runtime); no shared state, no locks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "moosicbox/p2p/core/asio.hpp"
#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/time.hpp"
#include "moosicbox/p2p/env/socket_addr.hpp"

namespace moosicbox::p2p {

namespace simnet {
class Host;
}  // namespace simnet

/// NetcheckConfig says what netcheck measures against.
struct NetcheckConfig {
  /// relay_urls are the relays to probe ("http://host:port" or "https://..."; at least one).
  std::vector<std::string> relay_urls;
  /// relay_ca_file, when set, is the PEM bundle that verifies https relays (instead of the system's
  /// trust store). Ignored under simulation.
  std::optional<std::string> relay_ca_file;
  /// timeout bounds each phase (the relays' HTTP probes, then the STUN exchange); a run takes at
  /// most about twice this long.
  Duration timeout = std::chrono::seconds(3);
  /// bind_addrs are the local UDP addresses to send STUN from, one socket each (one per family is
  /// enough). Empty: 0.0.0.0:0 and [::]:0 (on a simulated host: the wildcard of each family of its
  /// addresses).
  std::vector<env::SocketAddr> bind_addrs;
};

/// RelayReport is what one relay showed.
struct RelayReport {
  /// url is the relay's URL as configured.
  std::string url;
  /// latency is the GET /generate_204 round trip (TCP connect and TLS excluded), when it answered.
  std::optional<Duration> latency;
  /// http_status is the status of its /generate_204 answer (0: no HTTP answer).
  unsigned http_status = 0;
  /// genuine is true when the answer was a 204 echoing the challenge: a real relay, no portal.
  bool genuine = false;
  /// error says why the probe got no HTTP answer (empty when it got one).
  std::string error;
  /// stun_ports are the STUN ports its X-Moosicbox-P2P-Stun header named (empty: no STUN).
  std::vector<std::uint16_t> stun_ports;
  /// stun_answered is true when at least one of its STUN ports answered.
  bool stun_answered = false;
};

/// NetReport is netcheck's result.
struct NetReport {
  /// udp is true when any STUN request got an answer (UDP leaves and comes back).
  bool udp = false;
  /// ipv4 is the reflexive IPv4 address:port of the IPv4 socket (what relays saw), if any.
  std::optional<env::SocketAddr> ipv4;
  /// ipv6 is the reflexive IPv6 address:port of the IPv6 socket, if any.
  std::optional<env::SocketAddr> ipv6;
  /// mapping_varies_by_destination compares the reflexive address two different STUN destinations
  /// (two ports of a relay, or two relays) saw from one socket: true when they differ (a NAT that
  /// maps per destination, "hard"), false when they agree; empty with fewer than two answers.
  std::optional<bool> mapping_varies_by_destination;
  /// nat_kind is "none" (the reflexive address is the local one), "easy" (one public port for every
  /// destination: direct connections work), "hard" (the mapping varies by destination: they rarely
  /// do) or "unknown" (no STUN answer, or a single one behind a NAT).
  std::string nat_kind = "unknown";
  /// hairpinning is true when a packet sent to our own reflexive address came back to the socket
  /// (peers behind the same NAT reach each other through it), false when it did not; empty when
  /// not tested (no NAT, or no reflexive address).
  std::optional<bool> hairpinning;
  /// captive_portal is true when relays answered /generate_204 with something else than a 204
  /// echoing the challenge (and none answered correctly), false when one did; empty when no relay
  /// answered HTTP at all.
  std::optional<bool> captive_portal;
  /// preferred_relay is the URL of the genuine relay with the lowest latency, if any.
  std::optional<std::string> preferred_relay;
  /// relays are the per-relay results, in the order of NetcheckConfig::relay_urls.
  std::vector<RelayReport> relays;
};

/// netcheck probes the relays of `config` (concurrently, GET /generate_204 with a random
/// X-Moosicbox-P2P-Challenge), then sends STUN Binding requests from one UDP socket per bind
/// address to every STUN port the relays announced (resent at 0, 100 and 300 ms while unanswered),
/// and a hairpin probe to the socket's own reflexive address. Every wait is bounded by
/// config.timeout. Unreachable relays and blocked UDP are results, not errors.
/// Errors: invalid_configuration (no relay URL, a malformed one, a timeout that is not positive),
/// network_error (no UDP socket could be bound).
[[nodiscard]] asio::awaitable<P2PResult<NetReport>> netcheck(asio::any_io_executor ex, NetcheckConfig config);

/// netcheck is the same run from the simulated host `host`, in virtual time (relay URLs are plain
/// http with an IP literal or a name the network resolves). Errors: as above.
[[nodiscard]] asio::awaitable<P2PResult<NetReport>> netcheck(simnet::Host& host, NetcheckConfig config);

}  // namespace moosicbox::p2p
