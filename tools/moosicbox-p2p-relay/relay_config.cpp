// SPDX-License-Identifier: MIT OR Apache-2.0
// relay_config.cpp: the relay binary's config file parser (a line-oriented subset of TOML), the
// command-line overrides and the --print-config rendering.
// Layer: tools. Pure functions, except load_relay_config (reads one file); thread-compatible.
#include "relay_config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <system_error>

namespace moosicbox::p2p::cli {

namespace {

constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMiB = 1024 * kKiB;
constexpr std::uint64_t kGiB = 1024 * kMiB;
constexpr std::uint64_t kTiB = 1024 * kGiB;

// A value as written on the right of `=`: a quoted string, a bare token (integer, boolean,
// duration, byte size) or a one-line array of quoted strings.
struct Value {
  enum class Kind { string, bare, array };
  Kind kind = Kind::bare;
  std::string text;                // the string's content or the bare token
  std::vector<std::string> items;  // the array's strings
};

// Where a message points: "name:line: key: ".
struct Where {
  std::string_view name;
  std::size_t line = 0;
  std::string_view key;
};

P2PError bad(const Where& w, std::string_view why) {
  if (w.key.empty()) return P2PError::invalid_configuration(fmt::format("{}:{}: {}", w.name, w.line, why));
  return P2PError::invalid_configuration(fmt::format("{}:{}: {}: {}", w.name, w.line, w.key, why));
}

bool is_space(char c) { return c == ' ' || c == '\t'; }
bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string_view skip_space(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  return s;
}

// show quotes a value for a message, with control bytes escaped so the message stays one line.
std::string show(std::string_view v) {
  std::string out = "'";
  for (const char c : v) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

// parse_string reads a basic string after its opening quote; `rest` is left after the closing one.
P2PResult<std::string> parse_string(std::string_view& rest, const Where& w) {
  std::string out;
  while (true) {
    if (rest.empty()) return fail(bad(w, "missing closing quote (strings are written on one line)"));
    const char c = rest.front();
    rest.remove_prefix(1);
    if (c == '"') return out;
    if (c == '\\') {
      if (rest.empty()) return fail(bad(w, "missing closing quote (strings are written on one line)"));
      const char e = rest.front();
      rest.remove_prefix(1);
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        default:
          return fail(bad(w, fmt::format("unknown escape '\\{}' in a string (accepted: \\\" \\\\ \\n \\t)", e)));
      }
      continue;
    }
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
      return fail(bad(w, fmt::format("control character 0x{:02x} in a string", static_cast<unsigned char>(c))));
    }
    out += c;
  }
}

// parse_value reads what follows `=` up to the end of the line or a comment.
P2PResult<Value> parse_value(std::string_view rest, const Where& w) {
  rest = skip_space(rest);
  Value v;
  if (rest.empty() || rest.front() == '#') return fail(bad(w, "missing value after '='"));
  if (rest.front() == '"') {
    rest.remove_prefix(1);
    auto s = parse_string(rest, w);
    if (!s) return fail(s.error());
    v.kind = Value::Kind::string;
    v.text = std::move(*s);
  } else if (rest.front() == '[') {
    rest.remove_prefix(1);
    v.kind = Value::Kind::array;
    while (true) {
      rest = skip_space(rest);
      if (rest.empty() || rest.front() == '#') return fail(bad(w, "missing ']' (arrays are written on one line)"));
      if (rest.front() == ']') {
        rest.remove_prefix(1);
        break;
      }
      if (rest.front() != '"') return fail(bad(w, "array items must be strings in double quotes"));
      rest.remove_prefix(1);
      auto s = parse_string(rest, w);
      if (!s) return fail(s.error());
      v.items.push_back(std::move(*s));
      rest = skip_space(rest);
      if (rest.empty() || rest.front() == '#') return fail(bad(w, "missing ']' (arrays are written on one line)"));
      if (rest.front() == ',') {
        rest.remove_prefix(1);
        continue;
      }
      if (rest.front() == ']') continue;
      return fail(bad(w, "expected ',' or ']' after an array item"));
    }
  } else {
    std::size_t n = 0;
    while (n < rest.size() && !is_space(rest[n]) && rest[n] != '#') ++n;
    v.text = std::string(rest.substr(0, n));
    rest.remove_prefix(n);
    for (const char c : v.text) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '"') {
        return fail(bad(w, fmt::format("{} is not a value (strings are written in double quotes)", show(v.text))));
      }
    }
  }
  rest = skip_space(rest);
  if (!rest.empty() && rest.front() != '#') {
    return fail(bad(w, fmt::format("unexpected {} after the value (a comment starts with '#')", show(rest))));
  }
  return v;
}

