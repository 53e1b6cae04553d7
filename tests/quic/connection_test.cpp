// SPDX-License-Identifier: MIT OR Apache-2.0
// connection_test.cpp: the sans-IO QUIC engine, two engines against each other in memory with
// virtual time (tests/quic/quic_pair.hpp): handshake and identity, ALPN, streams under loss and
// reordering, flow control, datagrams, timeouts, close, hostile input, stateless reset, Retry and
// version negotiation.
#include "quic/connection.hpp"

#include <gtest/gtest.h>

#include <set>

#include "quic/quic_pair.hpp"
#include "quic/tls_native.hpp"

namespace moosicbox::p2p::quic {
namespace {

using namespace std::chrono_literals;
using testing::LinkConfig;
using testing::Pair;
using testing::PairConfig;
using testing::Side;

Bytes pattern(std::size_t size, std::uint64_t seed) {
  env::Rng rng(seed);
  Bytes out(size);
  rng.fill_random(out);
  return out;
}

// Sender pushes `data` into a stream whenever the stream takes more; Receiver drains a stream.
struct Sender {
  Connection* conn = nullptr;
  StreamId id = -1;
  Bytes data;
  std::size_t written = 0;
  bool fin = true;
  bool finished = false;
  std::optional<P2PError> error;

  void pump() {
    if (conn == nullptr || finished || error) return;
    while (written < data.size()) {
      auto n = conn->stream_write(id, ByteView(data).subspan(written), fin);
      if (!n) {
        error = n.error();
        return;
      }
      if (*n == 0) return;
      written += *n;
    }
    if (written == data.size()) finished = true;
  }
};

struct Receiver {
  Connection* conn = nullptr;
  StreamId id = -1;
  Bytes received;
  bool fin = false;
  bool reading = true;
  std::optional<P2PError> error;

  void pump() {
    if (conn == nullptr || fin || error || !reading) return;
    std::array<std::byte, 4096> buf{};
    for (;;) {
      auto r = conn->stream_read(id, buf);
      if (!r) {
        error = r.error();
        return;
      }
      received.insert(received.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(r->size));
      if (r->fin) {
        fin = true;
        return;
      }
      if (r->size == 0) return;
    }
  }
};

bool has_event(const std::vector<Event>& events, EventKind kind) {
  return std::any_of(events.begin(), events.end(), [&](const Event& e) { return e.kind == kind; });
}

// --- handshake and identity ---

TEST(QuicConnection, HandshakeAuthenticatesBothSides) {
  Pair pair;
  ASSERT_TRUE(pair.handshake());
  ASSERT_NE(pair.server(), nullptr);
  EXPECT_EQ(pair.client().peer_id(), pair.server_id());
  EXPECT_EQ(pair.server()->peer_id(), pair.client_id());
  EXPECT_EQ(pair.client().alpn(), "p2p/test/1");
  EXPECT_EQ(pair.server()->alpn(), "p2p/test/1");
  EXPECT_FALSE(pair.client().is_closed());
  EXPECT_TRUE(pair.server()->is_server());
  EXPECT_FALSE(pair.client().is_server());
  EXPECT_TRUE(has_event(pair.client_events, EventKind::connected));
  EXPECT_TRUE(has_event(pair.server_events, EventKind::connected));
  EXPECT_GT(pair.client().stats().smoothed_rtt.count(), 0);
}

TEST(QuicConnection, HandshakeTakesOneRoundTripPlusConfirmation) {
  PairConfig cfg;
  cfg.to_server.latency = 10ms;
  cfg.to_client.latency = 10ms;
  Pair pair(cfg);
  const TimePoint start = pair.now();
  ASSERT_TRUE(pair.run_until([&] { return pair.client().is_established(); }, 5s));
  // Initial -> server flight -> client Finished -> HANDSHAKE_DONE: two round trips on a 20 ms RTT.
  EXPECT_LE(pair.now() - start, 41ms);
}

TEST(QuicConnection, WrongServerKeyFailsAuthenticationOnBothSides) {
  PairConfig cfg;
  cfg.dial_id = test_node_id("someone-else");
  Pair pair(cfg);
  ASSERT_TRUE(pair.run_until(
      [&] { return pair.client().is_closed() && pair.server() != nullptr && pair.server()->is_closed(); }, 5s));
  const CloseInfo* c = pair.client().close_info();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->error.code(), P2PErrc::authentication_failed) << c->error.message();
  EXPECT_NE(c->error.message().find(test_node_id("someone-else").to_string()), std::string::npos) << c->error.message();
  EXPECT_NE(c->error.message().find(pair.server_id().to_string()), std::string::npos) << c->error.message();
  const CloseInfo* s = pair.server()->close_info();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->error.code(), P2PErrc::authentication_failed) << s->error.message();
  EXPECT_FALSE(pair.client().is_established());
  EXPECT_FALSE(pair.server()->is_established());
  EXPECT_FALSE(has_event(pair.server_events, EventKind::connected));
}

TEST(QuicConnection, AlpnMismatchFailsClearlyOnBothSides) {
  PairConfig cfg;
  cfg.client_alpn = "p2p/chat/1";
  cfg.server_alpns = {"p2p/files/1", "p2p/sync/2"};
  Pair pair(cfg);
  ASSERT_TRUE(pair.run_until(
      [&] { return pair.client().is_closed() && pair.server() != nullptr && pair.server()->is_closed(); }, 5s));
  const CloseInfo* c = pair.client().close_info();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->error.code(), P2PErrc::connection_failed) << c->error.message();
  EXPECT_NE(c->error.message().find("ALPN"), std::string::npos) << c->error.message();
  const CloseInfo* s = pair.server()->close_info();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->error.code(), P2PErrc::connection_failed) << s->error.message();
  EXPECT_NE(s->error.message().find("p2p/files/1"), std::string::npos) << s->error.message();
}

TEST(QuicConnection, ServerSelectsTheClientsProtocolAmongSeveral) {
  PairConfig cfg;
  cfg.client_alpn = "p2p/sync/2";
  cfg.server_alpns = {"p2p/files/1", "p2p/sync/2"};
  Pair pair(cfg);
  ASSERT_TRUE(pair.handshake());
  EXPECT_EQ(pair.server()->alpn(), "p2p/sync/2");
  EXPECT_EQ(pair.client().alpn(), "p2p/sync/2");
}

TEST(QuicConnection, ConnectRejectsBadConfiguration) {
  auto identity = *TlsIdentity::create(test_secret_key("x"));
  env::Rng rng(1);
  ClientConfig cc;
  cc.identity = identity;
  cc.server_id = test_node_id("y");
  cc.random = make_random_fn(rng);
  cc.path = Path{testing::client_addr(), testing::server_addr()};
  cc.alpn = "";
  auto r = Connection::connect(cc, TimePoint(1s));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), P2PErrc::invalid_configuration);
  cc.alpn = std::string(256, 'a');
  EXPECT_FALSE(Connection::connect(cc, TimePoint(1s)));
  cc.alpn = "ok";
  cc.server_id.reset();
  EXPECT_FALSE(Connection::connect(cc, TimePoint(1s)));
  cc.server_id = test_node_id("y");
  cc.random = nullptr;
  EXPECT_FALSE(Connection::connect(cc, TimePoint(1s)));
}

