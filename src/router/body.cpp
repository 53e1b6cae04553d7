// SPDX-License-Identifier: MIT OR Apache-2.0
// body.cpp: body readers and writers, in-memory bodies, and collect().
// Layer: router. Everything here runs on the executor of the request it serves.
#include "moosicbox/p2p/router/body.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "moosicbox/p2p/core/assert.hpp"

namespace moosicbox::p2p::router {

namespace {
constexpr std::size_t kReadChunk = 16 * 1024;

class MemoryInput final : public detail::BodyInput {
 public:
  explicit MemoryInput(Bytes bytes) : bytes_(std::move(bytes)) {}
  asio::awaitable<P2PResult<std::size_t>> read(std::span<std::byte> buffer) override {
    const std::size_t n = std::min(buffer.size(), bytes_.size() - pos_);
    if (n > 0) std::memcpy(buffer.data(), bytes_.data() + pos_, n);
    pos_ += n;
    co_return n;
  }
  [[nodiscard]] std::optional<std::uint64_t> content_length() const noexcept override { return bytes_.size(); }
  [[nodiscard]] bool at_end() const noexcept override { return pos_ == bytes_.size(); }

 private:
  Bytes bytes_;
  std::size_t pos_ = 0;
};

class MemoryOutput final : public detail::BodyOutput {
 public:
  explicit MemoryOutput(std::size_t max) : max_(max) {}
  asio::awaitable<P2PResult<void>> write(ByteView data) override {
    if (data.size() > max_ - bytes.size())
      co_return fail(P2PError::message_too_large(bytes.size() + data.size(), max_));
    bytes.insert(bytes.end(), data.begin(), data.end());
    co_return P2PResult<void>{};
  }
  Bytes bytes;

 private:
  std::size_t max_;
};
}  // namespace

BodyReader BodyReader::from_bytes(Bytes bytes) { return BodyReader(std::make_shared<MemoryInput>(std::move(bytes))); }

asio::awaitable<P2PResult<std::size_t>> BodyReader::read(std::span<std::byte> buffer) {
  if (!input_ || buffer.empty()) co_return std::size_t{0};
  if (input_->exceeded) co_return fail(P2PError::message_too_large(input_->consumed, input_->limit));
  auto n = co_await input_->read(buffer);
  if (!n) co_return n;
  MOOSICBOX_P2P_ASSERT(*n <= buffer.size());
  input_->consumed += *n;
  if (input_->consumed > input_->limit) {
    input_->exceeded = true;
    co_return fail(P2PError::message_too_large(input_->consumed, input_->limit));
  }
  co_return n;
}

asio::awaitable<P2PResult<Bytes>> BodyReader::read_all(std::size_t max) {
  Bytes out;
  if (const auto len = content_length(); len && *len <= max) out.reserve(static_cast<std::size_t>(*len));
  while (true) {
    const std::size_t old = out.size();
    // Read one byte past `max` at most, so an overrun is seen without buffering more.
    const std::size_t room = std::min(kReadChunk, max + 1 - old);
    out.resize(old + room);
    auto n = co_await read(std::span(out).subspan(old, room));
    if (!n) co_return fail(std::move(n.error()));
    out.resize(old + *n);
    if (*n == 0) co_return out;
    if (out.size() > max) co_return fail(P2PError::message_too_large(out.size(), max));
  }
}

asio::awaitable<P2PResult<std::string>> BodyReader::read_text(std::size_t max) {
  auto bytes = co_await read_all(max);
  if (!bytes) co_return fail(std::move(bytes.error()));
  co_return to_string(*bytes);
}

std::optional<std::uint64_t> BodyReader::content_length() const noexcept {
  if (!input_) return std::uint64_t{0};
  return input_->content_length();
}

asio::awaitable<P2PResult<void>> BodyWriter::write(ByteView data) {
  if (data.empty()) co_return P2PResult<void>{};
  auto r = co_await output_->write(data);
  if (r) written_ += data.size();
  co_return r;
}

Body Body::stream(BodySource source, std::optional<std::uint64_t> length) {
  MOOSICBOX_P2P_ASSERT(source);
  Body b;
  b.value_ = Streamed{std::move(source), length};
  return b;
}

std::optional<std::uint64_t> Body::size() const noexcept {
  if (empty()) return 0;
  if (const auto* bytes = std::get_if<Bytes>(&value_)) return bytes->size();
  return std::get<Streamed>(value_).length;
}

ByteView Body::bytes() const noexcept {
  if (const auto* bytes = std::get_if<Bytes>(&value_)) return *bytes;
  return {};
}

Bytes Body::take_bytes() noexcept {
  Bytes out;
  if (auto* bytes = std::get_if<Bytes>(&value_)) out = std::move(*bytes);
  value_ = std::monostate{};
  return out;
}

std::optional<Body::Streamed> Body::take_stream() noexcept {
  auto* s = std::get_if<Streamed>(&value_);
  if (s == nullptr) return std::nullopt;
  std::optional<Streamed> out(std::move(*s));
  value_ = std::monostate{};
  return out;
}

asio::awaitable<P2PResult<Bytes>> collect(Body body, std::size_t max) {
  if (!body.is_streamed()) {
    auto bytes = body.take_bytes();
    if (bytes.size() > max) co_return fail(P2PError::message_too_large(bytes.size(), max));
    co_return bytes;
  }
  auto streamed = body.take_stream();
  MemoryOutput out(max);
  BodyWriter writer(out);
  auto r = co_await streamed->source(writer);
  if (!r) co_return fail(std::move(r.error()));
  if (streamed->length && *streamed->length != out.bytes.size()) {
    co_return fail(P2PError::protocol(
        fmt::format("streamed body wrote {} bytes, declared {}", out.bytes.size(), *streamed->length)));
  }
  co_return std::move(out.bytes);
}

}  // namespace moosicbox::p2p::router
