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
  return cfg;
}

}  // namespace moosicbox::p2p::cli
