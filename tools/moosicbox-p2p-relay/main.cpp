// SPDX-License-Identifier: MIT OR Apache-2.0
// main.cpp: moosicbox-p2p-relay, the relay server as a program: reads the config file and the
// flags (relay_config.hpp), runs a RelayServer on one io_context thread, prints one line with its
// URL, and on SIGTERM or SIGINT shuts down gracefully (clients are told the relay is restarting),
// within kShutdownLimit. Exit codes: 0 done, 1 runtime failure (an address cannot be bound),
// 2 bad configuration or arguments (one `error: ...` line on stderr).
// Layer: tools. Single-threaded: everything runs on main()'s io_context.
#include <CLI/CLI.hpp>

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <csignal>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>

#include "moosicbox/p2p/build_config.hpp"
#include "moosicbox/p2p/core/log.hpp"
#include "relay_config.hpp"

namespace p2p = moosicbox::p2p;
namespace asio = boost::asio;

namespace {

// How long a graceful shutdown may take before the process stops anyway: the restart announcement
// is one frame per client, and sessions end as soon as it is written.
constexpr std::chrono::seconds kShutdownLimit{10};

int config_error(const p2p::P2PError& e) {
  std::fprintf(stderr, "error: %s\n", e.message().c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"moosicbox-p2p-relay: the relay moosicbox-p2p nodes fall back to when no direct path exists"};
  app.set_version_flag("--version", P2P_VERSION_STRING);
  p2p::cli::RelayFlags flags;
  bool print_config = false;
  app.add_option("--config", flags.config, "Config file (key = value lines; see docs/operations.md)");
  app.add_option("--bind", flags.bind,
                 "TCP address to listen on, repeatable; replaces the file's bind (default 127.0.0.1:3340, "
                 "loopback only: pass --bind 0.0.0.0:3340 --bind [::]:3340 to serve others)");
  app.add_option("--stun", flags.stun,
                 "UDP address of the STUN responder, repeatable; replaces the file's stun (default: port 3478 on "
                 "the IPs of the bind addresses)");
  app.add_flag("--no-stun", flags.no_stun, "Run no STUN responder");
  app.add_option("--tls-cert", flags.tls_cert, "TLS certificate chain (PEM); with --tls-key, serve https/wss");
  app.add_option("--tls-key", flags.tls_key, "TLS private key (PEM) of --tls-cert");
  app.add_flag("--trust-forwarded-for", flags.trust_forwarded_for,
               "Take the client address from X-Forwarded-For (only behind a proxy that sets it)");
  app.add_option("--log-level", flags.log_level, "trace, debug, info (default), warn, error or off");
  app.add_flag("--print-config", print_config, "Print the effective configuration (a config file) and exit");
  app.footer(
      "Exit codes: 0 ok (also after SIGTERM/SIGINT), 1 runtime failure (cannot bind), 2 bad configuration or "
      "arguments.\nExamples:\n  moosicbox-p2p-relay\n  moosicbox-p2p-relay --config /etc/moosicbox-p2p-relay.conf\n"
      "  moosicbox-p2p-relay --bind 127.0.0.1:3340 --trust-forwarded-for   # behind nginx\n"
      "docs/operations.md (\"Running a relay\") is the reference.");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Help and version exit 0; every usage error exits 2 after one line.
    return app.exit(e) == 0 ? 0 : 2;
  }

  auto env_level = p2p::log_level_from_env();
  if (!env_level) return config_error(env_level.error());
  auto config = p2p::cli::resolve_relay_config(flags, *env_level);
  if (!config) return config_error(config.error());
  if (print_config) {
    const auto text = p2p::cli::format_relay_config(*config);
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }
  p2p::set_log_level(config->log_level);

  asio::io_context io(1);
  // Registered before the server starts, so a signal during start-up is a shutdown, not a kill.
  asio::signal_set signals(io, SIGINT, SIGTERM);
  auto server = p2p::relay::RelayServer::create(io.get_executor(), config->server);
  if (!server) {
    std::fprintf(stderr, "error: %s\n", server.error().message().c_str());
    return server.error().code() == p2p::P2PErrc::invalid_configuration ? 2 : 1;
  }
  std::string line = fmt::format("relay: serving {}", server->url());
  const auto addrs = server->local_addrs();
  for (std::size_t i = 1; i < addrs.size(); ++i)
    line += fmt::format("{}{}", i == 1 ? " (also " : ", ", addrs[i].to_string());
  if (addrs.size() > 1) line += ")";
  const auto stun = server->local_stun_addrs();
  for (std::size_t i = 0; i < stun.size(); ++i)
    line += fmt::format("{}{}", i == 0 ? "; STUN on udp " : ", ", stun[i].to_string());
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);

  asio::steady_timer limit(io);
  bool stopping = false;
  bool forced = false;
  const auto on_signal = [&](auto& self, const boost::system::error_code& ec, int signo) -> void {
    if (ec) return;
    if (stopping) {
      // A second signal stops at once.
      forced = true;
      io.stop();
      return;
    }
    stopping = true;
    std::fprintf(stderr, "relay: signal %d, shutting down (clients are told to reconnect)\n", signo);
    std::fflush(stderr);
    signals.async_wait([&self](const boost::system::error_code& e, int n) { self(self, e, n); });
    limit.expires_after(kShutdownLimit);
    limit.async_wait([&](const boost::system::error_code& e) {
      if (e) return;
      std::fprintf(stderr, "relay: shutdown did not finish within %llds; stopping\n",
                   static_cast<long long>(kShutdownLimit.count()));
      forced = true;
      io.stop();
    });
    asio::co_spawn(io, server->shutdown(true), [&](std::exception_ptr) {
      limit.cancel();
      signals.cancel();
      io.stop();
    });
  };
  signals.async_wait([&](const boost::system::error_code& ec, int signo) { on_signal(on_signal, ec, signo); });
  io.run();
  if (!forced) std::fprintf(stderr, "relay: stopped\n");
  return 0;
}
