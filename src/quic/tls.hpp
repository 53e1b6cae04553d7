// tls.hpp: TlsIdentity, an endpoint's TLS 1.3 identity: its node key as an RFC 7250 raw Ed25519
// public key, loaded once into GnuTLS credentials that every connection of the endpoint shares.
// Layer: quic. Immutable after create(); connections on one strand share it.
#pragma once

#include <memory>

#include "p2p/core/error.hpp"
#include "p2p/core/node_id.hpp"
#include "p2p/core/secret_key.hpp"

namespace p2p::quic {

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

}  // namespace p2p::quic