TEST(QuicConnection, HandshakeTimesOutWhenServerNeverAnswers) {
  PairConfig cfg;
  cfg.to_server.up = false;
  cfg.client_transport.handshake_timeout = 3s;
  Pair pair(cfg);
  ASSERT_TRUE(pair.run_until([&] { return pair.client().is_closed(); }, 10s));
  const CloseInfo* c = pair.client().close_info();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->origin, CloseOrigin::handshake_timeout);
  EXPECT_EQ(c->error.code(), P2PErrc::timeout);
  EXPECT_NE(c->error.message().find("handshake"), std::string::npos) << c->error.message();
  EXPECT_TRUE(pair.client().is_drained());
}

TEST(QuicConnection, HandshakeCompletesUnderHeavyLoss) {
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed=" << seed);
    PairConfig cfg;
    cfg.seed = seed;
    cfg.to_server.loss = 0.3;
    cfg.to_client.loss = 0.3;
    Pair pair(cfg);
    EXPECT_TRUE(pair.handshake(30s));
  }
}

// --- streams ---

struct StreamCase {
  double loss;
  Duration jitter;
  std::size_t size;
  std::uint64_t seed;
};

void run_bidi_transfer(const StreamCase& c) {
  SCOPED_TRACE(::testing::Message() << "seed=" << c.seed << " loss=" << c.loss);
  PairConfig cfg;
  cfg.seed = c.seed;
  cfg.to_server = LinkConfig{5ms, c.jitter, c.loss, true};
  cfg.to_client = LinkConfig{5ms, c.jitter, c.loss, true};
  Pair pair(cfg);
  ASSERT_TRUE(pair.handshake(30s));
  auto id = pair.client().open_bi();
  ASSERT_TRUE(id && id->has_value());
  const StreamId sid = **id;

  Sender up{&pair.client(), sid, pattern(c.size, c.seed)};
  Receiver up_rx{pair.server(), sid};
  Sender down{pair.server(), sid, pattern(c.size + 17, c.seed + 1000)};
  Receiver down_rx{&pair.client(), sid};
  bool server_knows = false;
  pair.on_event = [&](Side s, const Event& e) {
    if (s == Side::server && e.kind == EventKind::stream_opened && e.stream_id == sid) server_knows = true;
  };
  pair.on_step = [&] {
    up.pump();
    down_rx.pump();
    if (server_knows) {
      up_rx.pump();
      down.pump();
    }
  };
  ASSERT_TRUE(pair.run_until([&] { return up_rx.fin && down_rx.fin; }, 600s));
  EXPECT_FALSE(up.error || down.error || up_rx.error || down_rx.error);
  ASSERT_EQ(up_rx.received.size(), up.data.size());
  EXPECT_TRUE(up_rx.received == up.data) << "client to server bytes differ";
  ASSERT_EQ(down_rx.received.size(), down.data.size());
  EXPECT_TRUE(down_rx.received == down.data) << "server to client bytes differ";
  if (c.loss > 0) {
    EXPECT_GT(pair.dropped, 0U);
  }
  // Everything acknowledged: the send buffers are empty again.
  ASSERT_TRUE(
      pair.run_until([&] { return pair.client().unacked_bytes() == 0 && pair.server()->unacked_bytes() == 0; }, 30s));
}

TEST(QuicConnection, BidiStreamCarriesMegabytesBothWays) { run_bidi_transfer({0.0, {}, 3 << 20, 1}); }

TEST(QuicConnection, BidiStreamCarriesMegabytesUnderLossAndReordering) {
  for (std::uint64_t seed = 1; seed <= 3; ++seed) run_bidi_transfer({0.03, 4ms, (1 << 20) + 12345, seed});
}

TEST(QuicConnection, BidiStreamSurvivesHeavyLoss) { run_bidi_transfer({0.15, 2ms, 300 * 1024, 7}); }

TEST(QuicConnection, UniStreamCarriesDataAndFin) {
  Pair pair;
  ASSERT_TRUE(pair.handshake());
  auto id = pair.server()->open_uni();
  ASSERT_TRUE(id && id->has_value());
  const StreamId sid = **id;
  EXPECT_FALSE(is_bidi(sid));
  EXPECT_FALSE(is_client_initiated(sid));
  Sender tx{pair.server(), sid, pattern(200000, 3)};
  Receiver rx{&pair.client(), sid};
  pair.on_step = [&] {
    tx.pump();
    if (has_event(pair.client_events, EventKind::stream_opened)) rx.pump();
  };
  ASSERT_TRUE(pair.run_until([&] { return rx.fin; }, 60s));
  EXPECT_TRUE(rx.received == tx.data);
  // A unidirectional stream cannot be written by the receiver nor read by the sender.
  EXPECT_FALSE(pair.client().stream_write(sid, as_bytes("x")));
  std::array<std::byte, 8> buf{};
  EXPECT_FALSE(pair.server()->stream_read(sid, buf));
  // Its state goes once both sides are done with it.
  pair.client().stream_release(sid, 0);
  pair.server()->stream_release(sid, 0);
  EXPECT_TRUE(pair.run_until([&] { return has_event(pair.server_events, EventKind::stream_closed); }, 10s));
}

TEST(QuicConnection, ManyStreamsInterleaveWithoutMixingBytes) {
  PairConfig cfg;
  cfg.to_server.loss = 0.02;
  cfg.to_server.jitter = 3ms;
  Pair pair(cfg);
  ASSERT_TRUE(pair.handshake());
  std::vector<Sender> senders;
  std::vector<Receiver> receivers;
  for (int i = 0; i < 20; ++i) {
    auto id = pair.client().open_bi();
    ASSERT_TRUE(id && id->has_value());
    senders.push_back(Sender{&pair.client(), **id,
                             pattern(20000 + static_cast<std::size_t>(i) * 997, 50 + static_cast<std::uint64_t>(i))});
    receivers.push_back(Receiver{pair.server(), **id});
  }
  std::set<StreamId> opened;
  pair.on_event = [&](Side s, const Event& e) {
    if (s == Side::server && e.kind == EventKind::stream_opened) opened.insert(e.stream_id);
  };
  pair.on_step = [&] {
    for (auto& t : senders) t.pump();
    for (auto& r : receivers) {
      if (opened.count(r.id) != 0) r.pump();
    }
  };
  ASSERT_TRUE(pair.run_until(
      [&] { return std::all_of(receivers.begin(), receivers.end(), [](auto& r) { return r.fin; }); }, 120s));
  for (std::size_t i = 0; i < senders.size(); ++i) EXPECT_TRUE(receivers[i].received == senders[i].data) << i;
}

