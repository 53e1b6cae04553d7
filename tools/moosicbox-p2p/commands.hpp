// SPDX-License-Identifier: MIT OR Apache-2.0
// commands.hpp: the subcommands of moosicbox-p2p that need no network (keygen, id), apart from
// argument parsing (main.cpp). Each returns the process exit code (cli_support.hpp) and prints one
// clear line on error.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "cli_support.hpp"

namespace moosicbox::p2p::cli {

/// keygen writes a new secret key to `path` (mode 0600) and prints its node id (a {"event":"keygen"}
/// object with `json`).
int keygen(const std::filesystem::path& path, bool force, bool json);
/// id prints the node id and a ticket of the chosen key (the persistent default key unless --key or
/// --ephemeral), in hex with `hex`, as one {"event":"id"} object with `json`.
int id(const KeyChoice& key, bool hex, bool json);

}  // namespace moosicbox::p2p::cli
