// SPDX-License-Identifier: MIT OR Apache-2.0
// disco.cpp: the path-discovery codec (see disco.hpp): the plaintext (de)serialisers, the packet
// seal and open over libsodium's crypto_box, the per-peer shared-key cache and replay windows.
// Layer: endpoint (path layer, internal). A Codec belongs to one executor: no locks.
#include "endpoint/magicsock/disco.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "core/sodium_init.hpp"
#include "moosicbox/p2p/core/assert.hpp"

namespace moosicbox::p2p::magicsock::disco {

namespace {

static_assert(kNonceSize == crypto_box_NONCEBYTES);
static_assert(kTagSize == crypto_box_MACBYTES);
static_assert(crypto_box_BEFORENMBYTES == 32);
static_assert(kReplayWindow % 64 == 0);

constexpr std::size_t kTxSize = std::tuple_size_v<TxId>;
constexpr std::size_t kCounterSize = 8;
constexpr std::size_t kOffsetVersion = kMagic.size();
constexpr std::size_t kOffsetSender = kOffsetVersion + 1;
constexpr std::size_t kOffsetNonce = kOffsetSender + NodeId::kSize;

// The longest plaintext: a CallMeMaybe of kCandidatesMax IPv6 addresses.
constexpr std::size_t kAddressSizeMax = 1 + 16 + 2;
constexpr std::size_t kPlaintextSizeMax = 2 + kCandidatesMax * kAddressSizeMax;
static_assert(kHeaderSize + kTagSize + kPlaintextSizeMax <= kPacketSizeMax);

P2PError malformed(std::string why) { return P2PError::protocol(fmt::format("disco: {}", why)); }

std::string_view type_name(MessageType t) noexcept {
  switch (t) {
    case MessageType::ping:
      return "Ping";
    case MessageType::pong:
      return "Pong";
    case MessageType::call_me_maybe:
      return "CallMeMaybe";
  }
  return "message";
}

void put_u8(Bytes& out, std::uint8_t v) { out.push_back(static_cast<std::byte>(v)); }

void put_address(Bytes& out, const SocketAddr& a) {
  put_u8(out, static_cast<std::uint8_t>(a.family()));
  for (const auto b : a.ip_bytes()) put_u8(out, b);
  put_u8(out, static_cast<std::uint8_t>(a.port() >> 8));
  put_u8(out, static_cast<std::uint8_t>(a.port() & 0xff));
}

bool is_unspecified_candidate(const SocketAddr& a) noexcept { return a.is_unspecified() || a.port() == 0; }

// Reader takes bytes off the front of a plaintext; every take checks the length first.
class Reader {
 public:
  Reader(ByteView in, MessageType type) noexcept : in_(in), type_(type) {}

  [[nodiscard]] std::size_t left() const noexcept { return in_.size() - pos_; }
  [[nodiscard]] std::size_t pos() const noexcept { return pos_; }

  P2PResult<ByteView> take(std::size_t n, std::string_view what) {
    if (left() < n) {
      return fail(malformed(fmt::format("truncated {}: {} needs {} bytes at offset {}, {} left", type_name(type_), what,
                                        n, pos_, left())));
    }
    const auto v = in_.subspan(pos_, n);
    pos_ += n;
    return v;
  }

  P2PResult<std::uint8_t> u8(std::string_view what) {
    auto v = take(1, what);
    if (!v) return fail(std::move(v.error()));
    return std::to_integer<std::uint8_t>((*v)[0]);
  }

  P2PResult<SocketAddr> address() {
    auto family = u8("address family");
    if (!family) return fail(std::move(family.error()));
    if (*family != 4 && *family != 6) {
      return fail(malformed(fmt::format("bad address family {} in {} at offset {} (expected 4 or 6)", *family,
                                        type_name(type_), pos_ - 1)));
    }
    auto ip = take(*family == 4 ? 4 : 16, "IP address");
    if (!ip) return fail(std::move(ip.error()));
    auto port_bytes = take(2, "port");
    if (!port_bytes) return fail(std::move(port_bytes.error()));
    const auto port = static_cast<std::uint16_t>((std::to_integer<unsigned>((*port_bytes)[0]) << 8) |
                                                 std::to_integer<unsigned>((*port_bytes)[1]));
    if (*family == 4) {
      std::array<std::uint8_t, 4> b{};
      for (std::size_t i = 0; i < b.size(); ++i) b[i] = std::to_integer<std::uint8_t>((*ip)[i]);
      return SocketAddr::v4(b, port);
    }
    std::array<std::uint8_t, 16> b{};
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = std::to_integer<std::uint8_t>((*ip)[i]);
    return SocketAddr::v6(b, port);
  }

