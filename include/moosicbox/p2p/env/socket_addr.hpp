// SPDX-License-Identifier: MIT OR Apache-2.0
// socket_addr.hpp: SocketAddr, an IPv4 or IPv6 address with a port (and an IPv6 scope id), the
// address vocabulary of datagram sockets, paths and tickets. Text forms: "1.2.3.4:5" and "[::1]:5"
// (with "%<index>" before the bracket for a scoped address, "[fe80::1%2]:5").
// Layer: env. Immutable value type (24 bytes, trivially copyable); thread-safe.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "moosicbox/p2p/core/assert.hpp"
#include "moosicbox/p2p/core/error.hpp"

namespace moosicbox::p2p::env {

/// SocketAddr is an IP address (IPv4 or IPv6) with a UDP port. IPv6 addresses may carry a scope id
/// (interface index) for link-local use. Ordering: every IPv4 address sorts before every IPv6 one,
/// then by address bytes, port and scope id.
class SocketAddr {
 public:
  /// Family is the address family.
  enum class Family : std::uint8_t { v4 = 4, v6 = 6 };

  /// kTextLengthMax is the longest text SocketAddr::parse reads (an IPv6 address with a scope id,
  /// brackets and a port, with room to spare).
  static constexpr std::size_t kTextLengthMax = 64;

  /// SocketAddr is 0.0.0.0:0 (the unspecified IPv4 address, port 0).
  constexpr SocketAddr() noexcept = default;

  /// v4 builds an IPv4 address from its 4 bytes in network order.
  [[nodiscard]] static constexpr SocketAddr v4(std::array<std::uint8_t, 4> ip, std::uint16_t port) noexcept {
    SocketAddr a;
    a.family_ = Family::v4;
    for (std::size_t i = 0; i < 4; ++i) a.bytes_[i] = ip[i];
    a.port_ = port;
    return a;
  }
  /// v6 builds an IPv6 address from its 16 bytes in network order and an optional scope id.
  [[nodiscard]] static constexpr SocketAddr v6(const std::array<std::uint8_t, 16>& ip, std::uint16_t port,
                                               std::uint32_t scope_id = 0) noexcept {
    SocketAddr a;
    a.family_ = Family::v6;
    a.bytes_ = ip;
    a.port_ = port;
    a.scope_id_ = scope_id;
    return a;
  }
  /// v4_loopback is 127.0.0.1:port.
  [[nodiscard]] static constexpr SocketAddr v4_loopback(std::uint16_t port = 0) noexcept {
    return v4({127, 0, 0, 1}, port);
  }
  /// v6_loopback is [::1]:port.
  [[nodiscard]] static constexpr SocketAddr v6_loopback(std::uint16_t port = 0) noexcept {
    std::array<std::uint8_t, 16> ip{};
    ip[15] = 1;
    return v6(ip, port);
  }
  /// v4_any is 0.0.0.0:port (bind to every IPv4 address).
  [[nodiscard]] static constexpr SocketAddr v4_any(std::uint16_t port = 0) noexcept { return v4({}, port); }
  /// v6_any is [::]:port (bind to every IPv6 address; dual-stack unless the socket is v6-only).
  [[nodiscard]] static constexpr SocketAddr v6_any(std::uint16_t port = 0) noexcept { return v6({}, port); }

  /// parse reads "a.b.c.d:port" or "[ipv6]:port" (optionally "[ipv6%scope]:port" with a numeric
  /// scope id). Surrounding whitespace is ignored. IPv4 octets and the port are decimal without
  /// leading zeros; the port may be 0.
  /// Errors: invalid_configuration naming what is wrong (missing port, bad octet, port out of range,
  /// unbalanced bracket, bad IPv6 address, bad scope id, text too long).
  [[nodiscard]] static P2PResult<SocketAddr> parse(std::string_view text);
  /// parse_ip reads an IP address without a port ("127.0.0.1", "::1", "[::1]", "fe80::1%2") and
  /// pairs it with `port`. Errors: invalid_configuration as for parse.
  [[nodiscard]] static P2PResult<SocketAddr> parse_ip(std::string_view text, std::uint16_t port);

