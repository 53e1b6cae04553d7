// SPDX-License-Identifier: MIT OR Apache-2.0
// packet.cpp: stateless packet handling over ngtcp2's packet functions and ngtcp2_crypto's token
// helpers.
// Layer: quic. Pure functions; thread-safe.
#include "quic/packet.hpp"

#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include <algorithm>
#include <cstring>

#include "moosicbox/p2p/core/assert.hpp"
#include "quic/ngtcp2_util.hpp"

namespace moosicbox::p2p::quic {

namespace {
// The offset keeps ngtcp2 away from timestamp 0, which a simulated clock starts at.
constexpr std::uint64_t kTstampOffset = 1'000'000'000ULL;

ConnectionId cid_of(const std::uint8_t* data, std::size_t len) {
  if (data == nullptr || len > ConnectionId::kSizeMax) return {};
  return ConnectionId(std::span<const std::uint8_t>(data, len));
}
}  // namespace

ConnectionId::ConnectionId(std::span<const std::uint8_t> bytes) noexcept {
  MOOSICBOX_P2P_ASSERT(bytes.size() <= kSizeMax);
  std::copy(bytes.begin(), bytes.end(), data_.begin());
  size_ = static_cast<std::uint8_t>(bytes.size());
}

std::string ConnectionId::to_hex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size_ * 2U);
  for (const auto b : bytes()) {
    out.push_back(kDigits[b >> 4U]);
    out.push_back(kDigits[b & 0xfU]);
  }
  return out;
}

std::uint64_t to_tstamp(TimePoint t) noexcept {
  const auto ns = t.time_since_epoch().count();
  return ns <= 0 ? kTstampOffset : static_cast<std::uint64_t>(ns) + kTstampOffset;
}

TimePoint from_tstamp(std::uint64_t ts) noexcept {
  if (ts == UINT64_MAX) return kTimePointMax;
  if (ts <= kTstampOffset) return TimePoint{};
  return TimePoint(Duration(static_cast<std::int64_t>(ts - kTstampOffset)));
}

Header decode_header(ByteView datagram) noexcept {
  Header out;
  if (datagram.empty()) return out;
  ngtcp2_version_cid vc{};
  const int rv = ngtcp2_pkt_decode_version_cid(&vc, u8(datagram.data()), datagram.size(), kLocalCidSize);
  if (rv != 0 && rv != NGTCP2_ERR_VERSION_NEGOTIATION) return out;
  // Ids longer than QUIC v1 allows only occur with unknown versions; they cannot route to us.
  if (vc.dcidlen > ConnectionId::kSizeMax || vc.scidlen > ConnectionId::kSizeMax) return out;
  out.version = vc.version;
  out.dcid = cid_of(vc.dcid, vc.dcidlen);
  out.scid = cid_of(vc.scid, vc.scidlen);
  const bool long_header = (std::to_integer<std::uint8_t>(datagram[0]) & 0x80U) != 0;
  if (!long_header) {
    out.kind = HeaderKind::short_header;
  } else if (vc.version == 0) {
    out.kind = HeaderKind::version_negotiation;
  } else if (rv == NGTCP2_ERR_VERSION_NEGOTIATION || vc.version != kVersion1) {
    // ngtcp2 also speaks drafts and v2; this engine speaks version 1 only, so both ends agree on one.
    out.kind = HeaderKind::unsupported_version;
  } else {
    out.kind = HeaderKind::long_header;
  }
  return out;
}

std::optional<InitialPacket> decode_initial(ByteView datagram) {
  ngtcp2_pkt_hd hd{};
  if (ngtcp2_accept(&hd, u8(datagram.data()), datagram.size()) != 0) return std::nullopt;
  if (hd.version != kVersion1) return std::nullopt;
  InitialPacket out;
  out.version = hd.version;
  out.dcid = cid_of(hd.dcid.data, hd.dcid.datalen);
  out.scid = cid_of(hd.scid.data, hd.scid.datalen);
  if (hd.tokenlen > 0) {
    const auto* p = reinterpret_cast<const std::byte*>(hd.token);
    out.token.assign(p, p + hd.tokenlen);
  }
  return out;
}

std::size_t write_version_negotiation(std::span<std::byte> out, const Header& header, const RandomFn& random) {
  std::byte unused{};
  random(std::span<std::byte>(&unused, 1));
  // Offer version 1 plus a reserved (greasing) version, as RFC 9000 §6.3 recommends.
  std::array<std::uint32_t, 2> versions{kVersion1, 0x1a2a3a4aU};
  const auto n = ngtcp2_pkt_write_version_negotiation(
      u8(out.data()), out.size(), std::to_integer<std::uint8_t>(unused), header.scid.bytes().data(), header.scid.size(),
      header.dcid.bytes().data(), header.dcid.size(), versions.data(), versions.size());
  return n < 0 ? 0 : static_cast<std::size_t>(n);
}

