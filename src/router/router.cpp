// SPDX-License-Identifier: MIT OR Apache-2.0
// router.cpp: route registration (all or nothing per service) and dispatch through middleware,
// routing, the route's checks and its handler.
// Layer: router. Registration is single-threaded; dispatch runs on the server's executor.
#include "moosicbox/p2p/router/router.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/log.hpp"
#include "moosicbox/p2p/core/assert.hpp"

namespace moosicbox::p2p::router {

namespace {
Allowlist sorted(Allowlist ids) {
  std::ranges::sort(ids);
  ids.erase(std::ranges::unique(ids).begin(), ids.end());
  return ids;
}

// combine returns the peers admitted by both lists (a peer must pass every list that applies).
std::optional<Allowlist> combine(const std::optional<Allowlist>& a, const std::optional<Allowlist>& b) {
  if (!a) return b ? std::optional(sorted(*b)) : std::nullopt;
  if (!b) return sorted(*a);
  const auto x = sorted(*a);
  const auto y = sorted(*b);
  Allowlist out;
  std::ranges::set_intersection(x, y, std::back_inserter(out));
  return out;
}

std::string_view path_error_text(PathError e) noexcept {
  switch (e) {
    case PathError::none:
      return "no error";
    case PathError::malformed:
      return "malformed path";
    case PathError::invalid_utf8:
      return "path is not valid UTF-8";
    case PathError::forbidden:
      return "path has a dot segment or an encoded separator";
  }
  return "invalid path";
}

// strip_for_head drops the body of an answer to HEAD, keeping the length GET would have sent.
void strip_for_head(P2PResponse& r) {
  if (const auto size = r.body.size(); size && allows_body(r.status) && !r.headers.contains("content-length")) {
    r.headers.set("content-length", std::to_string(*size));
  }
  r.body.clear();
}
}  // namespace

// call_handler runs a handler; an escaping exception becomes an internal_server_error answer.
asio::awaitable<P2PResult<P2PResponse>> call_handler(const detail::BoxedHandler& handler, P2PRequest request,
                                                     Method method, std::string_view pattern) {
  try {
    co_return co_await handler(std::move(request));
  } catch (const std::exception& e) {
    logger().warn("router: handler {} {} threw: {}", method, pattern, e.what());
  }
  co_return P2PResponse::error(StatusCode::internal_server_error);
}

asio::awaitable<P2PResponse> Next::operator()(P2PRequest request) const {
  return router_->dispatch(index_, std::move(request));
}

P2PResult<void> P2PRouter::add_route(Method method, std::string_view pattern, detail::BoxedHandler handler,
                                     RouteOptions options) {
  MOOSICBOX_P2P_ASSERT(handler);
  if (scope_) options.allow = combine(scope_->allow, options.allow);
  if (options.allow) options.allow = sorted(std::move(*options.allow));
  const auto id = static_cast<RouteId>(routes_.size());
  if (auto r = table_.add(method, pattern, id); !r) return r;
  routes_.push_back(Route{std::move(handler), std::move(options)});
  return {};
}

P2PResult<void> P2PRouter::register_scoped(ServiceOptions options, std::shared_ptr<void> keep,
                                           const std::function<P2PResult<void>(P2PRouter&)>& registration) {
  // Snapshot, so a service whose registration fails halfway leaves no route behind.
  const RouteTable table_before = table_;
  const std::size_t routes_before = routes_.size();
  const auto scope_before = scope_;
  ServiceOptions scope = std::move(options);
  if (scope_before) scope.allow = combine(scope_before->allow, scope.allow);
  scope_ = std::move(scope);
  auto result = registration(*this);
  scope_ = scope_before;
  if (!result) {
    table_ = table_before;
    while (routes_.size() > routes_before) routes_.pop_back();
    return result;
  }
  services_.push_back(std::move(keep));
  return {};
}

asio::awaitable<P2PResponse> P2PRouter::handle(P2PRequest request) const {
  try {
    co_return co_await dispatch(0, std::move(request));
  } catch (const std::exception& e) {
    logger().warn("router: middleware failed: {}", e.what());
  }
  co_return P2PResponse::error(StatusCode::internal_server_error);
}

asio::awaitable<P2PResponse> P2PRouter::dispatch(std::size_t index, P2PRequest request) const {
  if (index < middleware_.size()) co_return co_await middleware_[index](std::move(request), Next(this, index + 1));
  co_return co_await route_request(std::move(request));
}

std::optional<P2PResponse> P2PRouter::prepare(P2PRequest& request, const Route*& route) const {
  auto match = table_.match(request.method, request.path);
  switch (match.kind) {
    case MatchKind::bad_path:
      return P2PResponse::error(StatusCode::bad_request, path_error_text(match.path_error));
    case MatchKind::not_found:
      return P2PResponse::error(StatusCode::not_found);
    case MatchKind::method_not_allowed:
      return P2PResponse::error(StatusCode::method_not_allowed).with_header("allow", format_allow(match.allowed));
    case MatchKind::options:
      return P2PResponse(StatusCode::no_content).with_header("allow", format_allow(match.allowed));
    case MatchKind::found:
      break;
  }
  MOOSICBOX_P2P_ASSERT(match.route < routes_.size());
  route = &routes_[match.route];
  if (route->options.allow && !std::ranges::binary_search(*route->options.allow, request.remote)) {
    return P2PResponse::error(StatusCode::forbidden);
  }
  const std::uint64_t limit = route->options.body_bytes_max.value_or(default_body_max_);
  request.body.set_limit(limit);
  if (const auto declared = request.body.content_length(); declared && *declared > limit) {
    return P2PResponse::error(StatusCode::content_too_large,
                              fmt::format("body of {} bytes exceeds the limit of {}", *declared, limit));
  }
  request.params = std::move(match.params);
  request.route = std::move(match.pattern);
  return std::nullopt;
}

asio::awaitable<P2PResponse> P2PRouter::route_request(P2PRequest request) const {
  const Route* route = nullptr;
  if (auto early = prepare(request, route)) co_return std::move(*early);
  const bool head = request.method == Method::HEAD;
  const auto input = request.body.input_;  // shared: the handler may move the reader away
  const auto method = request.method;
  const std::string route_pattern = request.route;

  auto answer = co_await call_handler(route->handler, std::move(request), method, route_pattern);
  P2PResponse response;
  if (input && input->exceeded) {
    response = P2PResponse::error(StatusCode::content_too_large,
                                  fmt::format("body exceeds the limit of {} bytes", input->limit));
  } else if (!answer) {
    const auto& e = answer.error();
    logger().debug("router: handler {} {} failed: {}", method, route_pattern, e.message());
    switch (e.code()) {
      case P2PErrc::message_too_large:
        response = P2PResponse::error(StatusCode::content_too_large);
        break;
      case P2PErrc::protocol_error:
        response = P2PResponse::error(StatusCode::bad_request);
        break;
      default:
        response = P2PResponse::error(StatusCode::internal_server_error);
        break;
    }
  } else {
    response = std::move(*answer);
  }
  if (head) strip_for_head(response);
  if (!allows_body(response.status)) response.body.clear();
  co_return response;
}

}  // namespace moosicbox::p2p::router
