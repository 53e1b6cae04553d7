// tls_native.hpp: the GnuTLS objects behind a TlsIdentity, for the engine's .cpp files.
// Layer: quic (private). Immutable after creation.
#pragma once

#include <gnutls/gnutls.h>

#include "quic/tls.hpp"

namespace p2p::quic {

/// TlsIdentity::Native owns the shared credentials (key and raw public key) and the priority cache.
struct TlsIdentity::Native {
  gnutls_certificate_credentials_t credentials = nullptr;
  gnutls_priority_t priority = nullptr;
  ~Native();
};

}  // namespace p2p::quic
