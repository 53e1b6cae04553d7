// SPDX-License-Identifier: MIT OR Apache-2.0
// commands.cpp: the subcommands of moosicbox-p2p. Errors are one line on stderr and exit code 1.
#include "commands.hpp"

#include <fmt/format.h>

#include "moosicbox/p2p/core/secret_key.hpp"
#include "moosicbox/p2p/endpoint/node_addr.hpp"
#include "moosicbox/p2p/env/asio_env.hpp"

namespace moosicbox::p2p::cli {

namespace {
int error(const P2PError& e) {
  fmt::print(stderr, "error: {}\n", e.message());
  return 1;
}
}  // namespace

int keygen(const std::filesystem::path& path, bool force) {
  env::OsRandom rng;
  const auto key = SecretKey::generate(rng);
  if (auto ok = key.save(path, force); !ok) return error(ok.error());
  fmt::print("{}\n", key.public_key());
  return 0;
}

int id(const std::optional<std::filesystem::path>& path, bool hex) {
  std::optional<SecretKey> key;
  if (path) {
    auto loaded = SecretKey::load(*path);
    if (!loaded) return error(loaded.error());
    key = std::move(*loaded);
  } else {
    env::OsRandom rng;
    key = SecretKey::generate(rng);
  }
  const auto& pub = key->public_key();
  fmt::print("node id: {}\n", hex ? pub.to_hex() : pub.to_string());
  // Without a bound endpoint there is no address yet: this ticket names the node only
  // (`listen` prints one with its addresses).
  fmt::print("ticket:  {}\n", NodeAddr(pub).to_ticket());
  return 0;
}

}  // namespace moosicbox::p2p::cli
