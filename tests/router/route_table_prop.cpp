// SPDX-License-Identifier: MIT OR Apache-2.0
// route_table_prop.cpp: properties of the matcher against a brute-force reference: any registered
// path is found with its parameters, unknown paths give 404, other methods 405 with Allow, and
// registration refuses exactly the (method, shape) pairs already taken.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <optional>

#include "moosicbox/p2p/router/route_table.hpp"
#include "moosicbox/p2p/router/uri.hpp"

namespace moosicbox::p2p::router {
namespace {

using Kind = RoutePattern::SegmentKind;

struct GenRoute {
  Method method;
  std::vector<RoutePattern::Segment> segments;
  std::string text() const {
    if (segments.empty()) return "/";
    std::string out;
    for (const auto& s : segments) {
      out += s.kind == Kind::literal ? "/" + s.text : s.kind == Kind::param ? "/:" + s.text : "/*" + s.text;
    }
    return out;
  }
};

const std::vector<std::string> kLiterals = {"a", "b", "tracks", "caf\xc3\xa9"};
// Values a request may carry: some equal literals (to create overlaps), some need escaping.
const std::vector<std::string> kValues = {"a", "b", "tracks", "v1", "x y", "%", "\xf0\x9f\x8e\xb5", "42", ""};
const std::vector<std::string> kFreshValues = {"v1", "x y", "%", "\xf0\x9f\x8e\xb5", "42"};

rc::Gen<Method> gen_method() {
  return rc::gen::map(rc::gen::inRange(1, 8), [](int c) { return static_cast<Method>(c); });
}

rc::Gen<GenRoute> gen_route() {
  return rc::gen::exec([] {
    GenRoute r;
    r.method = *gen_method();
    const int n = *rc::gen::inRange(0, 5);
    for (int i = 0; i < n; ++i) {
      const int pick = *rc::gen::inRange(0, 10);
      const std::string name = "n" + std::to_string(i) + "_" + std::to_string(*rc::gen::inRange(0, 2));
      if (pick < 5) {
        r.segments.push_back({Kind::literal, *rc::gen::elementOf(kLiterals)});
      } else if (pick < 8 || i + 1 < n) {
        r.segments.push_back({Kind::param, name});
      } else {
        r.segments.push_back({Kind::wildcard, name});
      }
    }
    return r;
  });
}

std::string shape(const GenRoute& r) {
  std::string s;
  for (const auto& seg : r.segments)
    s += "/" + (seg.kind == Kind::literal ? seg.text : seg.kind == Kind::param ? ":" : "*");
  return s;
}

// matches returns the captured values when `r` matches the decoded segments.
std::optional<std::vector<std::string>> matches(const GenRoute& r, const std::vector<std::string>& segs) {
  std::vector<std::string> values;
  std::size_t i = 0;
  for (const auto& seg : r.segments) {
    if (seg.kind == Kind::wildcard) {
      std::string rest;
      for (std::size_t k = i; k < segs.size(); ++k) rest += (k > i ? "/" : "") + segs[k];
      if (rest.empty()) return std::nullopt;
      values.push_back(rest);
      return values;
    }
    if (i >= segs.size()) return std::nullopt;
    if (seg.kind == Kind::literal && seg.text != segs[i]) return std::nullopt;
    if (seg.kind == Kind::param) {
      if (segs[i].empty()) return std::nullopt;
      values.push_back(segs[i]);
    }
    ++i;
  }
  if (i != segs.size()) return std::nullopt;
  return values;
}

std::vector<int> kinds(const GenRoute& r) {
  std::vector<int> k;
  for (const auto& s : r.segments) k.push_back(static_cast<int>(s.kind));
  return k;
}

// reference: the most specific matching shape (lexicographic on segment kinds), then the method.
Match reference(const std::vector<GenRoute>& routes, Method method, const std::vector<std::string>& segs) {
  Match out;
  const GenRoute* best = nullptr;
  for (const auto& r : routes) {
    if (!matches(r, segs)) continue;
    if (best == nullptr || kinds(r) < kinds(*best)) best = &r;
  }
  if (best == nullptr) return out;
  std::vector<const GenRoute*> same;
  for (const auto& r : routes) {
    if (shape(r) == shape(*best)) same.push_back(&r);
  }
  const GenRoute* hit = nullptr;
  const GenRoute* get = nullptr;
  for (const auto* r : same) {
    if (r->method == method) hit = r;
    if (r->method == Method::GET) get = r;
  }
  if (hit == nullptr && method == Method::HEAD && get != nullptr) {
    hit = get;
    out.head_from_get = true;
  }
  if (hit != nullptr) {
    out.kind = MatchKind::found;
    out.route = static_cast<RouteId>(hit - routes.data());
    const auto values = *matches(*hit, segs);
    std::size_t v = 0;
    for (const auto& seg : hit->segments) {
      if (seg.kind != Kind::literal) out.params.add(seg.text, values[v++]);
    }
    return out;
  }
  for (const auto* r : same) out.allowed.push_back(r->method);
  if (get != nullptr) out.allowed.push_back(Method::HEAD);
  out.allowed.push_back(Method::OPTIONS);
  std::ranges::sort(out.allowed);
  out.allowed.erase(std::ranges::unique(out.allowed).begin(), out.allowed.end());
  out.kind = method == Method::OPTIONS ? MatchKind::options : MatchKind::method_not_allowed;
  return out;
}

std::string raw_path(const std::vector<std::string>& segs) {
  if (segs.empty()) return "/";
  std::string out;
  for (const auto& s : segs) out += "/" + percent_encode(s);
  return out;
}

std::vector<std::string> instantiate(const GenRoute& r, const std::vector<std::string>& values) {
  std::vector<std::string> segs;
  for (const auto& seg : r.segments) {
    if (seg.kind == Kind::literal) {
      segs.push_back(seg.text);
    } else if (seg.kind == Kind::param) {
      segs.push_back(*rc::gen::elementOf(values));
    } else {
      const int n = *rc::gen::inRange(1, 4);
      for (int i = 0; i < n; ++i) segs.push_back(*rc::gen::elementOf(values));
    }
  }
  return segs;
}

// build registers the routes, keeping the accepted ones in id order.
std::vector<GenRoute> build(const std::vector<GenRoute>& candidates, RouteTable& table) {
  std::vector<GenRoute> accepted;
  std::map<std::pair<Method, std::string>, bool> taken;
  for (const auto& r : candidates) {
    const bool conflict = taken.contains({r.method, shape(r)});
    const auto result = table.add(r.method, r.text(), static_cast<RouteId>(accepted.size()));
    RC_ASSERT(result.has_value() == !conflict);
    if (result) {
      taken[{r.method, shape(r)}] = true;
      accepted.push_back(r);
    }
  }
  return accepted;
}

void check_same(const Match& got, const Match& want) {
  RC_ASSERT(got.kind == want.kind);
  if (want.kind == MatchKind::found) {
    RC_ASSERT(got.route == want.route);
    RC_ASSERT(got.params == want.params);
    RC_ASSERT(got.head_from_get == want.head_from_get);
  } else {
    RC_ASSERT(got.allowed == want.allowed);
  }
}

RC_GTEST_PROP(RouteTableProp, AgreesWithReferenceOnAnyPath, ()) {
  const auto candidates =
      *rc::gen::container<std::vector<GenRoute>>(*rc::gen::inRange<std::size_t>(1, 12), gen_route());
  RouteTable table;
  const auto routes = build(candidates, table);
  RC_ASSERT(table.route_count() == routes.size());
  for (int i = 0; i < 20; ++i) {
    std::vector<std::string> segs;
    if (!routes.empty() && *rc::gen::arbitrary<bool>()) {
      segs = instantiate(*rc::gen::elementOf(routes), kValues);
    } else {
      segs = *rc::gen::container<std::vector<std::string>>(*rc::gen::inRange<std::size_t>(0, 5),
                                                           rc::gen::elementOf(kValues));
    }
    const auto method = *gen_method();
    // "/" is the root whatever the segments were: compare on what the path decodes to.
    const auto raw = raw_path(segs);
    const auto decoded = decode_path(raw);
    RC_ASSERT(decoded.has_value());
    check_same(table.match(method, raw), reference(routes, method, *decoded));
  }
}

RC_GTEST_PROP(RouteTableProp, FindsAnyRegisteredPathWithItsParams, ()) {
  const auto candidates =
      *rc::gen::container<std::vector<GenRoute>>(*rc::gen::inRange<std::size_t>(1, 12), gen_route());
  RouteTable table;
  const auto routes = build(candidates, table);
  for (RouteId id = 0; id < routes.size(); ++id) {
    const auto& r = routes[id];
    if (std::ranges::any_of(r.segments, [](const auto& s) { return s.kind == Kind::wildcard; })) continue;
    // Fresh values equal no literal, so no other pattern is more specific than r for this path.
    const auto segs = instantiate(r, kFreshValues);
    const auto m = table.match(r.method, raw_path(segs));
    RC_ASSERT(m.kind == MatchKind::found);
    RC_ASSERT(m.route == id);
    std::size_t v = 0;
    for (std::size_t i = 0; i < r.segments.size(); ++i) {
      if (r.segments[i].kind == Kind::param) {
        RC_ASSERT(m.params.get(r.segments[i].text) == std::optional<std::string_view>(segs[i]));
        ++v;
      }
    }
    RC_ASSERT(m.params.size() == v);
  }
}

RC_GTEST_PROP(RouteTableProp, UnknownPathsGive404AndOtherMethods405, ()) {
  const auto candidates = *rc::gen::container<std::vector<GenRoute>>(*rc::gen::inRange<std::size_t>(1, 8), gen_route());
  RouteTable table;
  const auto routes = build(candidates, table);
  // A segment no pattern can name as a literal, appended past every pattern's length, matches only
  // through a wildcard.
  std::vector<std::string> segs(6, "zz");
  const bool any_wildcard = std::ranges::any_of(
      routes, [](const GenRoute& r) { return !r.segments.empty() && r.segments.back().kind == Kind::wildcard; });
  const auto m = table.match(Method::GET, raw_path(segs));
  if (!any_wildcard) RC_ASSERT(m.kind == MatchKind::not_found);

  for (const auto& r : routes) {
    const auto path = raw_path(instantiate(r, kFreshValues));
    for (std::uint8_t c = 1; c <= kMethodCount; ++c) {
      const auto method = static_cast<Method>(c);
      const auto got = table.match(method, path);
      RC_ASSERT(got.kind != MatchKind::not_found);
      if (got.kind == MatchKind::method_not_allowed) {
        RC_ASSERT(std::ranges::find(got.allowed, method) == got.allowed.end());
        RC_ASSERT(std::ranges::find(got.allowed, Method::OPTIONS) != got.allowed.end());
      }
    }
  }
}

}  // namespace
}  // namespace moosicbox::p2p::router
