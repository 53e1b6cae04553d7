// SPDX-License-Identifier: MIT OR Apache-2.0
// net_common.cpp: the io_context runner and endpoint configuration of the networked subcommands.
// Single-threaded (see net_common.hpp).
#include "net_common.hpp"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstdio>

namespace moosicbox::p2p::cli {

int run(const std::function<asio::awaitable<int>(asio::io_context&, Finish)>& task) {
  asio::io_context io(1);
  std::optional<int> code;
  Finish finish = [&](int rc) {
    code = code.value_or(rc);
    io.stop();
  };
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (!ec) {
      fmt::print(stderr, "interrupted\n");
      code = code.value_or(kExitSignalBase + signo);
      io.stop();
    }
  });
  asio::co_spawn(io, task(io, finish), [&](std::exception_ptr e, int rc) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        fmt::print(stderr, "error: {}\n", ex.what());
      }
      rc = kExitFailure;
    }
    code = code.value_or(rc);
    signals.cancel();
  });
  io.run();
  return code.value_or(kExitFailure);
}

std::string path_text(const PathInfo& p) {
  if (p.kind == PathKind::relay) return fmt::format("relay {}", p.relay_url.value_or("?"));
  return fmt::format("direct {}", p.remote_addr);
}

void add_path_fields(boost::json::object& fields, const PathInfo& p) {
  fields["path"] = path_kind_name(p.kind);
  if (p.kind == PathKind::relay) {
    fields["relay"] = p.relay_url ? boost::json::value(*p.relay_url) : boost::json::value(nullptr);
  } else {
    fields["addr"] = p.remote_addr.to_string();
  }
}

P2PResult<void> check_bind(const NodeOptions& node) {
  for (const auto& text : node.bind) {
    auto addr = SocketAddr::parse(text);
    if (!addr) return fail(P2PError::invalid_configuration(fmt::format("--bind {}: {}", text, addr.error().message())));
  }
  return {};
}

P2PResult<EndpointConfig> endpoint_config(const NodeOptions& node, SecretKey key) {
  EndpointConfig cfg(std::move(key));
  if (!node.bind.empty()) {
    cfg.bind_addrs.clear();
    for (const auto& text : node.bind) {
      auto addr = SocketAddr::parse(text);
      if (!addr) return fail(addr.error());
      cfg.bind_addrs.push_back(*addr);
    }
  }
  cfg.alpns = {node.alpn};
  for (const auto& url : node.relays) {
    if (auto ok = NodeAddr::validate_relay_url(url); !ok) {
      return fail(P2PError::invalid_configuration(fmt::format("--relay {}: {}", url, ok.error().message())));
    }
  }
  if (node.no_direct && node.relays.empty()) {
    return fail(P2PError::invalid_configuration("--no-direct needs at least one --relay"));
  }
  cfg.relay_urls = node.relays;
  cfg.relay_ca_file = node.relay_ca;
  cfg.direct_paths = !node.no_direct;
  return cfg;
}

}  // namespace moosicbox::p2p::cli
