// SPDX-License-Identifier: MIT OR Apache-2.0
// main.cpp: argument parsing of moosicbox-p2p (CLI11). The work is in the *_commands.cpp files.
// Bad arguments print one line and the usage hint, with exit code 2 (CLI11's parse errors).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>

#include "commands.hpp"
#include "moosicbox/p2p/build_config.hpp"
#include "net_commands.hpp"
#include "quic_commands.hpp"
#include "router_commands.hpp"
#include "sim_commands.hpp"

namespace p2p = moosicbox::p2p;

namespace {

void add_node_options(CLI::App* cmd, p2p::cli::NodeOptions& node) {
  cmd->add_option("--key", node.key, "Key file written by keygen (a fresh key when absent)");
  cmd->add_option("--bind", node.bind, "UDP address to bind, repeatable (default [::]:0)");
  cmd->add_option("--alpn", node.alpn, "Application protocol")->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"moosicbox-p2p: direct, encrypted device-to-device connections dialed by public key"};
  app.set_version_flag("--version", P2P_VERSION_STRING);
  app.require_subcommand(1, 1);

  std::filesystem::path keygen_path;
  bool keygen_force = false;
  auto* keygen = app.add_subcommand("keygen", "Create a secret key file (mode 0600) and print its node id");
  keygen->add_option("path", keygen_path, "Where to write the key")->required();
  keygen->add_flag("--force", keygen_force, "Replace an existing key file");

  std::optional<std::filesystem::path> id_key;
  bool id_hex = false;
  auto* id = app.add_subcommand("id", "Print the node id and a ticket of a key file (or of a fresh key)");
  id->add_option("--key", id_key, "Key file written by keygen");
  id->add_flag("--hex", id_hex, "Print the node id in hex instead of z-base-32");

  p2p::cli::ListenOptions listen_opts;
  auto* listen = app.add_subcommand("listen", "Listen for connections; print the ticket and the messages received");
  add_node_options(listen, listen_opts.node);
  listen->add_flag("--echo", listen_opts.echo, "Send every message back");
  listen->add_option("--count", listen_opts.count, "Exit after this many messages")->check(CLI::PositiveNumber);

  p2p::cli::SendOptions send_opts;
  auto* send = app.add_subcommand("send", "Dial a ticket and send one message (text or file content)");
  add_node_options(send, send_opts.node);
  send->add_option("ticket", send_opts.ticket, "The peer: a ticket, or <node_id>@<addr>,...")->required();
  auto* text_opt = send->add_option("text", send_opts.text, "The message");
  auto* file_opt =
      send->add_option("--file", send_opts.file, "Send this file's content as the message")->check(CLI::ExistingFile);
  text_opt->excludes(file_opt);
  send->add_flag("--wait-reply", send_opts.wait_reply, "Wait for one message back and print it");
  send->add_option("--timeout", send_opts.timeout_secs, "Seconds before giving up")
      ->check(CLI::Range(1U, 3600U))
      ->capture_default_str();

  std::string demo_only = "all";
  std::optional<std::uint64_t> demo_seed;
  auto* demo = app.add_subcommand("demo", "Run the local demonstration (needs no other machine)");
  demo->add_option("--only", demo_only, "Which part: all, quic, sim")
      ->check(CLI::IsMember({"all", "quic", "sim"}))
      ->capture_default_str();
  demo->add_option("--seed", demo_seed, "Seed of the simulated part (random when absent)");

