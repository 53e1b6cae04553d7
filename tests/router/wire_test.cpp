// SPDX-License-Identifier: MIT OR Apache-2.0
// wire_test.cpp: head frame encoding and the incremental decoder, including hostile input.
#include "moosicbox/p2p/router/wire.hpp"

#include <gtest/gtest.h>

namespace moosicbox::p2p::router {
namespace {

RequestHead sample_request() {
  RequestHead h;
  h.method = Method::POST;
  h.path = "/tracks/42/play";
  h.query = "at=10&volume=0.5";
  h.headers = Headers{{"Content-Type", "application/json"}, {"x-trace", "abc"}, {"x-trace", "def"}};
  return h;
}

Bytes encode(const RequestHead& h, const HeadLimits& limits = {}) {
  Bytes out;
  const auto r = encode_request_head(h, limits, out);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
  return out;
}

Bytes encode(const ResponseHead& h, const HeadLimits& limits = {}) {
  Bytes out;
  const auto r = encode_response_head(h, limits, out);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message());
  return out;
}

TEST(RouterVarint, EncodesQuicVariableLengthIntegers) {
  const std::pair<std::uint64_t, std::size_t> cases[] = {
      {0, 1}, {63, 1}, {64, 2}, {16383, 2}, {16384, 4}, {1073741823, 4}, {1073741824, 8}, {(1ULL << 62) - 1, 8}};
  for (const auto& [v, n] : cases) {
    Bytes out;
    append_varint(out, v);
    EXPECT_EQ(out.size(), n) << v;
    EXPECT_EQ(varint_size(v), n) << v;
  }
  Bytes out;
  append_varint(out, 494878333);  // RFC 9000 A.1 example: 9d 7f 3e 7d
  EXPECT_EQ(out, (Bytes{std::byte{0x9d}, std::byte{0x7f}, std::byte{0x3e}, std::byte{0x7d}}));
}

TEST(RouterWire, RoundTripsRequestHeadInOneChunk) {
  const auto head = sample_request();
  auto bytes = encode(head);
  const auto body = to_bytes("body bytes");
  bytes.insert(bytes.end(), body.begin(), body.end());
  HeadDecoder d(FrameType::request_head, {});
  const auto used = d.feed(bytes);
  ASSERT_EQ(d.state(), HeadDecoder::State::complete);
  EXPECT_EQ(used, bytes.size() - body.size());
  EXPECT_EQ(d.request(), head);
  EXPECT_EQ(d.request().headers.get("CONTENT-TYPE"), "application/json");
}

TEST(RouterWire, RoundTripsRequestHeadByteByByte) {
  const auto head = sample_request();
  const auto bytes = encode(head);
  HeadDecoder d(FrameType::request_head, {});
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    ASSERT_EQ(d.state(), HeadDecoder::State::need_more) << i;
    EXPECT_EQ(d.feed(ByteView(bytes).subspan(i, 1)), 1u);
  }
  ASSERT_EQ(d.state(), HeadDecoder::State::complete);
  EXPECT_EQ(d.request(), head);
  EXPECT_EQ(d.feed(bytes), 0u);  // complete: nothing more is consumed
}

TEST(RouterWire, RoundTripsResponseHead) {
  ResponseHead head{StatusCode::partial_content, Headers{{"content-range", "bytes 0-9/100"}}};
  const auto bytes = encode(head);
  HeadDecoder d(FrameType::response_head, {});
  EXPECT_EQ(d.feed(bytes), bytes.size());
  ASSERT_EQ(d.state(), HeadDecoder::State::complete);
  EXPECT_EQ(d.response(), head);
}

TEST(RouterWire, RejectsWrongVersionAndFrameType) {
  auto bytes = encode(sample_request());
  bytes[0] = std::byte{2};
  HeadDecoder d(FrameType::request_head, {});
  d.feed(bytes);
  EXPECT_EQ(d.error(), HeadError::unsupported_version);
  HeadDecoder r(FrameType::response_head, {});
  r.feed(encode(sample_request()));
  EXPECT_EQ(r.error(), HeadError::wrong_frame_type);
}

TEST(RouterWire, ReportsTruncatedFrames) {
  const auto bytes = encode(sample_request());
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    HeadDecoder d(FrameType::request_head, {});
    d.feed(ByteView(bytes).first(cut));
    ASSERT_EQ(d.state(), HeadDecoder::State::need_more) << cut;
    d.finish();
    EXPECT_EQ(d.error(), HeadError::truncated) << cut;
    EXPECT_EQ(head_error_status(d.error()), StatusCode::bad_request);
  }
}

TEST(RouterWire, RefusesOversizedHeadBeforeBufferingIt) {
  HeadLimits limits;
  limits.head_bytes_max = 1024;
  Bytes bytes{std::byte{kProtocolVersion}, std::byte{0x01}};
  append_varint(bytes, 1u << 29);  // claims a 512 MiB head
  HeadDecoder d(FrameType::request_head, limits);
  d.feed(bytes);
  EXPECT_EQ(d.error(), HeadError::too_large);
  EXPECT_EQ(d.buffered(), 0u);
  EXPECT_EQ(head_error_status(d.error()), StatusCode::request_header_fields_too_large);
}