// The scalar readers. Each names the value as written in its message.

P2PResult<std::string> as_string(const Value& v, const Where& w) {
  if (v.kind == Value::Kind::string) return v.text;
  if (v.kind == Value::Kind::array) return fail(bad(w, "expected a string, not an array"));
  return fail(bad(w, fmt::format("{} is not a string (write it in double quotes)", show(v.text))));
}

// scalar_text accepts a bare token or a quoted string (TOML has no duration or size type, so both
// `idle_timeout = 60s` and `idle_timeout = "60s"` read).
P2PResult<std::string> scalar_text(const Value& v, const Where& w) {
  if (v.kind == Value::Kind::array) return fail(bad(w, "expected a single value, not an array"));
  return v.text;
}

P2PResult<bool> as_bool(const Value& v, const Where& w) {
  if (v.kind == Value::Kind::bare && v.text == "true") return true;
  if (v.kind == Value::Kind::bare && v.text == "false") return false;
  if (v.kind == Value::Kind::array) return fail(bad(w, "expected true or false, not an array"));
  return fail(bad(w, fmt::format("{} is not a boolean (true or false)", show(v.text))));
}

// Digits reads the leading decimal digits of `s` (underscores allowed between digits, as in TOML).
struct Digits {
  std::uint64_t value = 0;
  std::size_t length = 0;  // characters consumed
  bool overflow = false;
};

Digits read_digits(std::string_view s) {
  Digits d;
  while (d.length < s.size()) {
    const char c = s[d.length];
    if (c == '_' && d.length > 0 && is_digit(s[d.length - 1]) && d.length + 1 < s.size() && is_digit(s[d.length + 1])) {
      ++d.length;
      continue;
    }
    if (!is_digit(c)) break;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (d.value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) d.overflow = true;
    d.value = d.value * 10 + digit;
    ++d.length;
  }
  return d;
}

bool negative_number(std::string_view s) { return s.size() >= 2 && s.front() == '-' && is_digit(s[1]); }

P2PResult<std::uint64_t> as_count(const Value& v, const Where& w, std::uint64_t min, std::uint64_t max) {
  if (v.kind != Value::Kind::bare) {
    return fail(bad(w, fmt::format("expected an integer without quotes, not {}",
                                   v.kind == Value::Kind::array ? std::string("an array") : show(v.text))));
  }
  if (negative_number(v.text)) return fail(bad(w, fmt::format("{} must not be negative", show(v.text))));
  const Digits d = read_digits(v.text);
  if (d.length == 0 || d.length != v.text.size()) {
    return fail(bad(w, fmt::format("{} is not an integer (examples: 64, 10_000)", show(v.text))));
  }
  if (d.overflow || d.value < min || d.value > max) {
    return fail(bad(w, fmt::format("{} is out of range ({} to {})", show(v.text), min, max)));
  }
  return d.value;
}

P2PResult<std::uint64_t> as_byte_size(const Value& v, const Where& w, std::uint64_t min, std::uint64_t max) {
  auto text = scalar_text(v, w);
  if (!text) return fail(text.error());
  const std::string_view s = *text;
  const auto range = [&] {
    return bad(w, fmt::format("{} is out of range ({} to {})", show(s), format_byte_size(min), format_byte_size(max)));
  };
  if (negative_number(s)) return fail(bad(w, fmt::format("{} must not be negative", show(s))));
  const Digits d = read_digits(s);
  const std::string_view unit = s.substr(d.length);
  std::uint64_t scale = 0;
  if (unit.empty() || unit == "B") scale = 1;
  if (unit == "KiB") scale = kKiB;
  if (unit == "MiB") scale = kMiB;
  if (unit == "GiB") scale = kGiB;
  if (unit == "TiB") scale = kTiB;
  if (d.length == 0 || scale == 0) {
    return fail(bad(w, fmt::format("{} is not a byte size (examples: 65536, 64KiB)", show(s))));
  }
  if (d.overflow || d.value > std::numeric_limits<std::uint64_t>::max() / scale) return fail(range());
  const std::uint64_t bytes = d.value * scale;
  if (bytes < min || bytes > max) return fail(range());
  return bytes;
}

