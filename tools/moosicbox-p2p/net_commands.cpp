// SPDX-License-Identifier: MIT OR Apache-2.0
// net_commands.cpp: listen, send, ping and pipe: the real backend used from the command line.
// Besides messages, the CLI speaks a small stream protocol on the same ALPN (docs/cli.md): every
// bidirectional stream the dialer opens starts with a two-byte header (version, kind) naming a ping,
// a pipe or a file transfer. One single-threaded io_context per command; errors are one line on
// stderr (and an error event with --json) with the exit codes of cli_support.hpp.
#include "net_commands.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/array.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

#include "moosicbox/p2p/core/spawn.hpp"
#include "moosicbox/p2p/endpoint/endpoint.hpp"
#include "moosicbox/p2p/env/asio_env.hpp"
#include "net_common.hpp"

namespace moosicbox::p2p::cli {

namespace {

using namespace std::chrono_literals;
using namespace boost::asio::experimental::awaitable_operators;
namespace json = boost::json;

// The stream protocol (docs/cli.md, "Stream protocol").
constexpr std::uint8_t kStreamVersion = 1;
enum class StreamKind : std::uint8_t { ping = 1, pipe = 2, file = 3 };
// Stream application codes for reset / stop.
constexpr std::uint64_t kCodeRefused = 1;    // the listener does not serve this kind (or not now)
constexpr std::uint64_t kCodeBadHeader = 2;  // malformed header
constexpr std::uint64_t kCodeAborted = 3;    // the other direction failed
// File transfer status (first byte of the listener's answer).
enum class FileStatus : std::uint8_t {
  stored = 0,
  refused = 1,
  bad_header = 2,
  exists = 3,
  write_error = 4,
  short_ = 5
};
constexpr std::size_t kFileNameMax = 255;
constexpr std::size_t kPingProbeSize = 16;
constexpr std::size_t kChunkSize = 256 * 1024;

void put_u64(Bytes& out, std::uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<std::byte>((v >> s) & 0xff));
}
void put_u16(Bytes& out, std::uint16_t v) {
  out.push_back(static_cast<std::byte>(v >> 8));
  out.push_back(static_cast<std::byte>(v & 0xff));
}
std::uint64_t get_u64(ByteView in) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | std::to_integer<std::uint64_t>(in[i]);
  return v;
}
std::uint16_t get_u16(ByteView in) {
  return static_cast<std::uint16_t>((std::to_integer<unsigned>(in[0]) << 8) | std::to_integer<unsigned>(in[1]));
}

// read_exact fills `buf` unless the stream ends first; returns the bytes read.
asio::awaitable<P2PResult<std::size_t>> read_exact(BiStream& s, std::span<std::byte> buf) {
  std::size_t got = 0;
  while (got < buf.size()) {
    auto n = co_await s.read(buf.subspan(got));
    if (!n) co_return fail(n.error());
    if (*n == 0) break;
    got += *n;
  }
  co_return got;
}

// printable renders a message for a terminal: text as is, anything else as a size and a hex prefix.
std::string printable(ByteView bytes) {
  bool text = true;
  for (const auto b : bytes) {
    const auto c = static_cast<unsigned char>(b);
    if (c != '\n' && c != '\t' && (c < 0x20 || c == 0x7f)) {
      text = false;
      break;
    }
  }
  if (text) return to_string(bytes);
  std::string hex;
  for (std::size_t i = 0; i < bytes.size() && i < 16; ++i)
    hex += fmt::format("{:02x}", static_cast<unsigned>(bytes[i]));
  return fmt::format("<{} bytes: {}{}>", bytes.size(), hex, bytes.size() > 16 ? "..." : "");
}

// message_fields describes a message for JSON: "text" when it is UTF-8, else "base64".
void add_message_fields(json::object& fields, ByteView bytes) {
  fields["size"] = bytes.size();
  if (is_utf8(bytes)) {
    fields["text"] = to_string(bytes);
  } else {
    fields["base64"] = base64(bytes);
  }
}

json::array address_array(const std::vector<SocketAddr>& addrs) {
  json::array a;
  for (const auto& addr : addrs) a.emplace_back(addr.to_string());
  return a;
}

// FdStream is a file descriptor (stdin, stdout, a file) read and written through the io_context.
// Regular files and /dev/null cannot be polled; asio then does the (non-blocking) I/O directly.
// The descriptor's original flags come back when it is released, so a terminal shared with the
// shell is not left non-blocking.
class FdStream {
 public:
  FdStream(const asio::any_io_executor& ex, int fd, bool owned)
      : desc_(ex), fd_(fd), owned_(owned), flags_(::fcntl(fd, F_GETFL)) {
    boost::system::error_code ec;
    desc_.assign(fd, ec);
    if (ec) error_ = ec.message();
  }
  FdStream(const FdStream&) = delete;
  FdStream& operator=(const FdStream&) = delete;
  ~FdStream() { close(); }

