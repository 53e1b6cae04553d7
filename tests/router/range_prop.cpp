// SPDX-License-Identifier: MIT OR Apache-2.0
// range_prop.cpp: Range evaluation against a direct reading of RFC 9110 section 14 for every kind of
// single range, and query strings that survive encoding and parsing.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <string>

#include <fmt/format.h>

#include "moosicbox/p2p/router/range.hpp"
#include "moosicbox/p2p/router/uri.hpp"

namespace moosicbox::p2p::router {
namespace {

RangeDecision partial(std::uint64_t first, std::uint64_t last) {
  return RangeDecision{RangeOutcome::partial, ByteRange{first, last}};
}
const RangeDecision kUnsatisfiable{RangeOutcome::unsatisfiable, {}};

RC_GTEST_PROP(RouterRangeProp, SingleRangesFollowTheRfc, ()) {
  const auto size = *rc::gen::inRange<std::uint64_t>(0, 5000);
  const auto a = *rc::gen::inRange<std::uint64_t>(0, 6000);
  const auto b = *rc::gen::inRange<std::uint64_t>(0, 6000);
  switch (*rc::gen::inRange(0, 3)) {
    case 0: {  // bytes=a-b
      const auto got = evaluate_range(fmt::format("bytes={}-{}", a, b), size);
      if (b < a) {
        RC_ASSERT(got == RangeDecision{});  // invalid: ignored
      } else if (a >= size) {
        RC_ASSERT(got == kUnsatisfiable);
      } else {
        RC_ASSERT(got == partial(a, std::min(b, size - 1)));
      }
      break;
    }
    case 1: {  // bytes=a-
      const auto got = evaluate_range(fmt::format("bytes={}-", a), size);
      RC_ASSERT(got == (a >= size ? kUnsatisfiable : partial(a, size - 1)));
      break;
    }
    default: {  // bytes=-b
      const auto got = evaluate_range(fmt::format("bytes=-{}", b), size);
      if (b == 0) {
        RC_ASSERT(got == kUnsatisfiable);
      } else if (size == 0) {
        RC_ASSERT(got == RangeDecision{});
      } else {
        RC_ASSERT(got == partial(size - std::min(b, size), size - 1));
      }
      break;
    }
  }
}

RC_GTEST_PROP(RouterRangeProp, PartialRangesLieInsideTheRepresentation, (std::string header)) {
  const auto size = *rc::gen::inRange<std::uint64_t>(0, 100000);
  const auto got = evaluate_range("bytes=" + header, size);
  if (got.outcome == RangeOutcome::partial) {
    RC_ASSERT(got.range.first <= got.range.last);
    RC_ASSERT(got.range.last < size);
  }
}

RC_GTEST_PROP(RouterQueryProp, EncodedParamsParseBack, ()) {
  const auto n = *rc::gen::inRange(0, 8);
  QueryParams q;
  for (int i = 0; i < n; ++i) {
    // Printable ASCII and a few UTF-8 sequences: every decoded value must be valid UTF-8.
    auto text =
        rc::gen::container<std::string>(rc::gen::elementOf(std::string(" !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~")));
    auto key = *rc::gen::nonEmpty(text);
    auto value = *text + (*rc::gen::arbitrary<bool>() ? "\xc3\xa9\xf0\x9f\x8e\xb5" : "");
    q.add(key, value);
  }
  const auto back = QueryParams::parse(q.encode());
  RC_ASSERT(back.has_value());
  RC_ASSERT(*back == q);
}

}  // namespace
}  // namespace moosicbox::p2p::router
