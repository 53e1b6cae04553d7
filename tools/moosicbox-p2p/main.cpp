// SPDX-License-Identifier: MIT OR Apache-2.0
// main.cpp: argument parsing of moosicbox-p2p (CLI11). The work is in the *_commands.cpp files.
// Bad arguments print one line and the usage hint, with exit code 2 (CLI11's parse errors). The
// shell completion scripts are generated here from the app's structure (subcommands, options, choices).
#include <CLI/CLI.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <vector>

#include "commands.hpp"
#include "moosicbox/p2p/build_config.hpp"
#include "moosicbox/p2p/core/log.hpp"
#include "net_commands.hpp"
#include "netcheck_command.hpp"
#include "quic_commands.hpp"
#include "relay_commands.hpp"
#include "router_commands.hpp"
#include "sim_commands.hpp"
#include "simnet_commands.hpp"
#include "tunnel_bench.hpp"

namespace p2p = moosicbox::p2p;

namespace {

void add_node_options(CLI::App* cmd, p2p::cli::NodeOptions& node, std::string_view key_help) {
  cmd->add_option("--key", node.key, std::string(key_help));
  cmd->add_option("--bind", node.bind, "UDP address to bind, repeatable (default [::]:0)");
  cmd->add_option("--alpn", node.alpn, "Application protocol")->capture_default_str();
  cmd->add_option("--relay", node.relays,
                  "Relay URL (http://host:port or https://...), repeatable: the nearest is the home relay");
  cmd->add_option("--relay-ca", node.relay_ca, "PEM file that verifies https relays (default: the system's store)");
  cmd->add_flag("--no-direct", node.no_direct, "Use relays only: no direct UDP path (needs --relay)");
}

constexpr std::string_view kDialKeyHelp = "Key file written by keygen (default: a fresh throwaway key)";
constexpr std::string_view kOwnKeyHelp =
    "Key file written by keygen (default: the persistent key in $XDG_CONFIG_HOME/moosicbox-p2p/secret.key)";

// ---------------------------------------------------------------------------------------------
// Shell completions, generated from the CLI11 app's structure at run time.

struct CompletionOption {
  std::vector<std::string> names;    // "--key", "-h"
  bool takes_value = false;          // an option, not a flag
  bool file = false;                 // its value is a path
  std::vector<std::string> choices;  // its values, when they are a fixed set
  std::string help;
};

struct CompletionCommand {
  std::string name;
  std::string help;
  std::vector<CompletionOption> options;
  struct Positional {
    std::string name;
    bool file = false;
    std::vector<std::string> choices;
  };
  std::vector<Positional> positionals;
};

// choices_of reads a CLI::IsMember set ("TEXT:{all,quic,sim}") from an option's type name.
std::vector<std::string> choices_of(const CLI::Option* opt) {
  const auto type = opt->get_type_name();
  const auto open = type.find('{');
  const auto close = type.find('}', open == std::string::npos ? 0 : open);
  std::vector<std::string> out;
  if (open == std::string::npos || close == std::string::npos) return out;
  std::string item;
  for (const char c : type.substr(open + 1, close - open - 1)) {
    if (c == ',') {
      if (!item.empty()) out.push_back(item);
      item.clear();
    } else if (c != ' ') {
      item += c;
    }
  }
  if (!item.empty()) out.push_back(item);
  return out;
}

bool is_path_option(const CLI::Option* opt) {
  const auto type = opt->get_type_name();
  if (type.find("FILE") != std::string::npos || type.find("DIR") != std::string::npos ||
      type.find("PATH") != std::string::npos) {
    return true;
  }
  for (const auto* name : {"key", "file", "out", "path"}) {
    if (opt->get_name(true) == name || opt->check_lname(name)) return true;
  }
  return false;
}

// one_line keeps the first sentence of a help text, on one line.
std::string one_line(std::string text) {
  for (auto& c : text) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  if (const auto cut = text.find(" ("); cut != std::string::npos) text.resize(cut);
  return text;
}

std::vector<CompletionCommand> completion_model(const CLI::App& app) {
  std::vector<CompletionCommand> model;
  for (const auto* sub : app.get_subcommands({})) {
    CompletionCommand cmd{sub->get_name(), one_line(sub->get_description()), {}, {}};
    for (const auto* opt : sub->get_options()) {
      if (opt->nonpositional()) {
        CompletionOption o;
        for (const auto& n : opt->get_lnames()) o.names.push_back("--" + n);
        for (const auto& n : opt->get_snames()) o.names.push_back("-" + n);
        o.takes_value = opt->get_type_size_max() > 0;
        o.file = o.takes_value && is_path_option(opt);
        if (o.takes_value) o.choices = choices_of(opt);
        o.help = one_line(opt->get_description());
        cmd.options.push_back(std::move(o));
      } else {
        cmd.positionals.push_back({opt->get_name(true), is_path_option(opt), choices_of(opt)});
      }
    }
    model.push_back(std::move(cmd));
  }
  return model;
}

std::string join(const std::vector<std::string>& items, std::string_view sep = " ") {
  std::string out;
  for (const auto& i : items) {
    if (!out.empty()) out += sep;
    out += i;
  }
  return out;
}

// quoted makes `text` one single-quoted shell word.
std::string shell_word(std::string_view text) {
  std::string out = "'";
  for (const char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string bash_completion(const std::string& prog, const std::vector<CompletionCommand>& model) {
  std::vector<std::string> names;
  for (const auto& c : model) names.push_back(c.name);
  const auto fn = "_" + std::string("moosicbox_p2p");
  std::string s = fmt::format(
      "# bash completion for {0} (generated by `{0} completions bash`)\n"
      "{1}() {{\n"
      "  local cur prev cmd i\n"
      "  cur=\"${{COMP_WORDS[COMP_CWORD]}}\"\n"
      "  prev=\"${{COMP_WORDS[COMP_CWORD-1]}}\"\n"
      "  cmd=\"\"\n"
      "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
      "    case \"${{COMP_WORDS[i]}}\" in\n"
      "      {2}) cmd=\"${{COMP_WORDS[i]}}\"; break ;;\n"
      "    esac\n"
      "  done\n"
      "  if [ -z \"$cmd\" ]; then\n"
      "    COMPREPLY=($(compgen -W {3} -- \"$cur\"))\n"
      "    return\n"
      "  fi\n"
      "  case \"$cmd\" in\n",
      prog, fn, join(names, "|"), shell_word(join(names) + " --help --version"));
  for (const auto& c : model) {
    s += fmt::format("    {})\n      case \"$prev\" in\n", c.name);
    std::vector<std::string> all;
    for (const auto& o : c.options) {
      all.insert(all.end(), o.names.begin(), o.names.end());
      if (!o.takes_value) continue;
      std::string action = "COMPREPLY=()";
      if (o.file) action = "COMPREPLY=($(compgen -f -- \"$cur\"))";
      if (!o.choices.empty())
        action = fmt::format("COMPREPLY=($(compgen -W {} -- \"$cur\"))", shell_word(join(o.choices)));
      s += fmt::format("        {}) {}; return ;;\n", join(o.names, "|"), action);
    }
    s += "      esac\n";
    s += fmt::format("      if [[ \"$cur\" == -* ]]; then COMPREPLY=($(compgen -W {} -- \"$cur\")); return; fi\n",
                     shell_word(join(all)));
    if (!c.positionals.empty()) {
      const auto& p = c.positionals.front();
      if (!p.choices.empty()) {
        s += fmt::format("      COMPREPLY=($(compgen -W {} -- \"$cur\"))\n", shell_word(join(p.choices)));
      } else if (p.file) {
        s += "      COMPREPLY=($(compgen -f -- \"$cur\"))\n";
      }
    }
    s += "      ;;\n";
  }
  s += fmt::format("  esac\n}}\ncomplete -o filenames -F {} {}\n", fn, prog);
  return s;
}

// zsh_text makes help text safe inside an _arguments spec ('...[help]...').
std::string zsh_text(std::string text) {
  std::string out;
  for (const char c : text) {
    if (c == '[' || c == ']') {
      out += '\\';
      out += c;
    } else if (c == ':') {
      out += "\\:";
    } else {
      out += c;
    }
  }
  return out;
}

std::string zsh_completion(const std::string& prog, const std::vector<CompletionCommand>& model) {
  std::string s = fmt::format(
      "#compdef {0}\n# zsh completion for {0} (generated by `{0} completions zsh`)\n"
      "_moosicbox_p2p() {{\n"
      "  local curcontext=\"$curcontext\" state line\n"
      "  local -a commands\n"
      "  commands=(\n",
      prog);
  for (const auto& c : model) s += fmt::format("    {}\n", shell_word(c.name + ":" + zsh_text(c.help)));
  s += "  )\n"
       "  _arguments -C '(- *)--help[Print help]' '(- *)--version[Print the version]' '1: :->command' "
       "'*:: :->args'\n"
       "  case $state in\n"
       "    command) _describe -t commands 'command' commands ;;\n"
       "    args)\n"
       "      case $words[1] in\n";
  for (const auto& c : model) {
    s += fmt::format("        {})\n          _arguments", c.name);
    for (const auto& o : c.options) {
      std::string value;
      if (o.takes_value) {
        value = ":value:";
        if (o.file) value = ":path:_files";
        if (!o.choices.empty()) value = fmt::format(":value:({})", join(o.choices));
      }
      const auto help = zsh_text(o.help);
      if (o.names.size() == 1) {
        s += " \\\n            " + shell_word(fmt::format("{}[{}]{}", o.names[0], help, value));
      } else {
        s += " \\\n            " +
             shell_word(fmt::format("({}){{{}}}[{}]{}", join(o.names), join(o.names, ","), help, value));
      }
    }
    int index = 1;
    for (const auto& p : c.positionals) {
      std::string action;
      if (p.file) action = "_files";
      if (!p.choices.empty()) action = fmt::format("({})", join(p.choices));
      s += " \\\n            " + shell_word(fmt::format("{}:{}:{}", index++, p.name, action));
    }
    s += " ;;\n";
  }
  s += "      esac ;;\n  esac\n}\n_moosicbox_p2p \"$@\"\n";
  return s;
}

std::string fish_completion(const std::string& prog, const std::vector<CompletionCommand>& model) {
  std::string s =
      fmt::format("# fish completion for {0} (generated by `{0} completions fish`)\ncomplete -c {0} -f\n", prog);
  std::vector<std::string> names;
  for (const auto& c : model) names.push_back(c.name);
  for (const auto& c : model) {
    s += fmt::format("complete -c {} -n {} -a {} -d {}\n", prog,
                     shell_word("not __fish_seen_subcommand_from " + join(names)), c.name, shell_word(c.help));
  }
  for (const auto& c : model) {
    const auto cond = shell_word("__fish_seen_subcommand_from " + c.name);
    for (const auto& o : c.options) {
      s += fmt::format("complete -c {} -n {}", prog, cond);
      for (const auto& n : o.names) {
        if (n.starts_with("--")) {
          s += " -l " + n.substr(2);
        } else {
          s += " -s " + n.substr(1);
        }
      }
      if (o.takes_value) {
        if (!o.choices.empty()) {
          s += " -x -a " + shell_word(join(o.choices));
        } else if (o.file) {
          s += " -r -F";
        } else {
          s += " -x";
        }
      }
      s += " -d " + shell_word(o.help) + "\n";
    }
    for (const auto& p : c.positionals) {
      if (!p.choices.empty()) {
        s += fmt::format("complete -c {} -n {} -a {}\n", prog, cond, shell_word(join(p.choices)));
      } else if (p.file) {
        s += fmt::format("complete -c {} -n {} -F\n", prog, cond);
      }
    }
  }
  return s;
}

std::string examples(std::initializer_list<std::string_view> lines) {
  std::string out = "Examples:";
  for (const auto l : lines) out += fmt::format("\n  {}", l);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"moosicbox-p2p: direct, encrypted device-to-device connections dialed by public key"};
  app.set_version_flag("--version", P2P_VERSION_STRING);
  app.require_subcommand(1, 1);

  std::filesystem::path keygen_path;
  bool keygen_force = false;
  bool keygen_json = false;
  auto* keygen = app.add_subcommand("keygen", "Create a secret key file (mode 0600) and print its node id");
  keygen->add_option("path", keygen_path, "Where to write the key")->required();
  keygen->add_flag("--force", keygen_force, "Replace an existing key file");
  keygen->add_flag("--json", keygen_json, "Print one JSON object");
  keygen->footer(
      examples({"moosicbox-p2p keygen ~/.config/moosicbox-p2p/secret.key", "moosicbox-p2p keygen --json server.key"}));

  p2p::cli::KeyChoice id_key;
  id_key.use_default = true;
  bool id_hex = false;
  bool id_json = false;
  auto* id = app.add_subcommand("id", "Print the node id and a ticket of the default key (or of --key)");
  auto* id_key_opt = id->add_option("--key", id_key.path, std::string(kOwnKeyHelp));
  id->add_flag("--ephemeral", id_key.ephemeral, "Use a fresh throwaway key")->excludes(id_key_opt);
  id->add_flag("--hex", id_hex, "Print the node id in hex instead of z-base-32");
  id->add_flag("--json", id_json, "Print one JSON object");
  id->footer(examples({"moosicbox-p2p id", "moosicbox-p2p id --key server.key --json"}));

  p2p::cli::ListenOptions listen_opts;
  auto* listen = app.add_subcommand(
      "listen", "Listen for connections; print the ticket, the messages received, answer pings, take files");
  add_node_options(listen, listen_opts.node, kOwnKeyHelp);
  listen->add_flag("--ephemeral", listen_opts.node.ephemeral, "Use a fresh throwaway key (a new node id every run)")
      ->excludes(listen->get_option("--key"));
  listen->add_flag("--echo", listen_opts.echo, "Send every message back");
  listen->add_option("--count", listen_opts.count, "Exit after this many messages and files")
      ->check(CLI::PositiveNumber);
  auto* listen_json = listen->add_flag("--json", listen_opts.json, "Print one JSON object per line per event");
  listen
      ->add_flag("--pipe", listen_opts.pipe,
                 "Copy stdin/stdout over the first pipe stream (or a sent file to stdout), then exit; the "
                 "ticket goes to stderr")
      ->excludes(listen_json);
  listen->add_option("--out", listen_opts.out, "Store received files in this directory (never replacing a file)")
      ->check(CLI::ExistingDirectory);
  listen->footer(examples({"moosicbox-p2p listen", "moosicbox-p2p listen --json --out ~/Downloads",
                           "moosicbox-p2p listen --pipe > received.bin",
                           "moosicbox-p2p listen --ephemeral --bind 127.0.0.1:0 --echo --count 1"}));

  p2p::cli::SendOptions send_opts;
  bool send_no_progress = false;
  auto* send = app.add_subcommand("send", "Dial a ticket and send one message, or stream a file");
  add_node_options(send, send_opts.node, kDialKeyHelp);
  send->add_option("ticket", send_opts.ticket, "The peer: a ticket, or <node_id>@<addr>,...")->required();
  auto* text_opt = send->add_option("text", send_opts.text, "The message");
  auto* file_opt = send->add_option("--file", send_opts.file, "Stream this file (the listener needs --out or --pipe)")
                       ->check(CLI::ExistingFile);
  text_opt->excludes(file_opt);
  send->add_flag("--wait-reply", send_opts.wait_reply, "Wait for one message back and print it")->excludes(file_opt);
  send->add_option("--timeout", send_opts.timeout_secs,
                   "Seconds before giving up (a message's whole exchange; a file's connect)")
      ->check(CLI::Range(1U, 3600U))
      ->capture_default_str();
  send->add_flag("--json", send_opts.json, "Print one JSON object");
  send->add_flag("--no-progress", send_no_progress, "No progress bar (there is one on a terminal only)");
  send->footer(examples({"moosicbox-p2p send p2p1yy... 'hello'", "moosicbox-p2p send p2p1yy... --file album.flac",
                         "moosicbox-p2p send <node_id>@127.0.0.1:4433 hi --wait-reply --json"}));

  p2p::cli::PingOptions ping_opts;
  auto* ping = app.add_subcommand("ping", "Dial a listening node and measure round trips");
  add_node_options(ping, ping_opts.node, kDialKeyHelp);
  ping->add_option("ticket", ping_opts.ticket, "The peer: a ticket, or <node_id>@<addr>,...")->required();
  ping->add_option("--count,-c", ping_opts.count, "Probes to send")
      ->check(CLI::Range(1U, 100000U))
      ->capture_default_str();
  ping->add_option("--interval,-i", ping_opts.interval_ms, "Milliseconds between probes")
      ->check(CLI::Range(0U, 60000U))
      ->capture_default_str();
  ping->add_option("--timeout", ping_opts.timeout_secs, "Seconds to wait for the connect and for each answer")
      ->check(CLI::Range(1U, 3600U))
      ->capture_default_str();
  ping->add_flag("--json", ping_opts.json, "Print one JSON object per line per event");
  ping->footer(examples({"moosicbox-p2p ping p2p1yy...", "moosicbox-p2p ping p2p1yy... --count 10 --interval 200",
                         "moosicbox-p2p ping p2p1yy... --json"}));

  p2p::cli::PipeOptions pipe_opts;
  auto* pipe = app.add_subcommand("pipe", "Dial a `listen --pipe` node: stdin to the peer, the peer to stdout");
  add_node_options(pipe, pipe_opts.node, kDialKeyHelp);
  pipe->add_option("ticket", pipe_opts.ticket, "The peer: a ticket, or <node_id>@<addr>,...")->required();
  pipe->add_option("--timeout", pipe_opts.timeout_secs, "Seconds to wait for the connect")
      ->check(CLI::Range(1U, 3600U))
      ->capture_default_str();
  pipe->footer(examples({"moosicbox-p2p pipe p2p1yy... < backup.tar", "echo hello | moosicbox-p2p pipe p2p1yy...",
                         "tar c dir | moosicbox-p2p pipe p2p1yy...   # other side: listen --pipe | tar x"}));

  std::string completions_shell;
  p2p::cli::NetcheckOptions netcheck_opts;
  auto* netcheck =
      app.add_subcommand("netcheck", "Report what the network allows: UDP, public address, NAT kind, relays");
  netcheck->add_option("--relay", netcheck_opts.relays, "Relay URL to check against, repeatable (at least one)");
  netcheck->add_option("--relay-ca", netcheck_opts.relay_ca, "PEM bundle verifying https relays")
      ->check(CLI::ExistingFile);
  netcheck->add_option("--timeout-secs", netcheck_opts.timeout_secs, "Seconds each phase may take")
      ->check(CLI::Range(1U, 60U))
      ->capture_default_str();
  netcheck->add_flag("--json", netcheck_opts.json, "Print one JSON object");
  netcheck->footer(examples({"moosicbox-p2p netcheck --relay https://relay.example.com",
                             "moosicbox-p2p netcheck --relay http://127.0.0.1:3340 --json"}));

  auto* completions = app.add_subcommand("completions", "Print a shell completion script");
  completions->add_option("shell", completions_shell, "The shell: bash, zsh, fish")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh", "fish"}));
  completions->footer(
      examples({"source <(moosicbox-p2p completions bash)", "moosicbox-p2p completions zsh > ~/.zfunc/_moosicbox-p2p",
                "moosicbox-p2p completions fish > ~/.config/fish/completions/moosicbox-p2p.fish"}));

  std::string demo_only = "all";
  std::optional<std::uint64_t> demo_seed;
  auto* demo = app.add_subcommand("demo", "Run the local demonstration (needs no other machine)");
  demo->add_option("--only", demo_only, "Which part: all, quic, sim, simnet")
      ->check(CLI::IsMember({"all", "quic", "sim", "simnet"}))
      ->capture_default_str();
  demo->add_option("--seed", demo_seed, "Seed of the simulated part (random when absent)");
  demo->footer(examples(
      {"moosicbox-p2p demo", "moosicbox-p2p demo --only sim --seed 3", "moosicbox-p2p demo --only simnet --seed 7"}));

  std::string bench_what;
  bool bench_json = false;
  auto* bench = app.add_subcommand("bench", "Measure a part of the stack and print the figures");
  bench
      ->add_option("what", bench_what,
                   "What to measure: sim, quic, router, relay, tunnel (the WebSocket tunnel pattern, the relay's "
                   "baseline), simnet (real endpoints on the simulated packet network)")
      ->required()
      ->check(CLI::IsMember({"sim", "quic", "router", "relay", "tunnel", "simnet"}));
  bench->add_flag("--json", bench_json, "Print one JSON object");
  p2p::cli::SimnetBenchOptions simnet_bench_opts;
  auto* seed_opt =
      bench->add_option("--seed", simnet_bench_opts.seed, "simnet: the seed of the swarm")->capture_default_str();
  auto* endpoints_opt = bench->add_option("--endpoints", simnet_bench_opts.endpoints, "simnet: how many endpoints")
                            ->check(CLI::Range(2, 20000))
                            ->capture_default_str();
  auto* messages_opt =
      bench->add_option("--messages", simnet_bench_opts.messages, "simnet: round trips per pair after the handshake")
          ->check(CLI::Range(1, 100000))
          ->capture_default_str();
  p2p::cli::QuicBenchOptions quic_bench_opts;
  std::optional<unsigned> busy_poll_us;
  auto* busy_opt =
      bench
          ->add_option("--busy-poll-us", busy_poll_us,
                       "quic, router, relay: busy polling of both ends in microseconds, handshakes included "
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

  bool one_thread = false;
  bench->add_flag("--one-thread", one_thread,
                  "quic, relay: both ends on one thread (the layout of bench tunnel's two clients)");
  bool no_stop_sending_codes = false;
  auto* codes_opt = bench->add_flag("--no-stop-sending-codes", no_stop_sending_codes,
                                    "quic: turn off ngtcp2's trace on both ends (no STOP_SENDING codes, no loss "
                                    "counts), to measure its cost");

  bench->footer(examples({"moosicbox-p2p bench quic --json", "moosicbox-p2p bench quic --only connect,rpc",
                          "moosicbox-p2p bench router", "moosicbox-p2p bench relay --json",
                          "moosicbox-p2p bench tunnel --json", "moosicbox-p2p bench simnet --json --seed 3"}));
  app.footer(
      "Exit codes: 0 ok, 1 runtime failure (unreachable peer, timeout, refused), 2 usage error, 3 bad ticket, "
      "4 key file problem, 128+N killed by signal N.\nRun `moosicbox-p2p COMMAND --help` for a command's options and "
      "examples; docs/cli.md is the reference.");

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
  // A misspelt P2P_LOG is a usage error here, before anything logs (the library alone would warn
  // and log at warn).
  if (auto level = p2p::log_level_from_env(); !level) {
    std::fprintf(stderr, "error: %s\n", level.error().message().c_str());
    return 2;
  }

  if (*keygen) return p2p::cli::keygen(keygen_path, keygen_force, keygen_json);
  if (*id) return p2p::cli::id(id_key, id_hex, id_json);
  if (*listen) return p2p::cli::listen(listen_opts);
  if (*send) {
    send_opts.progress = !send_no_progress;
    return p2p::cli::send(send_opts);
  }
  if (*ping) return p2p::cli::ping(ping_opts);
  if (*pipe) return p2p::cli::pipe(pipe_opts);
  if (*netcheck) return p2p::cli::netcheck(netcheck_opts);
  if (*completions) {
    const auto model = completion_model(app);
    const std::string prog = "moosicbox-p2p";
    std::string script;
    if (completions_shell == "bash") script = bash_completion(prog, model);
    if (completions_shell == "zsh") script = zsh_completion(prog, model);
    if (completions_shell == "fish") script = fish_completion(prog, model);
    std::fwrite(script.data(), 1, script.size(), stdout);
    return 0;
  }
  if (*demo) {
    int rc = 0;
    if (demo_only == "all" || demo_only == "quic") rc = p2p::cli::quic_demo();
    if (rc == 0 && (demo_only == "all" || demo_only == "sim")) rc = p2p::cli::sim_demo(demo_seed);
    if (rc == 0 && (demo_only == "all" || demo_only == "simnet")) rc = p2p::cli::simnet_demo(demo_seed);
    return rc;
  }
  if (*bench) {
    if (bench_what != "quic" && (only_opt->count() > 0 || payload_opt->count() > 0 || codes_opt->count() > 0)) {
      std::fprintf(stderr, "error: --only, --udp-payload and --no-stop-sending-codes apply to 'bench quic' only\n");
      return 2;
    }
    quic_bench_opts.stop_sending_codes = !no_stop_sending_codes;
    quic_bench_opts.one_thread = one_thread;
    if ((bench_what == "sim" || bench_what == "tunnel" || bench_what == "simnet") && busy_opt->count() > 0) {
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
    if (bench_what != "simnet" && (seed_opt->count() > 0 || endpoints_opt->count() > 0 || messages_opt->count() > 0)) {
      std::fprintf(stderr, "error: --seed, --endpoints and --messages apply to 'bench simnet' only\n");
      return 2;
    }
    if (bench_what == "simnet") return p2p::cli::simnet_bench(bench_json, simnet_bench_opts);
    if (bench_what == "sim") return p2p::cli::sim_bench(bench_json);
    if (bench_what == "quic") return p2p::cli::quic_bench(bench_json, quic_bench_opts);
    if (bench_what == "router") return p2p::cli::router_bench(bench_json, router_bench_opts);
    if (bench_what == "relay") {
      p2p::cli::RelayBenchOptions relay_bench_opts;
      if (busy_poll_us) relay_bench_opts.busy_poll = std::chrono::microseconds(*busy_poll_us);
      relay_bench_opts.one_thread = one_thread;
      return p2p::cli::relay_bench(bench_json, relay_bench_opts);
    }
    if (bench_what == "tunnel") return p2p::cli::run_tunnel_bench(bench_json);
  }
  return 2;
}
