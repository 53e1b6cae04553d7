// SPDX-License-Identifier: MIT OR Apache-2.0
// middleware.cpp: allowlist, token-bucket rate limiting, request logging and metrics.
// Layer: router. Runs on the server's executor.
#include "moosicbox/p2p/router/middleware.hpp"

#include <algorithm>
#include <cmath>

#include "core/log.hpp"
#include "moosicbox/p2p/core/assert.hpp"

namespace moosicbox::p2p::router {

Middleware allow_only(Allowlist ids) {
  std::ranges::sort(ids);
  auto list = std::make_shared<const Allowlist>(std::move(ids));
  return [list](P2PRequest req, Next next) -> asio::awaitable<P2PResponse> {
    if (!std::ranges::binary_search(*list, req.remote)) co_return P2PResponse::error(StatusCode::forbidden);
    co_return co_await next(std::move(req));
  };
}

RateLimiter::RateLimiter(std::function<TimePoint()> now, RateLimit config) : now_(std::move(now)), config_(config) {
  MOOSICBOX_P2P_ASSERT(now_);
  MOOSICBOX_P2P_ASSERT(config_.requests_per_second > 0 && config_.burst >= 1 && config_.peers_max > 0);
}

void RateLimiter::evict_one(TimePoint now) {
  // A bucket that has refilled is the same as no bucket: forget those first, else the idlest.
  auto victim = buckets_.end();
  for (auto it = buckets_.begin(); it != buckets_.end(); ++it) {
    const double elapsed = std::chrono::duration<double>(now - it->second.updated).count();
    if (it->second.tokens + elapsed * config_.requests_per_second >= config_.burst) {
      victim = it;
      break;
    }
    if (victim == buckets_.end() || it->second.updated < victim->second.updated) victim = it;
  }
  if (victim != buckets_.end()) buckets_.erase(victim);
}

std::optional<Duration> RateLimiter::try_acquire(const NodeId& peer) {
  const TimePoint now = now_();
  auto it = buckets_.find(peer);
  if (it == buckets_.end()) {
    if (buckets_.size() >= config_.peers_max) evict_one(now);
    it = buckets_.emplace(peer, Bucket{config_.burst, now}).first;
  }
  Bucket& b = it->second;
  const double elapsed = std::max(0.0, std::chrono::duration<double>(now - b.updated).count());
  b.tokens = std::min(config_.burst, b.tokens + elapsed * config_.requests_per_second);
  b.updated = now;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return std::nullopt;
  }
  const double wait_s = (1.0 - b.tokens) / config_.requests_per_second;
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(wait_s));
}

Middleware rate_limit_with(std::shared_ptr<RateLimiter> limiter) {
  MOOSICBOX_P2P_ASSERT(limiter);
  return [limiter](P2PRequest req, Next next) -> asio::awaitable<P2PResponse> {
    if (const auto wait = limiter->try_acquire(req.remote)) {
      const auto seconds = static_cast<long long>(std::ceil(std::chrono::duration<double>(*wait).count()));
      co_return P2PResponse::error(StatusCode::too_many_requests)
          .with_header("retry-after", std::to_string(std::max(1LL, seconds)));
    }
    co_return co_await next(std::move(req));
  };
}

void log_request(const RequestRecord& r) {
  const auto level = r.outcome == RequestOutcome::completed ? spdlog::level::info : spdlog::level::warn;
  logger().log(level, "router: {:s} {} {} -> {} {} in {} ({} B in, {} B out)", r.remote, r.method, r.path,
               status_value(r.status), request_outcome_name(r.outcome), format_duration(r.duration), r.bytes_received,
               r.bytes_sent);
}

void RequestMetrics::record(const RequestRecord& r) {
  ++requests;
  const auto s = status_value(r.status);
  if (s < 300) {
    ++status_2xx;
  } else if (s < 400) {
    ++status_3xx;
  } else if (s < 500) {
    ++status_4xx;
  } else {
    ++status_5xx;
  }
  ++outcomes[r.outcome];
  bytes_received += r.bytes_received;
  bytes_sent += r.bytes_sent;
  total_duration += r.duration;
  max_duration = std::max(max_duration, r.duration);
}

}  // namespace moosicbox::p2p::router
