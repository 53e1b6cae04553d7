// SPDX-License-Identifier: MIT OR Apache-2.0
// quic_pair.hpp: Pair, two sans-IO QUIC engines wired together in memory with virtual time: a link
// with latency, jitter (reordering) and loss drawn from a seeded generator. No socket, no clock: time
// jumps to the next packet delivery or engine deadline. A minimal server-side demultiplexer creates the
// server connection from the first Initial, can demand Retry, and answers with a stateless reset
// once the server "lost its state".
// Layer: tests (quic). Single-threaded.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "moosicbox/p2p/core/secret_key.hpp"
#include "moosicbox/p2p/env/rng.hpp"
#include "quic/connection.hpp"
#include "quic/packet.hpp"

namespace moosicbox::p2p::quic::testing {

using namespace std::chrono_literals;

/// LinkConfig shapes one direction of the link.
struct LinkConfig {
  Duration latency = 5ms;
  Duration jitter{};  // uniform extra delay in [0, jitter): reorders packets
  double loss = 0.0;
  bool up = true;  // false: everything is dropped
};

/// Side names an end of the pair.
enum class Side { client, server };

/// PairConfig describes both ends.
struct PairConfig {
  std::uint64_t seed = 1;
  std::string client_name = "client";
  std::string server_name = "server";
  std::optional<NodeId> dial_id;  // the id the client dials (default: the server's)
  std::string client_alpn = "p2p/test/1";
  std::vector<std::string> server_alpns = {"p2p/test/1"};
  TransportConfig client_transport;
  TransportConfig server_transport;
  LinkConfig to_server;
  LinkConfig to_client;
  bool retry = false;
  std::uint32_t client_version = kVersion1;
  std::shared_ptr<TicketIssuer> tickets;  // the server issues tickets and takes 0-RTT
  std::optional<SessionTicket> resume;    // the client resumes with this ticket
};

/// Address helpers for the two ends.
inline Address client_addr() { return Address(asio::ip::make_address("10.0.0.1"), 4000); }
inline Address server_addr() { return Address(asio::ip::make_address("10.0.0.2"), 5000); }

class Pair {
 public:
  explicit Pair(PairConfig cfg = {})
      : cfg_(std::move(cfg)), rng_(cfg_.seed), link_rng_(env::derive_seed(cfg_.seed, "link")) {
    const SecretKey ck = test_secret_key(cfg_.client_name);
    const SecretKey sk = test_secret_key(cfg_.server_name);
    client_identity_ = *TlsIdentity::create(ck);
    server_identity_ = *TlsIdentity::create(sk);
    rng_.fill_random(std::as_writable_bytes(std::span(client_secret_)));
    rng_.fill_random(std::as_writable_bytes(std::span(server_secret_)));
    ClientConfig cc;
    cc.identity = client_identity_;
    cc.server_id = cfg_.dial_id.value_or(sk.public_key());
    cc.alpn = cfg_.client_alpn;
    cc.path = Path{client_addr(), server_addr()};
    cc.transport = cfg_.client_transport;
    cc.static_secret = client_secret_;
    cc.random = make_random_fn(rng_);
    cc.version = cfg_.client_version;
    cc.resume = cfg_.resume;
    auto c = Connection::connect(std::move(cc), now_);
    EXPECT_TRUE(c.has_value()) << (c ? "" : c.error().message());
    if (c) client_ = std::move(*c);
  }

  Connection& client() { return *client_; }
  Connection* server() { return server_.get(); }
  Connection* side(Side s) { return s == Side::client ? client_.get() : server_.get(); }
  TimePoint now() const { return now_; }
  env::Rng& rng() { return rng_; }
  LinkConfig& link(Side to) { return to == Side::server ? cfg_.to_server : cfg_.to_client; }
  NodeId client_id() const { return client_identity_->node_id(); }
  NodeId server_id() const { return server_identity_->node_id(); }
  const StaticSecret& server_secret() const { return server_secret_; }

  /// on_event sees every event of both sides, in order.
  std::function<void(Side, const Event&)> on_event;
  /// on_step runs after every step: application behaviour (pumping writes, reading).
  std::function<void()> on_step;
  /// on_send sees every datagram a side sends, before the link may lose it.
  std::function<void(Side to, const Bytes&)> on_send;

