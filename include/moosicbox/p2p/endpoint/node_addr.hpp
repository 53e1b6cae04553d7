// SPDX-License-Identifier: MIT OR Apache-2.0
// node_addr.hpp: NodeAddr, everything needed to dial a node: its NodeId, optionally its home relay
// URL, and the direct UDP addresses it may be reached at; and its ticket, the text form a person
// copies from one device and pastes on another.
// Layer: endpoint. Value type; not synchronised (copy it between threads).
//
// Ticket format, version 1
// ------------------------
//   ticket   = "p2p" VERSION zbase32(payload)
//   VERSION  = one decimal digit, "1" for this version
//   payload  = length:u16  body  checksum:u32      (big-endian integers)
//   length   = the byte length of the whole payload (length field and checksum included)
//   checksum = CRC-32 (ISO-HDLC, the zlib / Ethernet CRC) of version:u8 || length || body
//   body(1)  = node_id:32                          ed25519 public key
//              relay_len:u8  relay_url:relay_len    0 = no relay; ASCII "http://" or "https://" URL
//              addr_count:u8                        at most 16
//              addr_count * ( family:u8              4 or 6
//                             ip:4 or ip:16          network order
//                             port:u16 )             not 0
//   zbase32  = z-base-32 (alphabet "ybndrfg8ejkmcpqxot1uwisza345h769"), most significant bit
//              first, the last character's unused low bits zero. Parsing ignores case and
//              surrounding whitespace.
// The envelope (prefix, version digit, length, checksum) is the same for every version, so a parser
// tells a mistyped ticket (checksum mismatch) from a cut-short one (length larger than the data) and
// from one written by a newer version (unknown version, checked after the checksum). CRC-32 detects
// every error confined to 32 consecutive bits: any one mistyped character and any swap of two
// neighbouring characters. Addresses carry no IPv6 scope id (an interface index means nothing on the
// reader's machine) and may appear in any order, but not twice. The longest ticket is 963 characters
// (255-byte relay URL, 16 IPv6 addresses); a node id with one IPv4 and one IPv6 address takes 110.
//
// Readable form
// -------------
//   <node_id>[@<addr>[,<addr>...]]       e.g. "ybndrf...@127.0.0.1:4433,[::1]:4433"
// where <node_id> is z-base-32 (52 characters) or hex (64) and <addr> is SocketAddr text. It has no
// relay URL and no checksum; NodeAddr::parse reads it as well as tickets, for people typing addresses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/node_id.hpp"
#include "moosicbox/p2p/env/socket_addr.hpp"

namespace moosicbox::p2p {

/// SocketAddr is the address type of the public API (an IPv4 or IPv6 address and a UDP port).
using SocketAddr = env::SocketAddr;

/// NodeAddr is a node's id plus the ways to reach it: an optional home relay and a set of direct
/// addresses. Invariants: at most kDirectAddressCountMax direct addresses, each with a non-zero port,
/// neither unspecified nor multicast, without a scope id, IPv4 never written as v4-mapped IPv6; a
/// relay URL, when set, passes validate_relay_url.
class NodeAddr {
 public:
  /// kDirectAddressCountMax bounds the direct addresses of one node (and of one ticket).
  static constexpr std::size_t kDirectAddressCountMax = 16;
  /// kRelayUrlLengthMax bounds the relay URL in bytes.
  static constexpr std::size_t kRelayUrlLengthMax = 255;
  /// kTicketVersion is the ticket version this build writes and reads.
  static constexpr unsigned kTicketVersion = 1;
  /// kTicketPrefix starts every ticket (followed by the version digit).
  static constexpr std::string_view kTicketPrefix = "p2p";
  /// kTicketLengthMax is the length of the longest version-1 ticket in characters.
  static constexpr std::size_t kTicketLengthMax = 963;

  /// NodeAddr is `id` with no relay and no direct address.
  explicit NodeAddr(const NodeId& id) noexcept : node_id_(id) {}

