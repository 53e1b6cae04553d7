// SPDX-License-Identifier: MIT OR Apache-2.0
// endpoint_env.hpp: the endpoint's environment, real or simulated. EndpointEnv gives the clock,
// timers, randomness and interface list; PathSocket is one UDP socket, a kernel one (env::UdpSocket)
// or one on a simulated host (simnet::UdpSocket). The choice is made once, at bind: every call
// dispatches on a variant whose alternative never changes (a predictable branch, no virtual call),
// so the real build keeps its packet path while the same driver runs in virtual time.
// Layer: endpoint (internal). Belongs to the endpoint's executor.
#pragma once

#include <cstddef>
#include <span>
#include <utility>
#include <variant>
#include <vector>

#include "moosicbox/p2p/env/asio_env.hpp"
#include "moosicbox/p2p/env/sim_env.hpp"
#include "moosicbox/p2p/env/udp_socket.hpp"
#include "moosicbox/p2p/simnet/network.hpp"

namespace moosicbox::p2p::detail {

using env::SocketAddr;

/// EndpointEnv is the endpoint's view of the outside world.
class EndpointEnv {
 public:
  /// Timer waits on the environment's clock.
  class Timer {
   public:
    explicit Timer(env::AsioEnv::Timer t) : t_(std::move(t)) {}
    explicit Timer(env::SimEnv::Timer t) : t_(std::move(t)) {}
    /// wait_until: see env::Timer. Errors: cancelled.
    asio::awaitable<P2PResult<void>> wait_until(TimePoint at) {
      if (auto* real = std::get_if<env::AsioEnv::Timer>(&t_)) return real->wait_until(at);
      return std::get<env::SimEnv::Timer>(t_).wait_until(at);
    }
    void cancel() noexcept {
      std::visit([](auto& t) { t.cancel(); }, t_);
    }

   private:
    std::variant<env::AsioEnv::Timer, env::SimEnv::Timer> t_;
  };

  /// EndpointEnv is the real environment on `ex`.
  explicit EndpointEnv(asio::any_io_executor ex) : real_(std::move(ex)) {}
  /// EndpointEnv is simulated host `host`'s environment (its runtime's executor and virtual clock).
  explicit EndpointEnv(simnet::Host& host) : real_(host.env().executor()), host_(&host) {}

  /// host is the simulated host, null for the real environment.
  [[nodiscard]] simnet::Host* host() const noexcept { return host_; }
  [[nodiscard]] bool simulated() const noexcept { return host_ != nullptr; }
  [[nodiscard]] asio::any_io_executor executor() const { return real_.executor(); }
  [[nodiscard]] TimePoint now() const noexcept { return host_ != nullptr ? host_->env().now() : real_.now(); }
  [[nodiscard]] Timer make_timer() const {
    if (host_ != nullptr) return Timer(host_->env().make_timer());
    return Timer(real_.make_timer());
  }
  void fill_random(std::span<std::byte> out) noexcept {
    if (host_ != nullptr) {
      host_->env().fill_random(out);
    } else {
      real_.fill_random(out);
    }
  }

 private:
  env::AsioEnv real_;
  simnet::Host* host_ = nullptr;
};

/// PathSocket is one of the endpoint's UDP sockets (see the file comment).
class PathSocket {
 public:
  explicit PathSocket(env::UdpSocket s) : s_(std::move(s)) {}
  explicit PathSocket(simnet::UdpSocket s) : s_(std::move(s)) {}

  [[nodiscard]] SocketAddr local_addr() const {
    return std::visit([](const auto& s) { return s.local_addr(); }, s_);
  }
  [[nodiscard]] std::size_t gso_segments_max() const {
    return std::visit([](const auto& s) { return s.gso_segments_max(); }, s_);
  }
  [[nodiscard]] bool is_dual_stack() const {
    return std::visit([](const auto& s) { return s.is_dual_stack(); }, s_);
  }
  P2PResult<std::size_t> try_send_batch(std::span<const env::Transmit> out) {
    if (auto* real = std::get_if<env::UdpSocket>(&s_)) return real->try_send_batch(out);
    return std::get<simnet::UdpSocket>(s_).try_send_batch(out);
  }
  P2PResult<std::size_t> try_receive_batch(std::span<const std::span<std::byte>> buffers,
                                           std::span<env::RecvMeta> metas) {
    if (auto* real = std::get_if<env::UdpSocket>(&s_)) return real->try_receive_batch(buffers, metas);
    return std::get<simnet::UdpSocket>(s_).try_receive_batch(buffers, metas);
  }
  asio::awaitable<P2PResult<void>> wait_readable() {
    if (auto* real = std::get_if<env::UdpSocket>(&s_)) return real->wait_readable();
    return std::get<simnet::UdpSocket>(s_).wait_readable();
  }
  asio::awaitable<P2PResult<void>> wait_writable() {
    if (auto* real = std::get_if<env::UdpSocket>(&s_)) return real->wait_writable();
    return std::get<simnet::UdpSocket>(s_).wait_writable();
  }
  void cancel() noexcept {
    std::visit([](auto& s) { s.cancel(); }, s_);
  }
  void close() noexcept {
    std::visit([](auto& s) { s.close(); }, s_);
  }

 private:
  std::variant<env::UdpSocket, simnet::UdpSocket> s_;
};

static_assert(env::DatagramSocket<PathSocket>);

/// interface_addresses lists the addresses a wildcard socket bound at `bound` is reachable at: the
/// simulated host's addresses, or the up interfaces of this machine (IPv4 for an IPv4 socket, both
/// for a dual-stack one; link-local IPv6 skipped, a NodeAddr carries no scope id).
std::vector<SocketAddr> interface_addresses(const EndpointEnv& env, const SocketAddr& bound, bool dual_stack);

}  // namespace moosicbox::p2p::detail