TEST(RouterWire, RefusesTooManyHeadersAndLongTargets) {
  HeadLimits big;
  big.header_count_max = 1000;
  RequestHead h = sample_request();
  for (int i = 0; i < 200; ++i) h.headers.add("x-h", std::to_string(i));
  const auto bytes = encode(h, big);
  HeadDecoder d(FrameType::request_head, {});
  d.feed(bytes);
  EXPECT_EQ(d.error(), HeadError::too_many_headers);
  EXPECT_EQ(head_error_status(d.error()), StatusCode::request_header_fields_too_large);

  HeadLimits wide;
  wide.target_bytes_max = 100000;
  RequestHead longpath = sample_request();
  longpath.path = "/" + std::string(9000, 'a');
  const auto lp = encode(longpath, wide);
  HeadDecoder d2(FrameType::request_head, {});
  d2.feed(lp);
  EXPECT_EQ(d2.error(), HeadError::too_large);

  Bytes out;
  EXPECT_EQ(encode_request_head(h, {}, out).error().code(), P2PErrc::message_too_large);
  EXPECT_EQ(encode_request_head(longpath, {}, out).error().code(), P2PErrc::message_too_large);
}

Bytes frame(FrameType type, const Bytes& payload) {
  Bytes out{std::byte{kProtocolVersion}, static_cast<std::byte>(type)};
  append_varint(out, payload.size());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

HeadError decode_error(const Bytes& payload, FrameType type = FrameType::request_head) {
  HeadDecoder d(type, {});
  d.feed(frame(type, payload));
  d.finish();
  return d.error();
}

Bytes request_payload(std::uint8_t method, std::string_view path, std::string_view query, std::uint64_t count,
                      std::initializer_list<std::string_view> fields) {
  Bytes p{std::byte{method}};
  auto text = [&p](std::string_view s) {
    append_varint(p, s.size());
    const auto v = as_bytes(s);
    p.insert(p.end(), v.begin(), v.end());
  };
  text(path);
  text(query);
  append_varint(p, count);
  for (const auto f : fields) text(f);
  return p;
}

TEST(RouterWire, RejectsMalformedPayloads) {
  EXPECT_EQ(decode_error({}), HeadError::malformed);
  EXPECT_EQ(decode_error(request_payload(1, "/", "", 0, {})), HeadError::none);
  EXPECT_EQ(decode_error(request_payload(0, "/", "", 0, {})), HeadError::unknown_method);
  EXPECT_EQ(decode_error(request_payload(99, "/", "", 0, {})), HeadError::unknown_method);
  EXPECT_EQ(decode_error(request_payload(1, "x", "", 0, {})), HeadError::invalid_target);
  EXPECT_EQ(decode_error(request_payload(1, "", "", 0, {})), HeadError::invalid_target);
  EXPECT_EQ(decode_error(request_payload(1, "/a b", "", 0, {})), HeadError::invalid_target);
  EXPECT_EQ(decode_error(request_payload(1, "/a?b", "", 0, {})), HeadError::invalid_target);
  EXPECT_EQ(decode_error(request_payload(1, "/", "a\nb", 0, {})), HeadError::invalid_target);
  EXPECT_EQ(decode_error(request_payload(1, "/", "", 1, {"bad name", "v"})), HeadError::invalid_header);
  EXPECT_EQ(decode_error(request_payload(1, "/", "", 1, {"x", "a\r\nb"})), HeadError::invalid_header);
  EXPECT_EQ(decode_error(request_payload(1, "/", "", 2, {"x", "v"})), HeadError::malformed);           // count lies
  EXPECT_EQ(decode_error(request_payload(1, "/", "", 1, {"x", "v", "extra"})), HeadError::malformed);  // leftover
  EXPECT_EQ(decode_error(request_payload(1, "/", "", 60, {})), HeadError::malformed);
  Bytes long_len{std::byte{1}};
  append_varint(long_len, 1000);  // path length past the payload
  EXPECT_EQ(decode_error(long_len), HeadError::malformed);
}

TEST(RouterWire, RejectsInvalidStatuses) {
  for (const std::uint16_t status : std::initializer_list<std::uint16_t>{0, 100, 199, 600, 65535}) {
    Bytes p{static_cast<std::byte>(status >> 8), static_cast<std::byte>(status & 0xffu)};
    append_varint(p, 0);
    EXPECT_EQ(decode_error(p, FrameType::response_head), HeadError::invalid_status) << status;
  }
  Bytes out;
  EXPECT_FALSE(encode_response_head(ResponseHead{static_cast<StatusCode>(100), {}}, {}, out).has_value());
}

TEST(RouterWire, EncoderRefusesWhatTheDecoderWouldRefuse) {
  Bytes out;
  RequestHead h = sample_request();
  h.headers.add("bad name", "x");
  EXPECT_EQ(encode_request_head(h, {}, out).error().code(), P2PErrc::protocol_error);
  h = sample_request();
  h.headers.add("x", "line\nbreak");
  EXPECT_EQ(encode_request_head(h, {}, out).error().code(), P2PErrc::protocol_error);
  h = sample_request();
  h.path = "relative";
  EXPECT_EQ(encode_request_head(h, {}, out).error().code(), P2PErrc::protocol_error);
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace moosicbox::p2p::router
