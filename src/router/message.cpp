// SPDX-License-Identifier: MIT OR Apache-2.0
// message.cpp: request construction, response helpers and Range answers.
// Layer: router. Plain values.
#include "moosicbox/p2p/router/message.hpp"

#include <fmt/format.h>

#include "moosicbox/p2p/router/range.hpp"

namespace moosicbox::p2p::router {

P2PResult<P2PRequest> P2PRequest::create(NodeId remote, Method method, std::string_view target, Headers headers,
                                         BodyReader body) {
  auto t = split_target(target);
  if (!t) return fail(std::move(t.error()));
  auto q = QueryParams::parse(t->query);
  if (!q) return fail(std::move(q.error()));
  P2PRequest r(remote, method);
  r.path = std::move(t->path);
  r.query = std::move(t->query);
  r.query_params = std::move(*q);
  r.headers = std::move(headers);
  r.body = std::move(body);
  return r;
}

P2PResponse P2PResponse::text(StatusCode s, std::string_view text) {
  return P2PResponse(s, Headers{{"content-type", "text/plain; charset=utf-8"}}, Body(text));
}

P2PResponse P2PResponse::json(StatusCode s, std::string_view json) {
  return P2PResponse(s, Headers{{"content-type", "application/json"}}, Body(json));
}

P2PResponse P2PResponse::bytes(StatusCode s, Bytes body, std::string_view content_type) {
  return P2PResponse(s, Headers{{"content-type", content_type}}, Body(std::move(body)));
}

P2PResponse P2PResponse::stream(StatusCode s, BodySource source, std::optional<std::uint64_t> length,
                                std::string_view content_type) {
  return P2PResponse(s, Headers{{"content-type", content_type}}, Body::stream(std::move(source), length));
}

P2PResponse P2PResponse::error(StatusCode s, std::string_view detail) {
  const auto reason = status_text(s);
  if (detail.empty()) return text(s, reason);
  return text(s, fmt::format("{}: {}", reason, detail));
}

P2PResponse range_response(const P2PRequest& request, std::uint64_t size, RangeSource source,
                           std::string_view content_type) {
  const auto decision = evaluate_range(request.header("range"), size);
  auto body_of = [&source](std::uint64_t offset, std::uint64_t length) {
    return [src = std::move(source), offset, length](BodyWriter& w) mutable { return src(offset, length, w); };
  };
  switch (decision.outcome) {
    case RangeOutcome::unsatisfiable:
      return P2PResponse(StatusCode::range_not_satisfiable,
                         Headers{{"content-range", unsatisfied_range_value(size)}, {"accept-ranges", "bytes"}}, Body{});
    case RangeOutcome::partial: {
      const auto r = decision.range;
      return P2PResponse::stream(StatusCode::partial_content, body_of(r.first, r.length()), r.length(), content_type)
          .with_header("content-range", content_range_value(r, size))
          .with_header("accept-ranges", "bytes");
    }
    case RangeOutcome::full:
      break;
  }
  return P2PResponse::stream(StatusCode::ok, body_of(0, size), size, content_type)
      .with_header("accept-ranges", "bytes");
}

}  // namespace moosicbox::p2p::router
