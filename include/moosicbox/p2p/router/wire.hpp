// SPDX-License-Identifier: MIT OR Apache-2.0
// wire.hpp: the router's wire format (docs/protocol.md, "Router"), sans-IO. A request is one
// bidirectional stream: the client writes a request head frame, then the request body, then finishes
// its side; the server writes a response head frame, then the response body, then finishes. A head
// frame is
//
//   version (u8 = 1) | type (u8) | length (QUIC varint) | payload (length bytes)
//
// and the body is every byte after the frame up to the end of the stream. HeadDecoder parses a frame
// incrementally from whatever chunks the stream delivers and refuses an oversized one before
// buffering it; the encoders refuse what the decoder would refuse.
// Layer: router. Plain values; a HeadDecoder belongs to one stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "moosicbox/p2p/core/bytes.hpp"
#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/router/headers.hpp"
#include "moosicbox/p2p/router/types.hpp"

namespace moosicbox::p2p::router {

/// kProtocolVersion is the version byte of every head frame this implementation writes and accepts.
inline constexpr std::uint8_t kProtocolVersion = 1;
/// kAlpn is the application protocol name a router connection announces.
inline constexpr std::string_view kAlpn = "moosicbox-p2p/router/1";

/// FrameType is the second byte of a head frame.
enum class FrameType : std::uint8_t {
  request_head = 0x01,
  response_head = 0x02,
};

/// ResetCode is the application code of a stream reset (RESET_STREAM) or stop (STOP_SENDING).
enum class ResetCode : std::uint64_t {
  no_error = 0x00,        ///< the rest of the body is not needed (the response is complete)
  cancelled = 0x10,       ///< the request was abandoned by the side that resets
  internal_error = 0x11,  ///< the handler or the body source failed mid-body
  timeout = 0x12,         ///< a request timeout expired
  shutdown = 0x13,        ///< the server shut down before the request finished
  protocol_error = 0x14,  ///< the peer broke the framing
  too_large = 0x15,       ///< the body exceeded the limit
};

/// reset_code returns the numeric value of `c`.
[[nodiscard]] constexpr std::uint64_t reset_code(ResetCode c) noexcept { return static_cast<std::uint64_t>(c); }

/// HeadLimits bounds what a decoder accepts and an encoder produces.
struct HeadLimits {
  /// head_bytes_max bounds a head frame's payload. A larger request head gets 431.
  std::size_t head_bytes_max = 16 * 1024;
  /// header_count_max bounds the number of header fields. More get 431.
  std::size_t header_count_max = 100;
  /// target_bytes_max bounds the raw path plus query of a request. Longer gets 431 (as a large head).
  std::size_t target_bytes_max = 8 * 1024;
};

/// RequestHead is a decoded request head.
struct RequestHead {
  Method method = Method::GET;  ///< request method
  std::string path;             ///< raw path, starting with '/'
  std::string query;            ///< raw query string, without '?'
  Headers headers;              ///< request header fields
  /// operator== compares every field.
  friend bool operator==(const RequestHead&, const RequestHead&) = default;
};

/// ResponseHead is a decoded response head.
struct ResponseHead {
  StatusCode status = StatusCode::ok;  ///< response status
  Headers headers;                     ///< response header fields
  /// operator== compares the status and the headers.
  friend bool operator==(const ResponseHead&, const ResponseHead&) = default;
};

/// HeadError says why a head frame was refused; each maps to one answer (head_error_status).
enum class HeadError : std::uint8_t {
  none,
  unsupported_version,  ///< version byte is not kProtocolVersion: 400
  wrong_frame_type,     ///< not the expected frame type: 400
  too_large,            ///< payload over head_bytes_max, target over target_bytes_max: 431
  too_many_headers,     ///< over header_count_max: 431
  malformed,            ///< a length runs past the payload, or bytes are left over: 400
  unknown_method,       ///< a method code this version does not know: 501
  invalid_target,       ///< the path does not start with '/', or has a control character: 400
  invalid_header,       ///< a name that is not a token, or a value with CR, LF or NUL: 400
  invalid_status,       ///< a status outside [200, 599] (response heads only)
  truncated,            ///< the stream ended inside the frame: 400
};

/// head_error_text returns a short description of `e` for logs and error bodies.
[[nodiscard]] std::string_view head_error_text(HeadError e) noexcept;
/// head_error_status returns the status a server answers a request head refused with `e`.
[[nodiscard]] StatusCode head_error_status(HeadError e) noexcept;

/// varint_size returns the length of the QUIC variable-length encoding of `v` (1, 2, 4 or 8).
/// `v` must be below 2^62.
[[nodiscard]] std::size_t varint_size(std::uint64_t v) noexcept;
/// append_varint appends the QUIC variable-length encoding of `v` (below 2^62).
void append_varint(Bytes& out, std::uint64_t v);

/// encode_request_head appends the frame of `head` to `out`.
/// Errors: protocol_error when a header name or value is invalid or the path is not a valid target;
/// message_too_large when the frame breaks `limits` (the peer would refuse it).
[[nodiscard]] P2PResult<void> encode_request_head(const RequestHead& head, const HeadLimits& limits, Bytes& out);
/// encode_response_head appends the frame of `head` to `out`.
/// Errors: protocol_error for an invalid header or a status outside [200, 599]; message_too_large
/// when the frame breaks `limits`.
[[nodiscard]] P2PResult<void> encode_response_head(const ResponseHead& head, const HeadLimits& limits, Bytes& out);

/// HeadDecoder parses one head frame from successive chunks of a stream.
class HeadDecoder {
 public:
  /// State is where the decoder stands.
  enum class State : std::uint8_t { need_more, complete, failed };

  /// HeadDecoder expects a frame of `type` within `limits`.
  HeadDecoder(FrameType type, const HeadLimits& limits);

  /// feed consumes bytes of the frame from `chunk` and returns how many it used; the bytes after a
  /// complete frame are not consumed (they are the body). Feeding after complete or failed uses
  /// nothing.
  std::size_t feed(ByteView chunk);
  /// finish tells the decoder that the stream ended; an incomplete frame fails with truncated.
  void finish() noexcept;

  /// state returns the current state.
  [[nodiscard]] State state() const noexcept { return state_; }
  /// error returns why decoding failed (HeadError::none unless state() == failed).
  [[nodiscard]] HeadError error() const noexcept { return error_; }
  /// buffered returns how many frame bytes are held (bounded by the limits plus the prefix).
  [[nodiscard]] std::size_t buffered() const noexcept { return buffer_.size(); }
  /// request returns the decoded request head; valid once complete for a request_head decoder.
  [[nodiscard]] RequestHead& request() noexcept { return request_; }
  /// response returns the decoded response head; valid once complete for a response_head decoder.
  [[nodiscard]] ResponseHead& response() noexcept { return response_; }

 private:
  void fail(HeadError e) noexcept;
  void parse_payload();

  FrameType type_;
  HeadLimits limits_;
  State state_ = State::need_more;
  HeadError error_ = HeadError::none;
  std::optional<std::uint64_t> payload_length_;
  Bytes buffer_;  // the prefix, then the payload
  RequestHead request_;
  ResponseHead response_;
};

}  // namespace moosicbox::p2p::router
