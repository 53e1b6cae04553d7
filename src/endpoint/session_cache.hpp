// SPDX-License-Identifier: MIT OR Apache-2.0
// session_cache.hpp: SessionCache, the client side of resumption: the newest session ticket of each
// (peer, application protocol), bounded, oldest dropped first, each ticket used once (RFC 8446
// §C.4: a reused ticket lets observers link connections) and forgotten once the server would no
// longer take it.
// Layer: endpoint (private). Not thread-safe: the endpoint's strand owns it.
#pragma once

#include <cstddef>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "moosicbox/p2p/core/node_id.hpp"
#include "moosicbox/p2p/core/time.hpp"
#include "quic/types.hpp"

namespace moosicbox::p2p::detail {

/// SessionCache maps (node id, ALPN) to the newest ticket.
class SessionCache {
 public:
  /// SessionCache keeps at most `capacity` tickets (0: none), each for `lifetime` after it arrived.
  SessionCache(std::size_t capacity, Duration lifetime) : capacity_(capacity), lifetime_(lifetime) {}

  /// put stores `ticket` for (`peer`, `alpn`), replacing an older one.
  void put(const NodeId& peer, const std::string& alpn, quic::SessionTicket ticket, TimePoint now) {
    if (capacity_ == 0) return;
    Key key{peer, alpn};
    if (auto it = index_.find(key); it != index_.end()) {
      order_.erase(it->second);
      index_.erase(it);
    }
    while (index_.size() >= capacity_) {
      index_.erase(order_.front().key);
      order_.pop_front();
    }
    order_.push_back(Entry{key, std::move(ticket), now + lifetime_});
    index_.emplace(std::move(key), std::prev(order_.end()));
  }

  /// take removes and returns the ticket for (`peer`, `alpn`), unless none or it expired.
  [[nodiscard]] std::optional<quic::SessionTicket> take(const NodeId& peer, const std::string& alpn, TimePoint now) {
    const auto it = index_.find(Key{peer, alpn});
    if (it == index_.end()) return std::nullopt;
    Entry e = std::move(*it->second);
    order_.erase(it->second);
    index_.erase(it);
    if (now >= e.expires) return std::nullopt;
    return std::move(e.ticket);
  }

  /// contains reports whether a usable ticket for (`peer`, `alpn`) is held.
  [[nodiscard]] bool contains(const NodeId& peer, const std::string& alpn, TimePoint now) const {
    const auto it = index_.find(Key{peer, alpn});
    return it != index_.end() && now < it->second->expires;
  }

  /// size returns the tickets held.
  [[nodiscard]] std::size_t size() const noexcept { return index_.size(); }

 private:
  using Key = std::pair<NodeId, std::string>;
  struct Entry {
    Key key;
    quic::SessionTicket ticket;
    TimePoint expires;
  };
  std::size_t capacity_;
  Duration lifetime_;
  std::list<Entry> order_;  // oldest first
  std::map<Key, std::list<Entry>::iterator> index_;
};

}  // namespace moosicbox::p2p::detail
