// SPDX-License-Identifier: MIT OR Apache-2.0
// stream_state.cpp: the drivers' view of one request stream.
// Layer: router (internal). One executor.
#include "stream_state.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include <fmt/format.h>

#include "moosicbox/p2p/core/assert.hpp"

namespace moosicbox::p2p::router::detail {

namespace {
constexpr std::size_t kHeadReadChunk = 4096;
}  // namespace

StreamState::StreamState(std::unique_ptr<AnyBiStream> io) : io_(std::move(io)) { MOOSICBOX_P2P_ASSERT(io_); }

StreamState::~StreamState() {
  // A request abandoned halfway must not leave the peer waiting for bytes that will never come.
  reset(ResetCode::cancelled);
  stop(ResetCode::cancelled);
}

asio::awaitable<P2PResult<std::size_t>> StreamState::read(std::span<std::byte> buffer) {
  // After stop() nothing more is wanted, not even the bytes pushed back after the head.
  if (stopped_) co_return fail(P2PError::cancelled("stream stopped"));
  if (pending_pos_ < pending_.size()) {
    const std::size_t n = std::min(buffer.size(), pending_.size() - pending_pos_);
    std::memcpy(buffer.data(), pending_.data() + pending_pos_, n);
    pending_pos_ += n;
    if (pending_pos_ == pending_.size()) {
      pending_.clear();
      pending_pos_ = 0;
    }
    co_return n;
  }
  if (recv_eof_) co_return std::size_t{0};
  auto n = co_await io_->read(buffer);
  if (!n) {
    recv_failed_ = true;
    co_return n;
  }
  if (*n == 0) {
    recv_eof_ = true;
  } else {
    bytes_in_ += *n;
    if (on_progress) on_progress();
  }
  co_return n;
}

void StreamState::unread(ByteView bytes) {
  if (bytes.empty()) return;
  MOOSICBOX_P2P_ASSERT(pending_pos_ == pending_.size() || pending_.empty());
  pending_.assign(bytes.begin(), bytes.end());
  pending_pos_ = 0;
}

asio::awaitable<P2PResult<void>> StreamState::write(ByteView data) {
  while (!data.empty()) {
    const auto chunk = data.first(std::min(data.size(), kWriteChunk));
    auto r = co_await io_->write(chunk);
    if (!r) co_return r;
    bytes_out_ += chunk.size();
    data = data.subspan(chunk.size());
    if (on_progress) on_progress();
  }
  co_return P2PResult<void>{};
}

asio::awaitable<P2PResult<void>> StreamState::finish() {
  auto r = co_await io_->finish();
  if (r) finished_ = true;
  co_return r;
}

void StreamState::reset(ResetCode code) {
  if (!send_open()) return;
  reset_ = true;
  io_->reset(reset_code(code));
}

void StreamState::stop(ResetCode code) {
  if (!recv_open()) return;
  stopped_ = true;
  io_->stop(reset_code(code));
}

asio::awaitable<P2PResult<void>> read_head(StreamState& stream, HeadDecoder& decoder) {
  std::array<std::byte, kHeadReadChunk> buf{};
  while (decoder.state() == HeadDecoder::State::need_more) {
    auto n = co_await stream.read(buf);
    if (!n) co_return fail(std::move(n.error()));
    if (*n == 0) {
      decoder.finish();
      break;
    }
    const auto chunk = std::span(buf).first(*n);
    const std::size_t used = decoder.feed(chunk);
    if (used < chunk.size()) stream.unread(chunk.subspan(used));
  }
  co_return P2PResult<void>{};
}

std::optional<std::uint64_t> parse_content_length(std::string_view value) noexcept {
  if (value.empty() || value.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  for (const char c : value) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

StreamBodyInput::StreamBodyInput(std::shared_ptr<StreamState> stream, std::optional<std::uint64_t> declared,
                                 ResetCode drop_code, bool abort_on_drop)
    : stream_(std::move(stream)), declared_(declared), drop_code_(drop_code), abort_on_drop_(abort_on_drop) {}

StreamBodyInput::~StreamBodyInput() {
  if (eof_) return;
  stream_->stop(drop_code_);
  if (abort_on_drop_) stream_->reset(drop_code_);
}

asio::awaitable<P2PResult<std::size_t>> StreamBodyInput::read(std::span<std::byte> buffer) {
  if (eof_ || buffer.empty()) co_return std::size_t{0};
  // Ask for one byte past the declared length at most, so an overlong body is caught at once.
  if (declared_) {
    const std::uint64_t room = *declared_ - received_ + 1;
    if (room < buffer.size()) buffer = buffer.first(static_cast<std::size_t>(room));
  }
  auto n = co_await stream_->read(buffer);
  if (!n) co_return n;
  if (*n == 0) {
    if (declared_ && received_ != *declared_) {
      co_return fail(P2PError::protocol(fmt::format("body ended after {} of {} bytes", received_, *declared_)));
    }
    eof_ = true;
    co_return n;
  }
  received_ += *n;
  if (declared_ && received_ > *declared_) {
    stream_->stop(ResetCode::protocol_error);
    co_return fail(P2PError::protocol(fmt::format("body is longer than its declared {} bytes", *declared_)));
  }
  co_return n;
}

asio::awaitable<P2PResult<void>> StreamBodyOutput::write(ByteView data) {
  if (declared_ && data.size() > *declared_ - written_) {
    co_return fail(P2PError::protocol(fmt::format("body source wrote past its declared {} bytes", *declared_)));
  }
  if (!bulk_ && written_ + data.size() > kBulkThreshold) {
    bulk_ = true;
    stream_->set_priority(StreamPriority::bulk);
  }
  auto r = co_await stream_->write(data);
  if (r) written_ += data.size();
  co_return r;
}

asio::awaitable<P2PResult<void>> send_body(StreamState& stream, Body body) {
  const auto declared = body.size();
  StreamBodyOutput out(stream, declared);
  if (!body.is_streamed()) {
    const auto bytes = body.take_bytes();
    co_return co_await out.write(bytes);
  }
  auto streamed = body.take_stream();
  BodyWriter writer(out);
  if (auto r = co_await streamed->source(writer); !r) co_return r;
  if (declared && out.written() != *declared) {
    co_return fail(
        P2PError::protocol(fmt::format("body source wrote {} of its declared {} bytes", out.written(), *declared)));
  }
  co_return P2PResult<void>{};
}

}  // namespace moosicbox::p2p::router::detail