  std::vector<Event> client_events;
  std::vector<Event> server_events;
  std::uint64_t delivered = 0;
  std::uint64_t dropped = 0;
  std::uint64_t retries_sent = 0;
  std::uint64_t resets_sent = 0;

  /// lose_server_state destroys the server connection; its "endpoint" then answers short-header
  /// packets with stateless resets.
  void lose_server_state() {
    server_.reset();
    server_lost_ = true;
  }

  /// rebind_client moves the client behind a NAT that now maps it to `mapped`: the server sees the
  /// client's datagrams come from `mapped`, and only datagrams the server sends there reach the
  /// client (the old mapping is gone). The client itself sees no change of path.
  void rebind_client(Address mapped) { client_mapped_ = std::move(mapped); }

  /// inject queues a raw datagram to `to`, delivered after the link latency (never lost).
  void inject(Side to, Bytes datagram) { schedule(to, std::move(datagram), now_ + link(to).latency); }

  /// run_until steps until `done()` holds or `limit` of virtual time passed; returns done().
  bool run_until(const std::function<bool()>& done, Duration limit, std::uint64_t steps_max = 2'000'000) {
    const TimePoint end = now_ + limit;
    for (std::uint64_t step = 0; step < steps_max; ++step) {
      settle();
      if (done()) return true;
      TimePoint next = kTimePointMax;
      if (!inflight_.empty()) next = inflight_.begin()->first.first;
      for (auto* c : {client_.get(), server_.get()}) {
        if (c != nullptr) next = std::min(next, c->next_deadline());
      }
      if (next > end) {
        now_ = end;
        settle();
        return done();
      }
      now_ = std::max(now_, next);
      deliver_due();
      for (auto* c : {client_.get(), server_.get()}) {
        if (c != nullptr && c->next_deadline() <= now_) c->on_deadline(now_);
      }
    }
    ADD_FAILURE() << "the pair did not settle within " << steps_max << " steps";
    return false;
  }

  /// run_for runs for `d` of virtual time.
  void run_for(Duration d) {
    run_until([] { return false; }, d);
  }

  /// handshake runs until both sides are established (or a limit passes).
  bool handshake(Duration limit = 5s) {
    return run_until([&] { return server_ != nullptr && client_->is_established() && server_->is_established(); },
                     limit);
  }

  /// settle drains events, runs the application hook and flushes both sides.
  void settle() {
    for (int round = 0; round < 64; ++round) {
      bool any = drain_events();
      if (on_step) on_step();
      any = flush() || any;
      any = drain_events() || any;
      if (!any) return;
    }
  }

 private:
  using Key = std::pair<TimePoint, std::uint64_t>;
  struct Packet {
    Side to;
    Bytes bytes;
  };

  bool drain_events() {
    bool any = false;
    for (Side s : {Side::client, Side::server}) {
      Connection* c = side(s);
      if (c == nullptr) continue;
      while (auto e = c->poll_event()) {
        any = true;
        (s == Side::client ? client_events : server_events).push_back(*e);
        if (on_event) on_event(s, *e);
        c = side(s);  // the hook may not destroy a side, but stay safe
        if (c == nullptr) break;
      }
    }
    return any;
  }

  bool flush() {
    bool any = false;
    std::vector<std::byte> buf(kBatch * 1452);
    for (Side s : {Side::client, Side::server}) {
      Connection* c = side(s);
      if (c == nullptr) continue;
      const Side to = s == Side::client ? Side::server : Side::client;
      for (int i = 0; i < 4096; ++i) {
        auto t = c->poll_transmit(now_, buf, kBatch);
        if (!t) break;
        any = true;
        EXPECT_GT(t->segment_size, 0U);
        if (s == Side::server && !(t->path.remote == client_mapped_)) {
          // To a NAT mapping that no longer exists.
          dropped += t->datagram_count();
          continue;
        }
        for (std::size_t off = 0; off < t->size; off += t->segment_size) {
          const std::size_t n = std::min(t->segment_size, t->size - off);
          send(to, Bytes(buf.begin() + static_cast<std::ptrdiff_t>(off),
                         buf.begin() + static_cast<std::ptrdiff_t>(off + n)));
        }
      }
    }
    return any;
  }