  [[nodiscard]] const std::optional<std::string>& open_error() const noexcept { return error_; }

  asio::awaitable<P2PResult<std::size_t>> read_some(std::span<std::byte> buf) {
    auto [ec, n] =
        co_await desc_.async_read_some(asio::buffer(buf.data(), buf.size()), asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::eof) co_return std::size_t{0};
    if (ec == asio::error::operation_aborted) co_return fail(P2PError::cancelled("read"));
    if (ec) co_return fail(P2PError::network(fmt::format("read: {}", ec.message())));
    co_return n;
  }

  asio::awaitable<P2PResult<void>> write_all(ByteView data) {
    auto [ec, n] =
        co_await asio::async_write(desc_, asio::buffer(data.data(), data.size()), asio::as_tuple(asio::use_awaitable));
    (void)n;
    if (ec == asio::error::operation_aborted) co_return fail(P2PError::cancelled("write"));
    if (ec) co_return fail(P2PError::network(fmt::format("write: {}", ec.message())));
    co_return P2PResult<void>{};
  }

  void cancel() {
    boost::system::error_code ec;
    desc_.cancel(ec);
  }

  // close restores the flags and closes the descriptor (for stdout: the reader sees the end).
  void close() {
    if (!desc_.is_open()) return;
    boost::system::error_code ec;
    desc_.cancel(ec);
    const int fd = desc_.release();
    if (flags_ >= 0) (void)::fcntl(fd, F_SETFL, flags_);
    if (owned_ || fd == STDOUT_FILENO) ::close(fd);
  }

 private:
  asio::posix::stream_descriptor desc_;
  int fd_;
  bool owned_;
  int flags_;
  std::optional<std::string> error_;
};

// PipeAbort carries a failure of one direction of a pipe out of the `&&` that joins them, so the
// other direction is cancelled.
struct PipeAbort {
  P2PError error;
};

// pipe_copy copies stdin to the stream's send half and the receive half to stdout; each side is
// finished (or closed) at its end. Returns when both directions finished.
asio::awaitable<P2PResult<std::uint64_t>> pipe_copy(BiStream& s, const asio::any_io_executor& ex,
                                                    std::uint64_t* received) {
  FdStream in(ex, STDIN_FILENO, false);
  FdStream out(ex, STDOUT_FILENO, false);
  if (in.open_error()) co_return fail(P2PError::network(fmt::format("stdin: {}", *in.open_error())));
  if (out.open_error()) co_return fail(P2PError::network(fmt::format("stdout: {}", *out.open_error())));
  std::uint64_t sent = 0;
  auto up = [&]() -> asio::awaitable<void> {
    Bytes buf(kChunkSize);
    while (true) {
      auto n = co_await in.read_some(buf);
      if (!n) throw PipeAbort{P2PError::network(fmt::format("stdin: {}", n.error().message()))};
      if (*n == 0) break;
      auto wrote = co_await s.write(ByteView(buf).first(*n));
      if (!wrote) throw PipeAbort{wrote.error()};
      sent += *n;
    }
    auto done = co_await s.finish();
    if (!done) throw PipeAbort{done.error()};
  };
  auto down = [&]() -> asio::awaitable<void> {
    Bytes buf(kChunkSize);
    while (true) {
      auto n = co_await s.read(buf);
      if (!n) throw PipeAbort{n.error()};
      if (*n == 0) break;
      auto wrote = co_await out.write_all(ByteView(buf).first(*n));
      if (!wrote) throw PipeAbort{P2PError::network(fmt::format("stdout: {}", wrote.error().message()))};
      *received += *n;
    }
    out.close();
  };
  try {
    co_await (up() && down());
  } catch (const PipeAbort& abort) {
    s.reset(kCodeAborted);
    s.stop(kCodeAborted);
    co_return fail(abort.error);
  }
  co_return sent;
}

// Progress draws a progress bar on stderr when it is a terminal (nothing otherwise).
class Progress {
 public:
  Progress(env::AsioEnv& env, std::uint64_t total, bool enabled)
      : env_(env), total_(total), enabled_(enabled && ::isatty(STDERR_FILENO) == 1), start_(env.now()) {}

  void update(std::uint64_t done, bool final = false) {
    if (!enabled_) return;
    const auto now = env_.now();
    if (!final && now - last_ < 100ms) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double frac = total_ == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total_);
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(frac * kWidth);
    const std::string bar = std::string(static_cast<std::size_t>(filled), '#') +
                            std::string(static_cast<std::size_t>(kWidth - filled), '.');
    fmt::print(stderr, "\r{:3.0f}% [{}] {:.1f}/{:.1f} MiB {:.1f} MiB/s", frac * 100, bar,
               static_cast<double>(done) / 1048576.0, static_cast<double>(total_) / 1048576.0,
               secs > 0 ? static_cast<double>(done) / 1048576.0 / secs : 0.0);
    if (final) fmt::print(stderr, "\n");
    std::fflush(stderr);
  }

 private:
  env::AsioEnv& env_;
  std::uint64_t total_;
  bool enabled_;
  TimePoint start_;
  TimePoint last_{};
};