  /// create builds a NodeAddr from its parts (duplicate addresses collapse; IPv4-mapped IPv6
  /// addresses become IPv4; scope ids are dropped).
  /// Errors: invalid_configuration for a bad relay URL or direct address, or too many addresses.
  [[nodiscard]] static P2PResult<NodeAddr> create(const NodeId& id, std::optional<std::string_view> relay_url,
                                                  std::span<const SocketAddr> direct_addresses);

  /// node_id returns the node's identity.
  [[nodiscard]] const NodeId& node_id() const noexcept { return node_id_; }
  /// relay_url returns the home relay's URL, if any.
  [[nodiscard]] const std::optional<std::string>& relay_url() const noexcept { return relay_url_; }
  /// direct_addresses returns the direct addresses in SocketAddr order (IPv4 first).
  [[nodiscard]] const std::set<SocketAddr>& direct_addresses() const noexcept { return direct_; }

  /// set_relay_url sets the home relay. Errors: invalid_configuration when validate_relay_url fails.
  [[nodiscard]] P2PResult<void> set_relay_url(std::string_view url);
  /// clear_relay_url removes the home relay.
  void clear_relay_url() noexcept { relay_url_.reset(); }
  /// add_direct_address adds `addr` (as its canonical IPv4 form when v4-mapped, without scope id);
  /// adding an address already present does nothing.
  /// Errors: invalid_configuration for an unspecified or multicast address, port 0, or a
  /// (kDirectAddressCountMax + 1)th address.
  [[nodiscard]] P2PResult<void> add_direct_address(const SocketAddr& addr);
  /// remove_direct_address removes `addr`; returns false when it was not present.
  bool remove_direct_address(const SocketAddr& addr) noexcept;

  /// to_ticket returns the ticket (format above), e.g. "p2p1yy...".
  [[nodiscard]] std::string to_ticket() const;
  /// to_string returns the readable form "<node_id>@<addr>,...", followed by " relay <url>" when a
  /// relay is set (the relay part is for logs; parse does not read it).
  [[nodiscard]] std::string to_string() const;

  /// from_ticket reads a ticket (and only a ticket).
  /// Errors: invalid_node_id with one of these contexts: "ticket: too long ...", "ticket: wrong
  /// prefix ...", "ticket: missing version digit ...", "ticket: bad character ... at position N",
  /// "ticket: truncated ...", "ticket: unexpected data after ...", "ticket: checksum mismatch ...",
  /// "ticket: unknown version N ...", "ticket: invalid node id ...", "ticket: bad relay URL ...",
  /// "ticket: too many addresses ...", "ticket: bad address N ...".
  [[nodiscard]] static P2PResult<NodeAddr> from_ticket(std::string_view text);
  /// parse reads a ticket (text starting with "p2p") or the readable form "<node_id>[@<addr>,...]".
  /// Errors: invalid_node_id as from_ticket, or naming the bad node id or address of the readable form
  /// ("bad address 2 ...", "too many addresses ...", "duplicate address ...", "empty address ...").
  [[nodiscard]] static P2PResult<NodeAddr> parse(std::string_view text);

  /// validate_relay_url checks a relay URL: 1 to kRelayUrlLengthMax bytes of printable ASCII without
  /// spaces, starting with "http://" or "https://" followed by a host.
  /// Errors: invalid_configuration naming the problem.
  [[nodiscard]] static P2PResult<void> validate_relay_url(std::string_view url);

  /// operator== is true for the same node id, relay URL and set of direct addresses.
  friend bool operator==(const NodeAddr&, const NodeAddr&) = default;

 private:
  NodeId node_id_;
  std::optional<std::string> relay_url_;
  std::set<SocketAddr> direct_;
};

}  // namespace moosicbox::p2p

/// @cond
/// fmt::formatter for NodeAddr prints to_string().
template <>
struct fmt::formatter<moosicbox::p2p::NodeAddr> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const moosicbox::p2p::NodeAddr& a, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(a.to_string(), ctx);
  }
};
/// @endcond