P2PResult<Duration> as_duration(const Value& v, const Where& w, Duration min, Duration max) {
  auto text = scalar_text(v, w);
  if (!text) return fail(text.error());
  const std::string_view s = *text;
  if (negative_number(s)) return fail(bad(w, fmt::format("{} must not be negative", show(s))));
  const Digits d = read_digits(s);
  const std::string_view unit = s.substr(d.length);
  std::uint64_t ms_per_unit = 0;
  if (unit == "ms") ms_per_unit = 1;
  if (unit == "s") ms_per_unit = 1000;
  if (unit == "m" || unit == "min") ms_per_unit = 60'000;
  if (unit == "h") ms_per_unit = 3'600'000;
  if (d.length == 0 || ms_per_unit == 0) {
    return fail(bad(w, fmt::format("{} is not a duration (examples: 10s, 500ms, 2m, 1h)", show(s))));
  }
  const auto range = [&] {
    return bad(w, fmt::format("{} is out of range ({} to {})", show(s), format_config_duration(min),
                              format_config_duration(max)));
  };
  // The largest accepted maximum is hours; anything beyond a year is out of range before it can
  // overflow the nanosecond count.
  constexpr std::uint64_t kMsMax = 365ULL * 24 * 3'600'000;
  if (d.overflow || d.value > kMsMax / ms_per_unit) return fail(range());
  const Duration out = std::chrono::milliseconds(static_cast<std::int64_t>(d.value * ms_per_unit));
  if (out < min || out > max) return fail(range());
  return out;
}

// Lines remembers where each key was set, for duplicate keys and for the cross-key checks.
using Lines = std::map<std::string, std::size_t, std::less<>>;

std::size_t line_of(const Lines& lines, std::string_view key) {
  const auto it = lines.find(key);
  return it == lines.end() ? 0 : it->second;
}

using Handler = std::function<P2PResult<void>(RelayToolConfig&, const Value&, const Where&)>;

template <class T>
P2PResult<void> store(P2PResult<T> r, T& out) {
  if (!r) return fail(r.error());
  out = std::move(*r);
  return {};
}

