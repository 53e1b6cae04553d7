// SPDX-License-Identifier: MIT OR Apache-2.0
// transfer_prop.cpp: properties of the QUIC engine: ByteQueue behaves like a deque; any payload sent
// on a stream arrives intact and in order whatever the link's loss, jitter and seed.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <deque>

#include "quic/byte_queue.hpp"
#include "quic/quic_pair.hpp"

namespace moosicbox::p2p::quic {
namespace {

using namespace std::chrono_literals;

RC_GTEST_PROP(ByteQueue, BehavesLikeADeque, (const std::vector<std::pair<bool, std::uint16_t>>& ops)) {
  ByteQueue q;
  std::deque<std::byte> ref;
  std::uint8_t next = 0;
  for (const auto& [append, amount] : ops) {
    if (append) {
      Bytes b(amount % 40000);
      for (auto& x : b) x = std::byte(next++);
      q.append(b);
      ref.insert(ref.end(), b.begin(), b.end());
    } else {
      const std::size_t n = std::min<std::size_t>(amount, ref.size());
      Bytes out(n);
      RC_ASSERT(q.copy_out(0, out) == n);
      RC_ASSERT(std::equal(out.begin(), out.end(), ref.begin()));
      q.consume(n);
      ref.erase(ref.begin(), ref.begin() + static_cast<std::ptrdiff_t>(n));
    }
    RC_ASSERT(q.size() == ref.size());
    RC_ASSERT(q.allocated() <= (ref.size() / ByteQueue::kBlockSize + 2) * ByteQueue::kBlockSize);
  }
  Bytes all(ref.size());
  RC_ASSERT(q.copy_out(0, all) == ref.size());
  RC_ASSERT(std::equal(all.begin(), all.end(), ref.begin()));
}
RC_GTEST_PROP(QuicTransfer, AnyPayloadArrivesIntactUnderAnyLink, ()) {
  const auto seed = *rc::gen::inRange<std::uint64_t>(1, 1'000'000);
  const auto loss_pct = *rc::gen::inRange(0, 20);
  const auto jitter_ms = *rc::gen::inRange(0, 10);
  const auto size = *rc::gen::inRange<std::size_t>(0, 200'000);
  const bool uni = *rc::gen::arbitrary<bool>();
  RC_TAG(loss_pct >= 10 ? "heavy loss" : "light loss");
  testing::PairConfig cfg;
  cfg.seed = seed;
  cfg.to_server = testing::LinkConfig{3ms, std::chrono::milliseconds(jitter_ms), loss_pct / 100.0, true};
  cfg.to_client = testing::LinkConfig{3ms, std::chrono::milliseconds(jitter_ms), loss_pct / 100.0, true};
  testing::Pair pair(cfg);
  RC_ASSERT(pair.handshake(60s));
  auto id = uni ? pair.client().open_uni() : pair.client().open_bi();
  RC_ASSERT(id && id->has_value());
  const StreamId sid = **id;
  Bytes data(size);
  env::Rng(seed).fill_random(data);
  std::size_t written = 0;
  bool fin_sent = false;
  Bytes got;
  bool fin = false;
  bool failed = false;
  pair.on_step = [&] {
    if (!fin_sent) {
      auto n = pair.client().stream_write(sid, ByteView(data).subspan(written), true);
      if (!n) {
        failed = true;
      } else {
        written += *n;
        fin_sent = written == data.size();
      }
    }
    if (pair.server() == nullptr || fin || failed) return;
    std::array<std::byte, 8192> buf{};
    for (;;) {
      auto r = pair.server()->stream_read(sid, buf);
      if (!r) return;  // not opened yet on the server side
      got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(r->size));
      if (r->fin) {
        fin = true;
        return;
      }
      if (r->size == 0) return;
    }
  };
  RC_ASSERT(pair.run_until([&] { return fin || failed; }, 600s));
  RC_ASSERT(!failed);
  RC_ASSERT(got == data);
}

}  // namespace
}  // namespace moosicbox::p2p::quic
