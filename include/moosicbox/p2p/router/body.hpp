// SPDX-License-Identifier: MIT OR Apache-2.0
// body.hpp: request and response bodies. A body is read through a BodyReader (the bytes arrive from
// the stream as the handler or client reads them, never all at once unless asked) and produced as a
// Body: nothing, bytes in memory, or a streamed source that writes chunks through a BodyWriter with
// flow control. Memory stays bounded whatever the body's size.
// Layer: router. Readers and writers belong to the executor of the request they serve.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <variant>

#include "moosicbox/p2p/core/asio.hpp"
#include "moosicbox/p2p/core/bytes.hpp"
#include "moosicbox/p2p/core/error.hpp"

namespace moosicbox::p2p::router {

/// kReadAllDefaultMax is the default bound of BodyReader::read_all.
inline constexpr std::size_t kReadAllDefaultMax = std::size_t{16} << 20;

class P2PRouter;

namespace detail {
/// BodyInput is where a BodyReader's bytes come from (a stream, or memory). Its counters are shared
/// by every holder, so the router sees a limit overrun after the handler moved the reader away.
class BodyInput {
 public:
  virtual ~BodyInput() = default;
  std::uint64_t consumed = 0;        ///< body bytes returned so far
  std::uint64_t limit = UINT64_MAX;  ///< reads past this many bytes fail
  bool exceeded = false;             ///< a read passed the limit
  /// read reads up to buffer.size() bytes; 0 at the end. Errors: those of the source.
  virtual asio::awaitable<P2PResult<std::size_t>> read(std::span<std::byte> buffer) = 0;
  /// content_length returns the length the sender declared, if any.
  [[nodiscard]] virtual std::optional<std::uint64_t> content_length() const noexcept = 0;
  /// at_end is true once the end of the body was read.
  [[nodiscard]] virtual bool at_end() const noexcept = 0;
};

/// BodyOutput is where a BodyWriter's bytes go.
class BodyOutput {
 public:
  virtual ~BodyOutput() = default;
  /// write sends `data`, waiting for flow control. Errors: those of the sink.
  virtual asio::awaitable<P2PResult<void>> write(ByteView data) = 0;
};
}  // namespace detail

/// BodyReader reads a body: a request body in a handler, a response body in a client. Move-only.
/// A default-constructed reader is an empty body.
class BodyReader {
 public:
  BodyReader() = default;
  /// BodyReader reads from `input` (used by the drivers).
  explicit BodyReader(std::shared_ptr<detail::BodyInput> input) : input_(std::move(input)) {}
  /// from_bytes returns a reader over `bytes` (for tests and in-process dispatch).
  [[nodiscard]] static BodyReader from_bytes(Bytes bytes);

  /// read reads up to buffer.size() bytes; returns 0 only at the end of the body.
  /// Errors: message_too_large (the body passed its limit: the server answers 413), stream_reset
  /// (the peer aborted), protocol_error (the body ended before its declared length, or ran past
  /// it), connection_closed, timeout, cancelled.
  asio::awaitable<P2PResult<std::size_t>> read(std::span<std::byte> buffer);
  /// read_all reads the rest of the body into memory. Errors: as read; message_too_large when the
  /// body is longer than `max`.
  asio::awaitable<P2PResult<Bytes>> read_all(std::size_t max = kReadAllDefaultMax);
  /// read_text reads the rest of the body as text. Errors: as read_all.
  asio::awaitable<P2PResult<std::string>> read_text(std::size_t max = kReadAllDefaultMax);

  /// content_length returns the length the sender declared (the content-length header), if any.
  [[nodiscard]] std::optional<std::uint64_t> content_length() const noexcept;
  /// at_end is true once the whole body was read.
  [[nodiscard]] bool at_end() const noexcept { return !input_ || input_->at_end(); }
  /// bytes_read returns how many body bytes were read.
  [[nodiscard]] std::uint64_t bytes_read() const noexcept { return input_ ? input_->consumed : 0; }
  /// set_limit bounds the body: a read that passes `max` bytes in total fails with message_too_large.
  void set_limit(std::uint64_t max) noexcept {
    if (input_) input_->limit = max;
  }
  /// limit_exceeded is true once a read passed the limit.
  [[nodiscard]] bool limit_exceeded() const noexcept { return input_ && input_->exceeded; }

