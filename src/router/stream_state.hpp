// SPDX-License-Identifier: MIT OR Apache-2.0
// stream_state.hpp: StreamState owns one request's stream for the drivers: a push-back buffer for
// body bytes read together with the head, progress accounting, and the end states of both halves;
// StreamBodyInput and StreamBodyOutput connect it to BodyReader and BodyWriter and enforce the
// declared content-length; read_head feeds a HeadDecoder from it.
// Layer: router (internal). Owned through shared_ptr by a request's coroutines, on one executor.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "moosicbox/p2p/router/body.hpp"
#include "moosicbox/p2p/router/stream.hpp"
#include "moosicbox/p2p/router/wire.hpp"

namespace moosicbox::p2p::router::detail {

/// kWriteChunk is the largest single write: a big in-memory body goes out in pieces, so progress is
/// seen and other streams get turns.
inline constexpr std::size_t kWriteChunk = 64 * 1024;
/// kBulkThreshold is how many body bytes a response may send before it is marked bulk priority.
inline constexpr std::uint64_t kBulkThreshold = 64 * 1024;

/// StreamState is one request's stream.
class StreamState {
 public:
  explicit StreamState(std::unique_ptr<AnyBiStream> io);
  StreamState(const StreamState&) = delete;
  StreamState& operator=(const StreamState&) = delete;
  /// ~StreamState resets and stops whichever half is still open (code cancelled).
  ~StreamState();

  /// read returns pushed-back bytes first, then reads the stream; 0 at the end. Errors: as
  /// AnyBiStream::read.
  asio::awaitable<P2PResult<std::size_t>> read(std::span<std::byte> buffer);
  /// unread pushes bytes back in front of the next read (at most one head chunk's worth).
  void unread(ByteView bytes);
  /// write writes all of `data` in chunks of at most kWriteChunk. Errors: as AnyBiStream::write.
  asio::awaitable<P2PResult<void>> write(ByteView data);
  /// finish ends the sending half. Errors: as AnyBiStream::finish.
  asio::awaitable<P2PResult<void>> finish();
  /// reset aborts the sending half (once).
  void reset(ResetCode code);
  /// stop asks the peer to stop sending (once).
  void stop(ResetCode code);
  /// abort resets and stops.
  void abort(ResetCode code) {
    reset(code);
    stop(code);
  }
  /// set_priority passes a scheduling hint to the backend.
  void set_priority(StreamPriority p) { io_->set_priority(p); }
  /// is_early and handshake: AnyBiStream's (0-RTT).
  [[nodiscard]] bool is_early() const { return io_->is_early(); }
  asio::awaitable<P2PResult<void>> handshake() { return io_->handshake(); }

  /// recv_eof is true once the end of the receiving half was read.
  [[nodiscard]] bool recv_eof() const noexcept { return recv_eof_; }
  /// recv_open is true while more may be read (no end, error or stop yet).
  [[nodiscard]] bool recv_open() const noexcept { return !recv_eof_ && !recv_failed_ && !stopped_; }
  /// send_open is true while the sending half is neither finished nor reset.
  [[nodiscard]] bool send_open() const noexcept { return !finished_ && !reset_; }
  /// bytes_in and bytes_out count stream bytes (head and body).
  [[nodiscard]] std::uint64_t bytes_in() const noexcept { return bytes_in_; }
  [[nodiscard]] std::uint64_t bytes_out() const noexcept { return bytes_out_; }
  /// id returns the stream id.
  [[nodiscard]] std::uint64_t id() const { return io_->id(); }

  /// on_progress, when set, is called after every read or write that moved bytes.
  std::function<void()> on_progress;

 private:
  std::unique_ptr<AnyBiStream> io_;
  Bytes pending_;
  std::size_t pending_pos_ = 0;
  bool recv_eof_ = false;
  bool recv_failed_ = false;
  bool stopped_ = false;
  bool finished_ = false;
  bool reset_ = false;
  std::uint64_t bytes_in_ = 0;
  std::uint64_t bytes_out_ = 0;
};

/// read_head feeds `decoder` from `stream` until the head is complete or refused, pushing back the
/// body bytes that came with it. Errors: those of the stream (a refused head is not an error: see
/// decoder.state()).
asio::awaitable<P2PResult<void>> read_head(StreamState& stream, HeadDecoder& decoder);

/// parse_content_length reads a content-length value (digits only, at most 19). nullopt if invalid.
[[nodiscard]] std::optional<std::uint64_t> parse_content_length(std::string_view value) noexcept;

/// StreamBodyInput is a body read from a stream, checked against its declared length.
class StreamBodyInput final : public BodyInput {
 public:
  /// StreamBodyInput reads the body from `stream`. When it is dropped before the end, it stops the
  /// stream with `drop_code`, and with `abort_on_drop` also resets the sending half (a client that
  /// abandons a response aborts the whole request).
  StreamBodyInput(std::shared_ptr<StreamState> stream, std::optional<std::uint64_t> declared, ResetCode drop_code,
                  bool abort_on_drop);
  ~StreamBodyInput() override;
  asio::awaitable<P2PResult<std::size_t>> read(std::span<std::byte> buffer) override;
  [[nodiscard]] std::optional<std::uint64_t> content_length() const noexcept override { return declared_; }
  [[nodiscard]] bool at_end() const noexcept override { return eof_; }

 private:
  std::shared_ptr<StreamState> stream_;
  std::optional<std::uint64_t> declared_;
  std::uint64_t received_ = 0;
  bool eof_ = false;
  ResetCode drop_code_;
  bool abort_on_drop_;
};

/// StreamBodyOutput is a body written to a stream, checked against its declared length, marked bulk
/// priority once it passes kBulkThreshold.
class StreamBodyOutput final : public BodyOutput {
 public:
  StreamBodyOutput(StreamState& stream, std::optional<std::uint64_t> declared)
      : stream_(&stream), declared_(declared) {}
  asio::awaitable<P2PResult<void>> write(ByteView data) override;
  /// written returns how many body bytes were written.
  [[nodiscard]] std::uint64_t written() const noexcept { return written_; }

 private:
  StreamState* stream_;
  std::optional<std::uint64_t> declared_;
  std::uint64_t written_ = 0;
  bool bulk_ = false;
};

/// send_body writes `body` (bytes or a streamed source) after a head already written, then checks
/// the declared length. Errors: those of the stream or the source; protocol_error when a streamed
/// body wrote fewer bytes than it declared.
asio::awaitable<P2PResult<void>> send_body(StreamState& stream, Body body);

}  // namespace moosicbox::p2p::router::detail