// race_two_streams queues 512 KiB on one stream, then 64 KiB on a second, with the given priorities,
// and returns how many bytes of the first had arrived while the second was still incomplete (bytes
// arriving in the same flight as the second's last ones are not counted: once the second has
// nothing left, the first may use the rest of the congestion window).
std::size_t race_two_streams(std::int32_t first_priority, std::int32_t second_priority) {
  Pair pair;
  EXPECT_TRUE(pair.handshake());
  auto a = pair.client().open_bi();
  auto b = pair.client().open_bi();
  EXPECT_TRUE(a && a->has_value() && b && b->has_value());
  Sender bulk{&pair.client(), **a, pattern(512 * 1024, 61)};
  Sender small{&pair.client(), **b, pattern(64 * 1024, 62)};
  Receiver bulk_rx{pair.server(), **a};
  Receiver small_rx{pair.server(), **b};
  pair.client().stream_set_priority(bulk.id, first_priority);
  pair.client().stream_set_priority(small.id, second_priority);
  EXPECT_EQ(pair.client().stream_priority(small.id), second_priority);
  std::set<StreamId> opened;
  pair.on_event = [&](Side s, const Event& e) {
    if (s == Side::server && e.kind == EventKind::stream_opened) opened.insert(e.stream_id);
  };
  std::size_t bulk_before_small_end = 0;
  pair.on_step = [&] {
    bulk.pump();
    small.pump();
    if (opened.count(bulk.id) != 0) bulk_rx.pump();
    if (opened.count(small.id) != 0) small_rx.pump();
    if (!small_rx.fin) bulk_before_small_end = bulk_rx.received.size();
  };
  EXPECT_TRUE(pair.run_until([&] { return bulk_rx.fin && small_rx.fin; }, 60s));
  EXPECT_TRUE(bulk_rx.received == bulk.data);
  EXPECT_TRUE(small_rx.received == small.data);
  return bulk_before_small_end;
}

TEST(QuicConnection, HigherPriorityStreamIsSentFirst) {
  // The bulk stream was queued first, yet none of it arrives before the small stream is complete.
  EXPECT_EQ(race_two_streams(-1, 0), 0U);
  // Raising a stream's priority works as well as lowering the other's.
  EXPECT_EQ(race_two_streams(0, 5), 0U);
}

TEST(QuicConnection, EqualPrioritiesShareThePathRoundRobin) {
  // The control: with equal priorities both streams progress together.
  EXPECT_GE(race_two_streams(0, 0), 32U * 1024);
}

TEST(QuicConnection, ClientSurvivesANatRebindingMidTransfer) {
  Pair pair;
  ASSERT_TRUE(pair.handshake());
  auto id = pair.client().open_bi();
  ASSERT_TRUE(id && id->has_value());
  Sender up{&pair.client(), **id, pattern(2 << 20, 71)};
  Receiver up_rx{pair.server(), **id};
  Sender down{pair.server(), **id, pattern(1 << 20, 72)};
  Receiver down_rx{&pair.client(), **id};
  bool opened = false;
  pair.on_event = [&](Side s, const Event& e) {
    if (s == Side::server && e.kind == EventKind::stream_opened) opened = true;
  };
  const Address rebound(asio::ip::make_address("10.0.0.1"), 4711);
  bool rebound_done = false;
  pair.on_step = [&] {
    up.pump();
    if (!opened) return;
    up_rx.pump();
    down.pump();
    down_rx.pump();
    if (!rebound_done && up_rx.received.size() >= (512U << 10)) {
      // The client's NAT picks a new source port mid-transfer.
      pair.rebind_client(rebound);
      rebound_done = true;
    }
  };
  ASSERT_TRUE(pair.run_until([&] { return up_rx.fin && down_rx.fin; }, 60s));
  EXPECT_TRUE(rebound_done);
  EXPECT_TRUE(up_rx.received == up.data);
  EXPECT_TRUE(down_rx.received == down.data);
  EXPECT_TRUE(pair.client().is_established());
  EXPECT_TRUE(pair.server()->is_established());
  // The server follows the client to its new address; the client's own path never changed.
  EXPECT_EQ(pair.server()->path().remote, rebound);
  EXPECT_EQ(pair.client().path(), (Path{testing::client_addr(), testing::server_addr()}));
}

TEST(QuicConnection, FlowControlBoundsBufferedBytesWhenReaderDoesNotRead) {
  PairConfig cfg;
  cfg.server_transport.stream_receive_window = 64 * 1024;
  cfg.server_transport.connection_receive_window = 128 * 1024;
  cfg.client_transport.stream_send_buffer_max = 256 * 1024;
  Pair pair(cfg);
  ASSERT_TRUE(pair.handshake());
  auto id = pair.client().open_bi();
  ASSERT_TRUE(id && id->has_value());
  Sender tx{&pair.client(), **id, pattern(8 << 20, 9)};
  Receiver rx{pair.server(), **id};
  rx.reading = false;
  pair.on_step = [&] { tx.pump(); };
  pair.run_for(10s);
  // The reader holds at most its stream window; the writer at most its send buffer.
  EXPECT_EQ(pair.server()->stream_readable_size(**id), 64U * 1024U);
  EXPECT_LE(pair.client().stream_send_buffered(**id), 256U * 1024U);
  EXPECT_LT(tx.written, 512U * 1024U);
  EXPECT_FALSE(tx.finished);
  // Once the reader reads, everything flows and arrives intact.
  rx.reading = true;
  pair.on_step = [&] {
    tx.pump();
    rx.pump();
  };
  ASSERT_TRUE(pair.run_until([&] { return rx.fin; }, 120s));
  EXPECT_TRUE(rx.received == tx.data);
}

TEST(QuicConnection, ConnectionWindowBoundsBytesAcrossStreams) {
  PairConfig cfg;
  cfg.server_transport.stream_receive_window = 64 * 1024;
  cfg.server_transport.connection_receive_window = 100 * 1024;
  Pair pair(cfg);
  ASSERT_TRUE(pair.handshake());
  std::vector<Sender> senders;
  for (int i = 0; i < 4; ++i) {
    auto id = pair.client().open_uni();
    ASSERT_TRUE(id && id->has_value());
    senders.push_back(Sender{&pair.client(), **id, pattern(1 << 20, 70 + static_cast<std::uint64_t>(i))});
  }
  pair.on_step = [&] {
    for (auto& t : senders) t.pump();
  };
  pair.run_for(10s);
  std::size_t buffered = 0;
  for (auto& t : senders) buffered += pair.server()->stream_readable_size(t.id);
  EXPECT_LE(buffered, 100U * 1024U);
  EXPECT_GT(buffered, 0U);
}

TEST(QuicConnection, StreamLimitBlocksOpeningUntilThePeerReleasesStreams) {
  PairConfig cfg;
  cfg.server_transport.max_streams_bidi = 3;
  Pair pair(cfg);
  ASSERT_TRUE(pair.handshake());
  std::vector<StreamId> ids;
  for (int i = 0; i < 3; ++i) {
    auto id = pair.client().open_bi();
    ASSERT_TRUE(id && id->has_value());
    ids.push_back(**id);
    ASSERT_TRUE(pair.client().stream_write(**id, as_bytes("hi"), true));
  }
  auto blocked = pair.client().open_bi();
  ASSERT_TRUE(blocked);
  EXPECT_FALSE(blocked->has_value());
  pair.run_for(1s);
  // The server reads, finishes and releases its streams: credit returns to the client.
  for (const auto id : ids) {
    std::array<std::byte, 16> buf{};
    auto r = pair.server()->stream_read(id, buf);
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->fin);
    ASSERT_TRUE(pair.server()->stream_write(id, {}, true));
  }
  pair.run_for(1s);
  for (const auto id : ids) {
    std::array<std::byte, 16> buf{};
    auto r = pair.client().stream_read(id, buf);
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->fin);
    pair.client().stream_release(id, 0);
    pair.server()->stream_release(id, 0);
  }
  ASSERT_TRUE(pair.run_until(
      [&] {
        auto id = pair.client().open_bi();
        return id && id->has_value();
      },
      10s));
}