// The keys of the file, in the order --print-config prints them (bind is special: repeatable).
const std::map<std::string, Handler, std::less<>>& handlers() {
  static const std::map<std::string, Handler, std::less<>> table = {
      {"tls_cert",
       [](RelayToolConfig& c, const Value& v, const Where& w) -> P2PResult<void> {
         auto s = as_string(v, w);
         if (!s) return fail(s.error());
         if (s->empty()) return fail(bad(w, "the path is empty"));
         c.server.tls_cert_file = std::move(*s);
         return {};
       }},
      {"tls_key",
       [](RelayToolConfig& c, const Value& v, const Where& w) -> P2PResult<void> {
         auto s = as_string(v, w);
         if (!s) return fail(s.error());
         if (s->empty()) return fail(bad(w, "the path is empty"));
         c.server.tls_key_file = std::move(*s);
         return {};
       }},
      {"trust_forwarded_for", [](RelayToolConfig& c, const Value& v,
                                 const Where& w) { return store(as_bool(v, w), c.server.trust_forwarded_for); }},
      {"frame_size_max",
       [](RelayToolConfig& c, const Value& v, const Where& w) -> P2PResult<void> {
         auto n = as_byte_size(v, w, kKiB, kMiB);
         if (!n) return fail(n.error());
         c.server.limits.frame_size_max = static_cast<std::size_t>(*n);
         return {};
       }},
      {"client_bytes_per_second",
       [](RelayToolConfig& c, const Value& v, const Where& w) {
         return store(as_byte_size(v, w, 0, kTiB), c.server.limits.client_bytes_per_second);
       }},
      {"client_burst_bytes",
       [](RelayToolConfig& c, const Value& v, const Where& w) {
         return store(as_byte_size(v, w, kKiB, kTiB), c.server.limits.client_burst_bytes);
       }},
      {"client_queue_bytes_max",
       [](RelayToolConfig& c, const Value& v, const Where& w) -> P2PResult<void> {
         auto n = as_byte_size(v, w, kKiB, kGiB);
         if (!n) return fail(n.error());
         c.server.limits.client_queue_bytes_max = static_cast<std::size_t>(*n);
         return {};
       }},
      {"clients_max",
       [](RelayToolConfig& c, const Value& v, const Where& w) -> P2PResult<void> {
         auto n = as_count(v, w, 1, 10'000'000);
         if (!n) return fail(n.error());
         c.server.limits.clients_max = static_cast<std::size_t>(*n);
         return {};
       }},
      {"clients_per_ip_max",
       [](RelayToolConfig& c, const Value& v, const Where& w) -> P2PResult<void> {
         auto n = as_count(v, w, 1, 1'000'000);
         if (!n) return fail(n.error());
         c.server.limits.clients_per_ip_max = static_cast<std::size_t>(*n);
         return {};
       }},
      {"handshake_timeout",
       [](RelayToolConfig& c, const Value& v, const Where& w) {
         return store(as_duration(v, w, std::chrono::milliseconds(100), std::chrono::minutes(10)),
                      c.server.limits.handshake_timeout);
       }},
      {"idle_timeout",
       [](RelayToolConfig& c, const Value& v, const Where& w) {
         return store(as_duration(v, w, std::chrono::seconds(1), std::chrono::hours(1)), c.server.limits.idle_timeout);
       }},
      {"restart_reconnect_in",
       [](RelayToolConfig& c, const Value& v, const Where& w) {
         return store(as_duration(v, w, Duration::zero(), std::chrono::minutes(10)), c.server.restart_reconnect_in);
       }},
      {"restart_try_for",
       [](RelayToolConfig& c, const Value& v, const Where& w) {
         return store(as_duration(v, w, std::chrono::seconds(1), std::chrono::hours(1)), c.server.restart_try_for);
       }},
      {"log_level",
       [](RelayToolConfig& c, const Value& v, const Where& w) -> P2PResult<void> {
         auto s = as_string(v, w);
         if (!s) return fail(s.error());
         auto level = parse_log_level(*s);
         if (!level) return fail(bad(w, level.error().context()));
         c.log_level = *level;
         c.log_level_set = true;
         return {};
       }},
  };
  return table;
}

// apply_addrs reads a `bind` or `stun` value (a string or an array of strings) into `list`
// (cleared first on the key's first line); `stun` may be an empty array (no STUN).
P2PResult<void> apply_addrs(std::vector<env::SocketAddr>& list, const Value& v, const Where& w, bool first,
                            bool allow_empty) {
  std::vector<std::string> texts;
  if (v.kind == Value::Kind::string) texts.push_back(v.text);
  if (v.kind == Value::Kind::array) texts = v.items;
  if (v.kind == Value::Kind::bare) {
    return fail(
        bad(w, fmt::format("{} is not a string (write addresses in double quotes: \"127.0.0.1:3340\")", show(v.text))));
  }
  if (texts.empty() && !allow_empty) return fail(bad(w, "the array is empty (give at least one address)"));
  if (first) list.clear();
  for (const auto& t : texts) {
    auto addr = env::SocketAddr::parse(t);
    if (!addr) return fail(bad(w, addr.error().context()));
    if (std::ranges::find(list, *addr) != list.end()) return fail(bad(w, fmt::format("{} is listed twice", show(t))));
    list.push_back(*addr);
  }
  return {};
}

// check_tls is the both-or-neither rule; `where` names what set the one that is alone.
P2PResult<void> check_tls(const RelayToolConfig& c, const std::function<std::string(std::string_view)>& where) {
  const bool cert = c.server.tls_cert_file.has_value();
  const bool key = c.server.tls_key_file.has_value();
  if (cert && !key) {
    return fail(P2PError::invalid_configuration(
        fmt::format("{}tls_cert is set without tls_key (give both, or neither for plain HTTP)", where("tls_cert"))));
  }
  if (key && !cert) {
    return fail(P2PError::invalid_configuration(
        fmt::format("{}tls_key is set without tls_cert (give both, or neither for plain HTTP)", where("tls_key"))));
  }
  return {};
}

