// SPDX-License-Identifier: MIT OR Apache-2.0
// packet.hpp: the stateless side of QUIC a demultiplexer needs before (or without) a connection:
// reading a datagram's connection ids, Version Negotiation, Stateless Reset, Retry and its tokens, and
// refusing a connection without keeping state.
// Layer: quic. Pure functions; thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "moosicbox/p2p/core/bytes.hpp"
#include "quic/types.hpp"

namespace moosicbox::p2p::quic {

/// kVersion1 is QUIC version 1 (RFC 9000), the version this engine speaks.
inline constexpr std::uint32_t kVersion1 = 0x00000001;

/// StaticSecret keys what an endpoint derives statelessly: stateless reset tokens and Retry tokens.
/// Draw it once per endpoint from the environment's random source.
using StaticSecret = std::array<std::uint8_t, 32>;

/// HeaderKind classifies a datagram by its first packet's header.
enum class HeaderKind {
  short_header,         ///< a 1-RTT packet: only the destination id is readable
  long_header,          ///< a long-header packet of a version we speak
  unsupported_version,  ///< a long-header packet of another version: answer with Version Negotiation
  version_negotiation,  ///< a Version Negotiation packet (version 0)
  invalid,              ///< too short or malformed: drop it
};

/// Header is what decode_header learns from a datagram without decrypting it.
struct Header {
  HeaderKind kind = HeaderKind::invalid;
  std::uint32_t version = 0;
  ConnectionId dcid;
  ConnectionId scid;
};

/// decode_header reads the version and connection ids of the first packet in `datagram`. Short-header
/// packets are read with kLocalCidSize as their destination id length. Never fails: bad input gives
/// HeaderKind::invalid.
[[nodiscard]] Header decode_header(ByteView datagram) noexcept;

/// InitialPacket is a client Initial packet that may start a connection.
struct InitialPacket {
  std::uint32_t version = 0;
  ConnectionId dcid;
  ConnectionId scid;
  Bytes token;  ///< the address-validation token (empty when the client has none)
};

/// decode_initial returns the Initial packet at the start of `datagram` when it can open a new
/// connection (a client Initial of a supported version, padded to at least 1200 bytes); nullopt
/// otherwise.
[[nodiscard]] std::optional<InitialPacket> decode_initial(ByteView datagram);

/// write_version_negotiation writes a Version Negotiation packet answering `header` (a packet of an
/// unsupported version) into `out`, listing version 1. Returns the bytes written, 0 if `out` is too
/// small.
[[nodiscard]] std::size_t write_version_negotiation(std::span<std::byte> out, const Header& header,
                                                    const RandomFn& random);

/// write_stateless_reset writes a Stateless Reset for destination id `dcid` into `out`, shorter than
/// the `received_size` byte datagram that triggered it (RFC 9000 §10.3.3, so two endpoints cannot
/// loop). Returns the bytes written, 0 when no reset may be sent (the trigger is too short).
[[nodiscard]] std::size_t write_stateless_reset(std::span<std::byte> out, const StaticSecret& secret,
                                                const ConnectionId& dcid, std::size_t received_size,
                                                const RandomFn& random);

/// stateless_reset_token derives the reset token of connection id `cid` from `secret`; the endpoint
/// that issued `cid` and its reset path compute the same token.
[[nodiscard]] std::array<std::uint8_t, 16> stateless_reset_token(const StaticSecret& secret, const ConnectionId& cid);

/// kRetryTokenLifetime is how long a Retry token stays valid.
inline constexpr Duration kRetryTokenLifetime = std::chrono::seconds(10);

/// write_retry writes a Retry packet for `initial` (received from `client`) into `out`, with a fresh
/// server connection id and a token sealed with `secret`. Returns the bytes written.
/// Errors: network_error when `out` is too small or the token cannot be made.
[[nodiscard]] P2PResult<std::size_t> write_retry(std::span<std::byte> out, const InitialPacket& initial,
                                                 const Address& client, const StaticSecret& secret, TimePoint now,
                                                 const RandomFn& random);

/// RetryValidation is what a valid Retry token proves: the client's original destination id, and the
/// id the server chose in its Retry (now the client's destination id).
struct RetryValidation {
  ConnectionId original_dcid;
  ConnectionId retry_scid;
};

/// validate_retry_token checks the token of `initial` from `client`: made by this endpoint (sealed
/// with `secret`), for this client address, and not expired. Returns nullopt when it is not valid.
[[nodiscard]] std::optional<RetryValidation> validate_retry_token(const InitialPacket& initial, const Address& client,
                                                                  const StaticSecret& secret, TimePoint now);

/// write_refusal writes an Initial packet with CONNECTION_CLOSE(CONNECTION_REFUSED) answering
/// `initial`, so a client learns at once that the server is busy, without the server keeping any
/// state. Returns the bytes written, 0 on failure.
[[nodiscard]] std::size_t write_refusal(std::span<std::byte> out, const InitialPacket& initial,
                                        std::string_view reason);

/// kConnectionRefused is the QUIC transport error code of a refused connection.
inline constexpr std::uint64_t kConnectionRefused = 0x2;

/// to_tstamp converts a TimePoint to ngtcp2's clock (nanoseconds, offset so that time zero of a
/// simulated clock is not mistaken for "unset").
[[nodiscard]] std::uint64_t to_tstamp(TimePoint t) noexcept;
/// from_tstamp is the inverse of to_tstamp; UINT64_MAX (no deadline) maps to kTimePointMax.
[[nodiscard]] TimePoint from_tstamp(std::uint64_t ts) noexcept;

}  // namespace moosicbox::p2p::quic
