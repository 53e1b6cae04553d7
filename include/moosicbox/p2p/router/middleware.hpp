// SPDX-License-Identifier: MIT OR Apache-2.0
// middleware.hpp: ready-made middleware and hooks: a router-wide allowlist (403), per-peer rate
// limiting with a token bucket on the environment's clock (429 with Retry-After), and request
// logging and metrics fed from ServeOptions::on_request.
// Layer: router. Everything runs on the server's executor.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "moosicbox/p2p/core/node_id.hpp"
#include "moosicbox/p2p/core/time.hpp"
#include "moosicbox/p2p/env/concepts.hpp"
#include "moosicbox/p2p/router/router.hpp"
#include "moosicbox/p2p/router/server.hpp"

namespace moosicbox::p2p::router {

/// allow_only answers 403 to every peer outside `ids`, before routing (for one route or service,
/// use RouteOptions::allow or ServiceOptions::allow instead).
[[nodiscard]] Middleware allow_only(Allowlist ids);

/// RateLimit configures per-peer rate limiting.
struct RateLimit {
  double requests_per_second = 50;  ///< sustained rate per peer
  double burst = 100;               ///< bucket size: requests a quiet peer may send at once
  std::size_t peers_max = 10'000;   ///< peers tracked at once (the idlest are forgotten first)
};

/// RateLimiter keeps one token bucket per peer.
class RateLimiter {
 public:
  /// RateLimiter reads time from `now`. `config` must have a positive rate and a burst >= 1.
  RateLimiter(std::function<TimePoint()> now, RateLimit config);
  /// try_acquire takes a token for `peer`: nullopt when allowed, otherwise how long until the next
  /// token.
  [[nodiscard]] std::optional<Duration> try_acquire(const NodeId& peer);
  /// tracked_peers returns how many buckets are kept.
  [[nodiscard]] std::size_t tracked_peers() const noexcept { return buckets_.size(); }

 private:
  struct Bucket {
    double tokens;
    TimePoint updated;
  };
  void evict_one(TimePoint now);
  std::function<TimePoint()> now_;
  RateLimit config_;
  std::map<NodeId, Bucket> buckets_;
};

/// rate_limit answers 429 (with Retry-After in whole seconds) to a peer past its rate, before
/// routing, using `env`'s clock.
template <env::Environment E>
[[nodiscard]] Middleware rate_limit(const E& env, RateLimit config) {
  return rate_limit_with(std::make_shared<RateLimiter>([env] { return env.now(); }, config));
}

/// rate_limit_with uses an existing limiter (shared between routers, or inspected by tests).
[[nodiscard]] Middleware rate_limit_with(std::shared_ptr<RateLimiter> limiter);

/// log_request writes one line per finished request through the library logger (info for
/// completed requests, warn for the others).
void log_request(const RequestRecord& record);

/// RequestMetrics aggregates finished requests (feed it from ServeOptions::on_request).
class RequestMetrics {
 public:
  /// record adds one request.
  void record(const RequestRecord& r);

  std::uint64_t requests = 0;                        ///< requests recorded
  std::uint64_t status_2xx = 0;                      ///< requests with a 2xx status
  std::uint64_t status_3xx = 0;                      ///< requests with a 3xx status
  std::uint64_t status_4xx = 0;                      ///< requests with a 4xx status
  std::uint64_t status_5xx = 0;                      ///< requests with a 5xx status
  std::map<RequestOutcome, std::uint64_t> outcomes;  ///< by outcome
  std::uint64_t bytes_received = 0;                  ///< stream bytes in
  std::uint64_t bytes_sent = 0;                      ///< stream bytes out
  Duration total_duration{};                         ///< sum of durations
  Duration max_duration{};                           ///< longest request
};

}  // namespace moosicbox::p2p::router