// check_limits rejects limits that contradict each other.
P2PResult<void> check_limits(const RelayToolConfig& c, const std::function<std::string(std::string_view)>& where) {
  const auto& l = c.server.limits;
  if (l.client_queue_bytes_max < l.frame_size_max) {
    return fail(P2PError::invalid_configuration(fmt::format(
        "{}client_queue_bytes_max ({}) is below frame_size_max ({}): a frame of the largest size could never be "
        "queued",
        where("client_queue_bytes_max"), format_byte_size(l.client_queue_bytes_max),
        format_byte_size(l.frame_size_max))));
  }
  if (l.client_bytes_per_second != 0 && l.client_burst_bytes < l.frame_size_max) {
    return fail(P2PError::invalid_configuration(fmt::format(
        "{}client_burst_bytes ({}) is below frame_size_max ({}): a frame of the largest size could never pass the "
        "rate limit",
        where("client_burst_bytes"), format_byte_size(l.client_burst_bytes), format_byte_size(l.frame_size_max))));
  }
  return {};
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += c;
    }
  }
  out += '"';
  return out;
}

}  // namespace

relay::RelayServerConfig RelayToolConfig::default_server_config() {
  relay::RelayServerConfig c;
  c.bind_addrs = {env::SocketAddr::v4_loopback(kRelayPortDefault)};
  c.stun_bind_addrs = default_stun_addrs(c.bind_addrs);
  return c;
}

std::vector<env::SocketAddr> default_stun_addrs(const std::vector<env::SocketAddr>& bind) {
  std::vector<env::SocketAddr> out;
  for (const auto& b : bind) {
    const auto a = b.with_port(b.port() == 0 ? 0 : kStunPortDefault);
    if (std::ranges::find(out, a) == out.end()) out.push_back(a);
  }
  return out;
}

P2PResult<RelayToolConfig> parse_relay_config(std::string_view text, std::string_view name) {
  RelayToolConfig config;
  Lines lines;
  // A UTF-8 byte order mark is not part of the first key.
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  std::size_t line_no = 0;
  bool bind_seen = false;
  bool stun_seen = false;
  while (!text.empty()) {
    ++line_no;
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    Where w{name, line_no, {}};
    std::string_view rest = skip_space(line);
    if (rest.empty() || rest.front() == '#') continue;
    if (rest.front() == '[') return fail(bad(w, "tables ([section]) are not supported: write key = value lines"));
    std::size_t n = 0;
    while (n < rest.size() && is_key_char(rest[n])) ++n;
    if (n == 0) return fail(bad(w, fmt::format("expected a key, found {}", show(rest))));
    const std::string_view key = rest.substr(0, n);
    w.key = key;
    rest = skip_space(rest.substr(n));
    if (rest.empty() || rest.front() != '=') return fail(bad(w, "expected '=' after the key"));
    const auto& table = handlers();
    const auto handler = table.find(key);
    if (key != "bind" && key != "stun" && handler == table.end()) {
      return fail(bad(w,
                      "unknown key (known: bind, stun, tls_cert, tls_key, trust_forwarded_for, frame_size_max, "
                      "client_bytes_per_second, client_burst_bytes, client_queue_bytes_max, clients_max, "
                      "clients_per_ip_max, handshake_timeout, idle_timeout, restart_reconnect_in, "
                      "restart_try_for, log_level)"));
    }
    auto value = parse_value(rest.substr(1), w);
    if (!value) return fail(value.error());
    if (key == "bind") {
      auto ok = apply_addrs(config.server.bind_addrs, *value, w, !bind_seen, false);
      if (!ok) return fail(ok.error());
      bind_seen = true;
      lines.emplace(std::string(key), line_no);
      continue;
    }
    if (key == "stun") {
      auto ok = apply_addrs(config.server.stun_bind_addrs, *value, w, !stun_seen, true);
      if (!ok) return fail(ok.error());
      stun_seen = true;
      config.stun_set = true;
      lines.emplace(std::string(key), line_no);
      continue;
    }
    if (const auto first = line_of(lines, key); first != 0) {
      return fail(bad(w, fmt::format("set twice (first on line {})", first)));
    }
    auto ok = handler->second(config, *value, w);
    if (!ok) return fail(ok.error());
    lines.emplace(std::string(key), line_no);
  }
  const auto where = [&](std::string_view key) {
    const auto line = line_of(lines, key);
    if (line == 0) return fmt::format("{}: ", name);
    return fmt::format("{}:{}: ", name, line);
  };
  if (!config.stun_set) config.server.stun_bind_addrs = default_stun_addrs(config.server.bind_addrs);
  if (auto ok = check_tls(config, where); !ok) return fail(ok.error());
  // A contradiction between two keys points at the later of them.
  const auto later = [&](std::string_view key) {
    std::size_t line = std::max(line_of(lines, key), line_of(lines, "frame_size_max"));
    if (key == "client_burst_bytes") line = std::max(line, line_of(lines, "client_bytes_per_second"));
    if (line == 0) return fmt::format("{}: ", name);
    return fmt::format("{}:{}: ", name, line);
  };
  if (auto ok = check_limits(config, later); !ok) return fail(ok.error());
  return config;
}

