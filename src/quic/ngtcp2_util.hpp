// SPDX-License-Identifier: MIT OR Apache-2.0
// ngtcp2_util.hpp: small conversions between the engine's types and ngtcp2's C types. Included only
// by the engine's .cpp files: it is the thin layer a later ngtcp2 upgrade touches.
// Layer: quic (private). Pure functions.
#pragma once

#include <ngtcp2/ngtcp2.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "quic/types.hpp"

namespace moosicbox::p2p::quic {

/// u8 views a byte pointer as the uint8_t pointer the C APIs take.
inline const std::uint8_t* u8(const std::byte* p) noexcept { return reinterpret_cast<const std::uint8_t*>(p); }
/// u8 views a byte pointer as the uint8_t pointer the C APIs take.
inline std::uint8_t* u8(std::byte* p) noexcept { return reinterpret_cast<std::uint8_t*>(p); }

/// to_ngtcp2 converts a connection id.
inline ngtcp2_cid to_ngtcp2(const ConnectionId& cid) noexcept {
  ngtcp2_cid out{};
  out.datalen = cid.size();
  if (cid.size() > 0) std::memcpy(out.data, cid.bytes().data(), cid.size());
  return out;
}

/// from_ngtcp2 converts a connection id.
inline ConnectionId from_ngtcp2(const ngtcp2_cid& cid) noexcept {
  return ConnectionId(std::span<const std::uint8_t>(cid.data, cid.datalen));
}

/// to_ngtcp2_addr views an address without copying; `addr` must outlive the result.
inline ngtcp2_addr to_ngtcp2_addr(const Address& addr) noexcept {
  ngtcp2_addr out{};
  out.addr = const_cast<ngtcp2_sockaddr*>(addr.data());
  out.addrlen = static_cast<ngtcp2_socklen>(addr.size());
  return out;
}

/// to_ngtcp2_path views a path without copying; `path` must outlive the result.
inline ngtcp2_path to_ngtcp2_path(const Path& path) noexcept {
  ngtcp2_path out{};
  out.local = to_ngtcp2_addr(path.local);
  out.remote = to_ngtcp2_addr(path.remote);
  return out;
}

/// from_ngtcp2_addr copies an address (IPv4 or IPv6; anything else gives an unspecified address).
inline Address from_ngtcp2_addr(const ngtcp2_addr& addr) noexcept {
  Address out;
  if (addr.addr == nullptr || addr.addrlen == 0 || addr.addrlen > sizeof(ngtcp2_sockaddr_union)) return out;
  if (addr.addr->sa_family != AF_INET && addr.addr->sa_family != AF_INET6) return out;
  std::memcpy(out.data(), addr.addr, addr.addrlen);
  out.resize(addr.addrlen);
  return out;
}

/// from_ngtcp2_path copies a path.
inline Path from_ngtcp2_path(const ngtcp2_path& path) noexcept {
  return Path{from_ngtcp2_addr(path.local), from_ngtcp2_addr(path.remote)};
}

}  // namespace moosicbox::p2p::quic
