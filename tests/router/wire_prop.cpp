// SPDX-License-Identifier: MIT OR Apache-2.0
// wire_prop.cpp: head frames round-trip whatever the chunking, and arbitrary bytes never crash the
// decoder nor make it hold more than the limits allow.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "moosicbox/p2p/router/wire.hpp"

namespace moosicbox::p2p::router {
namespace {

rc::Gen<std::string> gen_token() {
  return rc::gen::nonEmpty(rc::gen::container<std::string>(rc::gen::elementOf(std::string("abcxyz019-_.!~"))));
}

rc::Gen<std::string> gen_value() {
  return rc::gen::map(rc::gen::container<std::string>(rc::gen::elementOf(std::string("ab c:;/\t\x80\xff"))),
                      [](std::string s) {
                        while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.erase(0, 1);
                        while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
                        return s;
                      });
}

rc::Gen<RequestHead> gen_request() {
  return rc::gen::exec([] {
    RequestHead h;
    h.method = static_cast<Method>(*rc::gen::inRange(1, 8));
    h.path = "/" + *rc::gen::container<std::string>(rc::gen::elementOf(std::string("abc/%20:@\xc3\xa9")));
    h.query = *rc::gen::container<std::string>(rc::gen::elementOf(std::string("ab=&+%?")));
    const int n = *rc::gen::inRange(0, 20);
    for (int i = 0; i < n; ++i) h.headers.add(*gen_token(), *gen_value());
    return h;
  });
}

// feed_chunks feeds `bytes` in random chunk sizes and returns how many bytes the decoder used.
std::size_t feed_chunks(HeadDecoder& d, ByteView bytes) {
  std::size_t at = 0;
  std::size_t used = 0;
  while (at < bytes.size()) {
    const auto n = std::min<std::size_t>(bytes.size() - at, *rc::gen::inRange<std::size_t>(1, 64));
    used += d.feed(bytes.subspan(at, n));
    at += n;
  }
  return used;
}

RC_GTEST_PROP(RouterWireProp, RequestHeadsRoundTripInAnyChunking, ()) {
  const auto head = *gen_request();
  Bytes bytes;
  RC_ASSERT(encode_request_head(head, {}, bytes).has_value());
  const auto frame_size = bytes.size();
  const auto body = *rc::gen::container<std::vector<std::uint8_t>>(rc::gen::arbitrary<std::uint8_t>());
  for (const auto b : body) bytes.push_back(std::byte{b});
  HeadDecoder d(FrameType::request_head, {});
  RC_ASSERT(feed_chunks(d, bytes) == frame_size);
  RC_ASSERT(d.state() == HeadDecoder::State::complete);
  RC_ASSERT(d.request() == head);
}

RC_GTEST_PROP(RouterWireProp, ResponseHeadsRoundTrip, ()) {
  ResponseHead head;
  head.status = static_cast<StatusCode>(*rc::gen::inRange(200, 600));
  const int n = *rc::gen::inRange(0, 20);
  for (int i = 0; i < n; ++i) head.headers.add(*gen_token(), *gen_value());
  Bytes bytes;
  RC_ASSERT(encode_response_head(head, {}, bytes).has_value());
  HeadDecoder d(FrameType::response_head, {});
  RC_ASSERT(feed_chunks(d, bytes) == bytes.size());
  RC_ASSERT(d.response() == head);
}

RC_GTEST_PROP(RouterWireProp, ArbitraryBytesNeverExceedTheLimits, ()) {
  HeadLimits limits;
  limits.head_bytes_max = *rc::gen::inRange<std::size_t>(0, 512);
  limits.header_count_max = *rc::gen::inRange<std::size_t>(0, 8);
  auto raw = *rc::gen::container<std::vector<std::uint8_t>>(rc::gen::arbitrary<std::uint8_t>());
  if (*rc::gen::arbitrary<bool>() && raw.size() >= 2) {
    raw[0] = kProtocolVersion;  // get past the first checks more often
    raw[1] = 0x01;
  }
  Bytes bytes;
  for (const auto b : raw) bytes.push_back(std::byte{b});
  HeadDecoder d(FrameType::request_head, limits);
  std::size_t at = 0;
  while (at < bytes.size()) {
    const auto n = std::min<std::size_t>(bytes.size() - at, *rc::gen::inRange<std::size_t>(1, 32));
    d.feed(ByteView(bytes).subspan(at, n));
    RC_ASSERT(d.buffered() <= limits.head_bytes_max + 10);
    at += n;
  }
  d.finish();
  RC_ASSERT(d.state() != HeadDecoder::State::need_more);
  if (d.state() == HeadDecoder::State::complete) {
    RC_ASSERT(d.request().headers.size() <= limits.header_count_max);
    Bytes again;
    RC_ASSERT(encode_request_head(d.request(), limits, again).has_value());
  }
}

}  // namespace
}  // namespace moosicbox::p2p::router
