// SPDX-License-Identifier: MIT OR Apache-2.0
// cli_support.hpp: what every subcommand of moosicbox-p2p shares: the exit codes, the output
// (text or one JSON object per line, produced with Boost.JSON), the mapping of errors to exit codes,
// and the persistent default key ($XDG_CONFIG_HOME/moosicbox-p2p/secret.key).
// Single-threaded: called from main() or from the command's one io_context thread.
#pragma once

#include <boost/json/object.hpp>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "moosicbox/p2p/core/bytes.hpp"
#include "moosicbox/p2p/core/error.hpp"
#include "moosicbox/p2p/core/secret_key.hpp"
#include "moosicbox/p2p/core/time.hpp"

namespace moosicbox::p2p::cli {

/// kExitOk: the command did what it was asked.
inline constexpr int kExitOk = 0;
/// kExitFailure: a runtime failure (peer unreachable, timeout, refused, lost pings, I/O error).
inline constexpr int kExitFailure = 1;
/// kExitUsage: bad arguments (CLI11's parse errors and invalid combinations).
inline constexpr int kExitUsage = 2;
/// kExitBadTicket: the ticket (or <node_id>@<addr> text) cannot be read.
inline constexpr int kExitBadTicket = 3;
/// kExitKey: the key file is missing, unreadable, corrupt or readable by others.
inline constexpr int kExitKey = 4;
/// kExitSignalBase: interrupted by signal N exits with kExitSignalBase + N (130 for SIGINT).
inline constexpr int kExitSignalBase = 128;

/// Output prints a command's facts: text for people, or one JSON object per line (--json).
class Output {
 public:
  /// Output prints JSON when `json`; text lines go to stdout unless `text_to_stderr` (pipe mode,
  /// where stdout carries the data).
  explicit Output(bool json, bool text_to_stderr = false) : json_(json), text_to_stderr_(text_to_stderr) {}

  /// json reports whether the command prints JSON.
  [[nodiscard]] bool json() const noexcept { return json_; }
  /// event prints one JSON object on one line of stdout (flushed): {"event": name, ...fields}.
  void event(std::string_view name, boost::json::object fields) const;
  /// text prints one line for people (nothing in JSON mode), flushed.
  void text(std::string_view line) const;
  /// note prints one line on stderr in text mode (nothing in JSON mode).
  void note(std::string_view line) const;
  /// error reports a failure and returns `exit_code`: one line "error: ..." on stderr, and in JSON
  /// mode also an {"event":"error","message":...,"exit_code":...} object on stdout.
  int error(std::string_view message, int exit_code) const;
  /// error reports `e` with the exit code exit_code_of(e).
  int error(const P2PError& e) const;

 private:
  bool json_;
  bool text_to_stderr_;
};

/// exit_code_of maps an error to its exit code: kExitBadTicket for invalid_node_id, kExitKey for key
/// file errors, kExitFailure for the rest.
[[nodiscard]] int exit_code_of(const P2PError& e);

/// KeyChoice says where a command's key comes from.
struct KeyChoice {
  std::optional<std::filesystem::path> path;  ///< --key
  bool ephemeral = false;                     ///< --ephemeral: a throwaway key
  bool use_default = false;                   ///< no --key: the persistent default key
};

/// LoadedKey is a command's key and where it is stored.
struct LoadedKey {
  SecretKey key;
  std::optional<std::filesystem::path> path;  ///< nullopt for an ephemeral key
  bool created = false;                       ///< the default key was created by this run
};

/// default_key_path returns $XDG_CONFIG_HOME/moosicbox-p2p/secret.key (an absolute XDG_CONFIG_HOME),
/// else $HOME/.config/moosicbox-p2p/secret.key. Errors: invalid_configuration when neither is set.
[[nodiscard]] P2PResult<std::filesystem::path> default_key_path();

/// load_key resolves `choice`: loads --key, creates or loads the default key (directory 0700, file
/// 0600; an existing file is never replaced), or generates an ephemeral key.
/// Errors: invalid_configuration naming the path (missing, corrupt, wrong permissions, unwritable).
[[nodiscard]] P2PResult<LoadedKey> load_key(const KeyChoice& choice);

/// add_key_fields adds "key" (the key file's path, or null for an ephemeral key) and "key_created"
/// to a JSON event.
void add_key_fields(boost::json::object& fields, const std::optional<std::filesystem::path>& path, bool created);
/// key_note is the text-mode line about the key ("key: PATH (created)"), empty for an ephemeral key.
[[nodiscard]] std::string key_note(const LoadedKey& key);

/// ms renders a duration as fractional milliseconds (for JSON fields named *_ms).
[[nodiscard]] double ms(Duration d);

/// is_utf8 reports whether `bytes` is valid UTF-8 (JSON strings must be).
[[nodiscard]] bool is_utf8(ByteView bytes);
/// base64 encodes `bytes` (RFC 4648, with padding).
[[nodiscard]] std::string base64(ByteView bytes);

}  // namespace moosicbox::p2p::cli