TEST(QuicConnection, StreamResetReachesTheReaderWithItsCode) {
  Pair pair;
  ASSERT_TRUE(pair.handshake());
  auto id = pair.client().open_bi();
  ASSERT_TRUE(id && id->has_value());
  ASSERT_TRUE(pair.client().stream_write(**id, as_bytes("partial")));
  pair.run_for(100ms);
  pair.client().stream_reset(**id, 42);
  Receiver rx{pair.server(), **id};
  pair.on_step = [&] { rx.pump(); };
  ASSERT_TRUE(pair.run_until([&] { return rx.error.has_value(); }, 5s));
  EXPECT_EQ(rx.error->code(), P2PErrc::stream_reset);
  EXPECT_NE(rx.error->message().find("42"), std::string::npos) << rx.error->message();
  // The connection itself is unaffected.
  EXPECT_TRUE(pair.client().is_established());
  EXPECT_TRUE(pair.server()->is_established());
}

TEST(QuicConnection, StopSendingFailsTheWriter) {
  for (const bool uni : {false, true}) {
    SCOPED_TRACE(uni ? "uni" : "bidi");
    Pair pair;
    ASSERT_TRUE(pair.handshake());
    auto id = uni ? pair.client().open_uni() : pair.client().open_bi();
    ASSERT_TRUE(id && id->has_value());
    Sender tx{&pair.client(), **id, pattern(4 << 20, 5)};
    pair.on_step = [&] { tx.pump(); };
    ASSERT_TRUE(pair.run_until([&] { return has_event(pair.server_events, EventKind::stream_opened); }, 5s));
    pair.server()->stream_stop(**id, 77);
    ASSERT_TRUE(pair.run_until([&] { return tx.error.has_value(); }, 5s));
    EXPECT_EQ(tx.error->code(), P2PErrc::stream_reset) << tx.error->message();
    EXPECT_NE(tx.error->message().find("77"), std::string::npos) << tx.error->message();
    EXPECT_TRUE(pair.client().is_established());
  }
}

TEST(QuicConnection, StopSendingWithoutCodeReportingStillFailsTheWriter) {
  PairConfig cfg;
  cfg.client_transport.stop_sending_codes = false;
  Pair pair(cfg);
  ASSERT_TRUE(pair.handshake());
  auto id = pair.client().open_bi();
  ASSERT_TRUE(id && id->has_value());
  Sender tx{&pair.client(), **id, pattern(4 << 20, 5)};
  pair.on_step = [&] { tx.pump(); };
  ASSERT_TRUE(pair.run_until([&] { return has_event(pair.server_events, EventKind::stream_opened); }, 5s));
  pair.server()->stream_stop(**id, 77);
  ASSERT_TRUE(pair.run_until([&] { return tx.error.has_value(); }, 5s));
  EXPECT_EQ(tx.error->code(), P2PErrc::stream_reset);
  EXPECT_NE(tx.error->message().find("STOP_SENDING"), std::string::npos) << tx.error->message();
}

TEST(QuicConnection, StreamResetBeforeAnyDataStillReachesTheApplication) {
  PairConfig cfg;
  cfg.server_transport.max_streams_bidi = 4;
  Pair pair(cfg);
  ASSERT_TRUE(pair.handshake());
  // Open and reset streams before any of their bytes leave: only RESET_STREAM reaches the server.
  std::vector<StreamId> ids;
  for (int i = 0; i < 4; ++i) {
    auto id = pair.client().open_bi();
    ASSERT_TRUE(id && id->has_value());
    ASSERT_TRUE(pair.client().stream_write(**id, as_bytes("never sent")));
    pair.client().stream_reset(**id, 50 + static_cast<std::uint64_t>(i));
    ids.push_back(**id);
  }
  pair.run_for(1s);
  std::vector<StreamId> opened;
  for (const auto& e : pair.server_events) {
    if (e.kind == EventKind::stream_opened) opened.push_back(e.stream_id);
  }
  // ngtcp2 sends RESET_STREAM frames newest first; the ids tell the opening order.
  std::sort(opened.begin(), opened.end());
  ASSERT_EQ(opened, ids);
  std::array<std::byte, 16> buf{};
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto r = pair.server()->stream_read(ids[i], buf);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), P2PErrc::stream_reset);
    EXPECT_NE(r.error().message().find(std::to_string(50 + i)), std::string::npos);
  }
  // Unreleased, they are bounded by the stream limit: more resets are not queued.
  for (int i = 0; i < 8; ++i) {
    auto id = pair.client().open_bi();
    ASSERT_TRUE(id);
    if (!id->has_value()) break;
    pair.client().stream_reset(**id, 1);
  }
  pair.run_for(1s);
  std::size_t opened_now = 0;
  for (const auto& e : pair.server_events) opened_now += e.kind == EventKind::stream_opened ? 1 : 0;
  EXPECT_EQ(opened_now, 4U);
  // Released, they free their slots and new streams show up again.
  for (const auto id : ids) pair.server()->stream_release(id, 0);
  auto fresh = pair.client().open_bi();
  ASSERT_TRUE(pair.run_until(
      [&] {
        fresh = pair.client().open_bi();
        return fresh && fresh->has_value();
      },
      5s));
  pair.client().stream_reset(**fresh, 9);
  ASSERT_TRUE(pair.run_until(
      [&] {
        return std::count_if(pair.server_events.begin(), pair.server_events.end(),
                             [](const Event& e) { return e.kind == EventKind::stream_opened; }) == 5;
      },
      5s));
}

TEST(QuicConnection, OpeningStreamsBeforeTheHandshakeFails) {
  Pair pair;
  auto id = pair.client().open_bi();
  ASSERT_FALSE(id);
  EXPECT_EQ(id.error().code(), P2PErrc::connection_failed);
}

// --- datagrams ---

TEST(QuicConnection, DatagramsArriveAndOversizedOnesAreRefused) {
  Pair pair;
  ASSERT_TRUE(pair.handshake());
  const std::size_t max = pair.client().max_datagram_size();
  EXPECT_GE(max, 1000U);
  EXPECT_LE(max, 1452U);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(pair.client().send_datagram(as_bytes(fmt::format("datagram {}", i))));
  }
  const Bytes big(max, std::byte{7});
  ASSERT_TRUE(pair.client().send_datagram(big));
  auto too_big = pair.client().send_datagram(Bytes(max + 1));
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().code(), P2PErrc::message_too_large);
  std::vector<Bytes> got;
  pair.on_step = [&] {
    if (pair.server() == nullptr) return;
    while (auto d = pair.server()->recv_datagram()) got.push_back(std::move(*d));
  };
  ASSERT_TRUE(pair.run_until([&] { return got.size() == 11; }, 5s));
  EXPECT_EQ(to_string(got.front()), "datagram 0");
  EXPECT_TRUE(got.back() == big);
  EXPECT_TRUE(has_event(pair.server_events, EventKind::datagram_readable));
}

