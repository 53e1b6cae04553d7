// SPDX-License-Identifier: MIT OR Apache-2.0
// net_commands.hpp: the subcommands of moosicbox-p2p that use the network (real QUIC endpoints):
// listen, send, ping, pipe and the loopback part of demo. Each returns the process exit code
// (cli_support.hpp). The stream protocol the CLI speaks on top of messages (ping, pipe, file) is
// described in docs/cli.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace moosicbox::p2p::cli {

/// NodeOptions are the options every networked command shares.
struct NodeOptions {
  std::optional<std::filesystem::path> key;  ///< key file
  bool ephemeral = false;                    ///< listen: a throwaway key instead of the default key
  std::vector<std::string> bind;             ///< bind addresses; "[::]:0" when empty
  std::string alpn = "moosicbox-p2p/msg/1";  ///< application protocol
  std::vector<std::string> relays;           ///< relay URLs (the nearest becomes the home relay)
  std::optional<std::string> relay_ca;       ///< PEM bundle verifying https relays
  bool no_direct = false;                    ///< relays only
};

/// ListenOptions configures `listen`.
struct ListenOptions {
  NodeOptions node;
  bool echo = false;                         ///< send every message back
  std::optional<std::uint64_t> count;        ///< exit after this many messages and files
  bool json = false;                         ///< one JSON object per line per event
  bool pipe = false;                         ///< copy stdin/stdout over the first pipe stream, then exit
  std::optional<std::filesystem::path> out;  ///< store received files in this directory
};

/// SendOptions configures `send`.
struct SendOptions {
  NodeOptions node;
  std::string ticket;                         ///< where to: a ticket or "<node_id>@addr,..."
  std::optional<std::string> text;            ///< the message
  std::optional<std::filesystem::path> file;  ///< or a file, streamed
  bool wait_reply = false;                    ///< wait for one message back and print it
  std::uint32_t timeout_secs = 30;            ///< bound on a text message's whole exchange, on a file's connect
  bool json = false;                          ///< print one JSON object
  bool progress = true;                       ///< a progress bar on stderr when it is a terminal
};

/// PingOptions configures `ping`.
struct PingOptions {
  NodeOptions node;
  std::string ticket;
  std::uint32_t count = 4;           ///< probes to send
  std::uint32_t interval_ms = 1000;  ///< pause between probes
  std::uint32_t timeout_secs = 5;    ///< bound on the connect and on each probe's answer
  bool json = false;                 ///< one JSON object per line per event
};

/// PipeOptions configures `pipe`.
struct PipeOptions {
  NodeOptions node;
  std::string ticket;
  std::uint32_t timeout_secs = 30;  ///< bound on the connect
};

/// listen binds an endpoint, prints its node id and ticket, and serves messages, pings, files (with
/// `out`) and one pipe (with `pipe`) until interrupted (SIGINT, SIGTERM), `count` messages and
/// files arrived, or the pipe finished.
int listen(const ListenOptions& options);
/// send dials the ticket, sends one message (or streams a file), optionally waits for a reply, and
/// reports the RTT.
int send(const SendOptions& options);
/// ping dials the ticket and measures `count` round trips on a ping stream.
int ping(const PingOptions& options);
/// pipe dials the ticket and copies stdin to one bidirectional stream and the stream to stdout.
int pipe(const PipeOptions& options);
/// quic_demo runs two endpoints on loopback: connect by node id, messages, a request/response over
/// the router, and a short throughput figure.
int quic_demo();

}  // namespace moosicbox::p2p::cli