 private:
  friend class P2PRouter;
  std::shared_ptr<detail::BodyInput> input_;
};

/// BodyWriter writes a streamed body chunk by chunk; each write waits while the peer's flow-control
/// window is full, so a source never runs ahead of the network.
class BodyWriter {
 public:
  /// BodyWriter writes to `output`, which must outlive it.
  explicit BodyWriter(detail::BodyOutput& output) : output_(&output) {}
  /// write sends `data`. Errors: stream_reset (the reader aborted or stopped reading),
  /// protocol_error (more bytes than the declared length), connection_closed, timeout, cancelled.
  asio::awaitable<P2PResult<void>> write(ByteView data);
  /// bytes_written returns how many bytes were written.
  [[nodiscard]] std::uint64_t bytes_written() const noexcept { return written_; }

 private:
  detail::BodyOutput* output_;
  std::uint64_t written_ = 0;
};

/// BodySource produces a streamed body by writing it through a BodyWriter. It is kept alive until
/// its coroutine completes; returning an error aborts the stream (the reader sees stream_reset).
using BodySource = std::move_only_function<asio::awaitable<P2PResult<void>>(BodyWriter&)>;

/// Body is a request or response body: empty, bytes in memory, or a streamed source with an
/// optional declared length (sent as content-length; the writer enforces it).
class Body {
 public:
  /// Streamed is a source and its declared length.
  struct Streamed {
    BodySource source;                    ///< writes the body when it is sent
    std::optional<std::uint64_t> length;  ///< the declared length in bytes; nullopt when unknown
  };

  Body() = default;
  /// Body holds `bytes`.
  Body(Bytes bytes) : value_(std::move(bytes)) {}  // NOLINT(google-explicit-constructor): a body is its bytes
  /// Body holds a copy of `text`.
  Body(std::string_view text) : value_(to_bytes(text)) {}  // NOLINT(google-explicit-constructor)
  /// Body holds a copy of the NUL-terminated `text` (so string literals convert).
  Body(const char* text) : Body(std::string_view(text)) {}  // NOLINT(google-explicit-constructor)
  /// stream returns a streamed body of `length` bytes (nullopt when unknown).
  [[nodiscard]] static Body stream(BodySource source, std::optional<std::uint64_t> length = std::nullopt);

  /// empty is true when there is no body.
  [[nodiscard]] bool empty() const noexcept { return std::holds_alternative<std::monostate>(value_); }
  /// is_streamed is true for a streamed body.
  [[nodiscard]] bool is_streamed() const noexcept { return std::holds_alternative<Streamed>(value_); }
  /// size returns the length when it is known (always for bytes and empty bodies).
  [[nodiscard]] std::optional<std::uint64_t> size() const noexcept;
  /// bytes returns the in-memory bytes (empty for other kinds).
  [[nodiscard]] ByteView bytes() const noexcept;
  /// take_bytes moves the in-memory bytes out (empty for other kinds).
  [[nodiscard]] Bytes take_bytes() noexcept;
  /// take_stream moves the streamed source out; nullopt for other kinds.
  [[nodiscard]] std::optional<Streamed> take_stream() noexcept;
  /// clear drops the body (for HEAD answers and 204 / 304).
  void clear() noexcept { value_ = std::monostate{}; }

 private:
  std::variant<std::monostate, Bytes, Streamed> value_;
};

/// collect writes `body` into memory: in-memory bodies are returned as they are, streamed ones are
/// run against a memory writer. For tests and in-process dispatch. Errors: those of the source;
/// message_too_large past `max`.
asio::awaitable<P2PResult<Bytes>> collect(Body body, std::size_t max = kReadAllDefaultMax);

}  // namespace moosicbox::p2p::router
