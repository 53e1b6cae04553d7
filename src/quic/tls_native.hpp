// SPDX-License-Identifier: MIT OR Apache-2.0
// tls_native.hpp: the GnuTLS objects behind a TlsIdentity, for the engine's .cpp files.
// Layer: quic (private). Immutable after creation.
#pragma once

#include <gnutls/gnutls.h>

#include <ctime>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "moosicbox/p2p/core/node_id.hpp"

#include "quic/tls.hpp"

namespace moosicbox::p2p::quic {

/// TlsIdentity::Native owns the shared credentials (key and raw public key) and the priority cache.
struct TlsIdentity::Native {
  gnutls_certificate_credentials_t credentials = nullptr;
  gnutls_priority_t priority = nullptr;
  ~Native();
};

/// TicketIssuer::Native owns the ticket key and the anti-replay context with its bounded record:
/// ClientHello keys in arrival order (their expiry order: each expires a fixed window after it
/// arrived) and a set for lookups.
struct TicketIssuer::Native {
  gnutls_datum_t key{};
  gnutls_anti_replay_t anti_replay = nullptr;
  Limits limits;
  Counters counters;
  std::deque<std::pair<std::time_t, std::string>> by_expiry;
  std::unordered_set<std::string> seen;
  // Issued tickets (by SHA-256 of the ticket) and the client each went to, oldest first.
  std::unordered_map<std::string, NodeId> ticket_peers;
  std::deque<std::string> ticket_order;
  ~Native();
  /// remember_ticket records that `ticket` was issued to `peer`.
  void remember_ticket(std::span<const std::uint8_t> ticket, const NodeId& peer);
  /// ticket_peer returns the client a remembered ticket was issued to.
  [[nodiscard]] std::optional<NodeId> ticket_peer(std::span<const std::uint8_t> ticket) const;
  /// add records one ClientHello (the anti-replay add function): 0 when new, a GnuTLS error when
  /// seen before or when the record is full (either way GnuTLS refuses its early data).
  int add(std::time_t expires, std::string key_bytes);
};

}  // namespace moosicbox::p2p::quic