TEST(QuicConnection, DatagramsAreRefusedWhenThePeerDisablesThem) {
  PairConfig cfg;
  cfg.server_transport.datagrams = false;
  Pair pair(cfg);
  ASSERT_TRUE(pair.handshake());
  EXPECT_EQ(pair.client().max_datagram_size(), 0U);
  auto r = pair.client().send_datagram(as_bytes("x"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), P2PErrc::protocol_error);
}

TEST(QuicConnection, UnreadDatagramsAreBoundedDroppingTheOldest) {
  PairConfig cfg;
  cfg.server_transport.datagram_queue_max = 8;
  Pair pair(cfg);
  ASSERT_TRUE(pair.handshake());
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(pair.client().send_datagram(as_bytes(fmt::format("d{}", i))));
    pair.run_for(1ms);
  }
  pair.run_for(1s);
  std::vector<std::string> got;
  while (auto d = pair.server()->recv_datagram()) got.push_back(to_string(*d));
  ASSERT_EQ(got.size(), 8U);
  EXPECT_EQ(got.back(), "d39");
  EXPECT_GE(pair.server()->stats().datagrams_dropped, 32U);
}

// --- timeouts and close ---

TEST(QuicConnection, IdleTimeoutFiresWhenThePeerVanishes) {
  PairConfig cfg;
  cfg.client_transport.idle_timeout = 5s;
  cfg.server_transport.idle_timeout = 5s;
  Pair pair(cfg);
  ASSERT_TRUE(pair.handshake());
  pair.link(Side::server).up = false;
  pair.link(Side::client).up = false;
  const TimePoint cut = pair.now();
  ASSERT_TRUE(pair.run_until([&] { return pair.client().is_closed() && pair.server()->is_closed(); }, 60s));
  EXPECT_GE(pair.now() - cut, 5s);
  EXPECT_LE(pair.now() - cut, 16s);
  for (auto* c : {&pair.client(), pair.server()}) {
    const CloseInfo* info = c->close_info();
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(info->origin, CloseOrigin::idle_timeout);
    EXPECT_EQ(info->error.code(), P2PErrc::timeout);
    EXPECT_NE(info->error.message().find("idle timeout"), std::string::npos) << info->error.message();
    EXPECT_TRUE(c->is_drained());
  }
}

TEST(QuicConnection, KeepAliveHoldsAQuietConnectionOpen) {
  PairConfig cfg;
  cfg.client_transport.idle_timeout = 5s;
  cfg.server_transport.idle_timeout = 5s;
  cfg.client_transport.keep_alive_interval = 2s;
  Pair pair(cfg);
  ASSERT_TRUE(pair.handshake());
  pair.run_for(60s);
  EXPECT_TRUE(pair.client().is_established());
  EXPECT_TRUE(pair.server()->is_established());
}

TEST(QuicConnection, WithoutKeepAliveAQuietConnectionTimesOut) {
  PairConfig cfg;
  cfg.client_transport.idle_timeout = 5s;
  cfg.server_transport.idle_timeout = 5s;
  Pair pair(cfg);
  ASSERT_TRUE(pair.handshake());
  pair.run_for(60s);
  EXPECT_TRUE(pair.client().is_closed());
  EXPECT_TRUE(pair.server()->is_closed());
}

TEST(QuicConnection, CloseCodeAndReasonReachThePeer) {
  Pair pair;
  ASSERT_TRUE(pair.handshake());
  pair.server()->close(7, "going away");
  ASSERT_NE(pair.server()->close_info(), nullptr);
  EXPECT_EQ(pair.server()->close_info()->origin, CloseOrigin::local);
  ASSERT_TRUE(pair.run_until([&] { return pair.client().is_closed(); }, 5s));
  const CloseInfo* c = pair.client().close_info();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->origin, CloseOrigin::remote);
  EXPECT_TRUE(c->application);
  EXPECT_EQ(c->code, 7U);
  EXPECT_EQ(c->reason, "going away");
  EXPECT_EQ(c->error.code(), P2PErrc::connection_closed);
  EXPECT_NE(c->error.message().find("going away"), std::string::npos) << c->error.message();
  // Both sides finish their closing and draining periods and can be destroyed.
  ASSERT_TRUE(pair.run_until([&] { return pair.client().is_drained() && pair.server()->is_drained(); }, 10s));
  // Operations after the close fail with the close error.
  auto w = pair.client().open_bi();
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code(), P2PErrc::connection_closed);
}

TEST(QuicConnection, ReceivedBytesStayReadableAfterThePeerCloses) {
  Pair pair;
  ASSERT_TRUE(pair.handshake());
  auto id = pair.client().open_uni();
  ASSERT_TRUE(id && id->has_value());
  ASSERT_TRUE(pair.client().stream_write(**id, as_bytes("last words"), true));
  ASSERT_TRUE(pair.run_until([&] { return pair.client().unacked_bytes() == 0; }, 5s));
  pair.client().close(0, "done");
  ASSERT_TRUE(pair.run_until([&] { return pair.server()->is_closed(); }, 5s));
  std::array<std::byte, 64> buf{};
  auto r = pair.server()->stream_read(**id, buf);
  ASSERT_TRUE(r);
  EXPECT_EQ(to_string(ByteView(buf).first(r->size)), "last words");
  EXPECT_TRUE(r->fin);
}

TEST(QuicConnection, ClosingSideAnswersRetransmissionsWithItsClose) {
  Pair pair;
  ASSERT_TRUE(pair.handshake());
  pair.link(Side::client).up = false;  // the first CONNECTION_CLOSE is lost
  pair.server()->close(3, "bye");
  pair.run_for(10ms);
  pair.link(Side::client).up = true;
  // The client keeps sending (a PING via a stream write); the closing server repeats its close.
  auto id = pair.client().open_uni();
  ASSERT_TRUE(id && id->has_value());
  ASSERT_TRUE(pair.client().stream_write(**id, as_bytes("are you there?")));
  ASSERT_TRUE(pair.run_until([&] { return pair.client().is_closed(); }, 5s));
  EXPECT_EQ(pair.client().close_info()->code, 3U);
}

// --- hostile input ---

