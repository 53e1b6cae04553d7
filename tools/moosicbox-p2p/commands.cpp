// SPDX-License-Identifier: MIT OR Apache-2.0
// commands.cpp: the subcommands of moosicbox-p2p without network: keygen and id. Errors are one line
// on stderr (and an error object with --json) with the exit codes of cli_support.hpp.
#include "commands.hpp"

#include <fmt/format.h>

#include "moosicbox/p2p/core/secret_key.hpp"
#include "moosicbox/p2p/endpoint/node_addr.hpp"
#include "moosicbox/p2p/env/asio_env.hpp"

namespace moosicbox::p2p::cli {

int keygen(const std::filesystem::path& path, bool force, bool json) {
  const Output out(json);
  env::OsRandom rng;
  const auto key = SecretKey::generate(rng);
  if (auto ok = key.save(path, force); !ok) return out.error(ok.error().message(), kExitKey);
  const auto& pub = key.public_key();
  out.text(pub.to_string());
  if (json) {
    out.event("keygen", {{"node_id", pub.to_string()},
                         {"node_id_hex", pub.to_hex()},
                         {"path", std::filesystem::absolute(path).string()}});
  }
  return kExitOk;
}

int id(const KeyChoice& choice, bool hex, bool json) {
  const Output out(json);
  auto key = load_key(choice);
  if (!key) return out.error(key.error().message(), kExitKey);
  const auto& pub = key->key.public_key();
  // Without a bound endpoint there is no address yet: this ticket names the node only
  // (`listen` prints one with its addresses).
  const auto ticket = NodeAddr(pub).to_ticket();
  out.note(key_note(*key));
  out.text(fmt::format("node id: {}", hex ? pub.to_hex() : pub.to_string()));
  out.text(fmt::format("ticket:  {}", ticket));
  if (json) {
    boost::json::object fields{{"node_id", pub.to_string()}, {"node_id_hex", pub.to_hex()}, {"ticket", ticket}};
    add_key_fields(fields, key->path, key->created);
    out.event("id", std::move(fields));
  }
  return kExitOk;
}

}  // namespace moosicbox::p2p::cli
