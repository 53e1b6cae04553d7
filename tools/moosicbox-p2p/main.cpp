// main.cpp: argument parsing of moosicbox-p2p (CLI11). The work is in commands.cpp.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "commands.hpp"
#include "p2p/build_config.hpp"

int main(int argc, char** argv) {
  CLI::App app{"moosicbox-p2p: direct, encrypted device-to-device connections dialed by public key"};
  app.set_version_flag("--version", P2P_VERSION_STRING);
  app.require_subcommand(1);

  std::filesystem::path keygen_path;
  bool keygen_force = false;
  auto* keygen = app.add_subcommand("keygen", "Create a secret key file (mode 0600) and print its node id");
  keygen->add_option("path", keygen_path, "Where to write the key")->required();
  keygen->add_flag("--force", keygen_force, "Replace an existing key file");

  std::optional<std::filesystem::path> id_key;
  bool id_hex = false;
  auto* id = app.add_subcommand("id", "Print the node id of a key file (or of a fresh key)");
  id->add_option("--key", id_key, "Key file written by keygen");
  id->add_flag("--hex", id_hex, "Print hex instead of z-base-32");

  std::optional<std::uint64_t> demo_seed;
  auto* demo = app.add_subcommand("demo", "Run the embedded local demonstration");
  demo->add_option("--seed", demo_seed, "Simulation seed (random when absent)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  if (*keygen) return p2p::cli::keygen(keygen_path, keygen_force);
  if (*id) return p2p::cli::id(id_key, id_hex);
  if (*demo) return p2p::cli::demo(demo_seed);
  return 1;
}