TEST(QuicConnection, GarbageAndTruncatedDatagramsAreIgnored) {
  Pair pair;
  ASSERT_TRUE(pair.handshake());
  pair.run_for(50ms);  // past the pacing delay of the handshake's last burst
  // Capture real packets to truncate and corrupt.
  std::vector<Bytes> samples;
  {
    auto id = pair.client().open_bi();
    ASSERT_TRUE(id && id->has_value());
    ASSERT_TRUE(pair.client().stream_write(**id, pattern(5000, 1)));
    std::vector<std::byte> buf(8 * 1452);
    while (auto t = pair.client().poll_transmit(pair.now(), buf, 8)) {
      for (std::size_t off = 0; off < t->size; off += t->segment_size) {
        const auto n = std::min(t->segment_size, t->size - off);
        samples.emplace_back(buf.begin() + static_cast<std::ptrdiff_t>(off),
                             buf.begin() + static_cast<std::ptrdiff_t>(off + n));
      }
    }
  }
  ASSERT_FALSE(samples.empty());
  env::Rng rng(99);
  for (int i = 0; i < 2000; ++i) {
    Bytes junk;
    switch (i % 4) {
      case 0:
        junk = pattern(rng.uniform(1500) + 1, static_cast<std::uint64_t>(i));
        break;
      case 1: {
        const Bytes& s = samples[rng.uniform(samples.size())];
        junk.assign(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(rng.uniform(s.size())));
        break;
      }
      case 2: {
        junk = samples[rng.uniform(samples.size())];
        junk[rng.uniform(junk.size())] ^= std::byte{0x5a};
        break;
      }
      default:
        junk.clear();
        break;
    }
    pair.client().on_datagram(pair.now(), Path{testing::client_addr(), testing::server_addr()}, junk);
    pair.server()->on_datagram(pair.now(), Path{testing::server_addr(), testing::client_addr()}, junk);
  }
  EXPECT_TRUE(pair.client().is_established());
  EXPECT_TRUE(pair.server()->is_established());
  run_bidi_transfer({0.0, {}, 100000, 3});
  // And the attacked pair still transfers.
  auto id = pair.client().open_bi();
  ASSERT_TRUE(id && id->has_value());
  Sender tx{&pair.client(), **id, pattern(200000, 4)};
  Receiver rx{pair.server(), **id};
  pair.on_step = [&] {
    tx.pump();
    if (has_event(pair.server_events, EventKind::stream_opened)) rx.pump();
  };
  ASSERT_TRUE(pair.run_until([&] { return rx.fin; }, 60s));
  EXPECT_TRUE(rx.received == tx.data);
}

TEST(QuicConnection, ReplayedPacketsAreHarmless) {
  Pair pair;
  ASSERT_TRUE(pair.handshake());
  pair.run_for(50ms);  // past the pacing delay of the handshake's last burst
  auto id = pair.client().open_uni();
  ASSERT_TRUE(id && id->has_value());
  ASSERT_TRUE(pair.client().stream_write(**id, as_bytes("once"), true));
  std::vector<std::byte> buf(1452);
  auto t = pair.client().poll_transmit(pair.now(), buf);
  ASSERT_TRUE(t);
  const Bytes packet(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(t->size));
  for (int i = 0; i < 5; ++i) pair.inject(Side::server, packet);
  pair.run_for(1s);
  std::array<std::byte, 64> out{};
  auto r = pair.server()->stream_read(**id, out);
  ASSERT_TRUE(r);
  EXPECT_EQ(to_string(ByteView(out).first(r->size)), "once");
  EXPECT_TRUE(r->fin);
  EXPECT_TRUE(pair.server()->is_established());
}

TEST(QuicConnection, StatelessResetClosesTheClient) {
  Pair pair;
  ASSERT_TRUE(pair.handshake());
  pair.lose_server_state();
  auto id = pair.client().open_uni();
  ASSERT_TRUE(id && id->has_value());
  ASSERT_TRUE(pair.client().stream_write(**id, pattern(3000, 2)));
  ASSERT_TRUE(pair.run_until([&] { return pair.client().is_closed(); }, 10s));
  EXPECT_GT(pair.resets_sent, 0U);
  const CloseInfo* c = pair.client().close_info();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->origin, CloseOrigin::stateless_reset);
  EXPECT_EQ(c->error.code(), P2PErrc::connection_closed);
  EXPECT_NE(c->error.message().find("stateless reset"), std::string::npos) << c->error.message();
}

// --- address validation and versions ---

TEST(QuicConnection, RetryValidatesTheClientAddress) {
  PairConfig cfg;
  cfg.retry = true;
  Pair pair(cfg);
  ASSERT_TRUE(pair.handshake());
  EXPECT_EQ(pair.retries_sent, 1U);
  EXPECT_EQ(pair.server()->peer_id(), pair.client_id());
}

TEST(QuicConnection, VersionNegotiationFailsClearlyWhenNoVersionIsShared) {
  PairConfig cfg;
  cfg.client_version = 0xff00001dU;  // a draft version the server side does not accept
  Pair pair(cfg);
  ASSERT_TRUE(pair.run_until([&] { return pair.client().is_closed(); }, 10s));
  const CloseInfo* c = pair.client().close_info();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->origin, CloseOrigin::version_negotiation) << c->error.message();
  EXPECT_EQ(c->error.code(), P2PErrc::connection_failed);
  EXPECT_NE(c->error.message().find("version"), std::string::npos) << c->error.message();
}

}  // namespace
}  // namespace moosicbox::p2p::quic

// --- resumption and 0-RTT ---

namespace moosicbox::p2p::quic {
namespace {

// first_ticket runs one full connection to a server with `issuer` and returns the ticket the
// client kept.
SessionTicket first_ticket(const std::shared_ptr<TicketIssuer>& issuer, PairConfig cfg) {
  cfg.tickets = issuer;
  cfg.resume.reset();
  Pair pair(cfg);
  EXPECT_TRUE(pair.handshake());
  EXPECT_TRUE(pair.run_until([&] { return has_event(pair.client_events, EventKind::session_ticket); }, 1s));
  EXPECT_EQ(pair.client().early_data(), EarlyData::none);
  auto t = pair.client().take_session_ticket();
  EXPECT_TRUE(t.has_value());
  EXPECT_FALSE(pair.client().take_session_ticket().has_value()) << "a ticket is taken once";
  return t.value_or(SessionTicket{});
}

std::size_t event_index(const std::vector<Event>& events, EventKind kind) {
  const auto it = std::find_if(events.begin(), events.end(), [&](const Event& e) { return e.kind == kind; });
  return static_cast<std::size_t>(it - events.begin());
}

// EchoServer answers stream 0 with `reply` once the request's end arrived.
struct EarlyExchange {
  Pair& pair;
  Bytes request;
  Bytes reply;
  Sender client_send;
  Receiver client_recv;
  Receiver server_recv;
  Sender server_send;
  bool server_started = false;

  EarlyExchange(Pair& p, Bytes req, Bytes rep) : pair(p), request(std::move(req)), reply(std::move(rep)) {}

  void start() {
    auto sid = pair.client().open_bi();
    ASSERT_TRUE(sid.has_value()) << sid.error().message();
    ASSERT_TRUE(sid->has_value());
    client_send = Sender{&pair.client(), **sid, request};
    client_recv = Receiver{&pair.client(), **sid};
    client_send.pump();
    pair.on_step = [this] { step(); };
  }

