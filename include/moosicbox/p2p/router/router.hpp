// SPDX-License-Identifier: MIT OR Apache-2.0
// router.hpp: P2PRouter, the route table plus handlers and middleware, and P2PService, a group of
// routes registered together. A router is built once (registration refuses conflicts with a clear
// error), then shared read-only by every connection a server accepts; P2PRouter::handle dispatches
// one request in process, which is also how handlers are unit-tested without any network.
// Layer: router. Registration is not thread-safe; dispatch runs on the server's executor.
#pragma once

#include <concepts>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "moosicbox/p2p/core/asio.hpp"
#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/node_id.hpp"
#include "moosicbox/p2p/router/message.hpp"
#include "moosicbox/p2p/router/route_table.hpp"

namespace moosicbox::p2p::router {

namespace detail {
template <class T>
struct IsAwaitable : std::false_type {};
template <class T, class E>
struct IsAwaitable<asio::awaitable<T, E>> : std::true_type {
  using value_type = T;
};

// A handler's answer: a response, or a result whose error becomes a 500.
template <class R>
concept HandlerAnswer = std::same_as<R, P2PResponse> || std::same_as<R, P2PResult<P2PResponse>>;

template <class R>
concept HandlerReturn = HandlerAnswer<std::remove_cvref_t<R>> ||
    (IsAwaitable<std::remove_cvref_t<R>>::value&&
         HandlerAnswer<typename IsAwaitable<std::remove_cvref_t<R>>::value_type>);

// invoke_handler calls `h` with the request as an rvalue when it accepts one (by value, const& or
// &&), otherwise as an lvalue (a P2PRequest& parameter); structs are called through handle().
template <class H>
decltype(auto) invoke_handler(H& h, P2PRequest& req) {
  if constexpr (std::invocable<H&, P2PRequest&&>) {
    return std::invoke(h, std::move(req));
  } else if constexpr (std::invocable<H&, P2PRequest&>) {
    return std::invoke(h, req);
  } else if constexpr (requires { h.handle(std::move(req)); }) {
    return h.handle(std::move(req));
  } else {
    return h.handle(req);
  }
}

template <class H>
concept CallableHandler = (std::invocable<H&, P2PRequest&&> && HandlerReturn<std::invoke_result_t<H&, P2PRequest&&>>) ||
                          (std::invocable<H&, P2PRequest&> && HandlerReturn<std::invoke_result_t<H&, P2PRequest&>>);

template <class H>
concept HandleMethodHandler = requires(H& h, P2PRequest& req) {
  { h.handle(req) } -> HandlerReturn;
};

/// BoxedHandler is a handler behind one call signature.
using BoxedHandler = std::function<asio::awaitable<P2PResult<P2PResponse>>(P2PRequest)>;

template <class R>
P2PResult<P2PResponse> to_result(R&& r) {
  if constexpr (std::same_as<std::remove_cvref_t<R>, P2PResponse>) {
    return P2PResult<P2PResponse>(std::forward<R>(r));
  } else {
    return std::forward<R>(r);
  }
}

// call_boxed is a coroutine that owns the handler through `h` (not a coroutine lambda with
// captures, whose captures would not live in the frame).
template <class H>
asio::awaitable<P2PResult<P2PResponse>> call_boxed(std::shared_ptr<H> h, P2PRequest req) {
  using R = decltype(invoke_handler(*h, req));
  if constexpr (IsAwaitable<std::remove_cvref_t<R>>::value) {
    co_return to_result(co_await invoke_handler(*h, req));
  } else {
    co_return to_result(invoke_handler(*h, req));
  }
}
}  // namespace detail

/// Handler is what a route calls: a callable or a struct with handle(), taking a P2PRequest (by
/// value, const&, & or &&) and answering P2PResponse or P2PResult<P2PResponse> (an error becomes
/// 500), directly or as asio::awaitable<...> (a coroutine handler, for work that waits). An
/// exception escaping a handler also becomes 500.
template <class H>
concept Handler = std::move_constructible<H> &&(detail::CallableHandler<H> || detail::HandleMethodHandler<H>);

/// Allowlist restricts who may call a route: node ids outside it get 403.
using Allowlist = std::vector<NodeId>;

/// RouteOptions tunes one route.
struct RouteOptions {
  /// allow, when set, admits only these peers (others get 403 Forbidden).
  std::optional<Allowlist> allow;
  /// body_bytes_max, when set, replaces the server's request body limit for this route (413 above).
  std::optional<std::uint64_t> body_bytes_max;
};

/// ServiceOptions applies to every route a service registers.
struct ServiceOptions {
  /// allow, when set, admits only these peers to the service's routes (combined with a route's own
  /// allowlist: a peer must be on both).
  std::optional<Allowlist> allow;
};

class P2PRouter;

/// P2PService is a group of routes registered together: a type with
/// `P2PResult<void> register_routes(P2PRouter&)`. Handlers may capture `this`: the router keeps the
/// service alive.
template <class S>
concept P2PService = requires(S& s, P2PRouter& r) {
  { s.register_routes(r) } -> std::same_as<P2PResult<void>>;
};

/// Next calls the rest of the chain: the following middleware, then routing and the handler.
class Next {
 public:
  /// operator() dispatches `request` to the rest of the chain.
  asio::awaitable<P2PResponse> operator()(P2PRequest request) const;

