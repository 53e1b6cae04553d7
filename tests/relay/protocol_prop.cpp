// SPDX-License-Identifier: MIT OR Apache-2.0
// protocol_prop.cpp: every relay frame decodes to what was encoded, and arbitrary bytes never crash
// the decoder (it either decodes, or fails with a protocol error).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "relay/protocol.hpp"

namespace moosicbox::p2p::relay::proto {
namespace {

template <std::size_t N>
std::array<std::uint8_t, N> gen_array() {
  std::array<std::uint8_t, N> a{};
  const auto v = *rc::gen::container<std::vector<std::uint8_t>>(N, rc::gen::arbitrary<std::uint8_t>());
  std::copy(v.begin(), v.end(), a.begin());
  return a;
}

// gen_frame returns a frame and, for packet frames, the storage its datagrams view.
Frame gen_frame(Bytes& storage) {
  const int kind = *rc::gen::inRange(0, 11);
  switch (kind) {
    case 0:
      return ServerChallenge{*rc::gen::arbitrary<std::uint8_t>(), gen_array<kChallengeSize>()};
    case 1:
      return ClientAuth{gen_array<32>(), gen_array<64>()};
    case 2: {
      const auto port = *rc::gen::arbitrary<std::uint16_t>();
      const auto addr =
          *rc::gen::arbitrary<bool>() ? SocketAddr::v4(gen_array<4>(), port) : SocketAddr::v6(gen_array<16>(), port);
      return ServerWelcome{addr, *rc::gen::arbitrary<std::uint32_t>(), *rc::gen::arbitrary<std::uint32_t>()};
    }
    case 3:
    case 4: {
      const int n = *rc::gen::inRange(1, 8);
      for (int i = 0; i < n; ++i) {
        const auto size = *rc::gen::inRange<std::size_t>(1, 3000);
        Bytes d(size, std::byte{static_cast<std::uint8_t>(i)});
        append_datagram(storage, d);
      }
      Packets p{gen_array<32>(), storage};
      if (kind == 3) return SendPacket{p};
      return RecvPacket{p};
    }
    case 5:
      return Ping{gen_array<8>()};
    case 6:
      return Pong{gen_array<8>()};
    case 7:
      return PeerGone{gen_array<32>(), *rc::gen::inRange<std::uint8_t>(0, 2)};
    case 8:
      return Health{
          *rc::gen::arbitrary<std::uint8_t>(),
          *rc::gen::container<std::string>(*rc::gen::inRange<std::size_t>(0, 256), rc::gen::arbitrary<char>())};
    case 9:
      return Restarting{*rc::gen::arbitrary<std::uint32_t>(), *rc::gen::arbitrary<std::uint32_t>()};
    default: {
      StunInfo s;
      const auto n = *rc::gen::inRange<std::size_t>(1, kStunPortsMax + 1);
      for (std::size_t i = 0; i < n; ++i) s.ports.push_back(*rc::gen::inRange<std::uint16_t>(1, 65535));
      return s;
    }
  }
}

RC_GTEST_PROP(RelayProtocolProp, DecodeOfEncodeIsIdentity, ()) {
  Bytes storage;
  const Frame f = gen_frame(storage);
  Bytes wire;
  encode(wire, f);
  auto d = decode(wire, 64 * 1024);
  RC_ASSERT(d.has_value());
  RC_ASSERT(*d == f);
  Bytes again;
  encode(again, *d);
  RC_ASSERT(again == wire);
}

RC_GTEST_PROP(RelayProtocolProp, ArbitraryBytesNeverCrashTheDecoder, (const std::vector<std::uint8_t>& raw)) {
  Bytes b(raw.size());
  std::transform(raw.begin(), raw.end(), b.begin(), [](std::uint8_t v) { return std::byte{v}; });
  if (!b.empty())
    b[0] = std::byte{*rc::gen::elementOf(
        std::vector<std::uint8_t>{0x01, 0x02, 0x03, 0x10, 0x11, 0x20, 0x21, 0x30, 0x31, 0x32, 0x99})};
  auto d = decode(b, 1024);
  if (!d) {
    RC_ASSERT(d.error().code() == P2PErrc::protocol_error);
  } else if (const auto* p = std::get_if<SendPacket>(&*d)) {
    DatagramIterator it(p->datagrams);
    std::size_t total = 0;
    for (auto g = it.next(); !g.empty(); g = it.next()) total += 2 + g.size();
    RC_ASSERT(total == p->datagrams.size());
  }
}

}  // namespace
}  // namespace moosicbox::p2p::relay::proto
