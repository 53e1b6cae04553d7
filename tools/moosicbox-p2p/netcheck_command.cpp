// SPDX-License-Identifier: MIT OR Apache-2.0
// netcheck_command.cpp: `moosicbox-p2p netcheck`: one io_context, one netcheck run (bounded by its
// timeout), then the report as text or one JSON object {"event":"netcheck", ...}.
// Layer: tools.
#include "netcheck_command.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <exception>

#include <fmt/format.h>

#include "cli_support.hpp"

namespace moosicbox::p2p::cli {

namespace json = boost::json;

namespace {

std::string yes_no(const std::optional<bool>& b) {
  if (!b) return "unknown";
  return *b ? "yes" : "no";
}

json::value optional_bool(const std::optional<bool>& b) {
  if (!b) return nullptr;
  return *b;
}

json::value optional_addr(const std::optional<env::SocketAddr>& a) {
  if (!a) return nullptr;
  return json::value(a->to_string());
}

std::string ports_text(const std::vector<std::uint16_t>& ports) {
  std::string s;
  for (auto p : ports) s += fmt::format("{}{}", s.empty() ? "" : ",", p);
  return s;
}

json::object to_json(const NetReport& r) {
  json::object o;
  o["udp"] = r.udp;
  o["ipv4"] = optional_addr(r.ipv4);
  o["ipv6"] = optional_addr(r.ipv6);
  o["mapping_varies_by_destination"] = optional_bool(r.mapping_varies_by_destination);
  o["nat"] = r.nat_kind;
  o["hairpinning"] = optional_bool(r.hairpinning);
  o["captive_portal"] = optional_bool(r.captive_portal);
  o["preferred_relay"] = r.preferred_relay ? json::value(*r.preferred_relay) : json::value(nullptr);
  json::array relays;
  for (const auto& rr : r.relays) {
    json::object x;
    x["url"] = rr.url;
    x["latency_ms"] = rr.latency ? json::value(ms(*rr.latency)) : json::value(nullptr);
    x["http_status"] = rr.http_status;
    x["genuine"] = rr.genuine;
    json::array ports;
    for (auto p : rr.stun_ports) ports.emplace_back(p);
    x["stun_ports"] = std::move(ports);
    x["stun_answered"] = rr.stun_answered;
    if (!rr.error.empty()) x["error"] = rr.error;
    relays.emplace_back(std::move(x));
  }
  o["relays"] = std::move(relays);
  return o;
}

}  // namespace

std::string format_netcheck(const NetReport& r) {
  std::string s = "Report:\n";
  s += fmt::format("  * UDP: {}\n", r.udp ? "yes" : "no");
  s += fmt::format("  * IPv4: {}\n", r.ipv4 ? fmt::format("yes, {}", r.ipv4->to_string()) : std::string("(none)"));
  s += fmt::format("  * IPv6: {}\n", r.ipv6 ? fmt::format("yes, {}", r.ipv6->to_string()) : std::string("(none)"));
  s += fmt::format("  * NAT: {}\n", r.nat_kind);
  s += fmt::format("  * Mapping varies by destination: {}\n", yes_no(r.mapping_varies_by_destination));
  s += fmt::format("  * Hairpinning: {}\n", r.hairpinning ? yes_no(r.hairpinning) : std::string("not tested"));
  s += fmt::format("  * Captive portal: {}\n", yes_no(r.captive_portal));
  s += fmt::format("  * Nearest relay: {}\n", r.preferred_relay ? *r.preferred_relay : std::string("(none)"));
  s += "  * Relays:\n";
  for (const auto& rr : r.relays) {
    std::string what;
    if (rr.latency && rr.genuine) {
      what = format_duration(*rr.latency);
    } else if (rr.http_status != 0) {
      what = fmt::format("not a relay (HTTP {} without the challenge echo)", rr.http_status);
    } else {
      what = fmt::format("unreachable ({})", rr.error);
    }
    if (!rr.stun_ports.empty()) {
      what += fmt::format(", STUN {} {}", ports_text(rr.stun_ports), rr.stun_answered ? "answered" : "silent");
    } else if (rr.genuine) {
      what += ", no STUN";
    }
    s += fmt::format("      - {}: {}\n", rr.url, what);
  }
  return s;
}

int netcheck(const NetcheckOptions& options) {
  const Output out(options.json);
  if (options.relays.empty()) return out.error("netcheck: give at least one --relay URL", kExitUsage);
  NetcheckConfig cfg;
  cfg.relay_urls = options.relays;
  cfg.relay_ca_file = options.relay_ca;
  cfg.timeout = std::chrono::seconds(options.timeout_secs);
  asio::io_context io(1);
  std::optional<P2PResult<NetReport>> result;
  std::exception_ptr failure;
  asio::co_spawn(io, p2p::netcheck(io.get_executor(), std::move(cfg)),
                 [&](std::exception_ptr e, P2PResult<NetReport> r) {
                   failure = e;
                   if (!e) result = std::move(r);
                 });
  io.run();
  if (failure || !result) return out.error("netcheck: the run failed", kExitFailure);
  if (!*result) {
    const auto& e = result->error();
    return out.error(e.message(), e.code() == P2PErrc::invalid_configuration ? kExitUsage : kExitFailure);
  }
  if (out.json()) {
    out.event("netcheck", to_json(**result));
  } else {
    const auto text = format_netcheck(**result);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  }
  return kExitOk;
}

}  // namespace moosicbox::p2p::cli
