// SPDX-License-Identifier: MIT OR Apache-2.0
// connection.cpp: the QUIC engine over ngtcp2 1.11 and ngtcp2_crypto_gnutls. ngtcp2 callbacks land in
// static trampolines that only update the connection's own state and queue events; every ngtcp2 call
// that may re-enter (read, write, close) happens from the public driving functions.
// Layer: quic. Not thread-safe: one connection belongs to one strand.
#include "quic/connection.hpp"

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include <algorithm>
#include <array>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "core/fifo.hpp"
#include "core/log.hpp"
#include "moosicbox/p2p/core/assert.hpp"
#include "quic/byte_queue.hpp"
#include "quic/ngtcp2_util.hpp"
#include "quic/tls_native.hpp"

namespace moosicbox::p2p::quic {

namespace {

constexpr std::size_t kAlpnSizeMax = 255;
// Reason phrases we send stay short: they travel in one packet and are for people.
constexpr std::size_t kReasonSizeMax = 512;
// One packet's STREAM frame can reference at most this many separate storage runs.
constexpr std::size_t kStreamVecMax = 16;
// Datagrams stay at most this large until the handshake is confirmed.
constexpr std::size_t kHandshakeDatagramMax = 1452;
// Every write loop is bounded; a stuck loop is a bug, not a hang.
constexpr std::size_t kWriteLoopMax = 4096;

enum class State { handshaking, established, closing, draining, drained };

Duration from_ngtcp2_duration(std::uint64_t d) noexcept { return Duration(static_cast<std::int64_t>(d)); }
std::uint64_t to_ngtcp2_duration(Duration d) noexcept {
  return d.count() <= 0 ? 0 : static_cast<std::uint64_t>(d.count());
}

std::string_view alert_name(std::uint8_t alert) {
  const char* name = gnutls_alert_get_name(static_cast<gnutls_alert_description_t>(alert));
  return name == nullptr ? std::string_view("unknown alert") : std::string_view(name);
}

bool is_authentication_alert(std::uint8_t alert) {
  switch (alert) {
    case GNUTLS_A_BAD_CERTIFICATE:
    case GNUTLS_A_UNSUPPORTED_CERTIFICATE:
    case GNUTLS_A_CERTIFICATE_REVOKED:
    case GNUTLS_A_CERTIFICATE_EXPIRED:
    case GNUTLS_A_CERTIFICATE_UNKNOWN:
    case GNUTLS_A_UNKNOWN_CA:
    case GNUTLS_A_ACCESS_DENIED:
    case GNUTLS_A_DECRYPT_ERROR:
    case GNUTLS_A_CERTIFICATE_REQUIRED:
      return true;
    default:
      return false;
  }
}

std::string truncate_reason(std::string_view reason) {
  return std::string(reason.substr(0, std::min(reason.size(), kReasonSizeMax)));
}

// Stream is one stream's state on our side of ngtcp2: the bytes the application wrote that ngtcp2 may
// still need, the bytes received that the application has not read, and the end-of-stream flags.
struct Stream {
  StreamId id = 0;
  bool can_send = false;
  bool can_recv = false;
  bool local = false;

  // Send side: `send` holds [acked offset, written offset); its first `send_sent` bytes were handed
  // to ngtcp2, which keeps pointers to them until they are acknowledged.
  ByteQueue send;
  std::size_t send_sent = 0;
  bool fin_requested = false;
  bool fin_sent = false;
  bool send_reset = false;                 // we reset, or the peer stopped us
  bool peer_stopped = false;               // the peer sent STOP_SENDING
  std::optional<std::uint64_t> stop_code;  // its code, once ngtcp2 reports it (stream_close)
  std::int32_t priority = 0;               // higher is sent first (stream_set_priority)
  std::uint64_t local_reset_code = 0;      // the code of our reset (replayed after a 0-RTT rejection)
  std::uint64_t local_stop_code = 0;       // the code of our STOP_SENDING (likewise)
  bool queued = false;                     // in the send queue
  bool blocked = false;                    // flow-control blocked until MAX_STREAM_DATA
  bool want_writable = false;              // a writer waits for buffer space

  // Receive side.
  ByteQueue recv;
  bool fin_received = false;
  bool fin_read = false;
  bool recv_stopped = false;
  std::optional<std::uint64_t> reset_code;  // the peer's RESET_STREAM code
  bool readable_signalled = false;
  bool early = false;  // some of its bytes arrived in 0-RTT packets (replayable by an attacker)

  bool closed = false;    // ngtcp2 is done with the stream
  bool released = false;  // the application is done with the stream
  bool phantom = false;   // reset by the peer before ngtcp2 created it (see stream_reset_cb)

  [[nodiscard]] std::size_t unsent() const noexcept { return send.size() - send_sent; }
  [[nodiscard]] bool has_pending_send() const noexcept {
    return !send_reset && (unsent() > 0 || (fin_requested && !fin_sent));
  }
};

}  // namespace

struct Connection::Impl {
  bool server = false;
  ngtcp2_conn* conn = nullptr;
  gnutls_session_t session = nullptr;
  ngtcp2_crypto_conn_ref conn_ref{};

  std::shared_ptr<const TlsIdentity> identity;
  std::shared_ptr<TicketIssuer> tickets;  // server: issues session tickets and accepts 0-RTT
  TransportConfig transport;
  StaticSecret secret{};
  RandomFn random;
  std::vector<std::string> alpns;  // offered (client: one) or served (server)

  State state = State::handshaking;
  std::optional<NodeId> expected_peer;
  std::optional<NodeId> peer_id;
  std::string alpn;
  std::optional<CloseInfo> close_info;
  std::optional<P2PError> tls_failure;  // why our TLS side rejected the peer
  bool stateless_reset = false;
  std::vector<std::uint32_t> offered_versions;

  // 0-RTT and resumption.
  EarlyData early = EarlyData::none;
  std::optional<SessionTicket> ticket;  // client: the newest ticket, until taken
  bool ticket_seen = false;             // client: a ticket arrived on this connection
  std::uint8_t datagrams_after_confirm = 0;
  bool confirmed = false;             // the handshake is confirmed (client: HANDSHAKE_DONE; server: completed)
  bool resumed = false;               // the handshake resumed a session
  std::optional<NodeId> ticket_peer;  // server: the client the presented ticket was issued to

  // Closing: the CONNECTION_CLOSE we sent, re-sent (rate-limited) when the peer keeps sending.
  bool close_write_pending = false;
  ngtcp2_ccerr close_error{};
  std::string close_reason;
  Bytes close_packet;
  Path close_path;
  std::uint64_t closing_rx = 0;
  bool resend_close = false;
  TimePoint close_deadline = kTimePointMax;

  std::unordered_map<StreamId, Stream> streams;  // node-based: references stay valid
  detail::Fifo<StreamId> send_queue;
  std::uint64_t phantoms = 0;     // phantom streams not yet released
  std::uint64_t credit_bidi = 0;  // remote stream credit to return after the current ngtcp2 call
  std::uint64_t credit_uni = 0;
  std::uint64_t credit_data = 0;  // connection flow-control credit for discarded bytes

  detail::Fifo<Bytes> datagrams_out;
  detail::Fifo<Bytes> datagrams_in;
  bool datagram_signalled = false;

  detail::Fifo<Event> events;
  ConnectionId client_dcid;  // server: the id the client addressed its first Initial to
  std::vector<ConnectionId> cids;

  Bytes stash;  // a written packet that could not join the current batch
  Path stash_path;
  std::size_t burst_bytes = 0;  // written since the last pacing update

  PathStats counters;
  // The path MTU probe sizes ngtcp2 reads from its settings (see make_settings).
  std::array<std::uint16_t, 7> pmtud_probes{};

  ~Impl() {
    if (conn != nullptr) ngtcp2_conn_del(conn);
    if (session != nullptr) gnutls_deinit(session);
  }

  // --- helpers ---

  void push(EventKind kind, StreamId sid = -1) { events.push_back(Event{kind, sid, {}}); }

  Stream* find(StreamId id) noexcept {
    const auto it = streams.find(id);
    return it == streams.end() ? nullptr : &it->second;
  }

  Stream& add_stream(StreamId id, bool local) {
    Stream s;
    s.id = id;
    s.local = local;
    if (is_bidi(id)) {
      s.can_send = s.can_recv = true;
    } else {
      s.can_send = local;
      s.can_recv = !local;
    }
    return streams.emplace(id, std::move(s)).first->second;
  }

  std::string peer_label() const {
    if (peer_id) return peer_id->to_string();
    if (expected_peer) return expected_peer->to_string();
    return "unknown peer";
  }

  void maybe_erase(Stream& s) {
    if (!s.closed || !s.released) return;
    // The stream is done for QUIC and for the application: return the peer's stream credit (ngtcp2
    // already returned a phantom's).
    if (s.phantom) {
      --phantoms;
    } else if (!s.local) {
      (is_bidi(s.id) ? credit_bidi : credit_uni) += 1;
    }
    if (s.recv.size() > 0) credit_data += s.recv.size();
    streams.erase(s.id);
  }

  void apply_credits() {
    if (conn == nullptr) return;
    if (credit_bidi > 0) ngtcp2_conn_extend_max_streams_bidi(conn, static_cast<std::size_t>(credit_bidi));
    if (credit_uni > 0) ngtcp2_conn_extend_max_streams_uni(conn, static_cast<std::size_t>(credit_uni));
    if (credit_data > 0) ngtcp2_conn_extend_max_offset(conn, credit_data);
    credit_bidi = credit_uni = credit_data = 0;
  }

  // enqueue_send queues a stream with data to send behind every queued stream of its priority or
  // higher: priorities order the queue, equal priorities take turns. The queue is short (streams
  // with data ready), so an ordered insertion costs less than a queue per priority would in memory.
  void enqueue_send(Stream& s) {
    if (s.queued || s.blocked || !s.has_pending_send()) return;
    s.queued = true;
    auto pos = send_queue.end();
    while (pos != send_queue.begin()) {
      const Stream* prev = find(*std::prev(pos));
      if (prev == nullptr || prev->priority >= s.priority) break;
      --pos;
    }
    send_queue.insert(pos, s.id);
  }

  // finish ends the connection at once (no closing period): idle timeout, handshake timeout, version
  // negotiation failure, or a silent drop.
  void finish(CloseInfo info) {
    if (!close_info) {
      close_info = std::move(info);
      push(EventKind::closed);
    }
    state = State::drained;
    close_deadline = kTimePointMax;
    release_buffers();
  }

