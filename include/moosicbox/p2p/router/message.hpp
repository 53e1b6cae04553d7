// SPDX-License-Identifier: MIT OR Apache-2.0
// message.hpp: P2PRequest and P2PResponse, what handlers receive and return, and the Range helper
// that answers 200, 206 or 416 for a representation of known size.
// Layer: router. Plain values (move-only because of their bodies).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "moosicbox/p2p/core/node_id.hpp"
#include "moosicbox/p2p/router/body.hpp"
#include "moosicbox/p2p/router/headers.hpp"
#include "moosicbox/p2p/router/route_table.hpp"
#include "moosicbox/p2p/router/types.hpp"
#include "moosicbox/p2p/router/uri.hpp"

namespace moosicbox::p2p::router {

/// P2PRequest is a request as a handler sees it: the authenticated remote node, the method, the
/// target, the headers, the path parameters of the matched route and a streamed body.
struct P2PRequest {
  /// P2PRequest builds a request from `remote` for `target` ("/path?query"); the body is read from
  /// `body`. Used by the drivers and for in-process dispatch (tests, examples).
  /// Errors: protocol_error when the target is not a valid target or its query does not decode.
  [[nodiscard]] static P2PResult<P2PRequest> create(NodeId remote, Method method, std::string_view target,
                                                    Headers headers = {}, BodyReader body = {});

  /// param returns the value captured by the route parameter or wildcard `name`.
  [[nodiscard]] std::optional<std::string_view> param(std::string_view name) const noexcept { return params.get(name); }
  /// query_param returns the first query parameter named `name`.
  [[nodiscard]] std::optional<std::string_view> query_param(std::string_view name) const noexcept {
    return query_params.get(name);
  }
  /// header returns the first header named `name` (case-insensitive).
  [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const noexcept {
    return headers.get(name);
  }

  NodeId remote;             ///< the authenticated peer that sent the request
  Method method;             ///< the method (HEAD also for a HEAD answered by a GET route)
  std::string path;          ///< the raw path, as sent
  std::string query;         ///< the raw query string, without '?'
  QueryParams query_params;  ///< the decoded query string
  Headers headers;           ///< the request headers
  PathParams params;         ///< the values the matched route captured (set by the router)
  std::string route;         ///< the pattern of the matched route (set by the router)
  BodyReader body;           ///< the request body

 private:
  P2PRequest(NodeId r, Method m) : remote(r), method(m) {}
};

/// P2PResponse is what a handler answers: a status, headers and a body.
struct P2PResponse {
  P2PResponse() = default;
  /// P2PResponse has status `s`, no header and no body.
  explicit P2PResponse(StatusCode s) : status(s) {}
  /// P2PResponse has status `s`, headers `h` and body `b`.
  P2PResponse(StatusCode s, Headers h, Body b) : status(s), headers(std::move(h)), body(std::move(b)) {}

  /// text answers `s` with a text/plain body.
  [[nodiscard]] static P2PResponse text(StatusCode s, std::string_view text);
  /// json answers `s` with an application/json body (the caller provides the JSON text).
  [[nodiscard]] static P2PResponse json(StatusCode s, std::string_view json);
  /// bytes answers `s` with a body of `content_type`.
  [[nodiscard]] static P2PResponse bytes(StatusCode s, Bytes body,
                                         std::string_view content_type = "application/octet-stream");
  /// stream answers `s` with a streamed body of `length` bytes (nullopt when unknown).
  [[nodiscard]] static P2PResponse stream(StatusCode s, BodySource source, std::optional<std::uint64_t> length,
                                          std::string_view content_type = "application/octet-stream");
  /// error answers `s` with its reason phrase (and `detail` when given) as text.
  [[nodiscard]] static P2PResponse error(StatusCode s, std::string_view detail = {});

  /// with_header adds a header and returns the response (for chaining).
  [[nodiscard]] P2PResponse with_header(std::string_view name, std::string_view value) && {
    headers.add(name, value);
    return std::move(*this);
  }

  StatusCode status = StatusCode::ok;  ///< the status
  Headers headers;                     ///< the response headers
  Body body;                           ///< the response body
};

/// RangeSource writes `length` bytes of a representation starting at `offset`.
using RangeSource =
    std::move_only_function<asio::awaitable<P2PResult<void>>(std::uint64_t offset, std::uint64_t length, BodyWriter&)>;

/// range_response answers `request` for a representation of `size` bytes that `source` can
/// produce from any offset: 206 with Content-Range for one satisfiable range, 416 with
/// "Content-Range: bytes */size" for an unsatisfiable one, 200 with the whole otherwise. Every
/// answer carries "Accept-Ranges: bytes".
[[nodiscard]] P2PResponse range_response(const P2PRequest& request, std::uint64_t size, RangeSource source,
                                         std::string_view content_type = "application/octet-stream");

}  // namespace moosicbox::p2p::router