// ---------------------------------------------------------------------------------------------
// listen

struct ListenState {
  const ListenOptions& opts;
  Output out;
  asio::any_io_executor ex;
  Finish finish;
  std::uint64_t received = 0;  // messages and files, for --count
  bool pipe_taken = false;
  // The dialer closes after the listener's answer (a file's status, a pipe's end): the command ends
  // when that connection is gone, with this code.
  std::optional<int> finish_on_disconnect;
};

// finish_when_gone ends the command with `code` once `conn` is gone (at once if it already is).
void finish_when_gone(ListenState& st, const Connection& conn, int code) {
  if (conn.is_connected()) {
    st.finish_on_disconnect = code;
  } else {
    st.finish(code);
  }
}

// count_one counts a message or file for --count; the last one closes its connection gracefully
// (so the answer or echo reaches the peer) before the command ends.
asio::awaitable<void> count_one(ListenState& st, Connection& conn) {
  ++st.received;
  if (st.opts.count && st.received >= *st.opts.count) {
    (void)co_await conn.close();
    st.finish(kExitOk);
  }
}

asio::awaitable<void> answer_file(BiStream& s, FileStatus status, std::string_view reason) {
  Bytes reply;
  reply.push_back(static_cast<std::byte>(status));
  put_u16(reply, static_cast<std::uint16_t>(std::min<std::size_t>(reason.size(), 1024)));
  const auto r = as_bytes(reason.substr(0, 1024));
  reply.insert(reply.end(), r.begin(), r.end());
  if (auto wrote = co_await s.write(reply); !wrote) co_return;
  (void)co_await s.finish();
}

bool valid_file_name(std::string_view name) {
  if (name.empty() || name.size() > kFileNameMax || name == "." || name == "..") return false;
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos) return false;
  return is_utf8(as_bytes(name));
}

// receive_file stores a file stream in --out DIR (or copies it to stdout in pipe mode).
asio::awaitable<void> receive_file(Connection conn, BiStream s, ListenState& st, NodeId peer_id) {
  const auto peer = peer_id.fmt_short();
  const auto peer_full = peer_id.to_string();
  std::array<std::byte, 10> head{};
  auto got = co_await read_exact(s, head);
  if (!got || *got != head.size()) {
    s.reset(kCodeBadHeader);
    s.stop(kCodeBadHeader);
    co_return;
  }
  const auto size = get_u64(head);
  const auto name_len = get_u16(ByteView(head).subspan(8));
  Bytes name_bytes(name_len);
  auto got_name = co_await read_exact(s, name_bytes);
  const std::string name = to_string(name_bytes);
  auto refuse = [&](FileStatus status, std::string reason) -> asio::awaitable<void> {
    st.out.text(fmt::format("{} file {} refused: {}", peer, name, reason));
    if (st.out.json()) {
      st.out.event("file_refused", {{"peer", peer_full}, {"name", name}, {"size", size}, {"reason", reason}});
    }
    co_await answer_file(s, status, reason);
    s.stop(kCodeRefused);
  };
  if (!got_name || *got_name != name_len || !valid_file_name(name)) {
    co_await refuse(FileStatus::bad_header, "bad file name (a plain name of 1 to 255 bytes)");
    co_return;
  }
  const bool to_stdout = st.opts.pipe && !st.pipe_taken;
  if (!to_stdout && !st.opts.out) {
    co_await refuse(FileStatus::refused, "the listener takes no files (start it with --out DIR or --pipe)");
    co_return;
  }
  std::filesystem::path final_path;
  std::filesystem::path tmp_path;
  int fd = STDOUT_FILENO;
  if (to_stdout) {
    st.pipe_taken = true;
  } else {
    final_path = *st.opts.out / name;
    std::error_code ec;
    if (std::filesystem::exists(final_path, ec)) {
      co_await refuse(FileStatus::exists, fmt::format("{} exists on the listener", name));
      co_return;
    }
    std::array<std::byte, 6> rnd{};
    env::OsRandom rng;
    rng.fill_random(rnd);
    std::string suffix;
    for (const auto b : rnd) suffix += fmt::format("{:02x}", std::to_integer<unsigned>(b));
    tmp_path = *st.opts.out / fmt::format(".{}.part-{}", name, suffix);
    fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
      co_await refuse(FileStatus::write_error, fmt::format("cannot store it: {}", std::strerror(errno)));
      co_return;
    }
  }
  FdStream sink(st.ex, fd, !to_stdout);
  std::optional<std::string> failure;
  FileStatus status = FileStatus::stored;
  std::uint64_t done = 0;
  Bytes buf(kChunkSize);
  while (true) {
    auto n = co_await s.read(buf);
    if (!n) {
      failure = n.error().message();
      status = FileStatus::short_;
      break;
    }
    if (*n == 0) break;
    if (done + *n > size) {
      failure = fmt::format("more than the announced {} bytes", size);
      status = FileStatus::bad_header;
      break;
    }
    auto wrote = co_await sink.write_all(ByteView(buf).first(*n));
    if (!wrote) {
      failure = wrote.error().message();
      status = FileStatus::write_error;
      break;
    }
    done += *n;
  }
  if (!failure && done != size) {
    failure = fmt::format("the file came short: {} of {} bytes", done, size);
    status = FileStatus::short_;
  }
  sink.close();
  if (!failure && !to_stdout) {
    // link() fails if the name appeared meanwhile: a file is never replaced.
    if (::link(tmp_path.c_str(), final_path.c_str()) != 0) {
      failure = errno == EEXIST ? fmt::format("{} exists on the listener", name)
                                : fmt::format("cannot store it: {}", std::strerror(errno));
      status = errno == EEXIST ? FileStatus::exists : FileStatus::write_error;
    }
  }
  if (!tmp_path.empty()) ::unlink(tmp_path.c_str());
  if (failure) {
    co_await refuse(status, *failure);
  } else {
    const auto where = to_stdout ? std::string("-") : std::filesystem::absolute(final_path).string();
    st.out.text(fmt::format("{} file {} ({} bytes) stored as {}", peer, name, size, where));
    if (st.out.json()) st.out.event("file", {{"peer", peer_full}, {"name", name}, {"size", size}, {"path", where}});
    co_await answer_file(s, FileStatus::stored, "");
  }
  if (to_stdout) {
    finish_when_gone(st, conn, failure ? kExitFailure : kExitOk);
  } else if (!failure) {
    ++st.received;
    if (st.opts.count && st.received >= *st.opts.count) finish_when_gone(st, conn, kExitOk);
  }
}

