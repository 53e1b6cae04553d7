// SPDX-License-Identifier: MIT OR Apache-2.0
// commands.hpp: the subcommands of moosicbox-p2p, apart from argument parsing (main.cpp).
// Each returns the process exit code and prints one clear line on error.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace moosicbox::p2p::cli {

/// keygen writes a new secret key to `path` (mode 0600) and prints its node id.
int keygen(const std::filesystem::path& path, bool force);
/// id prints the node id of the key at `path`, or of a fresh ephemeral key when none is given.
int id(const std::optional<std::filesystem::path>& path, bool hex);

}  // namespace moosicbox::p2p::cli
