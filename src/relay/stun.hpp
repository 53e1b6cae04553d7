// SPDX-License-Identifier: MIT OR Apache-2.0
// stun.hpp: the STUN subset moosicbox-p2p uses (RFC 8489): Binding requests and success responses
// with XOR-MAPPED-ADDRESS, for learning a socket's reflexive (public) address from a relay's STUN
// responder. Requests carry no attributes except an optional FINGERPRINT; responses carry
// XOR-MAPPED-ADDRESS and FINGERPRINT. Long-term/short-term credentials, ALTERNATE-SERVER, TCP and
// the classic RFC 3489 CHANGE-REQUEST tests are not supported (documented in docs/protocol.md).
// Pure functions, no I/O; every parser refuses malformed input with a clear error.
// Layer: relay (internal; the endpoint's path layer and netcheck use it too). Thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "moosicbox/p2p/core/bytes.hpp"
#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/env/socket_addr.hpp"

namespace moosicbox::p2p::stun {

using env::SocketAddr;

/// kMagicCookie is the fixed value at bytes 4..7 of every RFC 5389/8489 message.
inline constexpr std::uint32_t kMagicCookie = 0x2112A442;
/// kHeaderSize is the STUN message header size.
inline constexpr std::size_t kHeaderSize = 20;
/// kMessageSizeMax bounds what the parsers accept (a response is far smaller).
inline constexpr std::size_t kMessageSizeMax = 548;
/// kDefaultPort is the STUN port relays answer on unless configured otherwise.
inline constexpr std::uint16_t kDefaultPort = 3478;

/// TxId is the 96-bit transaction id.
using TxId = std::array<std::byte, 12>;

/// looks_like_stun reports whether `packet` has a STUN header (two zero high bits, the magic
/// cookie, a length that is a multiple of 4 and matches): cheap, for demultiplexing a socket that
/// also carries QUIC and disco.
[[nodiscard]] bool looks_like_stun(ByteView packet) noexcept;

/// binding_request returns a Binding request with transaction id `tx` (and FINGERPRINT).
[[nodiscard]] Bytes binding_request(const TxId& tx);
/// parse_binding_request checks a Binding request and returns its transaction id. Unknown
/// comprehension-optional attributes are skipped; a comprehension-required one, a bad
/// FINGERPRINT, a truncated attribute or a wrong class/method is an error (protocol_error).
[[nodiscard]] P2PResult<TxId> parse_binding_request(ByteView packet);
/// binding_response returns the success response to `tx` carrying XOR-MAPPED-ADDRESS `observed`
/// (and FINGERPRINT).
[[nodiscard]] Bytes binding_response(const TxId& tx, const SocketAddr& observed);

/// BindingResponse is a parsed success response.
struct BindingResponse {
  TxId tx{};
  SocketAddr mapped;  ///< XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS from an old server)
};
/// parse_binding_response checks a Binding success response. Errors (protocol_error): not STUN,
/// not a success response, no (XOR-)MAPPED-ADDRESS, a bad family or length, a bad FINGERPRINT, an
/// unknown comprehension-required attribute. Comprehension-optional attributes, MESSAGE-INTEGRITY
/// (not verified: the subset has no credentials) and RFC 3489's SOURCE-/CHANGED-ADDRESS are skipped.
[[nodiscard]] P2PResult<BindingResponse> parse_binding_response(ByteView packet);

}  // namespace moosicbox::p2p::stun