// serve_ping echoes the probes of a ping stream until the dialer finishes it.
asio::awaitable<void> serve_ping(BiStream s, ListenState& st, NodeId peer_id) {
  const auto peer = peer_id.fmt_short();
  const auto peer_full = peer_id.to_string();
  std::array<std::byte, 4096> buf{};
  std::uint64_t bytes = 0;
  while (true) {
    auto n = co_await s.read(buf);
    if (!n || *n == 0) break;
    auto wrote = co_await s.write(ByteView(buf).first(*n));
    if (!wrote) co_return;
    bytes += *n;
  }
  (void)co_await s.finish();
  const auto probes = bytes / kPingProbeSize;
  st.out.text(fmt::format("{} ping: {} probe(s) answered", peer, probes));
  if (st.out.json()) st.out.event("ping", {{"peer", peer_full}, {"probes", probes}});
}

asio::awaitable<void> serve_pipe(Connection conn, BiStream s, ListenState& st, NodeId peer_id) {
  const auto peer = peer_id.fmt_short();
  st.pipe_taken = true;
  st.out.text(fmt::format("{} pipe open", peer));
  std::uint64_t received = 0;
  auto sent = co_await pipe_copy(s, st.ex, &received);
  if (!sent) {
    (void)co_await conn.close();
    st.finish(st.out.error(fmt::format("pipe: {}", sent.error().message()), kExitFailure));
    co_return;
  }
  st.out.text(fmt::format("{} pipe closed: {} bytes sent, {} received", peer, *sent, received));
  finish_when_gone(st, conn, kExitOk);
}

asio::awaitable<void> serve_stream(Connection conn, BiStream s, ListenState& st, NodeId peer_id) {
  const auto peer = peer_id.fmt_short();
  std::array<std::byte, 2> head{};
  auto got = co_await read_exact(s, head);
  if (!got || *got != head.size() || std::to_integer<std::uint8_t>(head[0]) != kStreamVersion) {
    s.reset(kCodeBadHeader);
    s.stop(kCodeBadHeader);
    co_return;
  }
  const auto kind = static_cast<StreamKind>(std::to_integer<std::uint8_t>(head[1]));
  switch (kind) {
    case StreamKind::ping:
      co_await serve_ping(std::move(s), st, peer_id);
      co_return;
    case StreamKind::pipe:
      if (st.opts.pipe && !st.pipe_taken) {
        co_await serve_pipe(conn, std::move(s), st, peer_id);
      } else {
        st.out.text(fmt::format("{} pipe refused ({})", peer,
                                st.opts.pipe ? "one pipe at a time" : "start listen with --pipe"));
        s.reset(kCodeRefused);
        s.stop(kCodeRefused);
      }
      co_return;
    case StreamKind::file:
      co_await receive_file(conn, std::move(s), st, peer_id);
      co_return;
  }
  s.reset(kCodeRefused);
  s.stop(kCodeRefused);
}

