// SPDX-License-Identifier: MIT OR Apache-2.0
// tls.cpp: builds GnuTLS credentials from a node key. The node's Ed25519 seed becomes the TLS private
// key and its public key the RFC 7250 raw public key, so the TLS identity is the node id itself.
// Layer: quic. Construction only; the result is immutable.
#include "quic/tls.hpp"

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include <cstring>
#include <utility>

#include "quic/tls_native.hpp"

namespace moosicbox::p2p::quic {

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

}  // namespace moosicbox::p2p::quic

namespace moosicbox::p2p::quic {

namespace {
int anti_replay_add(void* ptr, std::time_t expires, const gnutls_datum_t* key, const gnutls_datum_t*) {
  auto* native = static_cast<TicketIssuer::Native*>(ptr);
  return native->add(expires, std::string(reinterpret_cast<const char*>(key->data), key->size));
}
}  // namespace

TicketIssuer::Native::~Native() {
  if (anti_replay != nullptr) gnutls_anti_replay_deinit(anti_replay);
  if (key.data != nullptr) {
    gnutls_memset(key.data, 0, key.size);
    gnutls_free(key.data);
  }
}

int TicketIssuer::Native::add(std::time_t expires, std::string key_bytes) {
  // GnuTLS stamps each entry `window` seconds past its own clock, so an entry's expiry minus the
  // window is "now" for the record.
  const auto window_s = std::chrono::duration_cast<std::chrono::seconds>(limits.replay_window).count();
  const std::time_t now = expires - static_cast<std::time_t>(window_s);
  while (!by_expiry.empty() && by_expiry.front().first <= now) {
    seen.erase(by_expiry.front().second);
    by_expiry.pop_front();
  }
  if (seen.contains(key_bytes)) {
    ++counters.replays_refused;
    return GNUTLS_E_DB_ENTRY_EXISTS;
  }
  if (seen.size() >= limits.replay_entries_max) {
    ++counters.full_refused;
    return GNUTLS_E_DB_ERROR;
  }
  seen.insert(key_bytes);
  by_expiry.emplace_back(expires, std::move(key_bytes));
  ++counters.accepted;
  return 0;
}

TicketIssuer::TicketIssuer(std::unique_ptr<Native> native) noexcept : native_(std::move(native)) {}
TicketIssuer::~TicketIssuer() = default;

P2PResult<std::shared_ptr<TicketIssuer>> TicketIssuer::create(Limits limits) {
  if (limits.replay_entries_max == 0 || limits.tickets_max == 0 || limits.replay_window.count() < 1000) {
    return fail(P2PError::invalid_configuration(
        "0-RTT: the anti-replay record and the ticket memory need at least one entry, the replay window at least 1 s"));
  }
  auto native = std::make_unique<Native>();
  native->limits = limits;
  int rv = gnutls_session_ticket_key_generate(&native->key);
  if (rv != GNUTLS_E_SUCCESS) return fail(gnutls_error("session ticket key", rv));
  if ((rv = gnutls_anti_replay_init(&native->anti_replay)) != GNUTLS_E_SUCCESS) {
    return fail(gnutls_error("anti-replay", rv));
  }
  gnutls_anti_replay_set_window(native->anti_replay, static_cast<unsigned>(limits.replay_window.count()));
  gnutls_anti_replay_set_add_function(native->anti_replay, anti_replay_add);
  gnutls_anti_replay_set_ptr(native->anti_replay, native.get());
  return std::shared_ptr<TicketIssuer>(new TicketIssuer(std::move(native)));
}

const TicketIssuer::Counters& TicketIssuer::counters() const noexcept { return native_->counters; }
std::size_t TicketIssuer::replay_entries() const noexcept { return native_->seen.size(); }

}  // namespace moosicbox::p2p::quic

namespace moosicbox::p2p::quic {

namespace {
// Reader walks a TLS message without ever reading past its end.
struct Reader {
  std::span<const std::uint8_t> in;
  bool ok = true;
  std::uint64_t uint(std::size_t n) {
    if (!ok || in.size() < n) {
      ok = false;
      return 0;
    }
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = (v << 8) | in[i];
    in = in.subspan(n);
    return v;
  }
  std::span<const std::uint8_t> bytes(std::size_t n) {
    if (!ok || in.size() < n) {
      ok = false;
      return {};
    }
    auto out = in.first(n);
    in = in.subspan(n);
    return out;
  }
  std::span<const std::uint8_t> vec(std::size_t len_bytes) { return bytes(static_cast<std::size_t>(uint(len_bytes))); }
};

constexpr std::uint64_t kExtPreSharedKey = 41;

std::string ticket_key(std::span<const std::uint8_t> ticket) {
  std::string digest(32, '\0');
  if (gnutls_hash_fast(GNUTLS_DIG_SHA256, ticket.data(), ticket.size(), digest.data()) != 0) return {};
  return digest;
}
}  // namespace

std::optional<std::span<const std::uint8_t>> first_psk_identity(std::span<const std::uint8_t> client_hello) noexcept {
  Reader r{client_hello};
  r.uint(2);    // legacy_version
  r.bytes(32);  // random
  r.vec(1);     // legacy_session_id
  r.vec(2);     // cipher_suites
  r.vec(1);     // legacy_compression_methods
  Reader ext{r.vec(2)};
  if (!r.ok) return std::nullopt;
  while (ext.ok && !ext.in.empty()) {
    const auto type = ext.uint(2);
    Reader body{ext.vec(2)};
    if (!ext.ok) return std::nullopt;
    if (type != kExtPreSharedKey) continue;
    Reader ids{body.vec(2)};
    const auto identity = ids.vec(2);
    ids.uint(4);  // obfuscated_ticket_age
    if (!body.ok || !ids.ok || identity.empty()) return std::nullopt;
    return identity;
  }
  return std::nullopt;
}

std::optional<std::span<const std::uint8_t>> new_session_ticket_ticket(std::span<const std::uint8_t> message) noexcept {
  Reader r{message};
  r.uint(4);  // ticket_lifetime
  r.uint(4);  // ticket_age_add
  r.vec(1);   // ticket_nonce
  const auto ticket = r.vec(2);
  if (!r.ok || ticket.empty()) return std::nullopt;
  return ticket;
}

void TicketIssuer::Native::remember_ticket(std::span<const std::uint8_t> ticket, const NodeId& peer) {
  std::string digest = ticket_key(ticket);
  if (digest.empty() || ticket_peers.contains(digest)) return;
  while (ticket_peers.size() >= limits.tickets_max && !ticket_order.empty()) {
    ticket_peers.erase(ticket_order.front());
    ticket_order.pop_front();
  }
  ticket_peers.emplace(digest, peer);
  ticket_order.push_back(std::move(digest));
}

std::optional<NodeId> TicketIssuer::Native::ticket_peer(std::span<const std::uint8_t> ticket) const {
  const auto it = ticket_peers.find(ticket_key(ticket));
  if (it == ticket_peers.end()) return std::nullopt;
  return it->second;
}

std::size_t TicketIssuer::tickets_remembered() const noexcept { return native_->ticket_peers.size(); }

}  // namespace moosicbox::p2p::quic