  void enter_draining(TimePoint now, CloseInfo info) {
    if (!close_info) {
      close_info = std::move(info);
      push(EventKind::closed);
    }
    state = State::draining;
    close_deadline = now + 3 * from_ngtcp2_duration(ngtcp2_conn_get_pto(conn));
    release_send_buffers();
  }

  // start_local_close records why we close and arranges for poll_transmit to send CONNECTION_CLOSE.
  void start_local_close(CloseInfo info) {
    if (state == State::closing || state == State::draining || state == State::drained) return;
    close_reason = truncate_reason(info.reason);
    ngtcp2_ccerr_default(&close_error);
    if (info.application) {
      ngtcp2_ccerr_set_application_error(&close_error, info.code, u8(as_bytes(close_reason).data()),
                                         close_reason.size());
    } else {
      ngtcp2_ccerr_set_transport_error(&close_error, info.code, u8(as_bytes(close_reason).data()), close_reason.size());
    }
    if (!close_info) {
      close_info = std::move(info);
      push(EventKind::closed);
    }
    state = State::closing;
    close_write_pending = true;
  }

  void release_send_buffers() {
    for (auto& [id, s] : streams) {
      s.send.clear();
      s.send_sent = 0;
    }
    send_queue.clear();
    datagrams_out.clear();
  }

  void release_buffers() {
    release_send_buffers();
    // Received bytes stay readable after the end (the application may still drain them); only the
    // ngtcp2 and TLS state go.
  }

  // local_failure closes after ngtcp2 reported a library error `liberr` while reading or writing.
  void local_failure(int liberr) {
    CloseInfo info;
    info.origin = CloseOrigin::local;
    if (liberr == NGTCP2_ERR_CRYPTO) {
      const std::uint8_t alert = ngtcp2_conn_get_tls_alert(conn);
      info.code = NGTCP2_CRYPTO_ERROR | alert;
      if (tls_failure) {
        info.error = *tls_failure;
        info.reason = "authentication failed";
      } else if (alert == GNUTLS_A_NO_APPLICATION_PROTOCOL) {
        info.reason = "no common application protocol";
        info.error = P2PError::connection_failed(
            server ? fmt::format("the client offers no application protocol this node serves (serving: {})",
                                 fmt::join(alpns, ", "))
                   : fmt::format("the server does not serve application protocol '{}'", alpns.front()));
      } else {
        info.reason = fmt::format("TLS handshake failed ({})", alert_name(alert));
        info.error = P2PError::connection_failed(info.reason);
      }
    } else {
      info.code = ngtcp2_err_infer_quic_transport_error_code(liberr);
      if (tls_failure) {
        info.error = *tls_failure;
        info.reason = "authentication failed";
      } else {
        info.reason = fmt::format("protocol error: {}", ngtcp2_strerror(liberr));
        info.error = P2PError::protocol(fmt::format("{} (QUIC error 0x{:x})", ngtcp2_strerror(liberr), info.code));
      }
    }
    logger().debug("quic: {} closes: {}", peer_label(), info.error.message());
    start_local_close(std::move(info));
  }

  CloseInfo remote_close_info() {
    const ngtcp2_ccerr& ccerr = *ngtcp2_conn_get_ccerr(conn);
    CloseInfo info;
    info.origin = CloseOrigin::remote;
    info.code = ccerr.error_code;
    if (ccerr.reason != nullptr && ccerr.reasonlen > 0) {
      info.reason.assign(reinterpret_cast<const char*>(ccerr.reason), ccerr.reasonlen);
    }
    if (ccerr.type == NGTCP2_CCERR_TYPE_APPLICATION) {
      info.application = true;
      std::string by = info.reason.empty() ? std::string("peer") : fmt::format("peer: {}", info.reason);
      if (info.code != 0) by += fmt::format(" (application code {})", info.code);
      info.error = P2PError::connection_closed(std::move(by));
    } else {
      info.error = error_from_transport_close(info.code, info.reason);
      if (info.error.code() == P2PErrc::authentication_failed) {
        info.error = P2PError::authentication_failed(fmt::format("{}: {}", peer_label(), info.error.context()));
      }
    }
    return info;
  }

  void on_read_error(int rv, TimePoint now) {
    switch (rv) {
      case NGTCP2_ERR_DRAINING:
        if (stateless_reset) {
          CloseInfo info;
          info.origin = CloseOrigin::stateless_reset;
          info.error =
              P2PError::connection_closed("peer reset (stateless reset: the peer lost the connection's state)");
          enter_draining(now, std::move(info));
        } else {
          enter_draining(now, remote_close_info());
        }
        return;
      case NGTCP2_ERR_RECV_VERSION_NEGOTIATION: {
        CloseInfo info;
        info.origin = CloseOrigin::version_negotiation;
        info.error = P2PError::connection_failed(
            fmt::format("version negotiation: the server supports none of our QUIC versions (it offers {:#010x})",
                        fmt::join(offered_versions, ", ")));
        finish(std::move(info));
        return;
      }
      case NGTCP2_ERR_DROP_CONN:
      case NGTCP2_ERR_RETRY: {
        CloseInfo info;
        info.error = P2PError::connection_failed("connection dropped by the QUIC layer");
        finish(std::move(info));
        return;
      }
      default:
        local_failure(rv);
        return;
    }
  }

  // --- the write path ---

  // write_one_packet writes at most one packet into `dest`; returns its size, 0 when nothing can be
  // sent now, or a negative ngtcp2 error.
  ngtcp2_ssize write_one_packet(ngtcp2_path_storage& ps, std::span<std::byte> dest, std::uint64_t ts) {
    ngtcp2_pkt_info pi{};
    // Checked before coalescing starts: ngtcp2 allows no other call between WRITE_MORE and the end
    // of the packet.
    const bool conn_blocked = ngtcp2_conn_get_max_data_left(conn) == 0;
    for (std::size_t iter = 0; iter < kWriteLoopMax; ++iter) {
      Stream* s = nullptr;
      while (!send_queue.empty()) {
        Stream* cand = find(send_queue.front());
        if (cand != nullptr && cand->queued && !cand->blocked && cand->has_pending_send() &&
            (!conn_blocked || cand->unsent() == 0)) {
          s = cand;
          break;
        }
        if (cand != nullptr && cand->queued && cand->has_pending_send() && !cand->blocked && conn_blocked) {
          // Only connection-level flow control stops this stream; keep it queued but try no stream.
          break;
        }
        if (cand != nullptr) cand->queued = false;
        send_queue.pop_front();
      }
      if (s != nullptr) {
        std::array<ByteQueue::Segment, kStreamVecMax> segs{};
        const std::size_t nseg = s->send.segments(s->send_sent, SIZE_MAX, segs);
        std::array<ngtcp2_vec, kStreamVecMax> vecs{};
        std::size_t total = 0;
        for (std::size_t i = 0; i < nseg; ++i) {
          vecs[i].base = const_cast<std::uint8_t*>(u8(segs[i].data()));
          vecs[i].len = segs[i].size();
          total += segs[i].size();
        }
        const bool fin = s->fin_requested && !s->fin_sent && total == s->unsent();
        std::uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
        if (fin) flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
        ngtcp2_ssize accepted = -1;
        const auto n = ngtcp2_conn_writev_stream(conn, &ps.path, &pi, u8(dest.data()), dest.size(), &accepted, flags,
                                                 s->id, vecs.data(), nseg, ts);
        if (accepted >= 0) {
          s->send_sent += static_cast<std::size_t>(accepted);
          if (fin && static_cast<std::size_t>(accepted) == total) s->fin_sent = true;
        }
        if (n == NGTCP2_ERR_WRITE_MORE) {
          if (!s->has_pending_send()) {
            s->queued = false;
            send_queue.pop_front();
          } else if (accepted <= 0) {
            // Nothing more of this stream fits; let the packet close with what it has.
            return ngtcp2_conn_writev_stream(conn, &ps.path, &pi, u8(dest.data()), dest.size(), nullptr,
                                             NGTCP2_WRITE_STREAM_FLAG_NONE, -1, nullptr, 0, ts);
          }
          continue;
        }
        if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED) {
          s->blocked = true;
          s->queued = false;
          send_queue.pop_front();
          continue;
        }
        if (n == NGTCP2_ERR_STREAM_SHUT_WR || n == NGTCP2_ERR_STREAM_NOT_FOUND) {
          // We did not reset it, so the peer sent STOP_SENDING.
          s->queued = false;
          s->send_reset = true;
          s->peer_stopped = true;
          if (s->want_writable) {
            s->want_writable = false;
            push(EventKind::stream_writable, s->id);
          }
          send_queue.pop_front();
          continue;
        }
        if (n < 0) return n;
        if (n > 0 && s->queued) {
          // Round robin: the stream that filled this packet goes to the back.
          send_queue.pop_front();
          s->queued = false;
          enqueue_send(*s);
        }
        return n;
      }
      if (!datagrams_out.empty()) {
        ngtcp2_vec v{const_cast<std::uint8_t*>(u8(datagrams_out.front().data())), datagrams_out.front().size()};
        int accepted = 0;
        const auto n = ngtcp2_conn_writev_datagram(conn, &ps.path, &pi, u8(dest.data()), dest.size(), &accepted,
                                                   NGTCP2_WRITE_DATAGRAM_FLAG_MORE, 0, &v, 1, ts);
        if (n == NGTCP2_ERR_WRITE_MORE) {
          datagrams_out.pop_front();
          continue;
        }
        if (n == NGTCP2_ERR_INVALID_ARGUMENT || n == NGTCP2_ERR_INVALID_STATE) {
          // Too large for the peer or the peer takes none: unreliable data may be dropped.
          ++counters.datagrams_dropped;
          datagrams_out.pop_front();
          continue;
        }
        if (n < 0) return n;
        if (accepted != 0) datagrams_out.pop_front();
        return n;
      }
      return ngtcp2_conn_writev_stream(conn, &ps.path, &pi, u8(dest.data()), dest.size(), nullptr,
                                       NGTCP2_WRITE_STREAM_FLAG_NONE, -1, nullptr, 0, ts);
    }
    MOOSICBOX_P2P_ASSERT(false && "QUIC write loop did not converge");
    return 0;
  }

  std::optional<Transmit> write_close(TimePoint now, std::span<std::byte> buffer) {
    close_write_pending = false;
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi{};
    const auto n = ngtcp2_conn_write_connection_close(conn, &ps.path, &pi, u8(buffer.data()), buffer.size(),
                                                      &close_error, to_tstamp(now));
    if (n <= 0) {
      // Nothing may be sent (e.g. before any packet left): the connection simply ends.
      state = State::drained;
      close_deadline = kTimePointMax;
      release_buffers();
      return std::nullopt;
    }
    close_packet.assign(buffer.begin(), buffer.begin() + n);
    close_path = from_ngtcp2_path(ps.path);
    close_deadline = now + 3 * from_ngtcp2_duration(ngtcp2_conn_get_pto(conn));
    release_buffers();
    count_sent(static_cast<std::size_t>(n), 1);
    return Transmit{close_path, static_cast<std::size_t>(n), static_cast<std::size_t>(n)};
  }