asio::awaitable<void> accept_streams(Connection conn, ListenState& st, NodeId peer) {
  while (true) {
    auto s = co_await conn.accept_bi();
    if (!s) co_return;
    spawn_logged(st.ex, serve_stream(conn, std::move(*s), st, peer), "cli listen stream");
  }
}

asio::awaitable<void> serve_connection(Connection conn, ListenState& st) {
  const auto peer_id = conn.remote_node_id();
  const auto peer = peer_id.to_string();
  const auto shown = peer_id.fmt_short();
  const auto path = conn.path();
  st.out.text(fmt::format("{} connected ({})", shown, path_text(path)));
  if (st.out.json()) {
    json::object fields{{"peer", peer}};
    add_path_fields(fields, path);
    st.out.event("connection", std::move(fields));
  }
  spawn_logged(st.ex, accept_streams(conn, st, peer_id), "cli listen streams");
  while (true) {
    auto msg = co_await conn.recv();
    if (!msg) {
      st.out.text(fmt::format("{} disconnected: {}", shown, msg.error().message()));
      if (st.out.json()) st.out.event("disconnected", {{"peer", peer}, {"reason", msg.error().message()}});
      if (st.finish_on_disconnect) st.finish(*st.finish_on_disconnect);
      co_return;
    }
    st.out.text(fmt::format("{}: {}", shown, printable(*msg)));
    if (st.out.json()) {
      json::object fields{{"peer", peer}};
      add_message_fields(fields, *msg);
      st.out.event("message", std::move(fields));
    }
    if (st.opts.echo) {
      if (auto sent = co_await conn.send(*msg); !sent) {
        st.out.text(fmt::format("{}: echo failed: {}", shown, sent.error().message()));
      }
    }
    co_await count_one(st, conn);
  }
}

// connect_bounded dials `peer`, bounded by `timeout`; the time it took goes to `took`.
asio::awaitable<P2PResult<Connection>> connect_bounded(env::AsioEnv& env, Endpoint& ep, const NodeAddr& peer,
                                                       std::string_view alpn, std::chrono::seconds timeout,
                                                       Duration* took) {
  const auto start = env.now();
  auto timer = env.make_timer();
  auto r = co_await (ep.connect(peer, alpn) || timer.wait_until(start + timeout));
  *took = env.now() - start;
  if (r.index() == 1) co_return fail(P2PError::timeout(timeout));
  co_return std::move(std::get<0>(r));
}

// open_kind opens a bidirectional stream and writes the stream header of `kind`.
asio::awaitable<P2PResult<BiStream>> open_kind(Connection& conn, StreamKind kind) {
  auto s = co_await conn.open_bi();
  if (!s) co_return fail(s.error());
  const std::array<std::byte, 2> head{std::byte{kStreamVersion}, static_cast<std::byte>(kind)};
  auto wrote = co_await s->write(head);
  if (!wrote) co_return fail(wrote.error());
  co_return std::move(*s);
}

struct Dialer {
  NodeAddr peer;
  EndpointConfig cfg;
};

// prepare_dial reads the ticket and the key of a dialing command (bad ticket: exit 3, key: exit 4).
std::expected<Dialer, int> prepare_dial(const NodeOptions& node, const std::string& ticket, const Output& out) {
  auto peer = NodeAddr::parse(ticket);
  if (!peer) return std::unexpected(out.error(peer.error().message(), kExitBadTicket));
  if (auto ok = check_bind(node); !ok) return std::unexpected(out.error(ok.error().message(), kExitUsage));
  auto key = load_key(KeyChoice{node.key, true, false});
  if (!key) return std::unexpected(out.error(key.error().message(), kExitKey));
  auto cfg = endpoint_config(node, std::move(key->key));
  if (!cfg) return std::unexpected(out.error(cfg.error()));
  return Dialer{std::move(*peer), std::move(*cfg)};
}