  void send(Side to, Bytes bytes) {
    if (on_send) on_send(to, bytes);
    const LinkConfig& l = link(to);
    if (!l.up || (l.loss > 0 && link_rng_.chance(l.loss))) {
      ++dropped;
      return;
    }
    Duration delay = l.latency;
    if (l.jitter.count() > 0)
      delay += Duration(static_cast<std::int64_t>(link_rng_.uniform(static_cast<std::uint64_t>(l.jitter.count()))));
    schedule(to, std::move(bytes), now_ + delay);
  }

  void schedule(Side to, Bytes bytes, TimePoint at) {
    inflight_.emplace(Key{at, seq_++}, Packet{to, std::move(bytes)});
  }

  void deliver_due() {
    while (!inflight_.empty() && inflight_.begin()->first.first <= now_) {
      Packet p = std::move(inflight_.begin()->second);
      inflight_.erase(inflight_.begin());
      ++delivered;
      if (p.to == Side::client) {
        if (client_) client_->on_datagram(now_, Path{client_addr(), server_addr()}, p.bytes);
      } else {
        to_server(std::move(p.bytes));
      }
    }
  }

  void to_server(Bytes bytes) {
    const Path path{server_addr(), client_mapped_};
    if (server_) {
      server_->on_datagram(now_, path, bytes);
      return;
    }
    const Header hd = decode_header(bytes);
    if (server_lost_) {
      if (hd.kind == HeaderKind::short_header) {
        std::vector<std::byte> out(1500);
        const std::size_t n = write_stateless_reset(out, server_secret_, hd.dcid, bytes.size(), make_random_fn(rng_));
        if (n > 0) {
          ++resets_sent;
          send(Side::client, Bytes(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n)));
        }
      }
      return;
    }
    if (hd.kind == HeaderKind::unsupported_version) {
      std::vector<std::byte> out(1500);
      const std::size_t n = write_version_negotiation(out, hd, make_random_fn(rng_));
      if (n > 0) send(Side::client, Bytes(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n)));
      return;
    }
    auto initial = decode_initial(bytes);
    if (!initial) return;
    std::optional<RetryValidation> retry;
    if (cfg_.retry) {
      retry = validate_retry_token(*initial, client_addr(), server_secret_, now_);
      if (!retry) {
        std::vector<std::byte> out(1500);
        auto n = write_retry(out, *initial, client_addr(), server_secret_, now_, make_random_fn(rng_));
        EXPECT_TRUE(n.has_value());
        if (n) {
          ++retries_sent;
          send(Side::client, Bytes(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(*n)));
        }
        return;
      }
    }
    ServerConfig sc;
    sc.identity = server_identity_;
    sc.alpns = cfg_.server_alpns;
    sc.transport = cfg_.server_transport;
    sc.static_secret = server_secret_;
    sc.random = make_random_fn(rng_);
    sc.tickets = cfg_.tickets;
    auto s = Connection::accept(std::move(sc), path, *initial, retry, now_);
    EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message());
    if (!s) return;
    server_ = std::move(*s);
    server_->on_datagram(now_, path, bytes);
  }

  static constexpr std::size_t kBatch = 8;

  PairConfig cfg_;
  env::Rng rng_;
  env::Rng link_rng_;
  TimePoint now_ = TimePoint(std::chrono::seconds(1));
  std::shared_ptr<const TlsIdentity> client_identity_;
  std::shared_ptr<const TlsIdentity> server_identity_;
  StaticSecret client_secret_{};
  StaticSecret server_secret_{};
  std::unique_ptr<Connection> client_;
  std::unique_ptr<Connection> server_;
  bool server_lost_ = false;
  std::map<Key, Packet> inflight_;
  std::uint64_t seq_ = 0;
  Address client_mapped_ = client_addr();  // where the server sees the client (rebind_client)
};

}  // namespace moosicbox::p2p::quic::testing
