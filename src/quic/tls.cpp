// tls.cpp: builds GnuTLS credentials from a node key. The node's Ed25519 seed becomes the TLS private
// key and its public key the RFC 7250 raw public key, so the TLS identity is the node id itself.
// Layer: quic. Construction only; the result is immutable.
#include "quic/tls.hpp"

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include <cstring>
#include <utility>

#include "quic/tls_native.hpp"

namespace p2p::quic {

namespace {
// TLS 1.3 only, raw public keys both ways, X25519 only (both ends are this library, and one key
// share keeps the ClientHello and the handshake's CPU small), AES-128-GCM first (the fastest AEAD
// with AES-NI), middlebox compatibility off (QUIC has no middleboxes to appease).
constexpr const char* kPriority =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:%DISABLE_TLS13_COMPAT_MODE:-CTYPE-ALL:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK:"
    "-GROUP-ALL:+GROUP-X25519:-CIPHER-ALL:+AES-128-GCM:+CHACHA20-POLY1305:+AES-256-GCM:-SIGN-ALL:+SIGN-EDDSA-ED25519";

P2PError gnutls_error(std::string_view what, int rv) {
  return P2PError::invalid_configuration(fmt::format("TLS identity: {}: {}", what, gnutls_strerror(rv)));
}

gnutls_datum_t datum(const void* data, std::size_t size) {
  return gnutls_datum_t{static_cast<unsigned char*>(const_cast<void*>(data)), static_cast<unsigned int>(size)};
}
}  // namespace

TlsIdentity::Native::~Native() {
  if (credentials != nullptr) gnutls_certificate_free_credentials(credentials);
  if (priority != nullptr) gnutls_priority_deinit(priority);
}

TlsIdentity::TlsIdentity(NodeId id, std::unique_ptr<Native> native) noexcept
    : node_id_(id), native_(std::move(native)) {}

TlsIdentity::~TlsIdentity() = default;

P2PResult<std::shared_ptr<const TlsIdentity>> TlsIdentity::create(const SecretKey& key) {
  auto native = std::make_unique<Native>();
  int rv = gnutls_priority_init(&native->priority, kPriority, nullptr);
  if (rv != GNUTLS_E_SUCCESS) return fail(gnutls_error("priority", rv));

  gnutls_privkey_t privkey = nullptr;
  gnutls_pubkey_t pubkey = nullptr;
  // Whatever is not handed to the credentials is freed on every exit path.
  struct Cleanup {
    gnutls_privkey_t* priv;
    gnutls_pubkey_t* pub;
    ~Cleanup() {
      if (*priv != nullptr) gnutls_privkey_deinit(*priv);
      if (*pub != nullptr) gnutls_pubkey_deinit(*pub);
    }
  } cleanup{&privkey, &pubkey};

  if ((rv = gnutls_privkey_init(&privkey)) != GNUTLS_E_SUCCESS) return fail(gnutls_error("private key", rv));
  const auto& pk = key.public_key().as_bytes();
  const auto seed = key.seed();
  // GnuTLS takes the 32-byte seed as `k` and the public key as `x` (never null: it crashes), and
  // accepts a wrong `x` silently, so the derived public key is compared below.
  gnutls_datum_t x = datum(pk.data(), pk.size());
  gnutls_datum_t k = datum(seed.data(), seed.size());
  rv = gnutls_privkey_import_ecc_raw(privkey, GNUTLS_ECC_CURVE_ED25519, &x, nullptr, &k);
  if (rv != GNUTLS_E_SUCCESS) return fail(gnutls_error("import Ed25519 key", rv));
  if ((rv = gnutls_privkey_verify_params(privkey)) != GNUTLS_E_SUCCESS) {
    return fail(gnutls_error("Ed25519 key check", rv));
  }

  if ((rv = gnutls_pubkey_init(&pubkey)) != GNUTLS_E_SUCCESS) return fail(gnutls_error("public key", rv));
  if ((rv = gnutls_pubkey_import_privkey(pubkey, privkey, GNUTLS_KEY_DIGITAL_SIGNATURE, 0)) != GNUTLS_E_SUCCESS) {
    return fail(gnutls_error("derive public key", rv));
  }
  gnutls_ecc_curve_t curve{};
  gnutls_datum_t derived{};
  if ((rv = gnutls_pubkey_export_ecc_raw(pubkey, &curve, &derived, nullptr)) != GNUTLS_E_SUCCESS) {
    return fail(gnutls_error("export public key", rv));
  }
  const bool same = derived.size == pk.size() && std::memcmp(derived.data, pk.data(), pk.size()) == 0;
  gnutls_free(derived.data);
  if (curve != GNUTLS_ECC_CURVE_ED25519 || !same) {
    return fail(P2PError::invalid_configuration("TLS identity: GnuTLS derived another public key from the seed"));
  }

  if ((rv = gnutls_certificate_allocate_credentials(&native->credentials)) != GNUTLS_E_SUCCESS) {
    return fail(gnutls_error("credentials", rv));
  }
  gnutls_pcert_st pcert{};
  if ((rv = gnutls_pcert_import_rawpk(&pcert, pubkey, 0)) != GNUTLS_E_SUCCESS) {
    return fail(gnutls_error("raw public key", rv));
  }
  pubkey = nullptr;  // owned by pcert now
  rv = gnutls_certificate_set_key(native->credentials, nullptr, 0, &pcert, 1, privkey);
  if (rv != GNUTLS_E_SUCCESS) {
    gnutls_pcert_deinit(&pcert);
    return fail(gnutls_error("install key", rv));
  }
  privkey = nullptr;  // owned by the credentials, as is pcert's content
  return std::shared_ptr<const TlsIdentity>(new TlsIdentity(key.public_key(), std::move(native)));
}

}  // namespace p2p::quic