// send_file streams a file on a file stream and waits for the listener's answer.
asio::awaitable<int> send_file(env::AsioEnv& env, Connection& conn, const SendOptions& o, const Output& out,
                               json::object& result) {
  const auto& path = *o.file;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) co_return out.error(fmt::format("cannot read {}: {}", path.string(), std::strerror(errno)), kExitFailure);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    co_return out.error(fmt::format("cannot read {}: not a regular file", path.string()), kExitFailure);
  }
  FdStream file(env.executor(), fd, true);
  const auto size = static_cast<std::uint64_t>(st.st_size);
  auto name = path.filename().string();
  if (name.size() > kFileNameMax) name.resize(kFileNameMax);
  auto s = co_await open_kind(conn, StreamKind::file);
  if (!s) co_return out.error(s.error());
  Bytes head;
  put_u64(head, size);
  put_u16(head, static_cast<std::uint16_t>(name.size()));
  const auto nb = as_bytes(name);
  head.insert(head.end(), nb.begin(), nb.end());
  const auto start = env.now();
  std::optional<P2PError> write_error;
  if (auto wrote = co_await s->write(head); !wrote) write_error = wrote.error();
  Progress progress(env, size, o.progress);
  std::uint64_t done = 0;
  Bytes buf(kChunkSize);
  while (!write_error && done < size) {
    auto n = co_await file.read_some(buf);
    if (!n) co_return out.error(fmt::format("reading {}: {}", path.string(), n.error().message()), kExitFailure);
    if (*n == 0) co_return out.error(fmt::format("{} shrank while being sent", path.string()), kExitFailure);
    const auto len = static_cast<std::size_t>(std::min<std::uint64_t>(*n, size - done));
    auto wrote = co_await s->write(ByteView(buf).first(len));
    if (!wrote) {
      write_error = wrote.error();
      break;
    }
    done += len;
    progress.update(done);
  }
  if (!write_error) {
    if (auto fin = co_await s->finish(); !fin) write_error = fin.error();
  }
  // The answer: status, reason. It also explains a refusal that made the writes fail.
  auto reply = co_await s->read_to_end(4096);
  if (!reply || reply->size() < 3) {
    if (write_error) co_return out.error(write_error->message(), kExitFailure);
    co_return out.error(
        fmt::format("no answer from the listener: {}", reply ? std::string("empty answer") : reply.error().message()),
        kExitFailure);
  }
  const auto status = static_cast<FileStatus>(std::to_integer<std::uint8_t>((*reply)[0]));
  const auto len = std::min<std::size_t>(get_u16(ByteView(*reply).subspan(1)), reply->size() - 3);
  const auto reason = to_string(ByteView(*reply).subspan(3, len));
  if (status != FileStatus::stored) {
    co_return out.error(fmt::format("the listener refused {}: {}", name, reason), kExitFailure);
  }
  if (write_error) co_return out.error(write_error->message(), kExitFailure);
  progress.update(done, true);
  const auto took = env.now() - start;
  result["file"] = json::object{{"name", name}, {"size", size}, {"transfer_ms", ms(took)}};
  result["bytes"] = size;
  co_return kExitOk;
}

}  // namespace

int listen(const ListenOptions& options) {
  const Output out(options.json, options.pipe);
  if (auto ok = check_bind(options.node); !ok) return out.error(ok.error().message(), kExitUsage);
  if (options.out) {
    std::error_code ec;
    if (!std::filesystem::is_directory(*options.out, ec)) {
      return out.error(fmt::format("--out {}: not a directory", options.out->string()), kExitUsage);
    }
  }
  auto key = load_key(KeyChoice{options.node.key, options.node.ephemeral, true});
  if (!key) return out.error(key.error().message(), kExitKey);
  const auto key_path = key->path;
  const auto key_created = key->created;
  const auto note = key_note(*key);
  auto cfg = endpoint_config(options.node, std::move(key->key));
  if (!cfg) return out.error(cfg.error());
  // A closed stdout (pipe mode) must fail a write, not kill the process.
  if (options.pipe) std::signal(SIGPIPE, SIG_IGN);
  return run([&](asio::io_context& io, Finish finish) -> asio::awaitable<int> {
    auto ep = Endpoint::bind(io.get_executor(), std::move(*cfg));
    if (!ep) co_return out.error(ep.error());
    auto listener = ep->listen(options.node.alpn);
    if (!listener) co_return out.error(listener.error());
    fmt::print(stderr, "{}\n", note);
    std::optional<std::string> home;
    if (!options.node.relays.empty()) {
      // The ticket names the home relay: wait (bounded) until its session is up, so a peer that
      // dials the ticket at once finds this node there. Without it the node still serves direct
      // paths and keeps reconnecting.
      auto h = co_await ep->wait_home_relay(std::chrono::seconds(10));
      if (h) {
        home = *h;
      } else {
        fmt::print(stderr, "warning: {}; still trying in the background\n", h.error().message());
        home = ep->home_relay();
      }
    }
    const auto ticket = ep->addr().to_ticket();
    out.text(fmt::format("node id: {}", ep->node_id()));
    for (const auto& a : ep->local_addrs()) out.text(fmt::format("bound:   {}", a));
    if (home) out.text(fmt::format("relay:   {}", *home));
    out.text(fmt::format("ticket:  {}", ticket));
    if (out.json()) {
      json::object fields{{"node_id", ep->node_id().to_string()},
                          {"ticket", ticket},
                          {"addresses", address_array(ep->local_addrs())},
                          {"alpn", options.node.alpn}};
      fields["relay"] = home ? json::value(*home) : json::value(nullptr);
      add_key_fields(fields, key_path, key_created);
      out.event("listening", std::move(fields));
    }
    ListenState st{options, out, io.get_executor(), finish};
    while (true) {
      auto conn = co_await listener->accept();
      if (!conn) co_return out.error(conn.error());
      spawn_logged(io.get_executor(), serve_connection(std::move(*conn), st), "cli listen connection");
    }
  });
}