  std::string bench_what;
  bool bench_json = false;
  auto* bench = app.add_subcommand("bench", "Measure a part of the stack and print the figures");
  bench->add_option("what", bench_what, "What to measure: sim, quic, router")
      ->required()
      ->check(CLI::IsMember({"sim", "quic", "router"}));
  bench->add_flag("--json", bench_json, "Print one JSON object");
  p2p::cli::QuicBenchOptions quic_bench_opts;
  std::optional<unsigned> busy_poll_us;
  auto* busy_opt = bench
                       ->add_option("--busy-poll-us", busy_poll_us,
                                    "quic, router: busy polling of both ends in microseconds, handshakes included "
                                    "(0: off; default: the library's)")
                       ->check(CLI::Range(0U, 1'000'000U));
  auto* only_opt = bench->add_option("--only", quic_bench_opts.parts,
                                     "quic: measure only these parts (comma-separated: connect, 0rtt, cold, "
                                     "rpc, msgs, bulk, rss)");
  auto* payload_opt =
      bench
          ->add_option("--udp-payload", quic_bench_opts.jumbo_udp_payload_size,
                       "quic: add a bulk run with datagrams of this size on loopback (bulk_16k_mb_per_s; 1200 to "
                       "65527, 0: none); every other figure uses real-path datagrams")
          ->check(CLI::Range(std::size_t{0}, std::size_t{65527}))
          ->capture_default_str();

  bool no_stop_sending_codes = false;
  auto* codes_opt = bench->add_flag("--no-stop-sending-codes", no_stop_sending_codes,
                                    "quic: turn off ngtcp2's trace on both ends (no STOP_SENDING codes, no loss "
                                    "counts), to measure its cost");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // An unknown command reads better than CLI11's "A subcommand is required".
    const bool known = argc > 1 && std::ranges::any_of(app.get_subcommands({}),
                                                       [&](const CLI::App* sub) { return sub->get_name() == argv[1]; });
    if (argc > 1 && argv[1][0] != '-' && !known) {
      std::fprintf(stderr, "error: unknown command '%s' (try --help)\n", argv[1]);
      return 2;
    }
    // Help and version exit 0; every usage error exits 2 after one line.
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (*keygen) return p2p::cli::keygen(keygen_path, keygen_force);
  if (*id) return p2p::cli::id(id_key, id_hex);
  if (*listen) return p2p::cli::listen(listen_opts);
  if (*send) return p2p::cli::send(send_opts);
  if (*demo) {
    int rc = 0;
    if (demo_only == "all" || demo_only == "quic") rc = p2p::cli::quic_demo();
    if (rc == 0 && (demo_only == "all" || demo_only == "sim")) rc = p2p::cli::sim_demo(demo_seed);
    return rc;
  }
  if (*bench) {
    if (bench_what != "quic" && (only_opt->count() > 0 || payload_opt->count() > 0 || codes_opt->count() > 0)) {
      std::fprintf(stderr, "error: --only, --udp-payload and --no-stop-sending-codes apply to 'bench quic' only\n");
      return 2;
    }
    quic_bench_opts.stop_sending_codes = !no_stop_sending_codes;
    if (bench_what == "sim" && busy_opt->count() > 0) {
      std::fprintf(stderr, "error: --busy-poll-us applies to 'bench quic' and 'bench router' only\n");
      return 2;
    }
    p2p::cli::RouterBenchOptions router_bench_opts;
    if (busy_poll_us) {
      quic_bench_opts.busy_poll = std::chrono::microseconds(*busy_poll_us);
      router_bench_opts.busy_poll = std::chrono::microseconds(*busy_poll_us);
    }
    if (const auto n = quic_bench_opts.jumbo_udp_payload_size; n != 0 && n < 1200) {
      std::fprintf(stderr, "error: --udp-payload %zu is below QUIC's 1200 bytes (0: no jumbo run)\n", n);
      return 2;
    }
    if (auto ok = p2p::cli::check_quic_bench_parts(quic_bench_opts.parts); !ok) {
      std::fprintf(stderr, "error: %s\n", ok.error().message().c_str());
      return 2;
    }
    if (bench_what == "sim") return p2p::cli::sim_bench(bench_json);
    if (bench_what == "quic") return p2p::cli::quic_bench(bench_json, quic_bench_opts);
    if (bench_what == "router") return p2p::cli::router_bench(bench_json, router_bench_opts);
  }
  return 2;
}