  P2PResult<TxId> tx() {
    auto v = take(kTxSize, "transaction id");
    if (!v) return fail(std::move(v.error()));
    TxId t{};
    std::copy(v->begin(), v->end(), t.begin());
    return t;
  }

  P2PResult<void> finish() const {
    if (left() != 0) {
      return fail(malformed(fmt::format("{} trailing bytes after a {} of {} bytes", left(), type_name(type_), pos_)));
    }
    return {};
  }

 private:
  ByteView in_;
  MessageType type_;
  std::size_t pos_ = 1;  // the type byte is read already
};

std::uint64_t read_counter(ByteView nonce) noexcept {
  std::uint64_t c = 0;
  for (std::size_t i = 0; i < kCounterSize; ++i) c = (c << 8) | std::to_integer<std::uint64_t>(nonce[i]);
  return c;
}

const unsigned char* uc(const std::byte* p) noexcept { return reinterpret_cast<const unsigned char*>(p); }
unsigned char* uc(std::byte* p) noexcept { return reinterpret_cast<unsigned char*>(p); }

// box_nonce is the nonce crypto_box uses: BLAKE2b-192 of the packet header (magic, version, sender
// id, nonce field) and the recipient's node id. The box then authenticates the whole header and
// the recipient: an ed25519 key and its negation share one X25519 key, so without this a sender id
// with its sign bit flipped would open under the same key and pass as another node.
std::array<unsigned char, kNonceSize> box_nonce(ByteView header, const NodeId& to) noexcept {
  std::array<unsigned char, kNonceSize> out{};
  crypto_generichash_state st;
  crypto_generichash_init(&st, nullptr, 0, out.size());
  crypto_generichash_update(&st, uc(header.data()), header.size());
  crypto_generichash_update(&st, to.as_bytes().data(), NodeId::kSize);
  crypto_generichash_final(&st, out.data(), out.size());
  return out;
}

// Window is the replay bitmap: bit i stands for counter highest - i.
using Window = std::array<std::uint64_t, kReplayWindow / 64>;

bool window_bit(const Window& w, std::uint64_t i) noexcept { return ((w[i / 64] >> (i % 64)) & 1U) != 0; }
void set_window_bit(Window& w, std::uint64_t i) noexcept { w[i / 64] |= std::uint64_t{1} << (i % 64); }

// shift_window moves every bit `n` places up (towards older counters); bits past the window fall off.
void shift_window(Window& w, std::uint64_t n) noexcept {
  if (n >= kReplayWindow) {
    w.fill(0);
    return;
  }
  const auto words = static_cast<std::size_t>(n / 64);
  const auto bits = static_cast<unsigned>(n % 64);
  for (std::size_t i = w.size(); i-- > 0;) {
    std::uint64_t v = 0;
    if (i >= words) {
      v = w[i - words] << bits;
      if (bits != 0 && i >= words + 1) v |= w[i - words - 1] >> (64 - bits);
    }
    w[i] = v;
  }
}

}  // namespace

bool looks_like_disco(ByteView packet) noexcept {
  return packet.size() >= kMagic.size() && std::equal(kMagic.begin(), kMagic.end(), packet.begin());
}

Bytes encode_plaintext(const Message& m) {
  Bytes out;
  out.reserve(kPlaintextSizeMax);
  if (const auto* ping = std::get_if<Ping>(&m)) {
    put_u8(out, static_cast<std::uint8_t>(MessageType::ping));
    out.insert(out.end(), ping->tx.begin(), ping->tx.end());
  } else if (const auto* pong = std::get_if<Pong>(&m)) {
    put_u8(out, static_cast<std::uint8_t>(MessageType::pong));
    out.insert(out.end(), pong->tx.begin(), pong->tx.end());
    put_address(out, pong->src);
  } else {
    const auto& cmm = std::get<CallMeMaybe>(m);
    MOOSICBOX_P2P_ASSERT(cmm.candidates.size() <= std::numeric_limits<std::uint8_t>::max());
    put_u8(out, static_cast<std::uint8_t>(MessageType::call_me_maybe));
    put_u8(out, static_cast<std::uint8_t>(cmm.candidates.size()));
    for (const auto& a : cmm.candidates) put_address(out, a);
  }
  return out;
}

P2PResult<Message> decode_plaintext(ByteView plaintext) {
  if (plaintext.empty()) return fail(malformed("empty plaintext"));
  const auto type_byte = std::to_integer<std::uint8_t>(plaintext[0]);
  switch (static_cast<MessageType>(type_byte)) {
    case MessageType::ping: {
      Reader r(plaintext, MessageType::ping);
      auto tx = r.tx();
      if (!tx) return fail(std::move(tx.error()));
      if (auto done = r.finish(); !done) return fail(std::move(done.error()));
      return Ping{*tx};
    }
    case MessageType::pong: {
      Reader r(plaintext, MessageType::pong);
      auto tx = r.tx();
      if (!tx) return fail(std::move(tx.error()));
      auto src = r.address();
      if (!src) return fail(std::move(src.error()));
      if (auto done = r.finish(); !done) return fail(std::move(done.error()));
      return Pong{*tx, *src};
    }
    case MessageType::call_me_maybe: {
      Reader r(plaintext, MessageType::call_me_maybe);
      auto count = r.u8("candidate count");
      if (!count) return fail(std::move(count.error()));
      if (*count > kCandidatesMax) {
        return fail(malformed(fmt::format("too many candidates: {} exceeds {}", *count, kCandidatesMax)));
      }
      CallMeMaybe cmm;
      cmm.candidates.reserve(*count);
      for (std::size_t i = 0; i < *count; ++i) {
        auto a = r.address();
        if (!a) return fail(std::move(a.error()));
        if (is_unspecified_candidate(*a)) {
          return fail(malformed(fmt::format("unspecified candidate {} (candidate {})", *a, i)));
        }
        cmm.candidates.push_back(*a);
      }
      if (auto done = r.finish(); !done) return fail(std::move(done.error()));
      return cmm;
    }
  }
  return fail(malformed(fmt::format("unknown message type 0x{:02x}", type_byte)));
}

Codec::Codec(const SecretKey& key, std::uint64_t counter_start, RandomFn random, std::size_t peers_max)
    : self_(key.public_key()),
      counter_(counter_start),
      random_(std::move(random)),
      peers_max_(std::max<std::size_t>(peers_max, 1)) {
  detail::ensure_sodium();
  // libsodium converts the expanded secret key (seed || public key); rebuild it from the seed.
  std::array<unsigned char, crypto_sign_PUBLICKEYBYTES> pk{};
  std::array<unsigned char, crypto_sign_SECRETKEYBYTES> sk{};
  const auto seed = key.seed();
  int rc = crypto_sign_seed_keypair(pk.data(), sk.data(), uc(seed.data()));
  MOOSICBOX_P2P_ASSERT(rc == 0);
  rc = crypto_sign_ed25519_sk_to_curve25519(x_secret_.data(), sk.data());
  MOOSICBOX_P2P_ASSERT(rc == 0);
  sodium_memzero(sk.data(), sk.size());
}

Codec::~Codec() {
  sodium_memzero(x_secret_.data(), x_secret_.size());
  for (auto& [id, p] : peers_) sodium_memzero(p.shared.data(), p.shared.size());
}

bool Codec::shared_key(const NodeId& id, std::array<unsigned char, 32>& out) const {
  std::array<unsigned char, crypto_box_PUBLICKEYBYTES> x_public{};
  if (crypto_sign_ed25519_pk_to_curve25519(x_public.data(), id.as_bytes().data()) != 0) return false;
  return crypto_box_beforenm(out.data(), x_public.data(), x_secret_.data()) == 0;
}

void Codec::touch(Peer& p) { lru_.splice(lru_.begin(), lru_, p.lru); }

Codec::Peer& Codec::insert(const NodeId& id, const std::array<unsigned char, 32>& shared) {
  while (peers_.size() >= peers_max_ && !lru_.empty()) {
    const auto victim = peers_.find(lru_.back());
    MOOSICBOX_P2P_ASSERT(victim != peers_.end());
    sodium_memzero(victim->second.shared.data(), victim->second.shared.size());
    peers_.erase(victim);
    lru_.pop_back();
  }
  lru_.push_front(id);
  auto [it, inserted] = peers_.try_emplace(id, Peer{id, shared, 0, {}, lru_.begin()});
  MOOSICBOX_P2P_ASSERT(inserted);
  return it->second;
}

Codec::Peer* Codec::peer(const NodeId& id) {
  if (auto it = peers_.find(id); it != peers_.end()) {
    touch(it->second);
    return &it->second;
  }
  std::array<unsigned char, 32> shared{};
  if (!shared_key(id, shared)) return nullptr;
  Peer& p = insert(id, shared);
  sodium_memzero(shared.data(), shared.size());
  return &p;
}

P2PResult<Bytes> Codec::seal(const NodeId& to, const Message& m) {
  if (const auto* cmm = std::get_if<CallMeMaybe>(&m)) {
    if (cmm->candidates.size() > kCandidatesMax) {
      return fail(
          malformed(fmt::format("CallMeMaybe of {} candidates exceeds {}", cmm->candidates.size(), kCandidatesMax)));
    }
    for (const auto& a : cmm->candidates) {
      if (is_unspecified_candidate(a)) return fail(malformed(fmt::format("unspecified candidate {}", a)));
    }
  }
  if (counter_ == std::numeric_limits<std::uint64_t>::max()) return fail(malformed("nonce counter exhausted"));
  Peer* p = peer(to);
  if (p == nullptr) return fail(P2PError::invalid_node_id(fmt::format("{} has no X25519 form", to)));

  const Bytes plaintext = encode_plaintext(m);
  Bytes out(kHeaderSize + kTagSize + plaintext.size());
  std::copy(kMagic.begin(), kMagic.end(), out.begin());
  out[kOffsetVersion] = std::byte{kVersion};
  std::memcpy(out.data() + kOffsetSender, self_.as_bytes().data(), NodeId::kSize);
  const std::span<std::byte> nonce(out.data() + kOffsetNonce, kNonceSize);
  const std::uint64_t counter = counter_++;
  for (std::size_t i = 0; i < kCounterSize; ++i) nonce[i] = static_cast<std::byte>(counter >> (8 * (7 - i)));
  random_(nonce.subspan(kCounterSize));
  const auto n = box_nonce(ByteView(out.data(), kHeaderSize), to);
  const int rc = crypto_box_easy_afternm(uc(out.data() + kHeaderSize), uc(plaintext.data()), plaintext.size(), n.data(),
                                         p->shared.data());
  MOOSICBOX_P2P_ASSERT(rc == 0);
  ++stats_.sealed;
  return out;
}

P2PResult<Opened> Codec::open(ByteView packet) {
  if (packet.size() > kPacketSizeMax) {
    ++stats_.malformed;
    return fail(malformed(fmt::format("packet of {} bytes exceeds {}", packet.size(), kPacketSizeMax)));
  }
  if (packet.size() < kHeaderSize + kTagSize) {
    ++stats_.malformed;
    return fail(
        malformed(fmt::format("short packet: {} bytes, at least {} needed", packet.size(), kHeaderSize + kTagSize)));
  }
  if (!looks_like_disco(packet)) {
    ++stats_.malformed;
    return fail(malformed("bad magic"));
  }
  const auto version = std::to_integer<std::uint8_t>(packet[kOffsetVersion]);
  if (version != kVersion) {
    ++stats_.malformed;
    return fail(malformed(fmt::format("unsupported version {} (this node speaks version {})", version, kVersion)));
  }
  auto sender = NodeId::from_bytes(packet.subspan(kOffsetSender, NodeId::kSize));
  if (!sender) {
    ++stats_.forged;
    return fail(P2PError::authentication_failed("disco packet with an invalid sender id"));
  }
  if (*sender == self_) {
    ++stats_.own;
    return fail(malformed("own packet"));
  }

  // Look the sender up without adding it: only a packet whose box opens may take a table slot.
  Peer* p = nullptr;
  std::array<unsigned char, 32> fresh{};
  if (auto it = peers_.find(*sender); it != peers_.end()) {
    p = &it->second;
  } else if (!shared_key(*sender, fresh)) {
    ++stats_.forged;
    return fail(P2PError::authentication_failed(fmt::format("disco packet from {:s}: no X25519 form", *sender)));
  }
  const unsigned char* key = p != nullptr ? p->shared.data() : fresh.data();

  const auto nonce = packet.subspan(kOffsetNonce, kNonceSize);
  const auto sealed = packet.subspan(kHeaderSize);
  std::array<std::byte, kPacketSizeMax> plain{};
  const std::size_t plain_size = sealed.size() - kTagSize;
  const auto n = box_nonce(packet.first(kHeaderSize), self_);
  const int rc = crypto_box_open_easy_afternm(uc(plain.data()), uc(sealed.data()), sealed.size(), n.data(), key);
  if (rc != 0) {
    sodium_memzero(fresh.data(), fresh.size());
    ++stats_.forged;
    return fail(P2PError::authentication_failed(fmt::format("disco packet from {:s}: the box does not open", *sender)));
  }
  if (p == nullptr) {
    p = &insert(*sender, fresh);
    sodium_memzero(fresh.data(), fresh.size());
  } else {
    touch(*p);
  }

  const std::uint64_t counter = read_counter(nonce);
  if (counter > p->highest) {
    shift_window(p->seen, counter - p->highest);
    p->highest = counter;
    set_window_bit(p->seen, 0);
  } else {
    const std::uint64_t back = p->highest - counter;
    if (back >= kReplayWindow || window_bit(p->seen, back)) {
      ++stats_.replayed;
      return fail(
          malformed(fmt::format("replayed packet from {:s} (counter {}, highest {})", *sender, counter, p->highest)));
    }
    set_window_bit(p->seen, back);
  }

  auto message = decode_plaintext(ByteView(plain.data(), plain_size));
  sodium_memzero(plain.data(), plain_size);
  if (!message) {
    ++stats_.malformed;
    return fail(std::move(message.error()));
  }
  ++stats_.opened;
  return Opened{*sender, std::move(*message)};
}

}  // namespace moosicbox::p2p::magicsock::disco
