// SPDX-License-Identifier: MIT OR Apache-2.0
// net_common.hpp: what the networked subcommands of moosicbox-p2p share: running a command on one
// io_context with SIGINT/SIGTERM handling, and building an endpoint configuration from the options.
// Single-threaded: one io_context thread per command.
#pragma once

#include <functional>

#include "cli_support.hpp"
#include "moosicbox/p2p/core/asio.hpp"
#include "moosicbox/p2p/endpoint/endpoint.hpp"
#include "net_commands.hpp"

namespace moosicbox::p2p::cli {

/// Finish ends a command early with an exit code (from any coroutine of the command).
using Finish = std::function<void(int)>;

/// run drives `task` on a fresh io_context and returns its exit code; SIGINT and SIGTERM end it
/// with kExitSignalBase + the signal number.
int run(const std::function<asio::awaitable<int>(asio::io_context&, Finish)>& task);

/// endpoint_config builds the configuration of `node` with `key`.
/// Errors: invalid_configuration for a bad bind address.
[[nodiscard]] P2PResult<EndpointConfig> endpoint_config(const NodeOptions& node, SecretKey key);

/// path_text describes a connection's path for people: "relay <url>" or "direct <addr>".
[[nodiscard]] std::string path_text(const PathInfo& p);
/// add_path_fields adds "path" ("relay" or "direct") and "relay" or "addr" to a JSON event.
void add_path_fields(boost::json::object& fields, const PathInfo& p);

/// check_bind reports the first malformed --bind address (a usage error).
[[nodiscard]] P2PResult<void> check_bind(const NodeOptions& node);

}  // namespace moosicbox::p2p::cli