int send(const SendOptions& options) {
  const Output out(options.json);
  Bytes message;
  if (options.text) {
    message = to_bytes(*options.text);
  } else if (!options.file) {
    return out.error("nothing to send: give a text or --file", kExitUsage);
  }
  auto dial = prepare_dial(options.node, options.ticket, out);
  if (!dial) return dial.error();
  if (!options.file && message.size() > dial->cfg.limits.max_message_size) {
    return out.error(
        fmt::format("{} (send a file with --file)",
                    P2PError::message_too_large(message.size(), dial->cfg.limits.max_message_size).message()),
        kExitUsage);
  }
  return run([&](asio::io_context& io, const Finish&) -> asio::awaitable<int> {
    env::AsioEnv env(io.get_executor());
    auto ep = Endpoint::bind(io.get_executor(), std::move(dial->cfg));
    if (!ep) co_return out.error(ep.error());
    const std::chrono::seconds timeout(options.timeout_secs);
    auto work = [&]() -> asio::awaitable<int> {
      Duration connect_took{};
      auto conn = co_await connect_bounded(env, *ep, dial->peer, options.node.alpn, timeout, &connect_took);
      if (!conn) co_return out.error(conn.error());
      json::object result{{"peer", conn->remote_node_id().to_string()}, {"connect_ms", ms(connect_took)}};
      add_path_fields(result, conn->path());
      std::string what;
      if (options.file) {
        const int rc = co_await send_file(env, *conn, options, out, result);
        if (rc != kExitOk) co_return rc;
        what = fmt::format("file {} ({} bytes)", options.file->filename().string(), result["bytes"].as_uint64());
      } else {
        if (auto ok = co_await conn->send(message); !ok) co_return out.error(ok.error());
        result["bytes"] = message.size();
        what = fmt::format("{} bytes", message.size());
        if (options.wait_reply) {
          auto reply = co_await conn->recv();
          if (!reply) co_return out.error(reply.error());
          out.text(fmt::format("reply: {}", printable(*reply)));
          json::object r;
          add_message_fields(r, *reply);
          result["reply"] = std::move(r);
        }
      }
      const auto stats = conn->stats();
      out.text(fmt::format("sent {} to {} via {} (connect {}, rtt {})", what, conn->remote_node_id().fmt_short(),
                           path_text(conn->path()), format_duration(connect_took),
                           stats.rtt ? format_duration(*stats.rtt) : std::string("n/a")));
      if (stats.rtt) {
        result["rtt_ms"] = ms(*stats.rtt);
      } else {
        result["rtt_ms"] = nullptr;
      }
      (void)co_await conn->close();
      if (out.json()) out.event("sent", std::move(result));
      co_return kExitOk;
    };
    int rc = kExitOk;
    if (options.file) {
      // A file takes as long as it takes; the connect and the idle timeout bound it.
      rc = co_await work();
    } else {
      auto timer = env.make_timer();
      auto r = co_await (work() || timer.wait_until(env.now() + timeout));
      rc = r.index() == 1 ? out.error(P2PError::timeout(timeout)) : std::get<0>(r);
    }
    co_await ep->close();
    co_return rc;
  });
}

