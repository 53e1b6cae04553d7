// SPDX-License-Identifier: MIT OR Apache-2.0
// cli_support.cpp: exit codes, text and JSON output, and the persistent default key of moosicbox-p2p.
// Single-threaded (see cli_support.hpp).
#include "cli_support.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <boost/json/serialize.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "moosicbox/p2p/env/asio_env.hpp"

namespace moosicbox::p2p::cli {

void Output::event(std::string_view name, boost::json::object fields) const {
  boost::json::object obj;
  obj["event"] = name;
  for (auto& kv : fields) obj[kv.key()] = std::move(kv.value());
  const auto line = boost::json::serialize(obj);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void Output::text(std::string_view line) const {
  if (json_) return;
  auto* f = text_to_stderr_ ? stderr : stdout;
  fmt::print(f, "{}\n", line);
  std::fflush(f);
}

void Output::note(std::string_view line) const {
  if (json_) return;
  fmt::print(stderr, "{}\n", line);
}

int Output::error(std::string_view message, int exit_code) const {
  fmt::print(stderr, "error: {}\n", message);
  if (json_) event("error", {{"message", message}, {"exit_code", exit_code}});
  return exit_code;
}

int Output::error(const P2PError& e) const { return error(e.message(), exit_code_of(e)); }

int exit_code_of(const P2PError& e) {
  if (e.code() == P2PErrc::invalid_node_id) return kExitBadTicket;
  return kExitFailure;
}

P2PResult<std::filesystem::path> default_key_path() {
  std::filesystem::path base;
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  const char* home = std::getenv("HOME");
  // The XDG base directory rules ignore a relative XDG_CONFIG_HOME.
  if (xdg != nullptr && xdg[0] == '/') {
    base = xdg;
  } else if (home != nullptr && home[0] != '\0') {
    base = std::filesystem::path(home) / ".config";
  } else {
    return fail(P2PError::invalid_configuration(
        "no place for the default key: set XDG_CONFIG_HOME or HOME, or pass --key FILE or --ephemeral"));
  }
  return base / "moosicbox-p2p" / "secret.key";
}

namespace {

// make_private_dirs creates the missing directories of `dir`, each with mode 0700.
P2PResult<void> make_private_dirs(const std::filesystem::path& dir) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return {};
  if (dir.has_parent_path() && dir.parent_path() != dir) {
    if (auto ok = make_private_dirs(dir.parent_path()); !ok) return ok;
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return fail(P2PError::invalid_configuration(
        fmt::format("cannot create key directory {}: {}", dir.string(), std::strerror(errno))));
  }
  return {};
}

}  // namespace

P2PResult<LoadedKey> load_key(const KeyChoice& choice) {
  if (choice.path) {
    auto key = SecretKey::load(*choice.path);
    if (!key) return fail(key.error());
    return LoadedKey{std::move(*key), choice.path, false};
  }
  if (!choice.use_default || choice.ephemeral) {
    env::OsRandom rng;
    return LoadedKey{SecretKey::generate(rng), std::nullopt, false};
  }
  auto path = default_key_path();
  if (!path) return fail(path.error());
  struct stat st {};
  if (::lstat(path->c_str(), &st) == 0 || errno != ENOENT) {
    // Whatever is there (a key, a corrupt file, a file others can read) is loaded or reported,
    // never silently replaced by a new key.
    auto key = SecretKey::load(*path);
    if (!key) return fail(key.error());
    return LoadedKey{std::move(*key), *path, false};
  }
  if (auto ok = make_private_dirs(path->parent_path()); !ok) return fail(ok.error());
  env::OsRandom rng;
  auto key = SecretKey::generate(rng);
  if (auto saved = key.save(*path, false); !saved) {
    // Another process created it first: use that one.
    auto other = SecretKey::load(*path);
    if (!other) return fail(saved.error());
    return LoadedKey{std::move(*other), *path, false};
  }
  return LoadedKey{std::move(key), *path, true};
}

void add_key_fields(boost::json::object& fields, const std::optional<std::filesystem::path>& path, bool created) {
  if (path) {
    fields["key"] = path->string();
  } else {
    fields["key"] = nullptr;
  }
  fields["key_created"] = created;
}

std::string key_note(const LoadedKey& key) {
  if (!key.path) return "key: ephemeral (a new node id every run)";
  return fmt::format("key: {}{}", key.path->string(), key.created ? " (created)" : "");
}

double ms(Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

bool is_utf8(ByteView bytes) {
  std::size_t i = 0;
  const auto n = bytes.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(bytes[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

std::string base64(ByteView bytes) {
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const auto v = (std::to_integer<std::uint32_t>(bytes[i]) << 16) |
                   (std::to_integer<std::uint32_t>(bytes[i + 1]) << 8) | std::to_integer<std::uint32_t>(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 0x3f];
  }
  if (const auto rest = bytes.size() - i; rest > 0) {
    std::uint32_t v = std::to_integer<std::uint32_t>(bytes[i]) << 16;
    if (rest == 2) v |= std::to_integer<std::uint32_t>(bytes[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 0x3f];
    out += kAlphabet[(v >> 12) & 0x3f];
    out += rest == 2 ? kAlphabet[(v >> 6) & 0x3f] : '=';
    out += '=';
  }
  return out;
}

}  // namespace moosicbox::p2p::cli