  // release_tls frees the GnuTLS session once the handshake is confirmed: QUIC derives its later
  // keys itself, so TLS has nothing left to do, and the session is a large part of an idle
  // connection's memory.
  void release_tls() {
    if (session == nullptr || state != State::established || !confirmed) return;
    ngtcp2_conn_set_tls_native_handle(conn, nullptr);
    gnutls_deinit(session);
    session = nullptr;
  }

  void count_sent(std::size_t bytes, std::size_t datagrams) {
    counters.bytes_sent += bytes;
    counters.datagrams_sent += datagrams;
  }

  // --- callbacks (trampolines below) ---

  int on_verify(gnutls_session_t s);
  int on_handshake_completed();
  int on_early_key();
  void on_ticket();
  void on_handshake_message(unsigned type, unsigned when, bool incoming, std::span<const std::uint8_t> body);
  std::optional<NodeId> resumed_peer_key(const std::optional<NodeId>& known) const;
  void resend_early_streams();
};

namespace {

Connection::Impl* impl_of(void* user_data) { return static_cast<Connection::Impl*>(user_data); }

ngtcp2_conn* get_conn(ngtcp2_crypto_conn_ref* ref) { return static_cast<Connection::Impl*>(ref->user_data)->conn; }

void rand_cb(std::uint8_t* dest, std::size_t len, const ngtcp2_rand_ctx* ctx) {
  auto* impl = static_cast<Connection::Impl*>(ctx->native_handle);
  impl->random(std::span<std::byte>(reinterpret_cast<std::byte*>(dest), len));
}

int get_new_connection_id_cb(ngtcp2_conn*, ngtcp2_cid* cid, std::uint8_t* token, std::size_t cidlen, void* user_data) {
  auto* impl = impl_of(user_data);
  impl->random(std::span<std::byte>(reinterpret_cast<std::byte*>(cid->data), cidlen));
  cid->datalen = cidlen;
  const ConnectionId id = from_ngtcp2(*cid);
  const auto t = stateless_reset_token(impl->secret, id);
  std::memcpy(token, t.data(), t.size());
  impl->cids.push_back(id);
  impl->events.push_back(Event{EventKind::cid_issued, -1, id});
  return 0;
}

int remove_connection_id_cb(ngtcp2_conn*, const ngtcp2_cid* cid, void* user_data) {
  auto* impl = impl_of(user_data);
  const ConnectionId id = from_ngtcp2(*cid);
  std::erase(impl->cids, id);
  impl->events.push_back(Event{EventKind::cid_retired, -1, id});
  return 0;
}

int get_path_challenge_data_cb(ngtcp2_conn*, std::uint8_t* data, void* user_data) {
  impl_of(user_data)->random(std::span<std::byte>(reinterpret_cast<std::byte*>(data), NGTCP2_PATH_CHALLENGE_DATALEN));
  return 0;
}

int handshake_completed_cb(ngtcp2_conn*, void* user_data) { return impl_of(user_data)->on_handshake_completed(); }

int handshake_confirmed_cb(ngtcp2_conn*, void* user_data) {
  auto* impl = impl_of(user_data);
  impl->confirmed = true;
  if (impl->state == State::handshaking) {
    impl->state = State::established;
    impl->push(EventKind::connected);
  }
  return 0;
}

int recv_stream_data_cb(ngtcp2_conn*, std::uint32_t flags, std::int64_t sid, std::uint64_t, const std::uint8_t* data,
                        std::size_t len, void* user_data, void*) {
  auto* impl = impl_of(user_data);
  Stream* s = impl->find(sid);
  if (s == nullptr) s = &impl->add_stream(sid, false);
  if (s->recv_stopped || s->reset_code) {
    // The application asked to stop (or the stream was reset): drop, but give the credit back.
    impl->credit_data += len;
    return 0;
  }
  if (len > 0) s->recv.append(ByteView(reinterpret_cast<const std::byte*>(data), len));
  if ((flags & NGTCP2_STREAM_DATA_FLAG_0RTT) != 0) s->early = true;
  if ((flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0) s->fin_received = true;
  if (!s->readable_signalled) {
    s->readable_signalled = true;
    impl->push(EventKind::stream_readable, sid);
  }
  return 0;
}

int stream_open_cb(ngtcp2_conn*, std::int64_t sid, void* user_data) {
  auto* impl = impl_of(user_data);
  if (impl->find(sid) == nullptr) impl->add_stream(sid, false);
  impl->push(EventKind::stream_opened, sid);
  return 0;
}

int stream_close_cb(ngtcp2_conn*, std::uint32_t flags, std::int64_t sid, std::uint64_t app_error_code, void* user_data,
                    void*) {
  auto* impl = impl_of(user_data);
  Stream* s = impl->find(sid);
  if (s == nullptr) return 0;
  const bool code_set = (flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET) != 0;
  if (code_set && s->can_send && (s->peer_stopped || (!s->send_reset && !s->fin_sent))) {
    // The send side ended with an error code we did not choose: the peer's STOP_SENDING.
    s->peer_stopped = true;
    s->send_reset = true;
    if (!s->stop_code) s->stop_code = app_error_code;
  }
  s->closed = true;
  s->send.clear();
  s->send_sent = 0;
  if (s->can_recv && !s->fin_received && !s->reset_code && !s->recv_stopped) {
    // Closed without FIN on the receive side: only a reset can do that.
    s->reset_code = 0;
  }
  if (s->can_send && s->want_writable) {
    s->want_writable = false;
    impl->push(EventKind::stream_writable, sid);
  }
  impl->push(EventKind::stream_closed, sid);
  impl->maybe_erase(*s);
  return 0;
}

int stream_reset_cb(ngtcp2_conn* conn, std::int64_t sid, std::uint64_t, std::uint64_t app_error_code, void* user_data,
                    void*) {
  auto* impl = impl_of(user_data);
  Stream* s = impl->find(sid);
  if (s == nullptr) {
    // The peer reset a stream before any of its bytes arrived: ngtcp2 keeps no state for it and
    // returns its credit at once. The application still sees the stream (it opened, then failed),
    // unless too many such streams wait unaccepted: ngtcp2's credit would let a peer queue them
    // without bound.
    if (ngtcp2_conn_is_local_stream(conn, sid) != 0) return 0;
    const std::uint64_t cap = is_bidi(sid) ? impl->transport.max_streams_bidi : impl->transport.max_streams_uni;
    if (impl->phantoms >= cap) return 0;
    Stream& p = impl->add_stream(sid, false);
    p.phantom = true;
    p.closed = true;
    p.send_reset = true;  // ngtcp2 has no stream to send on
    p.reset_code = app_error_code;
    p.readable_signalled = true;
    ++impl->phantoms;
    impl->push(EventKind::stream_opened, sid);
    impl->push(EventKind::stream_readable, sid);
    return 0;
  }
  if (!s->reset_code) s->reset_code = app_error_code;
  // Unread bytes are dropped; their connection credit goes back to the peer.
  impl->credit_data += s->recv.size();
  s->recv.clear();
  if (!s->readable_signalled) {
    s->readable_signalled = true;
    impl->push(EventKind::stream_readable, sid);
  }
  return 0;
}

int stream_stop_sending_cb(ngtcp2_conn*, std::int64_t, std::uint64_t, void*, void*) {
  // ngtcp2 calls this when *this* side sends STOP_SENDING (after stream_stop); a peer's
  // STOP_SENDING shows up as NGTCP2_ERR_STREAM_SHUT_WR on the next write and in stream_close.
  return 0;
}

int acked_stream_data_offset_cb(ngtcp2_conn*, std::int64_t sid, std::uint64_t, std::uint64_t datalen, void* user_data,
                                void*) {
  auto* impl = impl_of(user_data);
  Stream* s = impl->find(sid);
  if (s == nullptr || datalen == 0) return 0;
  const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(datalen, s->send_sent));
  s->send.consume(n);
  s->send_sent -= n;
  if (s->want_writable) {
    s->want_writable = false;
    impl->push(EventKind::stream_writable, sid);
  }
  return 0;
}

int extend_max_stream_data_cb(ngtcp2_conn*, std::int64_t sid, std::uint64_t, void* user_data, void*) {
  auto* impl = impl_of(user_data);
  Stream* s = impl->find(sid);
  if (s == nullptr) return 0;
  s->blocked = false;
  impl->enqueue_send(*s);
  return 0;
}

int extend_max_local_streams_cb(ngtcp2_conn*, std::uint64_t, void* user_data) {
  impl_of(user_data)->push(EventKind::streams_available);
  return 0;
}

int recv_datagram_cb(ngtcp2_conn*, std::uint32_t, const std::uint8_t* data, std::size_t len, void* user_data) {
  auto* impl = impl_of(user_data);
  if (impl->datagrams_in.size() >= impl->transport.datagram_queue_max) {
    impl->datagrams_in.pop_front();
    ++impl->counters.datagrams_dropped;
  }
  const auto* p = reinterpret_cast<const std::byte*>(data);
  impl->datagrams_in.emplace_back(p, p + len);
  if (!impl->datagram_signalled) {
    impl->datagram_signalled = true;
    impl->push(EventKind::datagram_readable);
  }
  return 0;
}

int recv_stateless_reset_cb(ngtcp2_conn*, const ngtcp2_pkt_stateless_reset*, void* user_data) {
  impl_of(user_data)->stateless_reset = true;
  return 0;
}

int recv_version_negotiation_cb(ngtcp2_conn*, const ngtcp2_pkt_hd*, const std::uint32_t* sv, std::size_t nsv,
                                void* user_data) {
  auto* impl = impl_of(user_data);
  impl->offered_versions.assign(sv, sv + std::min<std::size_t>(nsv, 16));
  return 0;
}

void log_printf_cb(void*, const char* format, ...) {
  std::array<char, 512> line{};
  va_list ap;
  va_start(ap, format);
  std::vsnprintf(line.data(), line.size(), format, ap);
  va_end(ap);
  logger().trace("ngtcp2: {}", line.data());
}

int recv_crypto_data_cb(ngtcp2_conn* conn, ngtcp2_encryption_level level, std::uint64_t offset,
                        const std::uint8_t* data, std::size_t len, void* user_data) {
  auto* impl = impl_of(user_data);
  if (impl->session == nullptr) {
    // The TLS session was released after the handshake (see release_tls). Later post-handshake
    // TLS messages (a second session ticket) are ignored.
    return level == NGTCP2_ENCRYPTION_LEVEL_1RTT ? 0 : NGTCP2_ERR_PROTO;
  }
  return ngtcp2_crypto_recv_crypto_data_cb(conn, level, offset, data, len, user_data);
}

// qlog_cb scans ngtcp2's qlog events for two things ngtcp2 1.11 (like 0.12) reports nowhere else:
// - STOP_SENDING frames the peer sent. ngtcp2 tells a writer that its stream was stopped
//   (NGTCP2_ERR_STREAM_SHUT_WR) but not the peer's error code, which the application is owed (its
//   writes fail with stream_reset carrying that code); the stream_stop_sending callback fires only
//   for this side's own STOP_SENDING, and stream_close comes once both directions are done, long
//   after the failed write. The qlog event of a received packet lists its frames, codes included.
// - packets declared lost (ngtcp2_conn_info has no loss counter), for PathStats::packets_lost.
// Each call carries one event.
void qlog_cb(void* user_data, std::uint32_t, const void* data, std::size_t len) {
  const std::string_view text(static_cast<const char*>(data), len);
  // The event name comes right after the timestamp, within the first few dozen bytes.
  const std::string_view head = text.substr(0, 64);
  if (head.find("recovery:packet_lost") != std::string_view::npos) {
    ++impl_of(user_data)->counters.packets_lost;
    return;
  }
  if (head.find("transport:packet_received") == std::string_view::npos) return;
  constexpr std::string_view kFrame = "{\"frame_type\":\"stop_sending\",\"stream_id\":";
  std::size_t pos = text.find(kFrame);
  if (pos == std::string_view::npos) return;
  auto* impl = impl_of(user_data);
  while (pos != std::string_view::npos) {
    pos += kFrame.size();
    std::uint64_t sid = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9')
      sid = sid * 10 + static_cast<std::uint64_t>(text[pos++] - '0');
    constexpr std::string_view kCode = ",\"error_code\":";
    if (text.substr(pos, kCode.size()) != kCode) return;
    pos += kCode.size();
    std::uint64_t code = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9')
      code = code * 10 + static_cast<std::uint64_t>(text[pos++] - '0');
    if (Stream* s = impl->find(static_cast<StreamId>(sid)); s != nullptr && s->can_send && !s->stop_code) {
      s->stop_code = code;
    }
    pos = text.find(kFrame, pos);
  }
}

int recv_rx_key_cb(ngtcp2_conn*, ngtcp2_encryption_level level, void* user_data) {
  if (level != NGTCP2_ENCRYPTION_LEVEL_0RTT) return 0;
  return impl_of(user_data)->on_early_key();
}

int handshake_hook(gnutls_session_t s, unsigned htype, unsigned when, unsigned incoming, const gnutls_datum_t* msg) {
  auto* ref = static_cast<ngtcp2_crypto_conn_ref*>(gnutls_session_get_ptr(s));
  const std::span<const std::uint8_t> body = msg != nullptr && msg->data != nullptr
                                                 ? std::span<const std::uint8_t>(msg->data, msg->size)
                                                 : std::span<const std::uint8_t>();
  static_cast<Connection::Impl*>(ref->user_data)->on_handshake_message(htype, when, incoming != 0, body);
  return 0;
}

int verify_cb(gnutls_session_t s) {
  auto* ref = static_cast<ngtcp2_crypto_conn_ref*>(gnutls_session_get_ptr(s));
  return static_cast<Connection::Impl*>(ref->user_data)->on_verify(s);
}

ngtcp2_callbacks make_callbacks(bool server) {
  ngtcp2_callbacks cb{};
  if (server) {
    cb.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
  } else {
    cb.client_initial = ngtcp2_crypto_client_initial_cb;
    cb.recv_retry = ngtcp2_crypto_recv_retry_cb;
    cb.recv_version_negotiation = recv_version_negotiation_cb;
  }
  cb.recv_crypto_data = recv_crypto_data_cb;
  cb.encrypt = ngtcp2_crypto_encrypt_cb;
  cb.decrypt = ngtcp2_crypto_decrypt_cb;
  cb.hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb.update_key = ngtcp2_crypto_update_key_cb;
  cb.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb.version_negotiation = ngtcp2_crypto_version_negotiation_cb;
  cb.get_path_challenge_data = get_path_challenge_data_cb;
  cb.rand = rand_cb;
  cb.get_new_connection_id = get_new_connection_id_cb;
  cb.remove_connection_id = remove_connection_id_cb;
  cb.handshake_completed = handshake_completed_cb;
  cb.handshake_confirmed = handshake_confirmed_cb;
  cb.recv_stream_data = recv_stream_data_cb;
  cb.stream_open = stream_open_cb;
  cb.stream_close = stream_close_cb;
  cb.stream_reset = stream_reset_cb;
  cb.stream_stop_sending = stream_stop_sending_cb;
  cb.acked_stream_data_offset = acked_stream_data_offset_cb;
  cb.extend_max_stream_data = extend_max_stream_data_cb;
  cb.extend_max_local_streams_bidi = extend_max_local_streams_cb;
  cb.extend_max_local_streams_uni = extend_max_local_streams_cb;
  cb.recv_datagram = recv_datagram_cb;
  cb.recv_stateless_reset = recv_stateless_reset_cb;
  if (server) cb.recv_rx_key = recv_rx_key_cb;
  return cb;
}

ngtcp2_settings make_settings(const TransportConfig& t, TimePoint now, Connection::Impl* impl) {
  ngtcp2_settings s;
  ngtcp2_settings_default(&s);
  s.initial_ts = to_tstamp(now);
  s.initial_rtt = to_ngtcp2_duration(t.initial_rtt);
  s.handshake_timeout = t.handshake_timeout.count() > 0 ? to_ngtcp2_duration(t.handshake_timeout) : UINT64_MAX;
  s.max_window = t.connection_receive_window_max;
  s.max_stream_window = t.stream_receive_window_max;
  s.max_tx_udp_payload_size = t.max_udp_payload_size;
  if (t.fixed_udp_payload_size) {
    s.no_tx_udp_payload_size_shaping = 1;
    s.no_pmtud = 1;
  } else {
    // Probe the configured maximum first (on an Ethernet path the one probe that is needed), then
    // the common smaller sizes of tunnels and PPPoE links. ngtcp2 skips sizes at or below what is
    // already confirmed.
    std::size_t n = 0;
    impl->pmtud_probes[n++] = static_cast<std::uint16_t>(t.max_udp_payload_size);
    for (const std::uint16_t size : std::array<std::uint16_t, 6>{1472, 1452, 1420, 1400, 1350, 1280}) {
      if (size < t.max_udp_payload_size && size > 1200 && n < impl->pmtud_probes.size()) {
        impl->pmtud_probes[n++] = size;
      }
    }
    if (t.max_udp_payload_size > 1200) {
      s.pmtud_probes = impl->pmtud_probes.data();
      s.pmtud_probeslen = n;
    } else {
      s.no_pmtud = 1;
    }
  }
  switch (t.congestion_control) {
    case CongestionControl::cubic:
      s.cc_algo = NGTCP2_CC_ALGO_CUBIC;
      break;
    case CongestionControl::bbr:
      s.cc_algo = NGTCP2_CC_ALGO_BBR;
      break;
    case CongestionControl::reno:
      s.cc_algo = NGTCP2_CC_ALGO_RENO;
      break;
  }
  s.rand_ctx.native_handle = impl;
  if (t.debug_log) s.log_printf = log_printf_cb;
  if (t.stop_sending_codes) {
    s.qlog_write = qlog_cb;
  }
  return s;
}

ngtcp2_transport_params make_params(const TransportConfig& t) {
  ngtcp2_transport_params p;
  ngtcp2_transport_params_default(&p);
  // Every packet keeps the fixed bit: the endpoint tells path-discovery and STUN packets from QUIC
  // by that bit (docs/protocol.md, "Telling disco from QUIC and STUN").
  p.grease_quic_bit = 0;
  p.initial_max_stream_data_bidi_local = t.stream_receive_window;
  p.initial_max_stream_data_bidi_remote = t.stream_receive_window;
  p.initial_max_stream_data_uni = t.stream_receive_window;
  p.initial_max_data = t.connection_receive_window;
  p.initial_max_streams_bidi = t.max_streams_bidi;
  p.initial_max_streams_uni = t.max_streams_uni;
  p.max_idle_timeout = to_ngtcp2_duration(t.idle_timeout);
  p.max_ack_delay = to_ngtcp2_duration(t.max_ack_delay);
  p.active_connection_id_limit = 4;
  p.max_datagram_frame_size = t.datagrams ? 65535 : 0;
  return p;
}

P2PResult<void> check_common(const std::shared_ptr<const TlsIdentity>& identity, const RandomFn& random,
                             const TransportConfig& t) {
  if (!identity) return fail(P2PError::invalid_configuration("QUIC connection without a TLS identity"));
  if (!random) return fail(P2PError::invalid_configuration("QUIC connection without a random source"));
  if (t.max_udp_payload_size < 1200 || t.max_udp_payload_size > 65527) {
    return fail(P2PError::invalid_configuration(
        fmt::format("max_udp_payload_size {} is outside [1200, 65527]", t.max_udp_payload_size)));
  }
  if (t.stream_receive_window == 0 || t.connection_receive_window == 0 || t.stream_send_buffer_max == 0) {
    return fail(P2PError::invalid_configuration("QUIC windows and buffers must be positive"));
  }
  return {};
}

// setup_tls creates the GnuTLS session and ties it to the ngtcp2 connection.
P2PResult<void> setup_tls(Connection::Impl& impl, const SessionTicket* resume) {
  // A server issues tickets (and takes 0-RTT) only with a ticket issuer; it sends them itself, once
  // the handshake completes. A client always takes tickets, and offers early data when resuming.
  unsigned flags = (impl.server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_ENABLE_RAWPK | GNUTLS_NO_END_OF_EARLY_DATA;
  if (impl.server) {
    flags |= impl.tickets ? static_cast<unsigned>(GNUTLS_ENABLE_EARLY_DATA | GNUTLS_NO_AUTO_SEND_TICKET)
                          : static_cast<unsigned>(GNUTLS_NO_TICKETS);
  } else if (resume != nullptr) {
    flags |= static_cast<unsigned>(GNUTLS_ENABLE_EARLY_DATA);
  }
  int rv = gnutls_init(&impl.session, flags);
  if (rv != GNUTLS_E_SUCCESS) return fail(P2PError::network(fmt::format("TLS session: {}", gnutls_strerror(rv))));
  const int configured = impl.server ? ngtcp2_crypto_gnutls_configure_server_session(impl.session)
                                     : ngtcp2_crypto_gnutls_configure_client_session(impl.session);
  if (configured != 0) return fail(P2PError::network("TLS session: cannot attach QUIC"));
  const auto& native = impl.identity->native();
  if ((rv = gnutls_priority_set(impl.session, native.priority)) != GNUTLS_E_SUCCESS ||
      (rv = gnutls_credentials_set(impl.session, GNUTLS_CRD_CERTIFICATE, native.credentials)) != GNUTLS_E_SUCCESS) {
    return fail(P2PError::network(fmt::format("TLS session: {}", gnutls_strerror(rv))));
  }
  gnutls_session_set_verify_function(impl.session, verify_cb);
  if (impl.server) gnutls_certificate_server_set_request(impl.session, GNUTLS_CERT_REQUIRE);
  if (impl.server && impl.tickets) {
    auto& issuer = impl.tickets->native();
    if ((rv = gnutls_session_ticket_enable_server(impl.session, &issuer.key)) != GNUTLS_E_SUCCESS) {
      return fail(P2PError::network(fmt::format("TLS session tickets: {}", gnutls_strerror(rv))));
    }
    gnutls_anti_replay_enable(impl.session, issuer.anti_replay);
    // RFC 9001 §4.6.1: a QUIC ticket allows early data up to 0xffffffff; QUIC flow control bounds it.
    gnutls_record_set_max_early_data_size(impl.session, 0xffffffffU);
    gnutls_db_set_cache_expiration(impl.session, static_cast<int>(kTicketLifetime.count()));
  }
  if (impl.server && impl.tickets) {
    // The ClientHello's ticket, before GnuTLS processes it, and the tickets this side sends.
    gnutls_handshake_set_hook_function(impl.session, GNUTLS_HANDSHAKE_ANY, GNUTLS_HOOK_BOTH, handshake_hook);
  }
  if (!impl.server) {
    gnutls_handshake_set_hook_function(impl.session, GNUTLS_HANDSHAKE_NEW_SESSION_TICKET, GNUTLS_HOOK_POST,
                                       handshake_hook);
    if (resume != nullptr) {
      // A ticket GnuTLS cannot load only costs the resumption: the handshake is a full one, and the
      // early streams are resent as after a rejection.
      rv = gnutls_session_set_data(impl.session, resume->tls.data(), resume->tls.size());
      if (rv != GNUTLS_E_SUCCESS) logger().debug("quic: session ticket not usable: {}", gnutls_strerror(rv));
    }
  }
  std::vector<gnutls_datum_t> protos;
  protos.reserve(impl.alpns.size());
  for (const auto& a : impl.alpns) {
    protos.push_back(
        gnutls_datum_t{reinterpret_cast<unsigned char*>(const_cast<char*>(a.data())), static_cast<unsigned>(a.size())});
  }
  // A server with nothing to serve still sets ALPN as mandatory, so every client is refused with a
  // clear no_application_protocol alert. GnuTLS needs at least one entry; a name no client offers
  // serves the purpose.
  static constexpr std::string_view kNoProtocol = "\x00none";
  if (protos.empty()) {
    protos.push_back(gnutls_datum_t{reinterpret_cast<unsigned char*>(const_cast<char*>(kNoProtocol.data())),
                                    static_cast<unsigned>(kNoProtocol.size())});
  }
  const unsigned alpn_flags = static_cast<unsigned>(GNUTLS_ALPN_MANDATORY) |
                              (impl.server ? static_cast<unsigned>(GNUTLS_ALPN_SERVER_PRECEDENCE) : 0U);
  rv = gnutls_alpn_set_protocols(impl.session, protos.data(), static_cast<unsigned>(protos.size()), alpn_flags);
  if (rv != GNUTLS_E_SUCCESS) return fail(P2PError::network(fmt::format("TLS ALPN: {}", gnutls_strerror(rv))));
  impl.conn_ref.get_conn = get_conn;
  impl.conn_ref.user_data = &impl;
  gnutls_session_set_ptr(impl.session, &impl.conn_ref);
  ngtcp2_conn_set_tls_native_handle(impl.conn, impl.session);
  return {};
}

}  // namespace

int Connection::Impl::on_verify(gnutls_session_t s) {
  // The peer proved possession of the key in CertificateVerify; what remains is to check which key.
  auto reject = [&](std::string why) {
    tls_failure = P2PError::authentication_failed(fmt::format("{}: {}", peer_label(), why));
    return GNUTLS_E_CERTIFICATE_ERROR;
  };
  if (gnutls_certificate_type_get2(s, GNUTLS_CTYPE_PEERS) != GNUTLS_CRT_RAWPK) {
    return reject("the peer presented no raw public key");
  }
  unsigned count = 0;
  const gnutls_datum_t* certs = gnutls_certificate_get_peers(s, &count);
  if (certs == nullptr || count != 1) return reject("the peer presented no key");
  gnutls_pubkey_t pub = nullptr;
  if (gnutls_pubkey_init(&pub) != GNUTLS_E_SUCCESS) return reject("out of memory");
  struct PubGuard {
    gnutls_pubkey_t p;
    ~PubGuard() { gnutls_pubkey_deinit(p); }
  } guard{pub};
  if (gnutls_pubkey_import(pub, &certs[0], GNUTLS_X509_FMT_DER) != GNUTLS_E_SUCCESS) {
    return reject("the peer's public key does not parse");
  }
  if (gnutls_pubkey_get_pk_algorithm(pub, nullptr) != GNUTLS_PK_EDDSA_ED25519) {
    return reject("the peer's key is not Ed25519");
  }
  gnutls_ecc_curve_t curve{};
  gnutls_datum_t x{};
  if (gnutls_pubkey_export_ecc_raw(pub, &curve, &x, nullptr) != GNUTLS_E_SUCCESS) {
    return reject("the peer's key cannot be read");
  }
  const std::span<const std::uint8_t> raw(x.data, x.size);
  if (expected_peer && std::ranges::equal(raw, expected_peer->as_bytes())) {
    // The dialed id, already a validated NodeId: no need to validate the point again (a costly
    // subgroup check) on every connect.
    gnutls_free(x.data);
    peer_id = *expected_peer;
    return 0;
  }
  auto id = NodeId::from_bytes(raw);
  gnutls_free(x.data);
  if (!id) return reject(fmt::format("the peer's key is not a valid node id ({})", id.error().context()));
  if (expected_peer) {
    return reject(fmt::format("the server presented key {}, not the dialed node id", id->to_string()));
  }
  peer_id = *id;
  return 0;
}

int Connection::Impl::on_handshake_completed() {
  gnutls_datum_t proto{};
  if (gnutls_alpn_get_selected_protocol(session, &proto) == GNUTLS_E_SUCCESS) {
    alpn.assign(reinterpret_cast<const char*>(proto.data), proto.size);
  }
  resumed = gnutls_session_is_resumed(session) != 0;
  if (resumed) {
    // A resumed handshake sends no keys: each side is the one the ticket's session authenticated.
    // The ticket's session keeps the peer's key; a client checks it is the node it dialed (a ticket
    // only the dialed node's endpoint can open makes that hold anyway).
    // A server that showed the connection early checks the identity it went by.
    const std::optional<NodeId>& claimed = server ? ticket_peer : expected_peer;
    const auto key = resumed_peer_key(claimed);
    if (!key) {
      tls_failure =
          P2PError::authentication_failed(fmt::format("{}: the resumed session carries no peer key", peer_label()));
      return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    if (claimed && (!server || early != EarlyData::none) && *key != *claimed) {
      tls_failure = P2PError::authentication_failed(
          fmt::format("{}: the resumed session belongs to {}", peer_label(), key->to_string()));
      return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    peer_id = *key;
  }
  if (!server && early == EarlyData::attempted) {
    if ((gnutls_session_get_flags(session) & GNUTLS_SFLAGS_EARLY_DATA) != 0) {
      early = EarlyData::accepted;
    } else {
      // GnuTLS reports the server's answer only now. ngtcp2 forgets the early streams; they are
      // opened again under the same ids and their bytes resent in 1-RTT.
      early = EarlyData::rejected;
      if (ngtcp2_conn_tls_early_data_rejected(conn) != 0) return NGTCP2_ERR_CALLBACK_FAILURE;
      resend_early_streams();
      push(EventKind::early_data_rejected);
    }
  }
  if (!peer_id) {
    tls_failure = P2PError::authentication_failed(fmt::format("{}: the peer's key was never verified", peer_label()));
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  if (!server && alpn != alpns.front()) {
    tls_failure = P2PError::connection_failed(
        fmt::format("the server selected application protocol '{}', not '{}'", alpn, alpns.front()));
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  push(EventKind::handshake_completed);
  if (server && tickets) {
    // One ticket per connection, sent with the server's first 1-RTT flight.
    if (const int rv = gnutls_session_ticket_send(session, 1, 0); rv != GNUTLS_E_SUCCESS) {
      logger().debug("quic: no session ticket for {}: {}", peer_label(), gnutls_strerror(rv));
    }
  }
  if (server) confirmed = true;
  if (state == State::handshaking) {
    // Both ends are connected when the handshake completes: a server's handshake is confirmed then
    // (RFC 9001 §4.1.2); a client has verified the server and holds 1-RTT keys, so it may send at
    // once, one round trip after its first packet, instead of waiting half a round trip more for
    // HANDSHAKE_DONE (handshake_confirmed). A server that then refuses the client's key closes the
    // connection, which the client sees as a connection error.
    state = State::established;
    push(EventKind::connected);
  }
  return 0;
}

int Connection::Impl::on_early_key() {
  // Server: GnuTLS accepted the ClientHello's early data (ticket valid, not a replay). The client is
  // the one the ticket was issued to, which GnuTLS does not tell before the handshake completes, so
  // the issuer remembers it; the application may see the connection now. A forgotten ticket
  // still gets its early data, but the connection shows only at completion.
  early = EarlyData::accepted;
  if (!ticket_peer) return 0;
  peer_id = *ticket_peer;
  gnutls_datum_t proto{};
  if (gnutls_alpn_get_selected_protocol(session, &proto) == GNUTLS_E_SUCCESS) {
    alpn.assign(reinterpret_cast<const char*>(proto.data), proto.size);
  }
  push(EventKind::early_data);
  return 0;
}

void Connection::Impl::on_handshake_message(unsigned type, unsigned when, bool incoming,
                                            std::span<const std::uint8_t> body) {
  if (type != GNUTLS_HANDSHAKE_NEW_SESSION_TICKET && type != GNUTLS_HANDSHAKE_CLIENT_HELLO) return;
  if (!server) {
    if (type == GNUTLS_HANDSHAKE_NEW_SESSION_TICKET && incoming && when == GNUTLS_HOOK_POST) on_ticket();
    return;
  }
  if (!tickets) return;
  if (type == GNUTLS_HANDSHAKE_CLIENT_HELLO && incoming && when == GNUTLS_HOOK_PRE) {
    const auto psk = first_psk_identity(body);
    ticket_peer = psk ? tickets->native().ticket_peer(*psk) : std::nullopt;
  } else if (type == GNUTLS_HANDSHAKE_NEW_SESSION_TICKET && !incoming && when == GNUTLS_HOOK_POST && peer_id) {
    if (const auto sent = new_session_ticket_ticket(body)) tickets->native().remember_ticket(*sent, *peer_id);
  }
}

std::optional<NodeId> Connection::Impl::resumed_peer_key(const std::optional<NodeId>& known) const {
  if (session == nullptr) return std::nullopt;
  unsigned count = 0;
  const gnutls_datum_t* certs = gnutls_certificate_get_peers(session, &count);
  if (certs == nullptr || count != 1 || gnutls_certificate_type_get2(session, GNUTLS_CTYPE_PEERS) != GNUTLS_CRT_RAWPK) {
    return std::nullopt;
  }
  gnutls_pubkey_t pub = nullptr;
  if (gnutls_pubkey_init(&pub) != GNUTLS_E_SUCCESS) return std::nullopt;
  std::optional<NodeId> out;
  gnutls_ecc_curve_t curve{};
  gnutls_datum_t x{};
  if (gnutls_pubkey_import(pub, &certs[0], GNUTLS_X509_FMT_DER) == GNUTLS_E_SUCCESS &&
      gnutls_pubkey_get_pk_algorithm(pub, nullptr) == GNUTLS_PK_EDDSA_ED25519 &&
      gnutls_pubkey_export_ecc_raw(pub, &curve, &x, nullptr) == GNUTLS_E_SUCCESS) {
    const std::span<const std::uint8_t> raw(x.data, x.size);
    if (known && std::ranges::equal(raw, known->as_bytes())) {
      out = *known;  // an already validated id: skip the costly point check
    } else if (auto id = NodeId::from_bytes(raw)) {
      out = *id;
    }
    gnutls_free(x.data);
  }
  gnutls_pubkey_deinit(pub);
  return out;
}

void Connection::Impl::on_ticket() {
  gnutls_datum_t data{};
  if (gnutls_session_get_data2(session, &data) != GNUTLS_E_SUCCESS) return;
  SessionTicket t;
  const auto* p = reinterpret_cast<const std::byte*>(data.data);
  t.tls.assign(p, p + data.size);
  gnutls_free(data.data);
  std::array<std::uint8_t, 256> params{};
  const auto n = ngtcp2_conn_encode_0rtt_transport_params(conn, params.data(), params.size());
  if (n <= 0) return;
  const auto* q = reinterpret_cast<const std::byte*>(params.data());
  t.transport_params.assign(q, q + n);
  ticket = std::move(t);
  ticket_seen = true;
  push(EventKind::session_ticket);
}

void Connection::Impl::resend_early_streams() {
  std::vector<StreamId> ids;
  for (const auto& [id, s] : streams) {
    if (s.local) ids.push_back(id);
  }
  std::ranges::sort(ids);
  send_queue.clear();
  // Stream ids are allocated in order, so opening as many streams again, in the same order, gives
  // each stream its id back; an id whose stream is gone is opened and reset at once.
  StreamId next_bidi = 0;
  StreamId next_uni = 2;
  for (const StreamId id : ids) {
    const bool bidi = is_bidi(id);
    StreamId& next = bidi ? next_bidi : next_uni;
    bool reopened = false;
    while (next <= id) {
      StreamId got = -1;
      const int rv =
          bidi ? ngtcp2_conn_open_bidi_stream(conn, &got, nullptr) : ngtcp2_conn_open_uni_stream(conn, &got, nullptr);
      if (rv != 0) break;  // the server now allows fewer streams than the ticket promised
      next = got + 4;
      if (got == id) {
        reopened = true;
      } else {
        ngtcp2_conn_shutdown_stream(conn, 0, got, 0);
      }
    }
    Stream& s = streams.at(id);
    s.queued = false;
    s.blocked = false;
    s.send_sent = 0;
    s.fin_sent = false;
    if (!reopened) {
      // Nothing of it reached the server and it cannot be opened again: it fails like a reset one.
      s.send_reset = true;
      s.peer_stopped = true;
      s.stop_code = 0;
      if (s.can_recv && !s.reset_code) s.reset_code = 0;
      s.closed = true;
      push(EventKind::stream_readable, id);
      push(EventKind::stream_writable, id);
      push(EventKind::stream_closed, id);
      continue;
    }
    if (s.send_reset) ngtcp2_conn_shutdown_stream_write(conn, 0, id, s.local_reset_code);
    if (s.recv_stopped) ngtcp2_conn_shutdown_stream_read(conn, 0, id, s.local_stop_code);
    enqueue_send(s);
  }
  for (const StreamId id : ids) {
    if (Stream* s = find(id)) maybe_erase(*s);
  }
}

// --- factories ---

Connection::Connection(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
Connection::~Connection() = default;

P2PResult<std::unique_ptr<Connection>> Connection::connect(ClientConfig config, TimePoint now) {
  if (auto ok = check_common(config.identity, config.random, config.transport); !ok) return fail(ok.error());
  if (!config.server_id) return fail(P2PError::invalid_configuration("QUIC client without the server's node id"));
  if (config.alpn.empty() || config.alpn.size() > kAlpnSizeMax) {
    return fail(P2PError::invalid_configuration(
        fmt::format("ALPN must be 1 to {} bytes, got {}", kAlpnSizeMax, config.alpn.size())));
  }
  auto impl = std::make_unique<Impl>();
  impl->server = false;
  impl->identity = std::move(config.identity);
  impl->transport = config.transport;
  impl->secret = config.static_secret;
  impl->random = std::move(config.random);
  impl->alpns = {std::move(config.alpn)};
  impl->expected_peer = config.server_id;
  impl->peer_id = config.server_id;

  std::array<std::uint8_t, 16> dcid_bytes{};  // RFC 9000 §7.2: at least 8 unpredictable bytes
  std::array<std::uint8_t, kLocalCidSize> scid_bytes{};
  impl->random(std::as_writable_bytes(std::span(dcid_bytes)));
  impl->random(std::as_writable_bytes(std::span(scid_bytes)));
  const ngtcp2_cid dcid = to_ngtcp2(ConnectionId(dcid_bytes));
  const ConnectionId scid(scid_bytes);
  const ngtcp2_cid nscid = to_ngtcp2(scid);
  const ngtcp2_path path = to_ngtcp2_path(config.path);
  const ngtcp2_callbacks cb = make_callbacks(false);
  const ngtcp2_settings settings = make_settings(impl->transport, now, impl.get());
  const ngtcp2_transport_params params = make_params(impl->transport);
  const int rv = ngtcp2_conn_client_new(&impl->conn, &dcid, &nscid, &path, config.version, &cb, &settings, &params,
                                        nullptr, impl.get());
  if (rv != 0) return fail(P2PError::network(fmt::format("QUIC client state: {}", ngtcp2_strerror(rv))));
  impl->cids.push_back(scid);
  // Resuming: the server's transport parameters from the ticket bound what early data may send.
  const SessionTicket* resume = nullptr;
  if (config.resume) {
    const auto& tp = config.resume->transport_params;
    const int prv = tp.empty() ? NGTCP2_ERR_MALFORMED_TRANSPORT_PARAM
                               : ngtcp2_conn_decode_and_set_0rtt_transport_params(impl->conn, u8(tp.data()), tp.size());
    if (prv == 0) {
      resume = &*config.resume;
      impl->early = EarlyData::attempted;
    } else {
      logger().debug("quic: session ticket's transport parameters refused: {}", ngtcp2_strerror(prv));
    }
  }
  if (auto ok = setup_tls(*impl, resume); !ok) return fail(ok.error());
  if (impl->transport.keep_alive_interval.count() > 0) {
    ngtcp2_conn_set_keep_alive_timeout(impl->conn, to_ngtcp2_duration(impl->transport.keep_alive_interval));
  }
  return std::unique_ptr<Connection>(new Connection(std::move(impl)));
}

P2PResult<std::unique_ptr<Connection>> Connection::accept(ServerConfig config, const Path& path,
                                                          const InitialPacket& initial,
                                                          const std::optional<RetryValidation>& retry, TimePoint now) {
  if (auto ok = check_common(config.identity, config.random, config.transport); !ok) return fail(ok.error());
  auto impl = std::make_unique<Impl>();
  impl->server = true;
  impl->identity = std::move(config.identity);
  impl->tickets = std::move(config.tickets);
  impl->transport = config.transport;
  impl->secret = config.static_secret;
  impl->random = std::move(config.random);
  impl->alpns = std::move(config.alpns);
  impl->client_dcid = initial.dcid;

  std::array<std::uint8_t, kLocalCidSize> scid_bytes{};
  impl->random(std::as_writable_bytes(std::span(scid_bytes)));
  const ConnectionId scid(scid_bytes);
  const ngtcp2_cid nscid = to_ngtcp2(scid);
  const ngtcp2_cid dcid = to_ngtcp2(initial.scid);
  const ngtcp2_path npath = to_ngtcp2_path(path);
  const ngtcp2_callbacks cb = make_callbacks(true);
  const ngtcp2_settings settings = make_settings(impl->transport, now, impl.get());
  ngtcp2_transport_params params = make_params(impl->transport);
  if (retry) {
    params.original_dcid = to_ngtcp2(retry->original_dcid);
    params.retry_scid = to_ngtcp2(retry->retry_scid);
    params.retry_scid_present = 1;
  } else {
    params.original_dcid = to_ngtcp2(initial.dcid);
  }
  params.original_dcid_present = 1;
  params.stateless_reset_token_present = 1;
  const auto token = stateless_reset_token(impl->secret, scid);
  std::memcpy(params.stateless_reset_token, token.data(), token.size());
  const int rv = ngtcp2_conn_server_new(&impl->conn, &dcid, &nscid, &npath, initial.version, &cb, &settings, &params,
                                        nullptr, impl.get());
  if (rv != 0) return fail(P2PError::network(fmt::format("QUIC server state: {}", ngtcp2_strerror(rv))));
  impl->cids.push_back(scid);
  if (auto ok = setup_tls(*impl, nullptr); !ok) return fail(ok.error());
  if (impl->transport.keep_alive_interval.count() > 0) {
    ngtcp2_conn_set_keep_alive_timeout(impl->conn, to_ngtcp2_duration(impl->transport.keep_alive_interval));
  }
  return std::unique_ptr<Connection>(new Connection(std::move(impl)));
}

// --- driving ---

void Connection::on_datagram(TimePoint now, const Path& path, ByteView datagram) {
  Impl& m = *impl_;
  if (m.state == State::drained || m.state == State::draining) return;
  // ngtcp2 refuses an empty datagram with an error that would otherwise close the connection.
  if (datagram.empty()) return;
  m.counters.bytes_received += datagram.size();
  ++m.counters.datagrams_received;
  if (m.state == State::closing) {
    // RFC 9000 §10.2.1: answer a peer that keeps sending with our CONNECTION_CLOSE, but ever less
    // often (after 1, 2, 4, 8, ... packets) so the closing side cannot be used as an amplifier.
    ++m.closing_rx;
    if ((m.closing_rx & (m.closing_rx - 1)) == 0 && !m.close_packet.empty()) m.resend_close = true;
    return;
  }
  const ngtcp2_path npath = to_ngtcp2_path(path);
  ngtcp2_pkt_info pi{};
  const int rv = ngtcp2_conn_read_pkt(m.conn, &npath, &pi, u8(datagram.data()), datagram.size(), to_tstamp(now));
  m.apply_credits();
  if (rv != 0) {
    m.on_read_error(rv, now);
  } else if (m.session != nullptr && m.state == State::established && m.confirmed) {
    // A client keeps TLS a little past confirmation for the server's session ticket, which comes
    // with HANDSHAKE_DONE or right after it.
    if (m.server || m.ticket_seen || ++m.datagrams_after_confirm > 2) m.release_tls();
  }
}

std::optional<Transmit> Connection::poll_transmit(TimePoint now, std::span<std::byte> buffer,
                                                  std::size_t datagrams_max) {
  Impl& m = *impl_;
  // Handshake packets keep the internet's size even where larger datagrams are allowed: ngtcp2 pads
  // a client's Initial to the whole datagram, and a 16 KiB Initial costs time for nothing.
  const std::size_t packet_max = m.state == State::established
                                     ? m.transport.max_udp_payload_size
                                     : std::min<std::size_t>(m.transport.max_udp_payload_size, kHandshakeDatagramMax);
  MOOSICBOX_P2P_ASSERT(buffer.size() >= packet_max);
  if (m.state == State::drained || m.state == State::draining) return std::nullopt;
  if (m.state == State::closing) {
    if (m.close_write_pending) return m.write_close(now, buffer);
    if (!m.resend_close) return std::nullopt;
    m.resend_close = false;
    std::memcpy(buffer.data(), m.close_packet.data(), m.close_packet.size());
    m.count_sent(m.close_packet.size(), 1);
    return Transmit{m.close_path, m.close_packet.size(), m.close_packet.size()};
  }
  if (!m.stash.empty()) {
    const std::size_t n = m.stash.size();
    std::memcpy(buffer.data(), m.stash.data(), n);
    Bytes().swap(m.stash);  // rare (a probe or a path change): keep no buffer for it
    m.count_sent(n, 1);
    return Transmit{m.stash_path, n, n};
  }

  const std::uint64_t ts = to_tstamp(now);
  const std::size_t quantum = ngtcp2_conn_get_send_quantum(m.conn);
  const std::size_t path_max = ngtcp2_conn_get_path_max_tx_udp_payload_size(m.conn);
  std::size_t batch_max = std::min(datagrams_max, buffer.size() / packet_max);
  batch_max = std::max<std::size_t>(1, std::min(batch_max, quantum / std::max<std::size_t>(path_max, 1)));

  Transmit out;
  std::size_t count = 0;
  for (; count < batch_max; ++count) {
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    auto dest = buffer.subspan(out.size, packet_max);
    const auto n = m.write_one_packet(ps, dest, ts);
    if (n < 0) {
      m.local_failure(static_cast<int>(n));
      if (count == 0) return m.write_close(now, buffer);
      break;
    }
    if (n == 0) break;
    const auto size = static_cast<std::size_t>(n);
    const Path p = from_ngtcp2_path(ps.path);
    if (count == 0) {
      out.path = p;
      out.segment_size = size;
      out.size = size;
      if (size < path_max) {
        ++count;
        break;  // a short first datagram cannot lead a batch of equal-sized ones
      }
      continue;
    }
    if (!(p == out.path) || size > out.segment_size) {
      // It cannot join this batch (another path, or a larger probe): send it next time.
      m.stash.assign(dest.begin(), dest.begin() + n);
      m.stash_path = p;
      break;
    }
    out.size += size;
    if (size < out.segment_size) {
      ++count;
      break;  // a shorter datagram must end a GSO batch
    }
  }
  // Pacing works per burst: ngtcp2 spaces bursts by the time the last one takes at the pacing rate.
  // A burst ends when nothing more can be written now or when it reaches the send quantum. The
  // handshake is not paced: before the first RTT sample the pacing rate comes from the initial RTT
  // guess, and pacing the few packets of a handshake by it delays the client's Finished by a large
  // fraction of that guess (6.5 ms of a 1 ms handshake on a LAN with a 100 ms guess).
  m.burst_bytes += out.size;
  const bool burst_over = (out.size == 0 && m.burst_bytes > 0) || m.burst_bytes >= quantum;
  if (burst_over && m.state == State::established) {
    ngtcp2_conn_update_pkt_tx_time(m.conn, ts);
    m.burst_bytes = 0;
  }
  if (out.size == 0) return std::nullopt;
  m.count_sent(out.size, out.datagram_count());
  return out;
}

TimePoint Connection::next_deadline() const noexcept {
  const Impl& m = *impl_;
  switch (m.state) {
    case State::drained:
      return kTimePointMax;
    case State::closing:
    case State::draining:
      return m.close_deadline;
    default:
      return from_tstamp(ngtcp2_conn_get_expiry(m.conn));
  }
}

void Connection::on_deadline(TimePoint now) {
  Impl& m = *impl_;
  if (m.state == State::drained) return;
  if (m.state == State::closing || m.state == State::draining) {
    if (now >= m.close_deadline) {
      m.state = State::drained;
      m.close_deadline = kTimePointMax;
    }
    return;
  }
  const int rv = ngtcp2_conn_handle_expiry(m.conn, to_tstamp(now));
  if (rv == 0) return;
  if (rv == NGTCP2_ERR_IDLE_CLOSE) {
    CloseInfo info;
    info.origin = CloseOrigin::idle_timeout;
    info.error = P2PError(P2PErrc::timeout, fmt::format("{}: no packet from the peer (idle timeout)",
                                                        format_duration(m.transport.idle_timeout)));
    m.finish(std::move(info));
    return;
  }
  if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
    CloseInfo info;
    info.origin = CloseOrigin::handshake_timeout;
    info.error =
        P2PError(P2PErrc::timeout, fmt::format("{}: the QUIC handshake with {} did not complete",
                                               format_duration(m.transport.handshake_timeout), m.peer_label()));
    m.finish(std::move(info));
    return;
  }
  m.local_failure(rv);
}

std::optional<Event> Connection::poll_event() {
  Impl& m = *impl_;
  if (m.events.empty()) return std::nullopt;
  Event e = m.events.front();
  m.events.pop_front();
  return e;
}

// --- state ---

bool Connection::is_server() const noexcept { return impl_->server; }
bool Connection::is_established() const noexcept { return impl_->state == State::established; }
bool Connection::is_handshake_confirmed() const noexcept { return impl_->confirmed; }
bool Connection::is_closed() const noexcept { return impl_->close_info.has_value(); }
bool Connection::is_drained() const noexcept { return impl_->state == State::drained; }

std::uint64_t Connection::bytes_in_flight() const noexcept {
  if (impl_->conn == nullptr || impl_->state == State::drained) return 0;
  ngtcp2_conn_info st{};
  ngtcp2_conn_get_conn_info(impl_->conn, &st);
  return st.bytes_in_flight;
}
const std::optional<NodeId>& Connection::peer_id() const noexcept {
  // A server's peer id is known once verified; a client's is the dialed id, but is only vouched
  // for after the handshake.
  return impl_->peer_id;
}
const std::string& Connection::alpn() const noexcept { return impl_->alpn; }
EarlyData Connection::early_data() const noexcept { return impl_->early; }
bool Connection::is_resumed() const noexcept { return impl_->resumed; }
bool Connection::is_handshake_completed() const noexcept {
  return impl_->conn != nullptr && ngtcp2_conn_get_handshake_completed(impl_->conn) != 0;
}
std::optional<SessionTicket> Connection::take_session_ticket() {
  std::optional<SessionTicket> out = std::move(impl_->ticket);
  impl_->ticket.reset();
  return out;
}
const CloseInfo* Connection::close_info() const noexcept { return impl_->close_info ? &*impl_->close_info : nullptr; }

std::vector<ConnectionId> Connection::local_cids() const {
  std::vector<ConnectionId> out = impl_->cids;
  if (impl_->server && impl_->client_dcid.size() > 0) out.push_back(impl_->client_dcid);
  return out;
}

Path Connection::path() const { return from_ngtcp2_path(*ngtcp2_conn_get_path(impl_->conn)); }

PathStats Connection::stats() const {
  PathStats out = impl_->counters;
  ngtcp2_conn_info st{};
  ngtcp2_conn_get_conn_info(impl_->conn, &st);
  out.smoothed_rtt = from_ngtcp2_duration(st.smoothed_rtt);
  out.min_rtt = from_ngtcp2_duration(st.min_rtt == UINT64_MAX ? 0 : st.min_rtt);
  out.latest_rtt = from_ngtcp2_duration(st.latest_rtt);
  out.cwnd = st.cwnd;
  out.bytes_in_flight = st.bytes_in_flight;
  out.udp_payload_size = ngtcp2_conn_get_path_max_tx_udp_payload_size(impl_->conn);
  return out;
}

// --- streams ---

namespace {
P2PResult<void> usable(const Connection::Impl& m) {
  if (m.close_info) return fail(m.close_info->error);
  return {};
}
}  // namespace

P2PResult<std::optional<StreamId>> Connection::open_bi() {
  Impl& m = *impl_;
  if (auto ok = usable(m); !ok) return fail(ok.error());
  if (!ngtcp2_conn_get_handshake_completed(m.conn) && m.early != EarlyData::attempted) {
    return fail(P2PError::connection_failed("streams open only after the handshake (or in 0-RTT)"));
  }
  StreamId id = -1;
  const int rv = ngtcp2_conn_open_bidi_stream(m.conn, &id, nullptr);
  if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED) return std::optional<StreamId>{};
  if (rv != 0) return fail(P2PError::network(fmt::format("open stream: {}", ngtcp2_strerror(rv))));
  m.add_stream(id, true);
  return std::optional<StreamId>{id};
}

P2PResult<std::optional<StreamId>> Connection::open_uni() {
  Impl& m = *impl_;
  if (auto ok = usable(m); !ok) return fail(ok.error());
  if (!ngtcp2_conn_get_handshake_completed(m.conn) && m.early != EarlyData::attempted) {
    return fail(P2PError::connection_failed("streams open only after the handshake (or in 0-RTT)"));
  }
  StreamId id = -1;
  const int rv = ngtcp2_conn_open_uni_stream(m.conn, &id, nullptr);
  if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED) return std::optional<StreamId>{};
  if (rv != 0) return fail(P2PError::network(fmt::format("open stream: {}", ngtcp2_strerror(rv))));
  m.add_stream(id, true);
  return std::optional<StreamId>{id};
}

P2PResult<std::size_t> Connection::stream_write(StreamId id, ByteView data, bool fin) {
  Impl& m = *impl_;
  Stream* s = m.find(id);
  if (s == nullptr || !s->can_send) return fail(P2PError::protocol(fmt::format("stream {} cannot be written", id)));
  if (s->peer_stopped || s->stop_code) {
    if (s->stop_code) return fail(P2PError::stream_reset(*s->stop_code));
    return fail(P2PError(P2PErrc::stream_reset, "the peer stopped reading (STOP_SENDING)"));
  }
  if (auto ok = usable(m); !ok) return fail(ok.error());
  if (s->send_reset || s->fin_requested) {
    return fail(P2PError::protocol(fmt::format("stream {} is already finished or reset", id)));
  }
  const std::size_t room =
      m.transport.stream_send_buffer_max > s->send.size() ? m.transport.stream_send_buffer_max - s->send.size() : 0;
  const std::size_t n = std::min(room, data.size());
  if (n > 0) s->send.append(data.first(n));
  if (n < data.size()) {
    s->want_writable = true;
  } else if (fin) {
    s->fin_requested = true;
  }
  m.enqueue_send(*s);
  return n;
}

P2PResult<StreamRead> Connection::stream_read(StreamId id, std::span<std::byte> out) {
  Impl& m = *impl_;
  Stream* s = m.find(id);
  if (s == nullptr || !s->can_recv) return fail(P2PError::protocol(fmt::format("stream {} cannot be read", id)));
  s->readable_signalled = false;
  if (s->reset_code) return fail(P2PError::stream_reset(*s->reset_code));
  const std::size_t n = s->recv.copy_out(0, out);
  s->recv.consume(n);
  if (n > 0 && m.conn != nullptr && m.state != State::drained) {
    ngtcp2_conn_extend_max_stream_offset(m.conn, id, n);
    ngtcp2_conn_extend_max_offset(m.conn, n);
  }
  StreamRead r{n, false};
  if (s->fin_received && s->recv.empty()) {
    r.fin = true;
    s->fin_read = true;
  }
  if (n == 0 && !r.fin && m.close_info) return fail(m.close_info->error);
  return r;
}

std::size_t Connection::stream_readable_size(StreamId id) const noexcept {
  const auto it = impl_->streams.find(id);
  return it == impl_->streams.end() ? 0 : it->second.recv.size();
}

std::size_t Connection::stream_send_buffered(StreamId id) const noexcept {
  const auto it = impl_->streams.find(id);
  return it == impl_->streams.end() ? 0 : it->second.send.size();
}

void Connection::stream_set_priority(StreamId id, std::int32_t priority) {
  Impl& m = *impl_;
  Stream* s = m.find(id);
  if (s == nullptr || s->priority == priority) return;
  s->priority = priority;
  if (s->queued) {
    // Move it to its new place.
    m.send_queue.erase_value(id);
    s->queued = false;
    m.enqueue_send(*s);
  }
}

bool Connection::stream_is_early(StreamId id) const noexcept {
  const auto it = impl_->streams.find(id);
  return it != impl_->streams.end() && it->second.early;
}

std::int32_t Connection::stream_priority(StreamId id) const noexcept {
  const auto it = impl_->streams.find(id);
  return it == impl_->streams.end() ? 0 : it->second.priority;
}

void Connection::stream_reset(StreamId id, std::uint64_t code) {
  Impl& m = *impl_;
  Stream* s = m.find(id);
  if (s == nullptr || !s->can_send || s->send_reset) return;
  if (s->fin_sent && s->send.empty()) return;  // everything was delivered: nothing to abort
  s->send_reset = true;
  s->local_reset_code = code;
  if (m.state == State::handshaking || m.state == State::established) {
    ngtcp2_conn_shutdown_stream_write(m.conn, 0, id, code);
  }
}

void Connection::stream_stop(StreamId id, std::uint64_t code) {
  Impl& m = *impl_;
  Stream* s = m.find(id);
  if (s == nullptr || !s->can_recv || s->recv_stopped) return;
  s->recv_stopped = true;
  s->local_stop_code = code;
  m.credit_data += s->recv.size();
  s->recv.clear();
  if (!s->fin_received && !s->reset_code && (m.state == State::handshaking || m.state == State::established)) {
    ngtcp2_conn_shutdown_stream_read(m.conn, 0, id, code);
  }
  m.apply_credits();
}

void Connection::stream_release(StreamId id, std::uint64_t code) {
  Impl& m = *impl_;
  Stream* s = m.find(id);
  if (s == nullptr || s->released) return;
  if (s->can_send && !s->fin_requested) stream_reset(id, code);
  if (s->can_recv && !s->fin_read) stream_stop(id, code);
  s = m.find(id);
  if (s == nullptr) return;
  s->released = true;
  if (m.state == State::drained || m.state == State::draining || m.state == State::closing) s->closed = true;
  m.maybe_erase(*s);
  m.apply_credits();
}

std::uint64_t Connection::unacked_bytes() const noexcept {
  std::uint64_t total = 0;
  for (const auto& [id, s] : impl_->streams) {
    if (s.send_reset) continue;
    total += s.send.size();
    // A local unidirectional stream closes once its FIN is acknowledged; until then its FIN counts as
    // one unacknowledged byte, so a graceful close waits for it.
    if (s.fin_requested && !s.closed && !is_bidi(s.id)) total += 1;
  }
  return total;
}

// --- datagrams ---

std::size_t Connection::max_datagram_size() const noexcept {
  const Impl& m = *impl_;
  if (m.close_info || !m.transport.datagrams || !ngtcp2_conn_get_handshake_completed(m.conn)) return 0;
  const ngtcp2_transport_params* rp = ngtcp2_conn_get_remote_transport_params(m.conn);
  if (rp == nullptr || rp->max_datagram_frame_size == 0) return 0;
  // A DATAGRAM must fit in one short-header packet: 1 flags byte, the peer's connection id, up to 4
  // bytes of packet number, the 16-byte AEAD tag, and the frame's type and length (up to 1 + 8).
  const std::size_t path_max = ngtcp2_conn_get_path_max_tx_udp_payload_size(m.conn);
  const std::size_t overhead = 1 + ngtcp2_conn_get_dcid(m.conn)->datalen + 4 + 16 + 1 + 8;
  const std::size_t by_path = path_max > overhead ? path_max - overhead : 0;
  const std::size_t by_peer =
      rp->max_datagram_frame_size > 9 ? static_cast<std::size_t>(rp->max_datagram_frame_size - 9) : 0;
  return std::min(by_path, by_peer);
}

P2PResult<void> Connection::send_datagram(ByteView data) {
  Impl& m = *impl_;
  if (auto ok = usable(m); !ok) return fail(ok.error());
  const std::size_t max = max_datagram_size();
  if (max == 0) return fail(P2PError::protocol("the peer does not accept datagrams"));
  if (data.size() > max) return fail(P2PError::message_too_large(data.size(), max));
  if (m.datagrams_out.size() >= m.transport.datagram_queue_max) {
    m.datagrams_out.pop_front();
    ++m.counters.datagrams_dropped;
  }
  m.datagrams_out.emplace_back(data.begin(), data.end());
  return {};
}

std::optional<Bytes> Connection::recv_datagram() {
  Impl& m = *impl_;
  m.datagram_signalled = false;
  if (m.datagrams_in.empty()) return std::nullopt;
  Bytes out = std::move(m.datagrams_in.front());
  m.datagrams_in.pop_front();
  return out;
}

// --- closing ---

void Connection::close(std::uint64_t app_code, std::string_view reason) {
  Impl& m = *impl_;
  if (m.close_info) return;
  CloseInfo info;
  info.origin = CloseOrigin::local;
  info.application = true;
  info.code = app_code;
  info.reason = truncate_reason(reason);
  info.error = P2PError::connection_closed(reason.empty() ? std::string("this node")
                                                          : fmt::format("this node: {}", info.reason));
  m.start_local_close(std::move(info));
}

P2PError error_from_transport_close(std::uint64_t code, std::string_view reason) {
  const std::string suffix = reason.empty() ? std::string() : fmt::format(" ({})", reason);
  if (code == NGTCP2_NO_ERROR) return P2PError::connection_closed(fmt::format("peer{}", suffix));
  if (code == kConnectionRefused) {
    return P2PError::connection_failed(fmt::format("the peer refused the connection{}", suffix));
  }
  if ((code & ~std::uint64_t{0xff}) == NGTCP2_CRYPTO_ERROR) {
    const auto alert = static_cast<std::uint8_t>(code & 0xffU);
    if (is_authentication_alert(alert)) {
      return P2PError::authentication_failed(
          fmt::format("the peer rejected this node's key (TLS alert {}: {})", alert, alert_name(alert)));
    }
    if (alert == GNUTLS_A_NO_APPLICATION_PROTOCOL) {
      return P2PError::connection_failed("the peer serves none of the offered application protocols (ALPN)");
    }
    return P2PError::connection_failed(
        fmt::format("TLS handshake failed on the peer (alert {}: {}){}", alert, alert_name(alert), suffix));
  }
  return P2PError::protocol(fmt::format("the peer closed with QUIC transport error 0x{:x}{}", code, suffix));
}

}  // namespace moosicbox::p2p::quic
