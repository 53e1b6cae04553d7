// SPDX-License-Identifier: MIT OR Apache-2.0
// wire.cpp: head frame encoding and the incremental head decoder (docs/protocol.md, "Router").
// Every length read from the wire is checked against what remains and against the limits before
// anything is allocated, so a hostile peer can make a decoder hold at most the limits' worth.
// Layer: router. A HeadDecoder belongs to one stream; the encoders are pure.
#include "moosicbox/p2p/router/wire.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "moosicbox/p2p/core/assert.hpp"

namespace moosicbox::p2p::router {

namespace {
constexpr std::uint64_t kVarintMax = (std::uint64_t{1} << 62) - 1;
constexpr std::size_t kPrefixMin = 3;  // version, type, first varint byte

bool is_target_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x21 && u != 0x7f && c != '#';
}

bool valid_path(std::string_view path) noexcept {
  return !path.empty() && path.front() == '/' && path.find('?') == std::string_view::npos &&
         std::ranges::all_of(path, is_target_char);
}

bool valid_query(std::string_view query) noexcept { return std::ranges::all_of(query, is_target_char); }

void append_bytes(Bytes& out, std::string_view s) {
  append_varint(out, s.size());
  const auto view = as_bytes(s);
  out.insert(out.end(), view.begin(), view.end());
}

std::size_t headers_size(const Headers& headers) {
  std::size_t n = varint_size(headers.size());
  for (const auto& [name, value] : headers) {
    n += varint_size(name.size()) + name.size() + varint_size(value.size()) + value.size();
  }
  return n;
}

P2PResult<void> check_headers(const Headers& headers, const HeadLimits& limits) {
  if (headers.size() > limits.header_count_max) {
    return fail(P2PError::message_too_large(headers.size(), limits.header_count_max));
  }
  for (const auto& [name, value] : headers) {
    if (!is_valid_header_name(name)) return fail(P2PError::protocol(fmt::format("invalid header name '{}'", name)));
    if (!is_valid_header_value(value)) {
      return fail(P2PError::protocol(fmt::format("invalid value for header '{}'", name)));
    }
  }
  return {};
}

void append_headers(Bytes& out, const Headers& headers) {
  append_varint(out, headers.size());
  for (const auto& [name, value] : headers) {
    append_bytes(out, name);
    append_bytes(out, value);
  }
}

void append_prefix(Bytes& out, FrameType type, std::size_t payload) {
  out.push_back(std::byte{kProtocolVersion});
  out.push_back(static_cast<std::byte>(type));
  append_varint(out, payload);
}

// Reader walks a complete payload; every read checks the bytes that remain.
class Reader {
 public:
  explicit Reader(ByteView data) : data_(data) {}
  bool u8(std::uint8_t& v) noexcept {
    if (pos_ >= data_.size()) return false;
    v = std::to_integer<std::uint8_t>(data_[pos_++]);
    return true;
  }
  bool u16(std::uint16_t& v) noexcept {
    if (data_.size() - pos_ < 2) return false;
    v = static_cast<std::uint16_t>((std::to_integer<unsigned>(data_[pos_]) << 8) |
                                   std::to_integer<unsigned>(data_[pos_ + 1]));
    pos_ += 2;
    return true;
  }
  bool varint(std::uint64_t& v) noexcept {
    if (pos_ >= data_.size()) return false;
    const auto first = std::to_integer<std::uint8_t>(data_[pos_]);
    const std::size_t len = std::size_t{1} << (first >> 6);
    if (data_.size() - pos_ < len) return false;
    v = first & 0x3fu;
    for (std::size_t i = 1; i < len; ++i) v = (v << 8) | std::to_integer<std::uint8_t>(data_[pos_ + i]);
    pos_ += len;
    return true;
  }
  bool text(std::string& s) {
    std::uint64_t n = 0;
    if (!varint(n) || n > data_.size() - pos_) return false;
    s.assign(reinterpret_cast<const char*>(data_.data() + pos_), static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return true;
  }
  [[nodiscard]] std::size_t remaining() const noexcept { return data_.size() - pos_; }

 private:
  ByteView data_;
  std::size_t pos_ = 0;
};
}  // namespace

std::string_view head_error_text(HeadError e) noexcept {
  switch (e) {
    case HeadError::none:
      return "no error";
    case HeadError::unsupported_version:
      return "unsupported protocol version";
    case HeadError::wrong_frame_type:
      return "unexpected frame type";
    case HeadError::too_large:
      return "head too large";
    case HeadError::too_many_headers:
      return "too many header fields";
    case HeadError::malformed:
      return "malformed head frame";
    case HeadError::unknown_method:
      return "unknown method";
    case HeadError::invalid_target:
      return "invalid request target";
    case HeadError::invalid_header:
      return "invalid header field";
    case HeadError::invalid_status:
      return "invalid status";
    case HeadError::truncated:
      return "stream ended inside the head frame";
  }
  return "unknown head error";
}

StatusCode head_error_status(HeadError e) noexcept {
  switch (e) {
    case HeadError::too_large:
    case HeadError::too_many_headers:
      return StatusCode::request_header_fields_too_large;
    case HeadError::unknown_method:
      return StatusCode::not_implemented;
    default:
      return StatusCode::bad_request;
  }
}

std::size_t varint_size(std::uint64_t v) noexcept {
  MOOSICBOX_P2P_ASSERT(v <= kVarintMax);
  if (v < (1u << 6)) return 1;
  if (v < (1u << 14)) return 2;
  if (v < (std::uint64_t{1} << 30)) return 4;
  return 8;
}

void append_varint(Bytes& out, std::uint64_t v) {
  const std::size_t len = varint_size(v);
  const std::uint64_t tag = len == 1 ? 0 : len == 2 ? 1 : len == 4 ? 2 : 3;
  const std::uint64_t word = v | (tag << (8 * len - 2));
  for (std::size_t i = len; i-- > 0;) out.push_back(static_cast<std::byte>((word >> (8 * i)) & 0xffu));
}

P2PResult<void> encode_request_head(const RequestHead& head, const HeadLimits& limits, Bytes& out) {
  if (!valid_path(head.path) || !valid_query(head.query)) {
    return fail(P2PError::protocol(fmt::format("invalid request target '{}'", head.path)));
  }
  if (head.path.size() + head.query.size() > limits.target_bytes_max) {
    return fail(P2PError::message_too_large(head.path.size() + head.query.size(), limits.target_bytes_max));
  }
  if (auto ok = check_headers(head.headers, limits); !ok) return ok;
  const std::size_t payload = 1 + varint_size(head.path.size()) + head.path.size() + varint_size(head.query.size()) +
                              head.query.size() + headers_size(head.headers);
  if (payload > limits.head_bytes_max) return fail(P2PError::message_too_large(payload, limits.head_bytes_max));
  const std::size_t start = out.size();
  out.reserve(start + payload + 10);
  append_prefix(out, FrameType::request_head, payload);
  const std::size_t body_start = out.size();
  out.push_back(static_cast<std::byte>(head.method));
  append_bytes(out, head.path);
  append_bytes(out, head.query);
  append_headers(out, head.headers);
  MOOSICBOX_P2P_ASSERT(out.size() - body_start == payload);
  return {};
}

P2PResult<void> encode_response_head(const ResponseHead& head, const HeadLimits& limits, Bytes& out) {
  const auto status = status_value(head.status);
  if (status < kStatusMin || status > kStatusMax) {
    return fail(P2PError::protocol(fmt::format("status {} is outside [200, 599]", status)));
  }
  if (auto ok = check_headers(head.headers, limits); !ok) return ok;
  const std::size_t payload = 2 + headers_size(head.headers);
  if (payload > limits.head_bytes_max) return fail(P2PError::message_too_large(payload, limits.head_bytes_max));
  out.reserve(out.size() + payload + 10);
  append_prefix(out, FrameType::response_head, payload);
  const std::size_t body_start = out.size();
  out.push_back(static_cast<std::byte>(status >> 8));
  out.push_back(static_cast<std::byte>(status & 0xffu));
  append_headers(out, head.headers);
  MOOSICBOX_P2P_ASSERT(out.size() - body_start == payload);
  return {};
}

HeadDecoder::HeadDecoder(FrameType type, const HeadLimits& limits) : type_(type), limits_(limits) {}

void HeadDecoder::fail(HeadError e) noexcept {
  state_ = State::failed;
  error_ = e;
  buffer_.clear();
  buffer_.shrink_to_fit();
}

void HeadDecoder::finish() noexcept {
  if (state_ == State::need_more) fail(HeadError::truncated);
}

std::size_t HeadDecoder::feed(ByteView chunk) {
  std::size_t used = 0;
  while (state_ == State::need_more && used < chunk.size()) {
    if (!payload_length_) {
      // Take prefix bytes one at a time: the prefix is at most 10 bytes and each byte may decide.
      buffer_.push_back(chunk[used++]);
      if (buffer_.size() == 1 && std::to_integer<std::uint8_t>(buffer_[0]) != kProtocolVersion) {
        fail(HeadError::unsupported_version);
        break;
      }
      if (buffer_.size() == 2 && std::to_integer<std::uint8_t>(buffer_[1]) != static_cast<std::uint8_t>(type_)) {
        fail(HeadError::wrong_frame_type);
        break;
      }
      if (buffer_.size() >= kPrefixMin) {
        const std::size_t len = std::size_t{1} << (std::to_integer<std::uint8_t>(buffer_[2]) >> 6);
        if (buffer_.size() == 2 + len) {
          std::uint64_t v = 0;
          Reader r(ByteView(buffer_).subspan(2));
          const bool ok = r.varint(v);
          MOOSICBOX_P2P_ASSERT(ok);
          if (v > limits_.head_bytes_max) {
            fail(HeadError::too_large);
            break;
          }
          payload_length_ = v;
          buffer_.clear();
          buffer_.reserve(static_cast<std::size_t>(v));
          if (v == 0) parse_payload();
        }
      }
      continue;
    }
    const std::size_t want = static_cast<std::size_t>(*payload_length_) - buffer_.size();
    const std::size_t take = std::min(want, chunk.size() - used);
    buffer_.insert(buffer_.end(), chunk.begin() + static_cast<std::ptrdiff_t>(used),
                   chunk.begin() + static_cast<std::ptrdiff_t>(used + take));
    used += take;
    if (buffer_.size() == *payload_length_) parse_payload();
  }
  return used;
}

void HeadDecoder::parse_payload() {
  MOOSICBOX_P2P_ASSERT(payload_length_ && buffer_.size() == *payload_length_);
  Reader r(buffer_);
  Headers* headers = nullptr;
  if (type_ == FrameType::request_head) {
    std::uint8_t code = 0;
    if (!r.u8(code)) return fail(HeadError::malformed);
    std::string path;
    std::string query;
    if (!r.text(path) || !r.text(query)) return fail(HeadError::malformed);
    const auto method = method_from_code(code);
    if (!method) return fail(HeadError::unknown_method);
    if (path.size() + query.size() > limits_.target_bytes_max) return fail(HeadError::too_large);
    if (!valid_path(path) || !valid_query(query)) return fail(HeadError::invalid_target);
    request_.method = *method;
    request_.path = std::move(path);
    request_.query = std::move(query);
    headers = &request_.headers;
  } else {
    std::uint16_t status = 0;
    if (!r.u16(status)) return fail(HeadError::malformed);
    if (status < kStatusMin || status > kStatusMax) return fail(HeadError::invalid_status);
    response_.status = static_cast<StatusCode>(status);
    headers = &response_.headers;
  }
  std::uint64_t count = 0;
  if (!r.varint(count)) return fail(HeadError::malformed);
  if (count > limits_.header_count_max) return fail(HeadError::too_many_headers);
  // Each field takes at least two bytes (two empty lengths), which bounds a lying count.
  if (count > r.remaining() / 2) return fail(HeadError::malformed);
  for (std::uint64_t i = 0; i < count; ++i) {
    std::string name;
    std::string value;
    if (!r.text(name) || !r.text(value)) return fail(HeadError::malformed);
    if (!is_valid_header_name(name) || !is_valid_header_value(value)) return fail(HeadError::invalid_header);
    headers->add(name, value);
  }
  if (r.remaining() != 0) return fail(HeadError::malformed);
  state_ = State::complete;
  buffer_.clear();
  buffer_.shrink_to_fit();
}

}  // namespace moosicbox::p2p::router
