// SPDX-License-Identifier: MIT OR Apache-2.0
// client.cpp: the client side of the request protocol on one stream.
// Layer: router. Runs on the connection's executor, inside the caller's coroutine; a large or
// streamed request body is uploaded by a background task that shares the stream.
#include "moosicbox/p2p/router/client.hpp"

#include <fmt/format.h>

#include "core/log.hpp"
#include "moosicbox/p2p/core/spawn.hpp"
#include "moosicbox/p2p/router/uri.hpp"
#include "stream_state.hpp"

namespace moosicbox::p2p::router {

namespace detail {

struct ClientAccess {
  static void attach(ClientResponse& r, const std::shared_ptr<StreamState>& s) { r.stream_ = s; }
};

namespace {
asio::awaitable<void> upload(std::shared_ptr<StreamState> st, Body body) {
  auto sent = co_await send_body(*st, std::move(body));
  if (sent) sent = co_await st->finish();
  if (!sent) {
    // A server that answered without reading the whole body stops the stream: the response is
    // still coming, so only a failure of our own (a source error) aborts the request.
    if (sent.error().code() != P2PErrc::stream_reset) st->reset(ResetCode::cancelled);
    logger().debug("router client: request body upload ended early: {}", sent.error().message());
  }
}

// AbortGuard aborts the stream unless the request got as far as a response: an error, a
// cancellation or an exception must not leave a background upload running for nobody.
struct AbortGuard {
  std::shared_ptr<StreamState> st;
  ResetCode code = ResetCode::cancelled;
  bool armed = true;
  ~AbortGuard() {
    if (armed) st->abort(code);
  }
};

bool body_forbidden(Method method, StatusCode status) noexcept {
  return method == Method::HEAD || !allows_body(status);
}
}  // namespace

asio::awaitable<P2PResult<ClientResponse>> run_request(std::unique_ptr<AnyBiStream> stream, Method method,
                                                       std::string_view target, Headers headers, Body body,
                                                       const ClientOptions& options) {
  auto st = std::make_shared<StreamState>(std::move(stream));
  AbortGuard guard{st};
  auto split = split_target(target);
  if (!split) co_return fail(std::move(split.error()));
  if (const auto size = body.size(); size && (*size > 0 || body.is_streamed())) {
    headers.set("content-length", std::to_string(*size));
  } else if (!body.is_streamed()) {
    headers.remove("content-length");
  }
  RequestHead head{method, std::move(split->path), std::move(split->query), std::move(headers)};
  Bytes buf;
  if (auto enc = encode_request_head(head, options.head_limits, buf); !enc) co_return fail(std::move(enc.error()));

  // A small body goes in the head's write; a large or streamed one is uploaded alongside waiting
  // for the response, which may come early (413, or a handler that does not read the body).
  if (!body.is_streamed() && body.bytes().size() <= kWriteChunk) {
    const auto bytes = body.bytes();
    buf.insert(buf.end(), bytes.begin(), bytes.end());
    auto w = co_await st->write(buf);
    if (w) w = co_await st->finish();
    if (!w && w.error().code() != P2PErrc::stream_reset) co_return fail(std::move(w.error()));
  } else {
    auto w = co_await st->write(buf);
    if (!w && w.error().code() != P2PErrc::stream_reset) co_return fail(std::move(w.error()));
    if (w) spawn_logged(co_await asio::this_coro::executor, upload(st, std::move(body)), "router upload");
  }

  HeadDecoder decoder(FrameType::response_head, options.head_limits);
  if (auto r = co_await read_head(*st, decoder); !r) co_return fail(std::move(r.error()));
  if (decoder.state() == HeadDecoder::State::failed) {
    guard.code = ResetCode::protocol_error;
    co_return fail(P2PError::protocol(fmt::format("bad response head: {}", head_error_text(decoder.error()))));
  }
  ClientResponse response;
  response.status = decoder.response().status;
  response.headers = std::move(decoder.response().headers);
  std::optional<std::uint64_t> declared;
  if (body_forbidden(method, response.status)) {
    declared = 0;
  } else if (const auto cl = response.headers.get("content-length")) {
    declared = parse_content_length(*cl);
    if (!declared) {
      guard.code = ResetCode::protocol_error;
      co_return fail(P2PError::protocol("bad content-length in the response"));
    }
  }
  response.body = BodyReader(std::make_shared<StreamBodyInput>(st, declared, ResetCode::cancelled, true));
  ClientAccess::attach(response, st);
  guard.armed = false;
  co_return response;
}

}  // namespace detail

void ClientResponse::abort() {
  if (auto st = stream_.lock()) st->abort(ResetCode::cancelled);
}

}  // namespace moosicbox::p2p::router