 private:
  friend class P2PRouter;
  Next(const P2PRouter* router, std::size_t index) : router_(router), index_(index) {}
  const P2PRouter* router_;
  std::size_t index_;
};

/// Middleware wraps dispatch: it may answer by itself (403, 429, ...) or call next(request) and
/// inspect or change the response. Middleware runs in the order it was added, before routing, so
/// it also sees requests that end in 404 or 405.
using Middleware = std::function<asio::awaitable<P2PResponse>(P2PRequest, Next)>;

/// P2PRouter maps requests to handlers.
class P2PRouter {
 public:
  P2PRouter() = default;
  /// Move-only: moving transfers every route, middleware and service, and the moved-from router may
  /// only be destroyed or assigned to.
  ///@{
  P2PRouter(P2PRouter&&) noexcept = default;
  P2PRouter& operator=(P2PRouter&&) noexcept = default;
  P2PRouter(const P2PRouter&) = delete;
  P2PRouter& operator=(const P2PRouter&) = delete;
  ///@}

  /// route registers `handler` for `method` on `pattern` ("/tracks/:id", "/files/*path").
  /// Errors: invalid_configuration when the pattern is malformed or the method is already
  /// registered for a pattern matching the same paths (the message names both).
  template <Handler H>
  [[nodiscard]] P2PResult<void> route(Method method, std::string_view pattern, H handler, RouteOptions options = {}) {
    auto h = std::make_shared<H>(std::move(handler));
    return add_route(
        method, pattern, [h](P2PRequest req) { return detail::call_boxed<H>(h, std::move(req)); }, std::move(options));
  }
  /// get registers a GET route (which also answers HEAD). Errors: as route.
  template <Handler H>
  [[nodiscard]] P2PResult<void> get(std::string_view pattern, H handler, RouteOptions options = {}) {
    return route(Method::GET, pattern, std::move(handler), std::move(options));
  }
  /// post registers a POST route. Errors: as route.
  template <Handler H>
  [[nodiscard]] P2PResult<void> post(std::string_view pattern, H handler, RouteOptions options = {}) {
    return route(Method::POST, pattern, std::move(handler), std::move(options));
  }
  /// put registers a PUT route. Errors: as route.
  template <Handler H>
  [[nodiscard]] P2PResult<void> put(std::string_view pattern, H handler, RouteOptions options = {}) {
    return route(Method::PUT, pattern, std::move(handler), std::move(options));
  }
  /// del registers a DELETE route. Errors: as route.
  template <Handler H>
  [[nodiscard]] P2PResult<void> del(std::string_view pattern, H handler, RouteOptions options = {}) {
    return route(Method::DELETE, pattern, std::move(handler), std::move(options));
  }

