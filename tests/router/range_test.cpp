// SPDX-License-Identifier: MIT OR Apache-2.0
// range_test.cpp: Range header evaluation (single, open-ended, suffix, unsatisfiable, ignored).
#include "moosicbox/p2p/router/range.hpp"

#include <gtest/gtest.h>

namespace moosicbox::p2p::router {
namespace {

RangeDecision partial(std::uint64_t first, std::uint64_t last) {
  return RangeDecision{RangeOutcome::partial, ByteRange{first, last}};
}
const RangeDecision kFull{};
const RangeDecision kUnsatisfiable{RangeOutcome::unsatisfiable, {}};

TEST(RouterRange, AnswersSingleClosedRanges) {
  EXPECT_EQ(evaluate_range("bytes=0-99", 1000), partial(0, 99));
  EXPECT_EQ(evaluate_range("bytes=500-500", 1000), partial(500, 500));
  EXPECT_EQ(evaluate_range("bytes=900-5000", 1000), partial(900, 999));
  EXPECT_EQ(evaluate_range("bytes=0-99999999999999999999999", 1000), partial(0, 999));
  EXPECT_EQ(evaluate_range(" BYTES = 10-19 ", 1000), kFull);  // OWS is not allowed around '='
  EXPECT_EQ(evaluate_range("Bytes=10-19", 1000), partial(10, 19));
}

TEST(RouterRange, AnswersOpenEndedAndSuffixRanges) {
  EXPECT_EQ(evaluate_range("bytes=100-", 1000), partial(100, 999));
  EXPECT_EQ(evaluate_range("bytes=999-", 1000), partial(999, 999));
  EXPECT_EQ(evaluate_range("bytes=-1", 1000), partial(999, 999));
  EXPECT_EQ(evaluate_range("bytes=-300", 1000), partial(700, 999));
  EXPECT_EQ(evaluate_range("bytes=-5000", 1000), partial(0, 999));
}

TEST(RouterRange, ReportsUnsatisfiableRanges) {
  EXPECT_EQ(evaluate_range("bytes=1000-", 1000), kUnsatisfiable);
  EXPECT_EQ(evaluate_range("bytes=1000-2000", 1000), kUnsatisfiable);
  EXPECT_EQ(evaluate_range("bytes=-0", 1000), kUnsatisfiable);
  EXPECT_EQ(evaluate_range("bytes=0-0", 0), kUnsatisfiable);
  EXPECT_EQ(evaluate_range("bytes=99999999999999999999-", 10), kUnsatisfiable);
  EXPECT_EQ(evaluate_range("bytes=2000-,3000-", 1000), kUnsatisfiable);
  EXPECT_EQ(unsatisfied_range_value(1000), "bytes */1000");
  EXPECT_EQ(content_range_value(ByteRange{0, 99}, 1000), "bytes 0-99/1000");
}

TEST(RouterRange, IgnoresAbsentInvalidAndMultipleRanges) {
  EXPECT_EQ(evaluate_range(std::nullopt, 1000), kFull);
  for (const auto* h : {"", "bytes", "bytes=", "bytes=,", "items=0-1", "bytes=a-b", "bytes=5-1", "bytes=1-2-3",
                        "bytes=--1", "bytes=0x10-", "bytes=- 5", "bytes=0-1,2-3", "bytes=0-1,x"}) {
    EXPECT_EQ(evaluate_range(h, 1000), kFull) << h;
  }
  EXPECT_EQ(evaluate_range("bytes=-5", 0), kFull);
}

TEST(RouterRange, AcceptsEmptyListElements) { EXPECT_EQ(evaluate_range("bytes=, 0-9 ,", 100), partial(0, 9)); }

}  // namespace
}  // namespace moosicbox::p2p::router
