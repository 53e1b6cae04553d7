// SPDX-License-Identifier: MIT OR Apache-2.0
// raw_ws.hpp: a minimal blocking WebSocket client over a loopback TCP socket, for tests that must
// speak to the relay server the way a hostile or minimal client would (garbage, oversize messages,
// wrong signatures, thousands of idle sessions). Every read is bounded by SO_RCVTIMEO.
// Test support. One RawWs per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "moosicbox/p2p/core/bytes.hpp"
#include "moosicbox/p2p/core/secret_key.hpp"

namespace moosicbox::p2p::relay::test {

/// WsFrame is one received WebSocket frame.
struct WsFrame {
  std::uint8_t opcode = 0;  ///< 1 text, 2 binary, 8 close, 9 ping, 10 pong
  Bytes payload;            ///< unmasked payload
  /// close_code returns the code of a close frame (0 when absent).
  [[nodiscard]] std::uint16_t close_code() const;
  /// close_reason returns the reason of a close frame.
  [[nodiscard]] std::string close_reason() const;
};

/// HttpAnswer is a parsed HTTP response.
struct HttpAnswer {
  int status = 0;    ///< status code, 0 when none arrived
  std::string head;  ///< status line and headers
  std::string body;  ///< body (Content-Length bytes)
  /// header returns a header's value ("" when absent); the name is matched case-insensitively.
  [[nodiscard]] std::string header(std::string_view name) const;
};

/// RawWs is one blocking TCP connection to 127.0.0.1.
class RawWs {
 public:
  /// connect opens a TCP connection to 127.0.0.1:port; nullopt on failure.
  static std::optional<RawWs> connect(std::uint16_t port, std::chrono::milliseconds read_timeout);
  RawWs(RawWs&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  RawWs& operator=(RawWs&&) = delete;
  ~RawWs();

  /// send_raw writes bytes as they are.
  bool send_raw(std::string_view bytes);
  /// request sends an HTTP request and reads the response (head and Content-Length body).
  HttpAnswer request(std::string_view target, std::string_view extra_headers = {});
  /// upgrade asks for the relay WebSocket with `subprotocol` and `host`; returns the answer.
  HttpAnswer upgrade(std::string_view host, std::string_view subprotocol = "moosicbox-p2p-relay-v1",
                     std::string_view extra_headers = {});
  /// send_frame writes one masked, final frame.
  bool send_frame(std::uint8_t opcode, ByteView payload);
  /// read_frame reads one frame; nullopt on timeout, EOF or error.
  std::optional<WsFrame> read_frame();
  /// authenticate upgrades, answers the challenge with `key` (signing over `host`) and reads the
  /// welcome; false when any step fails. `corrupt` flips a signature bit.
  bool authenticate(const SecretKey& key, std::string_view host, bool corrupt = false,
                    std::string_view extra_headers = {});
  /// welcome is the last ServerWelcome authenticate() read (its raw frame).
  Bytes welcome;
  /// eof waits (bounded) for the server to close the TCP connection.
  bool eof();
  /// fd is the socket.
  [[nodiscard]] int fd() const { return fd_; }

 private:
  explicit RawWs(int fd) : fd_(fd) {}
  bool read_exact(std::byte* out, std::size_t n);
  std::string read_head();
  int fd_ = -1;
  std::string pending_;
};

}  // namespace moosicbox::p2p::relay::test