  void step() {
    client_send.pump();
    client_recv.pump();
    Connection* s = pair.server();
    if (s == nullptr) return;
    if (!server_started && s->stream_readable_size(client_send.id) > 0) {
      server_started = true;
      server_recv = Receiver{s, client_send.id};
      server_send = Sender{s, client_send.id, reply};
    }
    if (!server_started) return;
    server_recv.pump();
    if (server_recv.fin) server_send.pump();
  }
};

TEST(QuicResumption, ZeroRttRequestIsAnsweredInOneRoundTrip) {
  auto issuer = TicketIssuer::create();
  ASSERT_TRUE(issuer.has_value());
  PairConfig cfg;
  cfg.to_server.latency = 10ms;
  cfg.to_client.latency = 10ms;
  const SessionTicket ticket = first_ticket(*issuer, cfg);
  ASSERT_FALSE(ticket.tls.empty());
  ASSERT_FALSE(ticket.transport_params.empty());

  cfg.tickets = *issuer;
  cfg.resume = ticket;
  Pair pair(cfg);
  EXPECT_EQ(pair.client().early_data(), EarlyData::attempted);
  EarlyExchange x(pair, pattern(300, 1), pattern(2000, 2));
  x.start();
  const TimePoint start = pair.now();
  ASSERT_TRUE(pair.run_until([&] { return x.client_recv.fin; }, 5s));
  // The request leaves with the ClientHello and the answer with the server's first flight: one
  // round trip of 20 ms, where a full handshake and then the request take two.
  EXPECT_LE(pair.now() - start, 21ms);
  EXPECT_EQ(x.server_recv.received, x.request);
  EXPECT_EQ(x.client_recv.received, x.reply);
  ASSERT_NE(pair.server(), nullptr);
  EXPECT_TRUE(pair.server()->stream_is_early(x.client_send.id));
  EXPECT_EQ(pair.server()->early_data(), EarlyData::accepted);
  EXPECT_EQ(pair.client().early_data(), EarlyData::accepted);
  // The server knew the client's identity (from the ticket) before the handshake completed.
  EXPECT_LT(event_index(pair.server_events, EventKind::early_data),
            event_index(pair.server_events, EventKind::handshake_completed));
  ASSERT_TRUE(pair.handshake());
  EXPECT_EQ(pair.server()->peer_id(), pair.client_id());
  EXPECT_EQ(pair.client().peer_id(), pair.server_id());
  EXPECT_EQ((*issuer)->counters().accepted, 1U);
  // A resumed connection gets a ticket for the next one.
  EXPECT_TRUE(pair.run_until([&] { return has_event(pair.client_events, EventKind::session_ticket); }, 1s));
}

TEST(QuicResumption, RejectedEarlyDataIsResentOnTheSameStreams) {
  // The server restarted: its new ticket key cannot open the old ticket, so the handshake is a
  // full one and the early streams go again in 1-RTT, under the same ids, nothing lost.
  auto old_issuer = TicketIssuer::create();
  auto new_issuer = TicketIssuer::create();
  ASSERT_TRUE(old_issuer && new_issuer);
  PairConfig cfg;
  cfg.to_server.loss = 0.05;
  cfg.to_client.loss = 0.05;
  cfg.seed = 7;
  const SessionTicket ticket = first_ticket(*old_issuer, cfg);
  cfg.tickets = *new_issuer;
  cfg.resume = ticket;
  Pair pair(cfg);
  EarlyExchange x(pair, pattern(20'000, 3), pattern(100, 4));
  x.start();
  auto uni = pair.client().open_uni();
  ASSERT_TRUE(uni && uni->has_value());
  Sender uni_send{&pair.client(), **uni, pattern(3000, 5)};
  uni_send.pump();
  Receiver uni_recv;
  auto step = pair.on_step;
  pair.on_step = [&] {
    step();
    uni_send.pump();
    if (pair.server() != nullptr && uni_recv.conn == nullptr && pair.server()->stream_readable_size(**uni) > 0) {
      uni_recv = Receiver{pair.server(), **uni};
    }
    uni_recv.pump();
  };
  ASSERT_TRUE(pair.run_until([&] { return x.client_recv.fin && uni_recv.fin; }, 30s)) << "seed " << cfg.seed;
  EXPECT_EQ(pair.client().early_data(), EarlyData::rejected);
  EXPECT_TRUE(has_event(pair.client_events, EventKind::early_data_rejected));
  EXPECT_FALSE(has_event(pair.server_events, EventKind::early_data));
  EXPECT_EQ(x.server_recv.received, x.request);
  EXPECT_EQ(x.client_recv.received, x.reply);
  EXPECT_EQ(uni_recv.received, uni_send.data);
  EXPECT_FALSE(pair.server()->stream_is_early(x.client_send.id));
  EXPECT_EQ(pair.server()->peer_id(), pair.client_id());
}

TEST(QuicResumption, ReplayedZeroRttFlightGetsNoEarlyData) {
  auto issuer = TicketIssuer::create();
  ASSERT_TRUE(issuer.has_value());
  PairConfig cfg;
  const SessionTicket ticket = first_ticket(*issuer, cfg);
  cfg.tickets = *issuer;
  cfg.resume = ticket;
  Pair pair(cfg);
  std::vector<Bytes> first_flight;
  bool answered = false;
  pair.on_send = [&](Side to, const Bytes& b) {
    if (to == Side::client) answered = true;
    if (to == Side::server && !answered) first_flight.push_back(b);
  };
  EarlyExchange x(pair, pattern(100, 6), pattern(100, 7));
  x.start();
  ASSERT_TRUE(pair.run_until([&] { return x.client_recv.fin; }, 5s));
  EXPECT_EQ(pair.server()->early_data(), EarlyData::accepted);
  ASSERT_FALSE(first_flight.empty());

  // An attacker replays the captured flight to the same server: it gets no early data, so the
  // request is never seen twice.
  ServerConfig sc;
  sc.identity = *TlsIdentity::create(test_secret_key("server"));
  sc.alpns = {"p2p/test/1"};
  env::Rng rng(99);
  sc.random = make_random_fn(rng);
  sc.tickets = *issuer;
  auto initial = decode_initial(first_flight.front());
  ASSERT_TRUE(initial.has_value());
  const Path path{testing::server_addr(), testing::client_addr()};
  auto replayed = Connection::accept(std::move(sc), path, *initial, std::nullopt, pair.now());
  ASSERT_TRUE(replayed.has_value());
  for (const auto& d : first_flight) (*replayed)->on_datagram(pair.now(), path, d);
  std::vector<Event> events;
  while (auto e = (*replayed)->poll_event()) events.push_back(*e);
  EXPECT_FALSE(has_event(events, EventKind::early_data));
  EXPECT_FALSE(has_event(events, EventKind::stream_opened));
  EXPECT_EQ((*replayed)->early_data(), EarlyData::none);
  EXPECT_EQ((*issuer)->counters().replays_refused, 1U);
}

TEST(QuicResumption, FullAntiReplayRecordRefusesEarlyDataButNotTheConnection) {
  TicketIssuer::Limits limits;
  limits.replay_entries_max = 1;
  auto issuer = TicketIssuer::create(limits);
  ASSERT_TRUE(issuer.has_value());
  PairConfig cfg;
  const SessionTicket t1 = first_ticket(*issuer, cfg);
  const SessionTicket t2 = first_ticket(*issuer, cfg);
  cfg.tickets = *issuer;
  for (const auto& [ticket, expected] : {std::pair{t1, EarlyData::accepted}, std::pair{t2, EarlyData::rejected}}) {
    cfg.resume = ticket;
    Pair pair(cfg);
    EarlyExchange x(pair, pattern(100, 8), pattern(100, 9));
    x.start();
    ASSERT_TRUE(pair.run_until([&] { return x.client_recv.fin; }, 5s));
    EXPECT_EQ(pair.client().early_data(), expected);
    EXPECT_EQ(x.server_recv.received, x.request);
  }
  EXPECT_EQ((*issuer)->counters().accepted, 1U);
  EXPECT_EQ((*issuer)->counters().full_refused, 1U);
}

TEST(QuicResumption, AntiReplayRecordForgetsEntriesPastTheWindow) {
  auto issuer = TicketIssuer::create();
  ASSERT_TRUE(issuer.has_value());
  auto& native = (*issuer)->native();
  EXPECT_EQ(native.add(1000, "a"), 0);
  EXPECT_NE(native.add(1005, "a"), 0) << "within the 10 s window: a replay";
  EXPECT_EQ(native.add(1005, "b"), 0);
  EXPECT_EQ((*issuer)->replay_entries(), 2U);
  EXPECT_EQ(native.add(1011, "a"), 0) << "\"a\" expired at 1000, when the record's clock reached 1001";
  EXPECT_EQ((*issuer)->replay_entries(), 2U);
  EXPECT_EQ((*issuer)->counters().replays_refused, 1U);
  EXPECT_FALSE(TicketIssuer::create(TicketIssuer::Limits{std::chrono::milliseconds(10), 1}).has_value());
  EXPECT_FALSE(TicketIssuer::create(TicketIssuer::Limits{std::chrono::milliseconds(10'000), 0}).has_value());
}

TEST(QuicResumption, ForgottenTicketStillCarriesEarlyDataButShowsTheConnectionAtCompletion) {
  TicketIssuer::Limits limits;
  limits.tickets_max = 1;
  auto issuer = TicketIssuer::create(limits);
  ASSERT_TRUE(issuer.has_value());
  PairConfig cfg;
  const SessionTicket old_ticket = first_ticket(*issuer, cfg);
  (void)first_ticket(*issuer, cfg);  // pushes the first ticket out of the issuer's memory
  EXPECT_EQ((*issuer)->tickets_remembered(), 1U);
  cfg.tickets = *issuer;
  cfg.resume = old_ticket;
  Pair pair(cfg);
  EarlyExchange x(pair, pattern(100, 13), pattern(100, 14));
  x.start();
  ASSERT_TRUE(pair.run_until([&] { return x.client_recv.fin; }, 5s));
  EXPECT_EQ(pair.client().early_data(), EarlyData::accepted);
  EXPECT_FALSE(has_event(pair.server_events, EventKind::early_data));
  ASSERT_TRUE(pair.handshake());
  EXPECT_EQ(pair.server()->peer_id(), pair.client_id());
}

TEST(QuicResumption, TlsMessageParsersRejectEveryTruncationAndGarbage) {
  // A ClientHello body with one extension before pre_shared_key, identity "TICKET".
  const std::vector<std::uint8_t> identity = {'T', 'I', 'C', 'K', 'E', 'T'};
  std::vector<std::uint8_t> psk_ext = {0x00, 0x0c, 0x00, 0x06};  // identities<12>, identity<6>
  psk_ext.insert(psk_ext.end(), identity.begin(), identity.end());
  psk_ext.insert(psk_ext.end(), {0, 0, 0, 1});        // obfuscated_ticket_age
  psk_ext.insert(psk_ext.end(), {0x00, 0x21, 0x20});  // binders<33>, binder<32>
  psk_ext.insert(psk_ext.end(), 32, 0xbb);
  std::vector<std::uint8_t> exts = {0x00, 0x2b, 0x00, 0x03, 0x02, 0x03, 0x04};  // supported_versions
  exts.insert(exts.end(),
              {0x00, 41, static_cast<std::uint8_t>(psk_ext.size() >> 8), static_cast<std::uint8_t>(psk_ext.size())});
  exts.insert(exts.end(), psk_ext.begin(), psk_ext.end());
  std::vector<std::uint8_t> hello = {0x03, 0x03};
  hello.insert(hello.end(), 32, 0xaa);                  // random
  hello.insert(hello.end(), {0x00});                    // session id
  hello.insert(hello.end(), {0x00, 0x02, 0x13, 0x01});  // cipher suites
  hello.insert(hello.end(), {0x01, 0x00});              // compression
  hello.insert(hello.end(), {static_cast<std::uint8_t>(exts.size() >> 8), static_cast<std::uint8_t>(exts.size())});
  hello.insert(hello.end(), exts.begin(), exts.end());
  const auto got = first_psk_identity(hello);
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(std::ranges::equal(*got, identity));
  // Every truncation fails cleanly (the ASan build checks no read goes past the end).
  for (std::size_t n = 0; n < hello.size() - 36; ++n) {
    EXPECT_FALSE(first_psk_identity(std::span(hello).first(n)).has_value()) << "truncated to " << n;
  }
  std::vector<std::uint8_t> nst = {0, 0, 0x1c, 0x20, 1, 2, 3, 4, 0x01, 0x00, 0x00, 0x03, 'a', 'b', 'c', 0x00, 0x00};
  const auto t = new_session_ticket_ticket(nst);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->size(), 3U);
  for (std::size_t n = 0; n < 15; ++n) EXPECT_FALSE(new_session_ticket_ticket(std::span(nst).first(n)).has_value());
  env::Rng rng(5);
  for (int i = 0; i < 2000; ++i) {
    std::vector<std::uint8_t> junk(rng.uniform(300));
    rng.fill_random(std::as_writable_bytes(std::span(junk)));
    const auto a = first_psk_identity(junk);
    const auto b = new_session_ticket_ticket(junk);
    if (a) {
      EXPECT_TRUE(a->data() >= junk.data() && a->data() + a->size() <= junk.data() + junk.size());
    }
    if (b) {
      EXPECT_TRUE(b->data() >= junk.data() && b->data() + b->size() <= junk.data() + junk.size());
    }
  }
}

TEST(QuicResumption, MalformedTicketsFallBackToAFullHandshake) {
  auto issuer = TicketIssuer::create();
  ASSERT_TRUE(issuer.has_value());
  PairConfig cfg;
  const SessionTicket good = first_ticket(*issuer, cfg);
  cfg.tickets = *issuer;
  {
    // Unreadable TLS session, good parameters: early streams are attempted, then resent.
    SessionTicket bad = good;
    for (auto& b : bad.tls) b = std::byte{0x5a};
    cfg.resume = bad;
    Pair pair(cfg);
    EarlyExchange x(pair, pattern(100, 10), pattern(100, 11));
    x.start();
    ASSERT_TRUE(pair.run_until([&] { return x.client_recv.fin; }, 5s));
    EXPECT_EQ(pair.client().early_data(), EarlyData::rejected);
    EXPECT_EQ(x.server_recv.received, x.request);
  }
  for (const Bytes& params : {Bytes{}, Bytes(7, std::byte{0xff})}) {
    // Parameters that do not parse: no 0-RTT at all, a plain handshake.
    SessionTicket bad = good;
    bad.transport_params = params;
    cfg.resume = bad;
    Pair pair(cfg);
    EXPECT_EQ(pair.client().early_data(), EarlyData::none);
    EXPECT_FALSE(pair.client().open_bi().has_value());
    ASSERT_TRUE(pair.handshake());
    EXPECT_EQ(pair.server()->peer_id(), pair.client_id());
  }
}

}  // namespace
}  // namespace moosicbox::p2p::quic
