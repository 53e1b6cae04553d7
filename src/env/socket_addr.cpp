// SPDX-License-Identifier: MIT OR Apache-2.0
// socket_addr.cpp: SocketAddr text parsing and formatting, and its conversion to and from the
// kernel's sockaddr structures.
// Layer: env. Stateless; thread-safe.
#include "moosicbox/p2p/env/socket_addr.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "env/sockaddr.hpp"

namespace moosicbox::p2p::env {
namespace {

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// quoted renders untrusted text for an error message: printable ASCII as is, everything else
// escaped, long input cut, so a hostile string cannot flood or corrupt a log line.
std::string quoted(std::string_view text) {
  constexpr std::size_t kShownMax = 48;
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size() && i < kShownMax; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
  if (text.size() > kShownMax) out += "...";
  out += '"';
  return out;
}

std::unexpected<P2PError> bad(std::string_view text, std::string_view why) {
  return fail(P2PError::invalid_configuration(fmt::format("bad socket address {}: {}", quoted(text), why)));
}

// parse_decimal reads a decimal number without sign or leading zeros, at most `max`.
std::optional<std::uint32_t> parse_decimal(std::string_view digits, std::uint32_t max) noexcept {
  if (digits.empty() || digits.size() > 10) return std::nullopt;
  if (digits.size() > 1 && digits.front() == '0') return std::nullopt;
  std::uint64_t v = 0;
  for (const char c : digits) {
    if (!is_digit(c)) return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v > max) return std::nullopt;
  return static_cast<std::uint32_t>(v);
}

P2PResult<std::uint16_t> parse_port(std::string_view whole, std::string_view digits) {
  if (digits.empty()) return bad(whole, "missing port after ':'");
  for (const char c : digits) {
    if (!is_digit(c)) return bad(whole, fmt::format("port {} is not a decimal number", quoted(digits)));
  }
  if (digits.size() > 1 && digits.front() == '0') return bad(whole, "port has a leading zero");
  const auto v = parse_decimal(digits, 65535);
  if (!v) return bad(whole, fmt::format("port {} is out of range (0-65535)", quoted(digits)));
  return static_cast<std::uint16_t>(*v);
}

P2PResult<std::array<std::uint8_t, 4>> parse_v4(std::string_view whole, std::string_view ip) {
  std::array<std::uint8_t, 4> out{};
  std::size_t octet = 0;
  while (true) {
    const auto dot = ip.find('.');
    const auto part = ip.substr(0, dot);
    if (octet == 4) return bad(whole, "IPv4 address has more than 4 octets");
    if (part.empty()) return bad(whole, fmt::format("IPv4 octet {} is empty", octet + 1));
    for (const char c : part) {
      if (!is_digit(c))
        return bad(whole, fmt::format("IPv4 octet {} {} is not a decimal number", octet + 1, quoted(part)));
    }
    if (part.size() > 1 && part.front() == '0') {
      return bad(whole, fmt::format("IPv4 octet {} {} has a leading zero", octet + 1, quoted(part)));
    }
    const auto v = parse_decimal(part, 255);
    if (!v) return bad(whole, fmt::format("IPv4 octet {} {} is out of range (0-255)", octet + 1, quoted(part)));
    out[octet++] = static_cast<std::uint8_t>(*v);
    if (dot == std::string_view::npos) break;
    ip.remove_prefix(dot + 1);
  }
  if (octet != 4) return bad(whole, fmt::format("IPv4 address has {} octets, expected 4", octet));
  return out;
}

struct V6 {
  std::array<std::uint8_t, 16> bytes{};
  std::uint32_t scope = 0;
};

P2PResult<V6> parse_v6(std::string_view whole, std::string_view ip) {
  V6 out;
  const auto pct = ip.find('%');
  if (pct != std::string_view::npos) {
    const auto scope = ip.substr(pct + 1);
    if (scope.empty()) return bad(whole, "empty scope id after '%'");
    const auto v = parse_decimal(scope, 0xffffffffU);
    if (!v) return bad(whole, fmt::format("scope id {} is not a decimal interface index", quoted(scope)));
    out.scope = *v;
    ip = ip.substr(0, pct);
  }
  // The longest IPv6 text is 45 characters (ffff:...:255.255.255.255); inet_pton needs a C string.
  constexpr std::size_t kV6TextMax = 45;
  if (ip.empty()) return bad(whole, "empty IPv6 address");
  if (ip.size() > kV6TextMax) return bad(whole, "IPv6 address too long");
  for (const char c : ip) {
    const bool ok = is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
    if (!ok) return bad(whole, fmt::format("bad character {} in IPv6 address", quoted(std::string_view(&c, 1))));
  }
  char buf[kV6TextMax + 1] = {};
  std::memcpy(buf, ip.data(), ip.size());
  ::in6_addr a{};
  if (::inet_pton(AF_INET6, buf, &a) != 1) return bad(whole, fmt::format("{} is not a valid IPv6 address", quoted(ip)));
  std::memcpy(out.bytes.data(), &a, 16);
  return out;
}

}  // namespace

P2PResult<SocketAddr> SocketAddr::parse(std::string_view text) {
  const auto whole = text;
  text = trim(text);
  if (text.empty()) return bad(whole, "empty");
  if (text.size() > kTextLengthMax) return bad(whole, fmt::format("longer than {} characters", kTextLengthMax));
  if (text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return bad(whole, "'[' without matching ']'");
    const auto rest = text.substr(close + 1);
    if (rest.empty()) return bad(whole, "missing port (expected \"[ipv6]:port\")");
    if (rest.front() != ':') return bad(whole, "expected ':' after ']'");
    auto v6 = parse_v6(whole, text.substr(1, close - 1));
    if (!v6) return std::unexpected(std::move(v6.error()));
    auto port = parse_port(whole, rest.substr(1));
    if (!port) return std::unexpected(std::move(port.error()));
    return SocketAddr::v6(v6->bytes, *port, v6->scope);
  }
  if (text.find(']') != std::string_view::npos) return bad(whole, "']' without matching '['");
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return bad(whole, "missing port (expected \"a.b.c.d:port\" or \"[ipv6]:port\")");
  if (text.find(':') != colon) return bad(whole, "an IPv6 address needs brackets (\"[ipv6]:port\")");
  auto v4 = parse_v4(whole, text.substr(0, colon));
  if (!v4) return std::unexpected(std::move(v4.error()));
  auto port = parse_port(whole, text.substr(colon + 1));
  if (!port) return std::unexpected(std::move(port.error()));
  return SocketAddr::v4(*v4, *port);
}

P2PResult<SocketAddr> SocketAddr::parse_ip(std::string_view text, std::uint16_t port) {
  const auto whole = text;
  text = trim(text);
  if (text.empty()) return bad(whole, "empty");
  if (text.size() > kTextLengthMax) return bad(whole, fmt::format("longer than {} characters", kTextLengthMax));
  if (text.front() == '[') {
    if (text.back() != ']') return bad(whole, "'[' without matching ']' at the end");
    text = text.substr(1, text.size() - 2);
  }
  if (text.find(':') != std::string_view::npos) {
    auto v6 = parse_v6(whole, text);
    if (!v6) return std::unexpected(std::move(v6.error()));
    return SocketAddr::v6(v6->bytes, port, v6->scope);
  }
  auto v4 = parse_v4(whole, text);
  if (!v4) return std::unexpected(std::move(v4.error()));
  return SocketAddr::v4(*v4, port);
}

bool SocketAddr::is_unspecified() const noexcept {
  for (const auto b : ip_bytes()) {
    if (b != 0) return false;
  }
  return true;
}

bool SocketAddr::is_v4_mapped() const noexcept {
  if (!is_v6()) return false;
  for (std::size_t i = 0; i < 10; ++i) {
    if (bytes_[i] != 0) return false;
  }
  return bytes_[10] == 0xff && bytes_[11] == 0xff;
}

bool SocketAddr::is_loopback() const noexcept {
  const auto a = canonical();
  if (a.is_v4()) return a.bytes_[0] == 127;
  for (std::size_t i = 0; i < 15; ++i) {
    if (a.bytes_[i] != 0) return false;
  }
  return a.bytes_[15] == 1;
}

bool SocketAddr::is_multicast() const noexcept {
  const auto a = canonical();
  if (a.is_v4()) return (a.bytes_[0] & 0xf0) == 0xe0;
  return a.bytes_[0] == 0xff;
}

SocketAddr SocketAddr::canonical() const noexcept {
  if (!is_v4_mapped()) return *this;
  return v4({bytes_[12], bytes_[13], bytes_[14], bytes_[15]}, port_);
}

SocketAddr SocketAddr::to_v6_mapped() const noexcept {
  if (!is_v4()) return *this;
  std::array<std::uint8_t, 16> ip{};
  ip[10] = 0xff;
  ip[11] = 0xff;
  for (std::size_t i = 0; i < 4; ++i) ip[12 + i] = bytes_[i];
  return v6(ip, port_);
}

std::string SocketAddr::ip_string() const {
  if (is_v4()) return fmt::format("{}.{}.{}.{}", bytes_[0], bytes_[1], bytes_[2], bytes_[3]);
  char buf[INET6_ADDRSTRLEN] = {};
  ::in6_addr a{};
  std::memcpy(&a, bytes_.data(), 16);
  // inet_ntop writes RFC 5952 text (lower case, longest run of zero groups compressed).
  const char* r = ::inet_ntop(AF_INET6, &a, buf, sizeof(buf));
  MOOSICBOX_P2P_ASSERT(r != nullptr);
  if (scope_id_ != 0) return fmt::format("{}%{}", buf, scope_id_);
  return std::string(buf);
}

std::string SocketAddr::to_string() const {
  if (is_v4()) return fmt::format("{}:{}", ip_string(), port_);
  return fmt::format("[{}]:{}", ip_string(), port_);
}

namespace detail {

socklen_t to_sockaddr(const SocketAddr& addr, ::sockaddr_storage& out) noexcept {
  std::memset(&out, 0, sizeof(out));
  if (addr.is_v4()) {
    ::sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(addr.port());
    std::memcpy(&sin.sin_addr, addr.ip_bytes().data(), 4);
    std::memcpy(&out, &sin, sizeof(sin));
    return sizeof(sin);
  }
  ::sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(addr.port());
  sin6.sin6_scope_id = addr.scope_id();
  std::memcpy(&sin6.sin6_addr, addr.ip_bytes().data(), 16);
  std::memcpy(&out, &sin6, sizeof(sin6));
  return sizeof(sin6);
}

std::optional<SocketAddr> from_sockaddr(const ::sockaddr_storage& in, socklen_t len) noexcept {
  if (in.ss_family == AF_INET && len >= static_cast<socklen_t>(sizeof(::sockaddr_in))) {
    ::sockaddr_in sin{};
    std::memcpy(&sin, &in, sizeof(sin));
    std::array<std::uint8_t, 4> ip{};
    std::memcpy(ip.data(), &sin.sin_addr, 4);
    return SocketAddr::v4(ip, ntohs(sin.sin_port));
  }
  if (in.ss_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(::sockaddr_in6))) {
    ::sockaddr_in6 sin6{};
    std::memcpy(&sin6, &in, sizeof(sin6));
    std::array<std::uint8_t, 16> ip{};
    std::memcpy(ip.data(), &sin6.sin6_addr, 16);
    return SocketAddr::v6(ip, ntohs(sin6.sin6_port), sin6.sin6_scope_id);
  }
  return std::nullopt;
}

}  // namespace detail
}  // namespace moosicbox::p2p::env