  /// family returns Family::v4 or Family::v6.
  [[nodiscard]] constexpr Family family() const noexcept { return family_; }
  /// is_v4 is true for an IPv4 address.
  [[nodiscard]] constexpr bool is_v4() const noexcept { return family_ == Family::v4; }
  /// is_v6 is true for an IPv6 address (including v4-mapped ones).
  [[nodiscard]] constexpr bool is_v6() const noexcept { return family_ == Family::v6; }
  /// port returns the port in host order.
  [[nodiscard]] constexpr std::uint16_t port() const noexcept { return port_; }
  /// scope_id returns the IPv6 scope id (interface index), 0 when none (always 0 for IPv4).
  [[nodiscard]] constexpr std::uint32_t scope_id() const noexcept { return scope_id_; }
  /// v4_bytes returns the 4 address bytes. Requires is_v4().
  [[nodiscard]] constexpr std::array<std::uint8_t, 4> v4_bytes() const noexcept {
    MOOSICBOX_P2P_ASSERT(is_v4());
    return {bytes_[0], bytes_[1], bytes_[2], bytes_[3]};
  }
  /// v6_bytes returns the 16 address bytes. Requires is_v6().
  [[nodiscard]] constexpr const std::array<std::uint8_t, 16>& v6_bytes() const noexcept {
    MOOSICBOX_P2P_ASSERT(is_v6());
    return bytes_;
  }
  /// ip_bytes views the address bytes: 4 for IPv4, 16 for IPv6.
  [[nodiscard]] constexpr std::span<const std::uint8_t> ip_bytes() const noexcept {
    return {bytes_.data(), is_v4() ? std::size_t{4} : std::size_t{16}};
  }

  /// with_port returns the same address with another port.
  [[nodiscard]] constexpr SocketAddr with_port(std::uint16_t port) const noexcept {
    SocketAddr a = *this;
    a.port_ = port;
    return a;
  }
  /// without_scope returns the same address with scope id 0.
  [[nodiscard]] constexpr SocketAddr without_scope() const noexcept {
    SocketAddr a = *this;
    a.scope_id_ = 0;
    return a;
  }
  /// is_unspecified is true for 0.0.0.0 and ::.
  [[nodiscard]] bool is_unspecified() const noexcept;
  /// is_loopback is true for 127.0.0.0/8, ::1 and v4-mapped 127.0.0.0/8.
  [[nodiscard]] bool is_loopback() const noexcept;
  /// is_multicast is true for 224.0.0.0/4, ff00::/8 and v4-mapped 224.0.0.0/4.
  [[nodiscard]] bool is_multicast() const noexcept;
  /// is_v4_mapped is true for an IPv6 address of the form \::ffff:a.b.c.d.
  [[nodiscard]] bool is_v4_mapped() const noexcept;
  /// canonical returns the IPv4 address of a v4-mapped IPv6 address, otherwise the address itself.
  [[nodiscard]] SocketAddr canonical() const noexcept;
  /// to_v6_mapped returns \::ffff:a.b.c.d for an IPv4 address, otherwise the address itself.
  [[nodiscard]] SocketAddr to_v6_mapped() const noexcept;

  /// to_string returns "1.2.3.4:5" or "[::1]:5" ("[fe80::1%2]:5" with a scope id). IPv6 text follows
  /// RFC 5952 (lower case, longest zero run compressed). parse(to_string()) gives the address back.
  [[nodiscard]] std::string to_string() const;
  /// ip_string returns the address without port or brackets ("1.2.3.4", "::1", "fe80::1%2").
  [[nodiscard]] std::string ip_string() const;

  /// Addresses compare by family (IPv4 first), address bytes, port and scope id, in that order; a
  /// v4-mapped IPv6 address is not equal to its IPv4 address (see canonical()).
  ///@{
  friend constexpr auto operator<=>(const SocketAddr&, const SocketAddr&) noexcept = default;
  friend constexpr bool operator==(const SocketAddr&, const SocketAddr&) noexcept = default;
  ///@}

 private:
  // Member order is the comparison order.
  Family family_ = Family::v4;
  std::array<std::uint8_t, 16> bytes_{};  // IPv4 uses the first 4; the rest stay zero
  std::uint16_t port_ = 0;
  std::uint32_t scope_id_ = 0;
};

}  // namespace moosicbox::p2p::env

template <>
struct std::hash<moosicbox::p2p::env::SocketAddr> {
  std::size_t operator()(const moosicbox::p2p::env::SocketAddr& a) const noexcept {
    // FNV-1a over the fields. It is not collision resistant against chosen keys (a hostile peer
    // controls its source port and, with IPv6, much of its address), so a table keyed by untrusted
    // addresses must bound its size, as every table in the library does.
    std::uint64_t h = 0xcbf29ce484222325ULL;
    const auto mix = [&h](std::uint64_t v) {
      h ^= v;
      h *= 0x100000001b3ULL;
    };
    mix(static_cast<std::uint64_t>(a.family()));
    for (const auto b : a.ip_bytes()) mix(b);
    mix(a.port());
    mix(a.scope_id());
    return static_cast<std::size_t>(h);
  }
};

/// @cond
/// fmt::formatter for SocketAddr prints to_string().
template <>
struct fmt::formatter<moosicbox::p2p::env::SocketAddr> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const moosicbox::p2p::env::SocketAddr& a, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(a.to_string(), ctx);
  }
};
/// @endcond