std::array<std::uint8_t, 16> stateless_reset_token(const StaticSecret& secret, const ConnectionId& cid) {
  std::array<std::uint8_t, 16> token{};
  const ngtcp2_cid c = to_ngtcp2(cid);
  const int rv = ngtcp2_crypto_generate_stateless_reset_token(token.data(), secret.data(), secret.size(), &c);
  MOOSICBOX_P2P_ASSERT(rv == 0);
  return token;
}

std::size_t write_stateless_reset(std::span<std::byte> out, const StaticSecret& secret, const ConnectionId& dcid,
                                  std::size_t received_size, const RandomFn& random) {
  // A reset must look like a short-header packet and be shorter than what triggered it. RFC 9000
  // §10.3 requires at least 21 bytes (5 unpredictable bytes and the 16-byte token); 41 bytes
  // resembles a real packet better.
  constexpr std::size_t kResetSizeMin = 21;
  constexpr std::size_t kResetSizeTypical = 41;
  if (received_size <= kResetSizeMin) return 0;
  const std::size_t size = std::min({received_size - 1, kResetSizeTypical, out.size()});
  if (size < kResetSizeMin) return 0;
  const auto token = stateless_reset_token(secret, dcid);
  std::array<std::byte, kResetSizeTypical> rand{};
  random(rand);
  const auto n =
      ngtcp2_pkt_write_stateless_reset(u8(out.data()), size, token.data(), u8(rand.data()), size - token.size());
  return n < 0 ? 0 : static_cast<std::size_t>(n);
}

P2PResult<std::size_t> write_retry(std::span<std::byte> out, const InitialPacket& initial, const Address& client,
                                   const StaticSecret& secret, TimePoint now, const RandomFn& random) {
  std::array<std::byte, kLocalCidSize> fresh{};
  random(fresh);
  const ngtcp2_cid retry_scid = to_ngtcp2(ConnectionId(std::span<const std::uint8_t>(u8(fresh.data()), fresh.size())));
  const ngtcp2_cid odcid = to_ngtcp2(initial.dcid);
  const ngtcp2_cid client_scid = to_ngtcp2(initial.scid);
  std::array<std::uint8_t, NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN> token{};
  const auto tokenlen = ngtcp2_crypto_generate_retry_token(token.data(), secret.data(), secret.size(), initial.version,
                                                           client.data(), static_cast<ngtcp2_socklen>(client.size()),
                                                           &retry_scid, &odcid, to_tstamp(now));
  if (tokenlen < 0) return fail(P2PError::network("cannot make a Retry token"));
  const auto n = ngtcp2_crypto_write_retry(u8(out.data()), out.size(), initial.version, &client_scid, &retry_scid,
                                           &odcid, token.data(), static_cast<std::size_t>(tokenlen));
  if (n < 0) return fail(P2PError::network("cannot write a Retry packet"));
  return static_cast<std::size_t>(n);
}

std::optional<RetryValidation> validate_retry_token(const InitialPacket& initial, const Address& client,
                                                    const StaticSecret& secret, TimePoint now) {
  if (initial.token.empty() || std::to_integer<std::uint8_t>(initial.token[0]) != NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY) {
    return std::nullopt;
  }
  ngtcp2_cid odcid{};
  const ngtcp2_cid dcid = to_ngtcp2(initial.dcid);
  const int rv = ngtcp2_crypto_verify_retry_token(
      &odcid, u8(initial.token.data()), initial.token.size(), secret.data(), secret.size(), initial.version,
      client.data(), static_cast<ngtcp2_socklen>(client.size()), &dcid,
      static_cast<ngtcp2_duration>(std::chrono::nanoseconds(kRetryTokenLifetime).count()), to_tstamp(now));
  if (rv != 0) return std::nullopt;
  return RetryValidation{cid_of(odcid.data, odcid.datalen), initial.dcid};
}

std::size_t write_refusal(std::span<std::byte> out, const InitialPacket& initial, std::string_view reason) {
  const ngtcp2_cid dcid = to_ngtcp2(initial.scid);
  const ngtcp2_cid scid = to_ngtcp2(initial.dcid);
  const auto n = ngtcp2_crypto_write_connection_close(u8(out.data()), out.size(), initial.version, &dcid, &scid,
                                                      kConnectionRefused, u8(as_bytes(reason).data()), reason.size());
  return n < 0 ? 0 : static_cast<std::size_t>(n);
}

}  // namespace moosicbox::p2p::quic