  /// register_service keeps `service` alive in the router and lets it register its routes, with
  /// `options` applied to each. All or nothing: on error no route of the service stays registered.
  /// Errors: those of the service's registrations.
  template <P2PService S>
  [[nodiscard]] P2PResult<void> register_service(std::shared_ptr<S> service, ServiceOptions options = {}) {
    return register_scoped(std::move(options), service,
                           [service](P2PRouter& r) { return service->register_routes(r); });
  }
  /// register_service moves `service` into the router. Errors: as above.
  template <P2PService S>
  [[nodiscard]] P2PResult<void> register_service(S service, ServiceOptions options = {}) {
    return register_service(std::make_shared<S>(std::move(service)), std::move(options));
  }
  /// with_service registers `service` and returns the router, for building in one expression:
  /// `auto router = P2PRouter{}.with_service(Music{...});`. Errors: as register_service.
  template <P2PService S>
  [[nodiscard]] P2PResult<P2PRouter> with_service(S service, ServiceOptions options = {}) && {
    if (auto r = register_service(std::move(service), std::move(options)); !r) return fail(std::move(r.error()));
    return std::move(*this);
  }

  /// use appends a middleware to the chain.
  void use(Middleware middleware) { middleware_.push_back(std::move(middleware)); }

  /// handle dispatches one request through the middleware, routing, the route's checks and its
  /// handler: 404 for unknown paths, 405 with Allow for other methods, OPTIONS answered with Allow,
  /// HEAD answered by GET without a body, 403 outside a route's allowlist, 413 when the declared
  /// length passes the route's limit or the handler's reads passed it, 500 when the handler fails.
  asio::awaitable<P2PResponse> handle(P2PRequest request) const;

  /// resolve matches a method and raw path without dispatching.
  [[nodiscard]] Match resolve(Method method, std::string_view raw_path) const { return table_.match(method, raw_path); }
  /// route_count returns how many routes are registered.
  [[nodiscard]] std::size_t route_count() const noexcept { return routes_.size(); }
  /// set_default_body_limit sets the request body limit of routes without their own (the server
  /// sets it from ServeOptions::body_bytes_max).
  void set_default_body_limit(std::uint64_t max) noexcept { default_body_max_ = max; }
  /// default_body_limit returns that limit.
  [[nodiscard]] std::uint64_t default_body_limit() const noexcept { return default_body_max_; }

 private:
  friend class Next;
  struct Route {
    detail::BoxedHandler handler;
    RouteOptions options;
  };
  [[nodiscard]] P2PResult<void> add_route(Method method, std::string_view pattern, detail::BoxedHandler handler,
                                          RouteOptions options);
  [[nodiscard]] P2PResult<void> register_scoped(ServiceOptions options, std::shared_ptr<void> keep,
                                                const std::function<P2PResult<void>(P2PRouter&)>& registration);
  asio::awaitable<P2PResponse> dispatch(std::size_t index, P2PRequest request) const;
  asio::awaitable<P2PResponse> route_request(P2PRequest request) const;
  // prepare matches and checks a request; it returns the answer when the handler must not run.
  std::optional<P2PResponse> prepare(P2PRequest& request, const Route*& route) const;

  RouteTable table_;
  std::vector<Route> routes_;
  std::vector<Middleware> middleware_;
  std::vector<std::shared_ptr<void>> services_;
  std::optional<ServiceOptions> scope_;  // options of the service registering now
  std::uint64_t default_body_max_ = std::uint64_t{8} << 20;
};

}  // namespace moosicbox::p2p::router

namespace moosicbox::p2p {
// The router's main names, available directly under p2p.
using router::Handler;
using router::Method;
using router::P2PRequest;
using router::P2PResponse;
using router::P2PRouter;
using router::P2PService;
using router::StatusCode;
}  // namespace moosicbox::p2p
