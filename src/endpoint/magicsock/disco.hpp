// SPDX-License-Identifier: MIT OR Apache-2.0
// disco.hpp: the path-discovery protocol ("disco", docs/protocol.md, "Path discovery (disco)"):
// small authenticated control packets that travel on the endpoint's UDP sockets beside QUIC and
// through relays inside relay datagrams. They find and validate direct paths between two nodes:
// Ping (a transaction id), Pong (the ping's transaction id and the address the ping came from) and
// CallMeMaybe (the sender's candidate addresses, asking the receiver to ping them).
//
// Packet: magic (5 bytes: 0x2d "DSCO") | version (u8, 1) | sender node id (32) |
// nonce (24) | crypto_box(plaintext) (16-byte tag + plaintext). The box key is X25519 derived from
// both nodes' ed25519 keys (libsodium crypto_sign_ed25519_{pk,sk}_to_curve25519, crypto_box_beforenm
// cached per peer). The box nonce is BLAKE2b-192 of the 62-byte header and the recipient's node
// id, so the box authenticates the header and the recipient (an ed25519 key and its negation share
// one X25519 key: the sender id itself must be bound). The first byte 0x2d has both high bits
// clear, which no QUIC v1 packet has (every QUIC packet sets the fixed bit 0x40), and it is not a
// STUN message type byte (0x00 or 0x01).
// The nonce is a strictly increasing 64-bit big-endian counter followed by 16 random bytes; the
// receiver keeps a sliding replay window per sender (kReplayWindow counters below the highest) and
// drops replays and counters older than the window.
// Layer: endpoint (path layer, internal). A Codec belongs to one executor: no locks.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <span>
#include <unordered_map>
#include <variant>
#include <vector>

#include "moosicbox/p2p/core/bytes.hpp"
#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/node_id.hpp"
#include "moosicbox/p2p/core/secret_key.hpp"
#include "moosicbox/p2p/env/socket_addr.hpp"

namespace moosicbox::p2p::magicsock::disco {

using env::SocketAddr;

/// kMagic starts every disco packet.
inline constexpr std::array<std::byte, 5> kMagic = {std::byte{0x2d}, std::byte{'D'}, std::byte{'S'}, std::byte{'C'},
                                                    std::byte{'O'}};
/// kVersion is the disco version this code speaks.
inline constexpr std::uint8_t kVersion = 1;
/// kNonceSize is the crypto_box nonce size.
inline constexpr std::size_t kNonceSize = 24;
/// kTagSize is the crypto_box authentication tag size.
inline constexpr std::size_t kTagSize = 16;
/// kHeaderSize is magic, version, sender id and nonce.
inline constexpr std::size_t kHeaderSize = kMagic.size() + 1 + NodeId::kSize + kNonceSize;
/// kCandidatesMax bounds the addresses of one CallMeMaybe.
inline constexpr std::size_t kCandidatesMax = 16;
/// kPacketSizeMax bounds a disco packet (a full CallMeMaybe of IPv6 addresses fits).
inline constexpr std::size_t kPacketSizeMax = 512;
/// kReplayWindow is how many counters below the highest seen a receiver still accepts once.
inline constexpr std::uint64_t kReplayWindow = 256;

/// TxId is a ping's transaction id (random).
using TxId = std::array<std::byte, 12>;

/// MessageType is the first plaintext byte.
enum class MessageType : std::uint8_t { ping = 1, pong = 2, call_me_maybe = 3 };

/// Ping asks the receiver to answer with a Pong to the address the ping came from.
struct Ping {
  TxId tx{};
  friend bool operator==(const Ping&, const Ping&) = default;
};
/// Pong answers a Ping: its transaction id and the source address the ping arrived from (for a
/// ping that came through a relay, the unspecified address [::]:0).
struct Pong {
  TxId tx{};
  SocketAddr src;
  friend bool operator==(const Pong&, const Pong&) = default;
};
/// CallMeMaybe lists the sender's candidate addresses (at most kCandidatesMax, none unspecified).
struct CallMeMaybe {
  std::vector<SocketAddr> candidates;
  friend bool operator==(const CallMeMaybe&, const CallMeMaybe&) = default;
};
/// Message is one disco message.
using Message = std::variant<Ping, Pong, CallMeMaybe>;

/// looks_like_disco reports whether `packet` starts with the disco magic (cheap: the receive path
/// calls it on every datagram before QUIC sees it).
[[nodiscard]] bool looks_like_disco(ByteView packet) noexcept;

/// encode_plaintext / decode_plaintext are the message (de)serialisers, exposed for tests.
/// Plaintext: type (u8) | body. Ping: tx (12). Pong: tx (12) | address. CallMeMaybe: count (u8) |
/// address*count. Address: family (u8: 4 or 6) | IP (4 or 16) | port (u16 big-endian).
/// decode errors (protocol_error) name the problem: empty, unknown type, truncated, trailing bytes,
/// bad family, too many candidates, unspecified candidate.
[[nodiscard]] Bytes encode_plaintext(const Message& m);
/// decode_plaintext: see encode_plaintext.
[[nodiscard]] P2PResult<Message> decode_plaintext(ByteView plaintext);

/// CodecStats counts what a Codec opened and refused.
struct CodecStats {
  std::uint64_t sealed = 0;
  std::uint64_t opened = 0;
  std::uint64_t malformed = 0;  // bad magic/version/size, or a plaintext that does not decode
  std::uint64_t forged = 0;     // the box did not open (wrong key, tampered), or an invalid sender id
  std::uint64_t replayed = 0;   // a nonce counter seen before or older than the window
  std::uint64_t own = 0;        // a packet from our own node id (dropped)
};

/// Opened is a packet that passed every check.
struct Opened {
  NodeId from;
  Message message;
};

/// Codec seals and opens disco packets for one node. It caches the X25519 shared key of up to
/// `peers_max` peers and the replay window of as many senders (least recently used evicted; a
/// sender evicted from the table starts a fresh window, documented as the one replay case).
class Codec {
 public:
  /// RandomFn fills a buffer with random bytes (the endpoint's random source: seeded under
  /// simulation).
  using RandomFn = std::function<void(std::span<std::byte>)>;