P2PResult<RelayToolConfig> load_relay_config(const std::filesystem::path& path) {
  const std::string shown = path.string();
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return fail(P2PError::invalid_configuration(fmt::format("{}: is a directory, not a config file", shown)));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return fail(P2PError::invalid_configuration(
        fmt::format("{}: cannot read the config file ({})", shown, std::generic_category().message(errno))));
  }
  std::string text;
  std::array<char, 64 * 1024> buf{};
  // Read one byte past the limit at most, whatever the file claims its size is (a pipe or /proc file).
  while (text.size() <= kRelayConfigFileSizeMax) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto got = static_cast<std::size_t>(in.gcount());
    text.append(buf.data(), std::min(got, kRelayConfigFileSizeMax + 1 - text.size()));
    if (got < buf.size()) break;
  }
  if (in.bad()) return fail(P2PError::invalid_configuration(fmt::format("{}: read error", shown)));
  if (text.size() > kRelayConfigFileSizeMax) {
    return fail(P2PError::invalid_configuration(fmt::format("{}: the config file is larger than {} (refused)", shown,
                                                            format_byte_size(kRelayConfigFileSizeMax))));
  }
  return parse_relay_config(text, shown);
}

P2PResult<RelayToolConfig> resolve_relay_config(const RelayFlags& flags, std::optional<LogLevel> env_log_level) {
  RelayToolConfig config;
  bool level_from_file = false;
  if (flags.config) {
    auto loaded = load_relay_config(*flags.config);
    if (!loaded) return fail(loaded.error());
    config = std::move(*loaded);
    level_from_file = config.log_level_set;
  }
  if (!level_from_file && env_log_level) config.log_level = *env_log_level;
  if (!flags.bind.empty()) {
    config.server.bind_addrs.clear();
    for (const auto& b : flags.bind) {
      auto addr = env::SocketAddr::parse(b);
      if (!addr) return fail(P2PError::invalid_configuration(fmt::format("--bind: {}", addr.error().context())));
      if (std::ranges::find(config.server.bind_addrs, *addr) != config.server.bind_addrs.end()) {
        return fail(P2PError::invalid_configuration(fmt::format("--bind: '{}' is given twice", b)));
      }
      config.server.bind_addrs.push_back(*addr);
    }
  }
  if (flags.no_stun && !flags.stun.empty()) {
    return fail(P2PError::invalid_configuration("--stun and --no-stun contradict each other (give one)"));
  }
  if (flags.no_stun) {
    config.server.stun_bind_addrs.clear();
    config.stun_set = true;
  }
  if (!flags.stun.empty()) {
    config.server.stun_bind_addrs.clear();
    for (const auto& s : flags.stun) {
      auto addr = env::SocketAddr::parse(s);
      if (!addr) return fail(P2PError::invalid_configuration(fmt::format("--stun: {}", addr.error().context())));
      if (std::ranges::find(config.server.stun_bind_addrs, *addr) != config.server.stun_bind_addrs.end()) {
        return fail(P2PError::invalid_configuration(fmt::format("--stun: '{}' is given twice", s)));
      }
      config.server.stun_bind_addrs.push_back(*addr);
    }
    config.stun_set = true;
  }
  if (!config.stun_set) config.server.stun_bind_addrs = default_stun_addrs(config.server.bind_addrs);
  if (flags.tls_cert) {
    if (flags.tls_cert->empty()) return fail(P2PError::invalid_configuration("--tls-cert: the path is empty"));
    config.server.tls_cert_file = *flags.tls_cert;
  }
  if (flags.tls_key) {
    if (flags.tls_key->empty()) return fail(P2PError::invalid_configuration("--tls-key: the path is empty"));
    config.server.tls_key_file = *flags.tls_key;
  }
  if (flags.trust_forwarded_for) config.server.trust_forwarded_for = true;
  if (flags.log_level) {
    auto level = parse_log_level(*flags.log_level);
    if (!level) return fail(P2PError::invalid_configuration(fmt::format("--log-level: {}", level.error().context())));
    config.log_level = *level;
    config.log_level_set = true;
  }
  const auto where = [&](std::string_view key) {
    const bool from_flag = key == "tls_cert" ? flags.tls_cert.has_value() : flags.tls_key.has_value();
    if (from_flag) return std::string("--tls-cert/--tls-key: ");
    return flags.config ? fmt::format("{}: ", flags.config->string()) : std::string();
  };
  if (auto ok = check_tls(config, where); !ok) return fail(ok.error());
  return config;
}

