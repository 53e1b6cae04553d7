// SPDX-License-Identifier: MIT OR Apache-2.0
// tls.hpp: TlsIdentity, an endpoint's TLS 1.3 identity: its node key as an RFC 7250 raw Ed25519
// public key, loaded once into GnuTLS credentials that every connection of the endpoint shares.
// Layer: quic. Immutable after create(); connections on one strand share it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/node_id.hpp"
#include "moosicbox/p2p/core/secret_key.hpp"

namespace moosicbox::p2p::quic {

/// TlsIdentity holds the GnuTLS credentials and priorities derived from one node key.
class TlsIdentity {
 public:
  /// create imports `key` into GnuTLS (Ed25519 private key and raw public key) and checks that
  /// GnuTLS derives the same public key as the node id.
  /// Errors: invalid_configuration when GnuTLS rejects the key or derives another public key.
  [[nodiscard]] static P2PResult<std::shared_ptr<const TlsIdentity>> create(const SecretKey& key);

  TlsIdentity(const TlsIdentity&) = delete;
  TlsIdentity& operator=(const TlsIdentity&) = delete;
  ~TlsIdentity();

  /// node_id returns the identity's public key.
  [[nodiscard]] const NodeId& node_id() const noexcept { return node_id_; }

  /// Native is the GnuTLS side (defined in tls_native.hpp, for the engine's .cpp files only).
  struct Native;
  /// native returns the GnuTLS credentials and priority cache.
  [[nodiscard]] const Native& native() const noexcept { return *native_; }

 private:
  TlsIdentity(NodeId id, std::unique_ptr<Native> native) noexcept;
  NodeId node_id_;
  std::unique_ptr<Native> native_;
};

/// TicketIssuer is a server's side of TLS session resumption and 0-RTT: the key that seals the
/// session tickets it issues (random per issuer, so tickets die with the endpoint that issued them)
/// and the anti-replay record of the 0-RTT ClientHellos it accepted (RFC 8446 §8.2: a ClientHello
/// seen twice within the replay window gets no early data; so does one that finds the record full).
/// Layer: quic. Not thread-safe: the connections of one strand share it.
class TicketIssuer {
 public:
  /// Limits bounds the anti-replay record.
  struct Limits {
    /// replay_window is how old (by the client's ticket age) a 0-RTT ClientHello may be; older
    /// ones, and every ClientHello while the record is full, fall back to a 1-RTT handshake.
    std::chrono::milliseconds replay_window{10'000};
    /// replay_entries_max caps the record (about 100 bytes an entry).
    std::size_t replay_entries_max = 16'384;
    /// tickets_max caps how many issued tickets the issuer remembers the client of (about 100
    /// bytes each; the oldest are forgotten first). A client resuming with a ticket the issuer
    /// forgot still gets its early data, but the application sees the connection only once the
    /// handshake completed.
    std::size_t tickets_max = 16'384;
  };
  /// Counters says what the anti-replay record did.
  struct Counters {
    std::uint64_t accepted = 0;         ///< 0-RTT ClientHellos recorded
    std::uint64_t replays_refused = 0;  ///< seen before within the window: no early data
    std::uint64_t full_refused = 0;     ///< the record was full: no early data
  };

  /// create generates a ticket key. Errors: invalid_configuration (GnuTLS refuses).
  [[nodiscard]] static P2PResult<std::shared_ptr<TicketIssuer>> create(Limits limits);
  /// create generates a ticket key with the default limits.
  [[nodiscard]] static P2PResult<std::shared_ptr<TicketIssuer>> create() { return create(Limits{}); }

  TicketIssuer(const TicketIssuer&) = delete;
  TicketIssuer& operator=(const TicketIssuer&) = delete;
  ~TicketIssuer();

  /// counters returns the anti-replay counters.
  [[nodiscard]] const Counters& counters() const noexcept;
  /// tickets_remembered returns how many issued tickets map to their client now.
  [[nodiscard]] std::size_t tickets_remembered() const noexcept;
  /// replay_entries returns how many ClientHellos the record holds now.
  [[nodiscard]] std::size_t replay_entries() const noexcept;

  /// Native is the GnuTLS side (tls_native.hpp).
  struct Native;
  /// native returns the ticket key and the anti-replay context.
  [[nodiscard]] Native& native() noexcept { return *native_; }

 private:
  explicit TicketIssuer(std::unique_ptr<Native> native) noexcept;
  std::unique_ptr<Native> native_;
};

/// first_psk_identity returns the first PSK identity (RFC 8446 §4.2.11) of a ClientHello body (the
/// handshake message without its 4-byte header): the session ticket a resuming client presents.
/// nullopt when the message has none or does not parse; never reads past `client_hello`.
[[nodiscard]] std::optional<std::span<const std::uint8_t>> first_psk_identity(
    std::span<const std::uint8_t> client_hello) noexcept;
/// new_session_ticket_ticket returns the ticket of a NewSessionTicket body (RFC 8446 §4.6.1), or
/// nullopt when it does not parse.
[[nodiscard]] std::optional<std::span<const std::uint8_t>> new_session_ticket_ticket(
    std::span<const std::uint8_t> message) noexcept;

/// kTicketLifetime is how long a session ticket stays valid (the lifetime servers announce).
inline constexpr std::chrono::seconds kTicketLifetime{6 * 3600};

}  // namespace moosicbox::p2p::quic
