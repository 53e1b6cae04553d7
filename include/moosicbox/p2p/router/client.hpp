// SPDX-License-Identifier: MIT OR Apache-2.0
// client.hpp: P2PClient, requests to a router over one connection. Each request opens its own
// bidirectional stream, so any number may be in flight at once and a slow one never blocks the
// others. The response's body is streamed: reading it pulls bytes from the network with flow
// control. Cancelling the awaiting operation, dropping the response before its body was read, or
// calling abort() resets the stream, which aborts the request on the server.
// Layer: router. A client and its responses belong to the connection's executor.
#pragma once

#include <memory>
#include <string_view>
#include <utility>

#include "moosicbox/p2p/core/asio.hpp"
#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/router/body.hpp"
#include "moosicbox/p2p/router/headers.hpp"
#include "moosicbox/p2p/router/stream.hpp"
#include "moosicbox/p2p/router/types.hpp"
#include "moosicbox/p2p/router/wire.hpp"
#include "moosicbox/p2p/streams.hpp"

namespace moosicbox::p2p::router {

namespace detail {
class StreamState;
struct ClientAccess;
}  // namespace detail

/// ClientResponse is a response: its status and headers, and its body as a stream.
class ClientResponse {
 public:
  StatusCode status = StatusCode::ok;  ///< the status
  Headers headers;                     ///< the response headers
  BodyReader body;                     ///< the body; dropping it before its end aborts the request

  /// abort resets the request's stream now (the server's writes fail). Idempotent.
  void abort();

 private:
  friend struct detail::ClientAccess;
  std::weak_ptr<detail::StreamState> stream_;
};

/// ClientOptions configures a client.
struct ClientOptions {
  /// head_limits bounds the heads this client sends and the response heads it accepts.
  HeadLimits head_limits;
};

namespace detail {
/// run_request performs one request on `stream`: head, body (small bodies in the same write as the
/// head; larger and streamed bodies are uploaded concurrently with waiting for the response), then
/// the response head. Errors: see P2PClient::request.
asio::awaitable<P2PResult<ClientResponse>> run_request(std::unique_ptr<AnyBiStream> stream, Method method,
                                                       std::string_view target, Headers headers, Body body,
                                                       const ClientOptions& options);
}  // namespace detail

/// P2PClient sends requests over a connection C (any P2PStreamConnection).
template <P2PStreamConnection C>
class P2PClient {
 public:
  /// P2PClient uses `connection` (a handle: the connection stays shared with its other holders).
  explicit P2PClient(C connection, ClientOptions options = {})
      : connection_(std::move(connection)), options_(std::move(options)) {}

  /// request sends `method` on `target` ("/tracks/42?x=1") with `headers` and `body`, and returns
  /// once the response head arrived. A content-length header is set from the body when its size is
  /// known. Errors: protocol_error (an invalid target or header, or a malformed response head),
  /// message_too_large (the head breaks the limits), stream_reset (the server aborted the request),
  /// connection_closed, timeout, cancelled (the awaiting operation was cancelled: the request is
  /// aborted on the server too).
  asio::awaitable<P2PResult<ClientResponse>> request(Method method, std::string_view target, Headers headers = {},
                                                     Body body = {}) {
    // Copy what the coroutine needs: `target` may not outlive the first suspension.
    return request_owned(method, std::string(target), std::move(headers), std::move(body));
  }
  /// get sends a GET. Errors: as request.
  asio::awaitable<P2PResult<ClientResponse>> get(std::string_view target, Headers headers = {}) {
    return request(Method::GET, target, std::move(headers));
  }
  /// head sends a HEAD. Errors: as request.
  asio::awaitable<P2PResult<ClientResponse>> head(std::string_view target, Headers headers = {}) {
    return request(Method::HEAD, target, std::move(headers));
  }
  /// post sends a POST with `body`. Errors: as request.
  asio::awaitable<P2PResult<ClientResponse>> post(std::string_view target, Body body, Headers headers = {}) {
    return request(Method::POST, target, std::move(headers), std::move(body));
  }
  /// put sends a PUT with `body`. Errors: as request.
  asio::awaitable<P2PResult<ClientResponse>> put(std::string_view target, Body body, Headers headers = {}) {
    return request(Method::PUT, target, std::move(headers), std::move(body));
  }
  /// del sends a DELETE. Errors: as request.
  asio::awaitable<P2PResult<ClientResponse>> del(std::string_view target, Headers headers = {}) {
    return request(Method::DELETE, target, std::move(headers));
  }

  /// connection returns the connection.
  [[nodiscard]] C& connection() noexcept { return connection_; }

 private:
  asio::awaitable<P2PResult<ClientResponse>> request_owned(Method method, std::string target, Headers headers,
                                                           Body body) {
    auto stream = co_await connection_.open_bi();
    if (!stream) co_return fail(std::move(stream.error()));
    co_return co_await detail::run_request(erase_stream(std::move(*stream)), method, target, std::move(headers),
                                           std::move(body), options_);
  }

  C connection_;
  ClientOptions options_;
};

}  // namespace moosicbox::p2p::router

namespace moosicbox::p2p {
using router::P2PClient;
}  // namespace moosicbox::p2p
