// SPDX-License-Identifier: MIT OR Apache-2.0
// route_table.cpp: pattern parsing and the segment trie behind RouteTable. Nodes live in one vector
// and refer to each other by index, so a table copies by value and a copy is independent.
// Layer: router. Matching is const; registration is not thread-safe.
#include "moosicbox/p2p/router/route_table.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "moosicbox/p2p/core/assert.hpp"
#include "moosicbox/p2p/router/uri.hpp"

namespace moosicbox::p2p::router {

namespace {
bool is_name_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

P2PError bad_pattern(std::string_view pattern, std::string_view why) {
  return P2PError::invalid_configuration(fmt::format("route pattern '{}': {}", pattern, why));
}
}  // namespace

std::optional<std::string_view> PathParams::get(std::string_view name) const noexcept {
  for (const auto& [n, v] : params_) {
    if (n == name) return std::string_view(v);
  }
  return std::nullopt;
}

P2PResult<RoutePattern> RoutePattern::parse(std::string_view pattern) {
  if (pattern.empty() || pattern.front() != '/') return fail(bad_pattern(pattern, "must start with '/'"));
  RoutePattern out;
  out.text_ = std::string(pattern);
  if (pattern == "/") return out;
  std::string_view rest = pattern.substr(1);
  std::vector<std::string_view> names;
  while (true) {
    const auto slash = rest.find('/');
    const auto seg = rest.substr(0, slash);
    if (seg.empty()) return fail(bad_pattern(pattern, "empty segment or trailing '/'"));
    if (!out.segments_.empty() && out.segments_.back().kind == SegmentKind::wildcard) {
      return fail(bad_pattern(pattern, "a wildcard must be the last segment"));
    }
    if (seg.front() == ':' || seg.front() == '*') {
      const auto name = seg.substr(1);
      if (name.empty() || !std::ranges::all_of(name, is_name_char)) {
        return fail(bad_pattern(pattern, "parameter and wildcard names are [A-Za-z0-9_]+"));
      }
      if (std::ranges::find(names, name) != names.end()) {
        return fail(bad_pattern(pattern, fmt::format("name '{}' is used twice", name)));
      }
      names.push_back(name);
      out.segments_.push_back(
          Segment{seg.front() == ':' ? SegmentKind::param : SegmentKind::wildcard, std::string(name)});
    } else {
      if (seg == "." || seg == "..") return fail(bad_pattern(pattern, "'.' and '..' segments never match"));
      if (!is_valid_utf8(seg)) return fail(bad_pattern(pattern, "not valid UTF-8"));
      out.segments_.push_back(Segment{SegmentKind::literal, std::string(seg)});
    }
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  return out;
}

std::string RoutePattern::shape() const {
  if (segments_.empty()) return "/";
  std::string out;
  for (const auto& s : segments_) {
    out.push_back('/');
    switch (s.kind) {
      case SegmentKind::literal:
        out += s.text;
        break;
      case SegmentKind::param:
        out.push_back(':');
        break;
      case SegmentKind::wildcard:
        out.push_back('*');
        break;
    }
  }
  return out;
}

std::expected<std::vector<std::string>, PathError> decode_path(std::string_view raw_path) {
  if (raw_path.empty() || raw_path.front() != '/') return std::unexpected(PathError::malformed);
  std::vector<std::string> segs;
  if (raw_path == "/") return segs;
  std::string_view rest = raw_path.substr(1);
  while (true) {
    const auto slash = rest.find('/');
    auto decoded = percent_decode(rest.substr(0, slash));
    if (!decoded) return std::unexpected(PathError::malformed);
    if (!is_valid_utf8(*decoded)) return std::unexpected(PathError::invalid_utf8);
    // Dot segments and encoded separators would let a path name something outside what its
    // segments say (a wildcard that serves files would follow them); refuse them outright.
    if (*decoded == "." || *decoded == ".." || decoded->find('/') != std::string::npos ||
        decoded->find('\0') != std::string::npos) {
      return std::unexpected(PathError::forbidden);
    }
    segs.push_back(std::move(*decoded));
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  return segs;
}

std::string format_allow(const std::vector<Method>& methods) {
  std::string out;
  for (const auto m : methods) {
    if (!out.empty()) out += ", ";
    out += method_name(m);
  }
  return out;
}

P2PResult<void> RouteTable::add(Method method, std::string_view pattern, RouteId id) {
  auto parsed = RoutePattern::parse(pattern);
  if (!parsed) return fail(std::move(parsed.error()));

  // Walk without creating first, so a refused registration leaves the table untouched.
  std::uint32_t node = 0;
  bool exists = true;
  for (const auto& seg : parsed->segments()) {
    const Node& n = nodes_[node];
    std::uint32_t next = kNone;
    switch (seg.kind) {
      case RoutePattern::SegmentKind::literal: {
        const auto it =
            std::ranges::lower_bound(n.literals, seg.text, {}, &std::pair<std::string, std::uint32_t>::first);
        if (it != n.literals.end() && it->first == seg.text) next = it->second;
        break;
      }
      case RoutePattern::SegmentKind::param:
        next = n.param;
        break;
      case RoutePattern::SegmentKind::wildcard:
        next = n.wildcard;
        break;
    }
    if (next == kNone) {
      exists = false;
      break;
    }
    node = next;
  }
  if (exists) {
    for (const auto& e : nodes_[node].entries) {
      if (e.method == method) {
        return fail(P2PError::invalid_configuration(fmt::format("route {} {} conflicts with {} {} (same paths)",
                                                                method_name(method), pattern, method_name(e.method),
                                                                e.pattern)));
      }
    }
  }

  node = 0;
  std::vector<std::string> names;
  for (const auto& seg : parsed->segments()) {
    std::uint32_t next = kNone;
    switch (seg.kind) {
      case RoutePattern::SegmentKind::literal: {
        auto& lits = nodes_[node].literals;
        const auto it = std::ranges::lower_bound(lits, seg.text, {}, &std::pair<std::string, std::uint32_t>::first);
        if (it != lits.end() && it->first == seg.text) {
          next = it->second;
        } else {
          next = static_cast<std::uint32_t>(nodes_.size());
          lits.insert(it, {seg.text, next});
          nodes_.emplace_back();
        }
        break;
      }
      case RoutePattern::SegmentKind::param:
        names.push_back(seg.text);
        next = nodes_[node].param;
        if (next == kNone) {
          next = static_cast<std::uint32_t>(nodes_.size());
          nodes_[node].param = next;
          nodes_.emplace_back();
        }
        break;
      case RoutePattern::SegmentKind::wildcard:
        names.push_back(seg.text);
        next = nodes_[node].wildcard;
        if (next == kNone) {
          next = static_cast<std::uint32_t>(nodes_.size());
          nodes_[node].wildcard = next;
          nodes_.emplace_back();
        }
        break;
    }
    node = next;
  }
  nodes_[node].entries.push_back(Entry{method, id, std::string(pattern), std::move(names)});
  ++route_count_;
  return {};
}

bool RouteTable::find(std::uint32_t node, const std::vector<std::string>& segs, std::size_t at,
                      std::vector<std::string>& values, std::uint32_t& found) const {
  const Node& n = nodes_[node];
  if (at == segs.size()) {
    if (n.entries.empty()) return false;
    found = node;
    return true;
  }
  const auto& seg = segs[at];
  // Precedence: literal, then parameter, then wildcard; backtrack when a branch dead-ends.
  const auto it = std::ranges::lower_bound(n.literals, seg, {}, &std::pair<std::string, std::uint32_t>::first);
  if (it != n.literals.end() && it->first == seg) {
    if (find(it->second, segs, at + 1, values, found)) return true;
  }
  if (n.param != kNone && !seg.empty()) {
    values.push_back(seg);
    if (find(n.param, segs, at + 1, values, found)) return true;
    values.pop_back();
  }
  if (n.wildcard != kNone) {
    std::string rest;
    for (std::size_t i = at; i < segs.size(); ++i) {
      if (i > at) rest.push_back('/');
      rest += segs[i];
    }
    if (!rest.empty() && !nodes_[n.wildcard].entries.empty()) {
      values.push_back(std::move(rest));
      found = n.wildcard;
      return true;
    }
  }
  return false;
}

Match RouteTable::match(Method method, std::string_view raw_path) const {
  Match out;
  auto segs = decode_path(raw_path);
  if (!segs) {
    out.kind = MatchKind::bad_path;
    out.path_error = segs.error();
    return out;
  }
  std::vector<std::string> values;
  std::uint32_t node = kNone;
  if (!find(0, *segs, 0, values, node)) {
    out.kind = MatchKind::not_found;
    return out;
  }
  const auto& entries = nodes_[node].entries;
  MOOSICBOX_P2P_ASSERT(!entries.empty());
  const Entry* hit = nullptr;
  const Entry* get = nullptr;
  for (const auto& e : entries) {
    if (e.method == method) hit = &e;
    if (e.method == Method::GET) get = &e;
  }
  if (hit == nullptr && method == Method::HEAD && get != nullptr) {
    hit = get;
    out.head_from_get = true;
  }
  if (hit != nullptr) {
    MOOSICBOX_P2P_ASSERT(hit->names.size() == values.size());
    out.kind = MatchKind::found;
    out.route = hit->id;
    out.pattern = hit->pattern;
    for (std::size_t i = 0; i < values.size(); ++i) out.params.add(hit->names[i], std::move(values[i]));
    return out;
  }
  for (const auto& e : entries) out.allowed.push_back(e.method);
  if (get != nullptr) out.allowed.push_back(Method::HEAD);
  out.allowed.push_back(Method::OPTIONS);
  std::ranges::sort(out.allowed);
  const auto dup = std::ranges::unique(out.allowed);
  out.allowed.erase(dup.begin(), dup.end());
  out.pattern = entries.front().pattern;
  out.kind = method == Method::OPTIONS ? MatchKind::options : MatchKind::method_not_allowed;
  return out;
}

}  // namespace moosicbox::p2p::router