std::string format_byte_size(std::uint64_t bytes) {
  constexpr std::array<std::pair<std::uint64_t, std::string_view>, 4> units = {
      {{kTiB, "TiB"}, {kGiB, "GiB"}, {kMiB, "MiB"}, {kKiB, "KiB"}}};
  for (const auto& [scale, unit] : units) {
    if (bytes != 0 && bytes % scale == 0) return fmt::format("{}{}", bytes / scale, unit);
  }
  return fmt::format("{}", bytes);
}

std::string format_config_duration(Duration d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  if (ms != 0 && ms % 3'600'000 == 0) return fmt::format("{}h", ms / 3'600'000);
  if (ms != 0 && ms % 60'000 == 0) return fmt::format("{}m", ms / 60'000);
  if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}

std::string format_relay_config(const RelayToolConfig& c) {
  const auto& s = c.server;
  const auto& l = s.limits;
  std::string out = "# moosicbox-p2p-relay effective configuration\n";
  out += "bind = [";
  for (std::size_t i = 0; i < s.bind_addrs.size(); ++i) {
    out += fmt::format("{}{}", i == 0 ? "" : ", ", quote(s.bind_addrs[i].to_string()));
  }
  out += "]\n";
  out += "stun = [";
  for (std::size_t i = 0; i < s.stun_bind_addrs.size(); ++i) {
    out += fmt::format("{}{}", i == 0 ? "" : ", ", quote(s.stun_bind_addrs[i].to_string()));
  }
  out += "]\n";
  if (s.tls_cert_file) out += fmt::format("tls_cert = {}\n", quote(*s.tls_cert_file));
  if (s.tls_key_file) out += fmt::format("tls_key = {}\n", quote(*s.tls_key_file));
  out += fmt::format("trust_forwarded_for = {}\n", s.trust_forwarded_for);
  out += fmt::format("frame_size_max = {}\n", quote(format_byte_size(l.frame_size_max)));
  out += fmt::format("client_bytes_per_second = {}\n", quote(format_byte_size(l.client_bytes_per_second)));
  out += fmt::format("client_burst_bytes = {}\n", quote(format_byte_size(l.client_burst_bytes)));
  out += fmt::format("client_queue_bytes_max = {}\n", quote(format_byte_size(l.client_queue_bytes_max)));
  out += fmt::format("clients_max = {}\n", l.clients_max);
  out += fmt::format("clients_per_ip_max = {}\n", l.clients_per_ip_max);
  out += fmt::format("handshake_timeout = {}\n", quote(format_config_duration(l.handshake_timeout)));
  out += fmt::format("idle_timeout = {}\n", quote(format_config_duration(l.idle_timeout)));
  out += fmt::format("restart_reconnect_in = {}\n", quote(format_config_duration(s.restart_reconnect_in)));
  out += fmt::format("restart_try_for = {}\n", quote(format_config_duration(s.restart_try_for)));
  out += fmt::format("log_level = {}\n", quote(to_string(c.log_level)));
  return out;
}

}  // namespace moosicbox::p2p::cli