  /// Codec takes the node's key, the first nonce counter (the caller passes the wall clock in
  /// microseconds, so a restarted node keeps counting upwards) and the random source.
  /// A `peers_max` of 0 is taken as 1.
  Codec(const SecretKey& key, std::uint64_t counter_start, RandomFn random, std::size_t peers_max = 4096);
  /// A Codec is not copyable (its peer table links into its own LRU list); it may be moved.
  ///@{
  Codec(const Codec&) = delete;
  Codec& operator=(const Codec&) = delete;
  Codec(Codec&&) = default;
  Codec& operator=(Codec&&) = default;
  ///@}
  /// ~Codec wipes the X25519 secret and every cached shared key.
  ~Codec();

  /// seal returns the packet carrying `m` to `to`. Errors: invalid_node_id (`to` has no X25519
  /// form); protocol_error for a message no receiver accepts (a CallMeMaybe with more than
  /// kCandidatesMax candidates or an unspecified one) and when the nonce counter is exhausted.
  /// A Pong's scope id is not carried.
  [[nodiscard]] P2PResult<Bytes> seal(const NodeId& to, const Message& m);
  /// open checks and opens a packet. Errors (each counted): protocol_error (malformed),
  /// authentication_failed (forged), protocol_error "replayed" (replay), protocol_error "own packet".
  /// Only a packet whose box opens enters the peer table, so forged packets never evict a peer.
  [[nodiscard]] P2PResult<Opened> open(ByteView packet);

  [[nodiscard]] const CodecStats& stats() const noexcept { return stats_; }
  /// node_id returns our node id (the sender id of sealed packets).
  [[nodiscard]] const NodeId& node_id() const noexcept { return self_; }

 private:
  struct Peer;
  /// peer returns the entry of `id`, creating it (and evicting the least recently used one) when
  /// absent; nullptr when `id` has no X25519 form. Marks the entry most recently used.
  Peer* peer(const NodeId& id);
  /// shared_key computes the crypto_box key with `id`; false when `id` has no X25519 form.
  bool shared_key(const NodeId& id, std::array<unsigned char, 32>& out) const;
  /// insert adds a peer entry with a known shared key (evicting the least recently used one).
  Peer& insert(const NodeId& id, const std::array<unsigned char, 32>& shared);
  /// touch marks `p` most recently used.
  void touch(Peer& p);

  NodeId self_;
  std::array<unsigned char, 32> x_secret_{};  // our X25519 secret (from the ed25519 key)
  std::uint64_t counter_;
  RandomFn random_;
  std::size_t peers_max_;
  struct Peer {
    NodeId id;
    std::array<unsigned char, 32> shared{};                // crypto_box_beforenm
    std::uint64_t highest = 0;                             // highest counter opened from this peer (0: none)
    std::array<std::uint64_t, kReplayWindow / 64> seen{};  // bit i: counter highest - i opened
    std::list<NodeId>::iterator lru;
  };
  std::unordered_map<NodeId, Peer> peers_;
  std::list<NodeId> lru_;  // most recently used first
  CodecStats stats_;
};

}  // namespace moosicbox::p2p::magicsock::disco
