// SPDX-License-Identifier: MIT OR Apache-2.0
// raw_ws.cpp: the blocking WebSocket test client (see raw_ws.hpp).
// Test support. One RawWs per thread.
#include "relay/raw_ws.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "relay/protocol.hpp"

namespace moosicbox::p2p::relay::test {

std::uint16_t WsFrame::close_code() const {
  if (payload.size() < 2) return 0;
  return static_cast<std::uint16_t>((std::to_integer<unsigned>(payload[0]) << 8) |
                                    std::to_integer<unsigned>(payload[1]));
}

std::string WsFrame::close_reason() const {
  if (payload.size() <= 2) return {};
  return to_string(ByteView(payload).subspan(2));
}

std::string HttpAnswer::header(std::string_view name) const {
  std::string lower_head = head;
  std::ranges::transform(lower_head, lower_head.begin(), [](char c) { return static_cast<char>(std::tolower(c)); });
  std::string key = "\r\n" + std::string(name) + ":";
  std::ranges::transform(key, key.begin(), [](char c) { return static_cast<char>(std::tolower(c)); });
  const auto at = lower_head.find(key);
  if (at == std::string::npos) return {};
  auto start = at + key.size();
  const auto end = head.find("\r\n", start);
  while (start < end && head[start] == ' ') ++start;
  return head.substr(start, end - start);
}

std::optional<RawWs> RawWs::connect(std::uint16_t port, std::chrono::milliseconds read_timeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return std::nullopt;
  RawWs ws(fd);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(read_timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((read_timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) return std::nullopt;
  return ws;
}

RawWs::~RawWs() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawWs::send_raw(std::string_view bytes) {
  while (!bytes.empty()) {
    const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool RawWs::read_exact(std::byte* out, std::size_t n) {
  std::size_t got = std::min(n, pending_.size());
  std::memcpy(out, pending_.data(), got);
  pending_.erase(0, got);
  while (got < n) {
    const auto r = ::recv(fd_, out + got, n - got, 0);
    if (r <= 0) return false;
    got += static_cast<std::size_t>(r);
  }
  return true;
}

std::string RawWs::read_head() {
  char buf[4096];
  while (pending_.find("\r\n\r\n") == std::string::npos) {
    const auto r = ::recv(fd_, buf, sizeof buf, 0);
    if (r <= 0) break;
    pending_.append(buf, static_cast<std::size_t>(r));
  }
  const auto end = pending_.find("\r\n\r\n");
  if (end == std::string::npos) return {};
  std::string head = pending_.substr(0, end + 2);
  pending_.erase(0, end + 4);
  return head;
}

namespace {
HttpAnswer parse_head(std::string head) {
  HttpAnswer a;
  a.head = std::move(head);
  if (a.head.size() > 12 && a.head.starts_with("HTTP/1.1 ")) a.status = std::atoi(a.head.c_str() + 9);
  return a;
}
}  // namespace

HttpAnswer RawWs::request(std::string_view target, std::string_view extra_headers) {
  send_raw(fmt::format("GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\n{}\r\n", target, extra_headers));
  auto a = parse_head(read_head());
  const auto len = std::atoi(a.header("Content-Length").c_str());
  if (len > 0) {
    Bytes body(static_cast<std::size_t>(len));
    if (read_exact(body.data(), body.size())) a.body = to_string(body);
  }
  return a;
}

HttpAnswer RawWs::upgrade(std::string_view host, std::string_view subprotocol, std::string_view extra_headers) {
  send_raw(
      fmt::format("GET /relay HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: "
                  "{}\r\n{}\r\n",
                  host, subprotocol, extra_headers));
  auto a = parse_head(read_head());
  const auto len = std::atoi(a.header("Content-Length").c_str());
  if (a.status != 101 && len > 0) {
    Bytes body(static_cast<std::size_t>(len));
    if (read_exact(body.data(), body.size())) a.body = to_string(body);
  }
  return a;
}

bool RawWs::send_frame(std::uint8_t opcode, ByteView payload) {
  std::string out;
  out.push_back(static_cast<char>(0x80 | opcode));
  const std::size_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xffff) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xff));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xff));
  }
  const char mask[4] = {0x11, 0x22, 0x33, 0x44};
  out.append(mask, 4);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(
        static_cast<char>(std::to_integer<unsigned char>(payload[i]) ^ static_cast<unsigned char>(mask[i % 4])));
  }
  return send_raw(out);
}

std::optional<WsFrame> RawWs::read_frame() {
  std::byte h[2];
  if (!read_exact(h, 2)) return std::nullopt;
  WsFrame f;
  f.opcode = std::to_integer<std::uint8_t>(h[0]) & 0x0f;
  std::uint64_t n = std::to_integer<std::uint8_t>(h[1]) & 0x7f;
  if (n == 126) {
    std::byte e[2];
    if (!read_exact(e, 2)) return std::nullopt;
    n = (std::to_integer<std::uint64_t>(e[0]) << 8) | std::to_integer<std::uint64_t>(e[1]);
  } else if (n == 127) {
    std::byte e[8];
    if (!read_exact(e, 8)) return std::nullopt;
    n = 0;
    for (auto b : e) n = (n << 8) | std::to_integer<std::uint64_t>(b);
  }
  if (n > (16u << 20)) return std::nullopt;
  f.payload.resize(n);
  if (!read_exact(f.payload.data(), f.payload.size())) return std::nullopt;
  return f;
}

bool RawWs::authenticate(const SecretKey& key, std::string_view host, bool corrupt, std::string_view extra_headers) {
  if (upgrade(host, "moosicbox-p2p-relay-v1", extra_headers).status != 101) return false;
  auto c = read_frame();
  if (!c || c->opcode != 2) return false;
  auto frame = proto::decode(c->payload, 64 * 1024);
  if (!frame) return false;
  const auto* challenge = std::get_if<proto::ServerChallenge>(&*frame);
  if (challenge == nullptr) return false;
  auto auth = proto::make_auth(key, host, challenge->challenge);
  if (!auth) return false;
  if (corrupt) auth->signature[0] ^= 1;
  Bytes out;
  proto::encode(out, *auth);
  if (!send_frame(2, out)) return false;
  if (corrupt) return true;
  auto w = read_frame();
  if (!w || w->opcode != 2) return false;
  welcome = w->payload;
  auto decoded = proto::decode(welcome, 64 * 1024);
  return decoded && std::holds_alternative<proto::ServerWelcome>(*decoded);
}
bool RawWs::eof() {
  char buf[4096];
  for (int i = 0; i < 1000; ++i) {
    const auto r = ::recv(fd_, buf, sizeof buf, 0);
    if (r == 0) return true;
    if (r < 0) return errno == ECONNRESET;
  }
  return false;
}

}  // namespace moosicbox::p2p::relay::test
