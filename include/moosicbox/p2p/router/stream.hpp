// SPDX-License-Identifier: MIT OR Apache-2.0
// stream.hpp: AnyBiStream, the router's type-erased view of one bidirectional stream, and the
// erased environment its drivers use for time. The router's request logic is written once, in
// non-template code, against these; a backend's stream type (any P2PBiStream) and environment (any
// env::Environment) are wrapped by the small adapters below at the edge (serve, P2PClient).
// Layer: router. An AnyBiStream belongs to the executor of the stream it wraps.
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>

#include "moosicbox/p2p/core/asio.hpp"
#include "moosicbox/p2p/core/bytes.hpp"
#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/time.hpp"
#include "moosicbox/p2p/env/concepts.hpp"
#include "moosicbox/p2p/streams.hpp"

namespace moosicbox::p2p::router {

/// StreamPriority is a scheduling hint for a stream's outgoing data.
enum class StreamPriority : std::int8_t {
  bulk = -1,        ///< a large body: sent after interactive streams
  interactive = 0,  ///< heads and small bodies (the default)
};

/// AnyBiStream is one bidirectional stream behind a virtual interface. The operations follow
/// P2PBiStream (include/p2p/streams.hpp); the router requires that a cancelled read or write
/// completes with P2PErrc::cancelled (per-operation cancellation), which both backends provide.
class AnyBiStream {
 public:
  virtual ~AnyBiStream() = default;
  /// write queues `data`, waiting for flow control. Errors: stream_reset, connection_closed,
  /// timeout, cancelled.
  virtual asio::awaitable<P2PResult<void>> write(ByteView data) = 0;
  /// finish ends the sending half. Errors: as write.
  virtual asio::awaitable<P2PResult<void>> finish() = 0;
  /// reset aborts the sending half with `code`.
  virtual void reset(std::uint64_t code) = 0;
  /// read reads up to buffer.size() bytes; 0 means the end of the stream. Errors: stream_reset,
  /// connection_closed, timeout, cancelled.
  virtual asio::awaitable<P2PResult<std::size_t>> read(std::span<std::byte> buffer) = 0;
  /// stop asks the peer to stop sending, with `code`.
  virtual void stop(std::uint64_t code) = 0;
  /// id returns the stream's id within its connection.
  [[nodiscard]] virtual std::uint64_t id() const = 0;
  /// set_priority passes a scheduling hint to backends that schedule streams by priority (a stream
  /// type with `set_priority(std::int32_t)`, larger first as in quinn); others ignore it.
  virtual void set_priority(StreamPriority priority) = 0;
  /// is_early reports whether some of the received bytes came as 0-RTT early data, which an
  /// attacker may replay (stream types with `is_early()`; others never carry early data).
  [[nodiscard]] virtual bool is_early() const = 0;
  /// handshake waits until the stream's connection completed its handshake, after which nothing
  /// can be a replay (stream types with `handshake()`; others complete at once).
  virtual asio::awaitable<P2PResult<void>> handshake() = 0;
};

/// BiStreamAdapter wraps a backend's stream type as an AnyBiStream.
template <P2PBiStream S>
class BiStreamAdapter final : public AnyBiStream {
 public:
  /// BiStreamAdapter takes ownership of `stream`.
  explicit BiStreamAdapter(S stream) : stream_(std::move(stream)) {}
  asio::awaitable<P2PResult<void>> write(ByteView data) override { return stream_.write(data); }
  asio::awaitable<P2PResult<void>> finish() override { return stream_.finish(); }
  void reset(std::uint64_t code) override { stream_.reset(code); }
  asio::awaitable<P2PResult<std::size_t>> read(std::span<std::byte> buffer) override { return stream_.read(buffer); }
  void stop(std::uint64_t code) override { stream_.stop(code); }
  [[nodiscard]] std::uint64_t id() const override { return static_cast<std::uint64_t>(stream_.id()); }
  void set_priority(StreamPriority priority) override {
    if constexpr (requires(S & s) { s.set_priority(std::int32_t{0}); }) {
      stream_.set_priority(static_cast<std::int32_t>(priority));
    }
  }
  [[nodiscard]] bool is_early() const override {
    if constexpr (requires(const S& s) {
                    { s.is_early() } -> std::convertible_to<bool>;
                  }) {
      return stream_.is_early();
    } else {
      return false;
    }
  }
  asio::awaitable<P2PResult<void>> handshake() override {
    if constexpr (requires(S & s) { s.handshake(); }) {
      return stream_.handshake();
    } else {
      return ready();
    }
  }

 private:
  static asio::awaitable<P2PResult<void>> ready() { co_return P2PResult<void>{}; }
  S stream_;
};

/// erase_stream wraps `stream` for the router's drivers.
template <P2PBiStream S>
[[nodiscard]] std::unique_ptr<AnyBiStream> erase_stream(S stream) {
  return std::make_unique<BiStreamAdapter<S>>(std::move(stream));
}

namespace detail {

/// AnyTimer is an erased env::Timer.
class AnyTimer {
 public:
  virtual ~AnyTimer() = default;
  /// wait_until waits until `at`. Errors: cancelled.
  virtual asio::awaitable<P2PResult<void>> wait_until(TimePoint at) = 0;
  /// cancel ends the pending wait with cancelled.
  virtual void cancel() noexcept = 0;
};

/// AnyEnv is an erased env::Environment, reduced to what the router needs: time and timers.
class AnyEnv {
 public:
  virtual ~AnyEnv() = default;
  /// now returns the environment's time.
  [[nodiscard]] virtual TimePoint now() const noexcept = 0;
  /// make_timer returns a timer of the environment.
  [[nodiscard]] virtual std::unique_ptr<AnyTimer> make_timer() = 0;
  /// executor returns the environment's executor.
  [[nodiscard]] virtual asio::any_io_executor executor() const = 0;
};

template <env::Environment E>
class EnvAdapter final : public AnyEnv {
 public:
  explicit EnvAdapter(E env) : env_(std::move(env)) {}
  [[nodiscard]] TimePoint now() const noexcept override { return env_.now(); }
  [[nodiscard]] std::unique_ptr<AnyTimer> make_timer() override {
    return std::make_unique<TimerAdapter>(env_.make_timer());
  }
  [[nodiscard]] asio::any_io_executor executor() const override { return env_.executor(); }

 private:
  class TimerAdapter final : public AnyTimer {
   public:
    explicit TimerAdapter(typename E::Timer timer) : timer_(std::move(timer)) {}
    asio::awaitable<P2PResult<void>> wait_until(TimePoint at) override { return timer_.wait_until(at); }
    void cancel() noexcept override { timer_.cancel(); }

   private:
    typename E::Timer timer_;
  };
  E env_;
};

/// erase_env wraps a copy of `env`.
template <env::Environment E>
[[nodiscard]] std::shared_ptr<AnyEnv> erase_env(const E& env) {
  return std::make_shared<EnvAdapter<E>>(env);
}

}  // namespace detail
}  // namespace moosicbox::p2p::router
