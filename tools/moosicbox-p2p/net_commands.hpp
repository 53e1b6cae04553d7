// SPDX-License-Identifier: MIT OR Apache-2.0
// net_commands.hpp: the subcommands of moosicbox-p2p that use the network (real QUIC endpoints):
// listen, send and the loopback part of demo. Each returns the process exit code.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace moosicbox::p2p::cli {

/// NodeOptions are the options every networked command shares.
struct NodeOptions {
  std::optional<std::filesystem::path> key;  ///< key file; a fresh key when absent
  std::vector<std::string> bind;             ///< bind addresses; "[::]:0" when empty
  std::string alpn = "moosicbox-p2p/msg/1";  ///< application protocol
};

/// ListenOptions configures `listen`.
struct ListenOptions {
  NodeOptions node;
  bool echo = false;                   ///< send every message back
  std::optional<std::uint64_t> count;  ///< exit after this many messages
};

/// SendOptions configures `send`.
struct SendOptions {
  NodeOptions node;
  std::string ticket;                         ///< where to: a ticket or "<node_id>@addr,..."
  std::optional<std::string> text;            ///< the message
  std::optional<std::filesystem::path> file;  ///< or a file's content as the message
  bool wait_reply = false;                    ///< wait for one message back and print it
  std::uint32_t timeout_secs = 30;            ///< bound on the whole command
};

/// listen binds an endpoint, prints its node id and ticket, and prints the messages it receives
/// until interrupted (SIGINT, SIGTERM) or `count` messages arrived.
int listen(const ListenOptions& options);
/// send dials the ticket, sends one message, optionally waits for a reply, and reports the RTT.
int send(const SendOptions& options);
/// quic_demo runs two endpoints on loopback: connect by node id, messages, a request/response over
/// the router, and a short throughput figure.
int quic_demo();

}  // namespace moosicbox::p2p::cli