int ping(const PingOptions& options) {
  const Output out(options.json);
  auto dial = prepare_dial(options.node, options.ticket, out);
  if (!dial) return dial.error();
  return run([&](asio::io_context& io, const Finish&) -> asio::awaitable<int> {
    env::AsioEnv env(io.get_executor());
    auto ep = Endpoint::bind(io.get_executor(), std::move(dial->cfg));
    if (!ep) co_return out.error(ep.error());
    const std::chrono::seconds timeout(options.timeout_secs);
    auto work = [&]() -> asio::awaitable<int> {
      Duration connect_took{};
      auto conn = co_await connect_bounded(env, *ep, dial->peer, options.node.alpn, timeout, &connect_took);
      if (!conn) co_return out.error(conn.error());
      const auto peer = conn->remote_node_id();
      out.text(fmt::format("PING {} ({}): connected in {}", peer.fmt_short(), path_text(conn->path()),
                           format_duration(connect_took)));
      if (out.json()) {
        json::object fields{{"peer", peer.to_string()}, {"connect_ms", ms(connect_took)}};
        add_path_fields(fields, conn->path());
        out.event("connected", std::move(fields));
      }
      auto s = co_await open_kind(*conn, StreamKind::ping);
      if (!s) co_return out.error(s.error());
      std::uint32_t received = 0;
      Duration min = Duration::max();
      Duration max = Duration::zero();
      Duration sum = Duration::zero();
      Bytes pending;  // answer bytes not yet parsed (an answer may straddle reads)
      std::array<std::byte, 1024> buf{};
      auto timer = env.make_timer();
      std::optional<P2PError> broken;
      for (std::uint32_t seq = 1; seq <= options.count && !broken; ++seq) {
        const auto sent_at = env.now();
        Bytes probe;
        put_u64(probe, seq);
        put_u64(probe, static_cast<std::uint64_t>(sent_at.time_since_epoch().count()));
        if (auto wrote = co_await s->write(probe); !wrote) {
          broken = wrote.error();
          break;
        }
        const auto deadline = sent_at + timeout;
        bool answered = false;
        while (!answered) {
          // Parse every complete answer; older ones (answered after their timeout) are skipped.
          while (pending.size() >= kPingProbeSize) {
            const auto got_seq = get_u64(pending);
            pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(kPingProbeSize));
            if (got_seq == seq) answered = true;
          }
          if (answered) break;
          auto r = co_await (s->read(buf) || timer.wait_until(deadline));
          if (r.index() == 1) break;
          auto& n = std::get<0>(r);
          if (!n || *n == 0) {
            broken = n ? P2PError::connection_closed("the listener ended the ping stream") : n.error();
            break;
          }
          pending.insert(pending.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n));
        }
        if (answered) {
          const auto rtt = env.now() - sent_at;
          ++received;
          min = std::min(min, rtt);
          max = std::max(max, rtt);
          sum += rtt;
          // Like `tailscale ping`: every answer says which path carried it.
          const auto path = conn->path();
          out.text(fmt::format("seq={} rtt={:.3f} ms via {}", seq, ms(rtt), path_text(path)));
          if (out.json()) {
            json::object fields{{"seq", seq}, {"rtt_ms", ms(rtt)}};
            add_path_fields(fields, path);
            out.event("pong", std::move(fields));
          }
        } else if (!broken) {
          out.text(fmt::format("seq={} timeout after {}", seq, format_duration(timeout)));
          if (out.json()) out.event("timeout", {{"seq", seq}});
        }
        if (seq < options.count && !broken && options.interval_ms > 0) {
          (void)co_await timer.wait_until(env.now() + std::chrono::milliseconds(options.interval_ms));
        }
      }
      if (!broken) (void)co_await s->finish();
      const std::uint32_t sent = options.count;
      const double loss = 100.0 * static_cast<double>(sent - received) / static_cast<double>(sent);
      const double avg = received > 0 ? ms(sum) / received : 0.0;
      out.text(fmt::format("--- {} ping statistics ---", peer.fmt_short()));
      out.text(
          fmt::format("{} sent, {} received, {:.0f}% loss, connect {:.3f} ms", sent, received, loss, ms(connect_took)));
      if (received > 0) {
        out.text(fmt::format("rtt min/avg/max = {:.3f}/{:.3f}/{:.3f} ms", ms(min), avg, ms(max)));
      }
      if (out.json()) {
        json::object summary{{"peer", peer.to_string()},
                             {"sent", sent},
                             {"received", received},
                             {"loss_percent", loss},
                             {"connect_ms", ms(connect_took)}};
        if (received > 0) {
          summary["min_ms"] = ms(min);
          summary["avg_ms"] = avg;
          summary["max_ms"] = ms(max);
        } else {
          summary["min_ms"] = nullptr;
          summary["avg_ms"] = nullptr;
          summary["max_ms"] = nullptr;
        }
        out.event("summary", std::move(summary));
      }
      (void)co_await conn->close();
      if (broken) co_return out.error(broken->message(), kExitFailure);
      co_return received == sent ? kExitOk : kExitFailure;
    };
    const int rc = co_await work();
    co_await ep->close();
    co_return rc;
  });
}

int pipe(const PipeOptions& options) {
  // stdout carries the data: every message for people goes to stderr.
  const Output out(false, true);
  auto dial = prepare_dial(options.node, options.ticket, out);
  if (!dial) return dial.error();
  std::signal(SIGPIPE, SIG_IGN);
  return run([&](asio::io_context& io, const Finish&) -> asio::awaitable<int> {
    env::AsioEnv env(io.get_executor());
    auto ep = Endpoint::bind(io.get_executor(), std::move(dial->cfg));
    if (!ep) co_return out.error(ep.error());
    auto work = [&]() -> asio::awaitable<int> {
      Duration connect_took{};
      auto conn = co_await connect_bounded(env, *ep, dial->peer, options.node.alpn,
                                           std::chrono::seconds(options.timeout_secs), &connect_took);
      if (!conn) co_return out.error(conn.error());
      auto s = co_await open_kind(*conn, StreamKind::pipe);
      if (!s) co_return out.error(s.error());
      std::uint64_t received = 0;
      auto sent = co_await pipe_copy(*s, io.get_executor(), &received);
      if (!sent) {
        if (sent.error().code() == P2PErrc::stream_reset) {
          co_return out.error(
              fmt::format("the listener refused the pipe (is it running listen --pipe?): {}", sent.error().message()),
              kExitFailure);
        }
        co_return out.error(sent.error());
      }
      (void)co_await conn->close();
      co_return kExitOk;
    };
    const int rc = co_await work();
    co_await ep->close();
    co_return rc;
  });
}

}  // namespace moosicbox::p2p::cli
