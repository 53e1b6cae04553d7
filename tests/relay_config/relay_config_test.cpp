// SPDX-License-Identifier: MIT OR Apache-2.0
// relay_config_test.cpp: the moosicbox-p2p-relay config file parser (good files, every error path,
// messages naming file:line and key), the flag overrides and --print-config's round trip.
// Layer: tools (unit). No sockets; the only files are written under the test's temp directory.
#include "relay_config.hpp"

#include <gtest/gtest.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <string>

namespace p2p = moosicbox::p2p;
using p2p::cli::parse_relay_config;
using p2p::cli::RelayFlags;
using p2p::cli::RelayToolConfig;
using namespace std::chrono_literals;

namespace {

// error_of parses `text` as relay.conf and returns the error's context (empty when it parsed).
std::string error_of(std::string_view text) {
  auto r = parse_relay_config(text, "relay.conf");
  if (r) return {};
  EXPECT_EQ(r.error().code(), p2p::P2PErrc::invalid_configuration);
  return r.error().context();
}

RelayToolConfig parsed(std::string_view text) {
  auto r = parse_relay_config(text, "relay.conf");
  EXPECT_TRUE(r) << r.error().message();
  return r ? *r : RelayToolConfig{};
}

// TempDir is a directory removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "relay_config_test.XXXXXX").string();
    const char* made = ::mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr);
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::filesystem::path write(const std::string& name, std::string_view text) const {
    const auto p = path_ / name;
    std::ofstream out(p, std::ios::binary);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    return p;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace

TEST(RelayConfig, EmptyFileGivesTheDefaults) {
  const auto c = parsed("");
  ASSERT_EQ(c.server.bind_addrs.size(), 1U);
  EXPECT_EQ(c.server.bind_addrs[0].to_string(), "127.0.0.1:3340");
  EXPECT_FALSE(c.server.tls_cert_file);
  EXPECT_FALSE(c.server.tls_key_file);
  EXPECT_FALSE(c.server.trust_forwarded_for);
  EXPECT_EQ(c.server.limits.frame_size_max, p2p::relay::RelayServerLimits{}.frame_size_max);
  EXPECT_EQ(c.log_level, p2p::LogLevel::info);
  EXPECT_FALSE(c.log_level_set);
}

TEST(RelayConfig, CommentsAndBlankLinesOnlyGiveTheDefaults) {
  const auto c = parsed("# a comment\n\n   \t\n  # indented comment\n");
  EXPECT_EQ(c.server.bind_addrs[0].to_string(), "127.0.0.1:3340");
}

TEST(RelayConfig, ReadsEveryKey) {
  const auto c = parsed(R"(# production relay
bind = ["0.0.0.0:3340", "[::]:3340"]
tls_cert = "/etc/relay/cert.pem"
tls_key = "/etc/relay/key.pem"
trust_forwarded_for = true
frame_size_max = 128KiB
client_bytes_per_second = "1MiB"
client_burst_bytes = 8MiB
client_queue_bytes_max = 2097152
clients_max = 50_000
clients_per_ip_max = 16
handshake_timeout = "5s"
idle_timeout = 2m
restart_reconnect_in = 250ms
restart_try_for = "1h"
log_level = "debug"
)");
  ASSERT_EQ(c.server.bind_addrs.size(), 2U);
  EXPECT_EQ(c.server.bind_addrs[0].to_string(), "0.0.0.0:3340");
  EXPECT_EQ(c.server.bind_addrs[1].to_string(), "[::]:3340");
  EXPECT_EQ(c.server.tls_cert_file, "/etc/relay/cert.pem");
  EXPECT_EQ(c.server.tls_key_file, "/etc/relay/key.pem");
  EXPECT_TRUE(c.server.trust_forwarded_for);
  EXPECT_EQ(c.server.limits.frame_size_max, 128U * 1024);
  EXPECT_EQ(c.server.limits.client_bytes_per_second, 1024U * 1024);
  EXPECT_EQ(c.server.limits.client_burst_bytes, 8U * 1024 * 1024);
  EXPECT_EQ(c.server.limits.client_queue_bytes_max, 2097152U);
  EXPECT_EQ(c.server.limits.clients_max, 50'000U);
  EXPECT_EQ(c.server.limits.clients_per_ip_max, 16U);
  EXPECT_EQ(c.server.limits.handshake_timeout, 5s);
  EXPECT_EQ(c.server.limits.idle_timeout, 2min);
  EXPECT_EQ(c.server.restart_reconnect_in, 250ms);
  EXPECT_EQ(c.server.restart_try_for, 1h);
  EXPECT_EQ(c.log_level, p2p::LogLevel::debug);
  EXPECT_TRUE(c.log_level_set);
}

TEST(RelayConfig, ToleratesWhitespaceTrailingCommentsAndCrlf) {
  const auto c = parsed("\xEF\xBB\xBF  idle_timeout\t=\t30s   # half a minute\r\n\r\nclients_max=10 #x\r\n");
  EXPECT_EQ(c.server.limits.idle_timeout, 30s);
  EXPECT_EQ(c.server.limits.clients_max, 10U);
}

TEST(RelayConfig, LastLineWithoutNewlineIsRead) { EXPECT_EQ(parsed("clients_max = 7").server.limits.clients_max, 7U); }

TEST(RelayConfig, HashInsideAStringIsNotAComment) {
  EXPECT_EQ(parsed(R"(tls_cert = "/a#b" # c
tls_key = "/k")")
                .server.tls_cert_file,
            "/a#b");
}

TEST(RelayConfig, StringEscapes) {
  EXPECT_EQ(parsed(R"(tls_cert = "a\"b\\c"
tls_key = "k")")
                .server.tls_cert_file,
            "a\"b\\c");
  EXPECT_NE(error_of(R"(tls_cert = "a\qb")").find("unknown escape"), std::string::npos);
}

TEST(RelayConfig, RepeatedBindAppends) {
  const auto c = parsed("bind = \"127.0.0.1:1\"\nbind = [\"[::1]:2\"]\n");
  ASSERT_EQ(c.server.bind_addrs.size(), 2U);
  EXPECT_EQ(c.server.bind_addrs[0].to_string(), "127.0.0.1:1");
  EXPECT_EQ(c.server.bind_addrs[1].to_string(), "[::1]:2");
}

TEST(RelayConfig, ErrorNamesFileLineKeyAndExamples) {
  EXPECT_EQ(error_of("# c\n\n\n\n\n\nframe_size_max = 64q\n"),
            "relay.conf:7: frame_size_max: '64q' is not a byte size (examples: 65536, 64KiB)");
}

TEST(RelayConfig, UnknownKeyIsAnError) {
  const auto e = error_of("idle_timout = 10s\n");
  EXPECT_TRUE(e.starts_with("relay.conf:1: idle_timout: unknown key (known: bind, ")) << e;
}

TEST(RelayConfig, DuplicateKeyIsAnError) {
  EXPECT_EQ(error_of("clients_max = 1\n\nclients_max = 2\n"), "relay.conf:3: clients_max: set twice (first on line 1)");
}

TEST(RelayConfig, MissingQuoteIsAnError) {
  EXPECT_EQ(error_of("tls_cert = \"/etc/cert.pem\n"),
            "relay.conf:1: tls_cert: missing closing quote (strings are written on one line)");
}

TEST(RelayConfig, BadDurationsAreErrors) {
  EXPECT_EQ(error_of("idle_timeout = 10\n"),
            "relay.conf:1: idle_timeout: '10' is not a duration (examples: 10s, 500ms, 2m, 1h)");
  EXPECT_NE(error_of("idle_timeout = 1.5s\n").find("is not a duration"), std::string::npos);
  EXPECT_NE(error_of("idle_timeout = s\n").find("is not a duration"), std::string::npos);
  EXPECT_NE(error_of("idle_timeout = 10 s\n").find("unexpected 's' after the value"), std::string::npos);
  EXPECT_EQ(error_of("idle_timeout = 0s\n"), "relay.conf:1: idle_timeout: '0s' is out of range (1s to 1h)");
  EXPECT_EQ(error_of("handshake_timeout = 99ms\n"),
            "relay.conf:1: handshake_timeout: '99ms' is out of range (100ms to 10m)");
  EXPECT_NE(error_of("idle_timeout = 99999999999999999999999h\n").find("out of range"), std::string::npos);
  EXPECT_EQ(parsed("restart_reconnect_in = 0ms").server.restart_reconnect_in, 0s);
}

TEST(RelayConfig, NegativeNumbersAreErrors) {
  EXPECT_EQ(error_of("clients_max = -5\n"), "relay.conf:1: clients_max: '-5' must not be negative");
  EXPECT_EQ(error_of("frame_size_max = -1KiB\n"), "relay.conf:1: frame_size_max: '-1KiB' must not be negative");
  EXPECT_EQ(error_of("idle_timeout = -3s\n"), "relay.conf:1: idle_timeout: '-3s' must not be negative");
}

TEST(RelayConfig, OverflowIsOutOfRange) {
  EXPECT_EQ(error_of("clients_max = 99999999999999999999999\n"),
            "relay.conf:1: clients_max: '99999999999999999999999' is out of range (1 to 10000000)");
  EXPECT_NE(error_of("client_burst_bytes = 18446744073709551615GiB\n").find("out of range"), std::string::npos);
  EXPECT_NE(error_of("client_burst_bytes = 99999999999999999999999\n").find("out of range"), std::string::npos);
}

TEST(RelayConfig, ByteSizeRanges) {
  EXPECT_EQ(error_of("frame_size_max = 1023\n"), "relay.conf:1: frame_size_max: '1023' is out of range (1KiB to 1MiB)");
  EXPECT_EQ(error_of("frame_size_max = 2MiB\n"), "relay.conf:1: frame_size_max: '2MiB' is out of range (1KiB to 1MiB)");
  EXPECT_EQ(parsed("frame_size_max = 1KiB").server.limits.frame_size_max, 1024U);
  EXPECT_EQ(parsed("frame_size_max = 1MiB").server.limits.frame_size_max, 1024U * 1024);
  EXPECT_NE(error_of("frame_size_max = 64KB\n").find("is not a byte size"), std::string::npos);
  EXPECT_EQ(parsed("client_bytes_per_second = 0").server.limits.client_bytes_per_second, 0U);
}

TEST(RelayConfig, CountsAreBareIntegers) {
  EXPECT_EQ(error_of("clients_max = 0\n"), "relay.conf:1: clients_max: '0' is out of range (1 to 10000000)");
  EXPECT_EQ(error_of("clients_max = \"5\"\n"),
            "relay.conf:1: clients_max: expected an integer without quotes, not '5'");
  EXPECT_EQ(error_of("clients_max = 5x\n"), "relay.conf:1: clients_max: '5x' is not an integer (examples: 64, 10_000)");
  EXPECT_NE(error_of("clients_max = 1__0\n").find("is not an integer"), std::string::npos);
  EXPECT_NE(error_of("clients_max = _10\n").find("is not an integer"), std::string::npos);
}

TEST(RelayConfig, BooleansAndStringsAreTyped) {
  EXPECT_EQ(error_of("trust_forwarded_for = yes\n"),
            "relay.conf:1: trust_forwarded_for: 'yes' is not a boolean (true or false)");
  EXPECT_EQ(error_of("trust_forwarded_for = \"true\"\n"),
            "relay.conf:1: trust_forwarded_for: 'true' is not a boolean (true or false)");
  EXPECT_EQ(error_of("tls_cert = /etc/cert.pem\n"),
            "relay.conf:1: tls_cert: '/etc/cert.pem' is not a string (write it in double quotes)");
  EXPECT_EQ(error_of("tls_cert = \"\"\ntls_key = \"k\"\n"), "relay.conf:1: tls_cert: the path is empty");
}

TEST(RelayConfig, TlsCertWithoutKeyIsAnError) {
  EXPECT_EQ(error_of("\ntls_cert = \"/c.pem\"\n"),
            "relay.conf:2: tls_cert is set without tls_key (give both, or neither for plain HTTP)");
  EXPECT_EQ(error_of("tls_key = \"/k.pem\"\n"),
            "relay.conf:1: tls_key is set without tls_cert (give both, or neither for plain HTTP)");
}

TEST(RelayConfig, LogLevelIsChecked) {
  EXPECT_EQ(error_of("log_level = \"verbose\"\n"),
            "relay.conf:1: log_level: 'verbose': not a log level (accepted: trace, debug, info, warn, error, off)");
  EXPECT_EQ(parsed("log_level = \"WARN\"").log_level, p2p::LogLevel::warn);
}

TEST(RelayConfig, BindErrors) {
  EXPECT_EQ(error_of("bind = []\n"), "relay.conf:1: bind: the array is empty (give at least one address)");
  EXPECT_NE(error_of("bind = \"1.2.3\"\n").find("relay.conf:1: bind: bad socket address \"1.2.3\""), std::string::npos);
  EXPECT_NE(error_of("bind = 127.0.0.1:3340\n").find("is not a string"), std::string::npos);
  EXPECT_EQ(error_of("bind = [\"127.0.0.1:1\", \"127.0.0.1:1\"]\n"),
            "relay.conf:1: bind: '127.0.0.1:1' is listed twice");
  EXPECT_EQ(error_of("bind = [\"127.0.0.1:1\"\n"), "relay.conf:1: bind: missing ']' (arrays are written on one line)");
  EXPECT_EQ(error_of("bind = [\"127.0.0.1:1\" \"[::1]:1\"]\n"),
            "relay.conf:1: bind: expected ',' or ']' after an array item");
  EXPECT_EQ(error_of("bind = [1]\n"), "relay.conf:1: bind: array items must be strings in double quotes");
  // A trailing comma is allowed, as in TOML.
  EXPECT_EQ(parsed("bind = [\"127.0.0.1:1\",]").server.bind_addrs.size(), 1U);
}

TEST(RelayConfig, SyntaxErrors) {
  EXPECT_EQ(error_of("[relay]\n"), "relay.conf:1: tables ([section]) are not supported: write key = value lines");
  EXPECT_EQ(error_of("clients_max 5\n"), "relay.conf:1: clients_max: expected '=' after the key");
  EXPECT_EQ(error_of("clients_max =\n"), "relay.conf:1: clients_max: missing value after '='");
  EXPECT_EQ(error_of("clients_max = # none\n"), "relay.conf:1: clients_max: missing value after '='");
  EXPECT_EQ(error_of("= 5\n"), "relay.conf:1: expected a key, found '= 5'");
  EXPECT_EQ(error_of("clients_max = 5 6\n"),
            "relay.conf:1: clients_max: unexpected '6' after the value (a comment starts with '#')");
  EXPECT_EQ(error_of("tls_cert = \"a\" b\n"),
            "relay.conf:1: tls_cert: unexpected 'b' after the value (a comment starts with '#')");
  EXPECT_NE(error_of("tls_cert = \"a\x01\"\n").find("control character 0x01"), std::string::npos);
  EXPECT_EQ(error_of("\"quoted\" = 1\n"), "relay.conf:1: expected a key, found '\"quoted\" = 1'");
  EXPECT_EQ(error_of("idle_timeout = [\"1s\"]\n"), "relay.conf:1: idle_timeout: expected a single value, not an array");
}

TEST(RelayConfig, ContradictoryLimitsAreErrors) {
  EXPECT_EQ(error_of("frame_size_max = 1MiB\nclient_queue_bytes_max = 512KiB\n"),
            "relay.conf:2: client_queue_bytes_max (512KiB) is below frame_size_max (1MiB): a frame of the largest size "
            "could never be queued");
  EXPECT_NE(error_of("client_bytes_per_second = 1MiB\nclient_burst_bytes = 1KiB\n")
                .find("relay.conf:2: client_burst_bytes (1KiB) is below frame_size_max (64KiB)"),
            std::string::npos);
  // Without a rate limit the burst size does not matter.
  EXPECT_EQ(parsed("client_burst_bytes = 1KiB").server.limits.client_burst_bytes, 1024U);
}

TEST(RelayConfig, PrintedConfigReadsBack) {
  const auto c = parsed(R"(bind = ["0.0.0.0:3340", "[::]:3341"]
tls_cert = "/c \"x\".pem"
tls_key = "/k.pem"
trust_forwarded_for = true
frame_size_max = 2000
client_bytes_per_second = 3MiB
idle_timeout = 90s
restart_reconnect_in = 1500ms
log_level = "error"
)");
  const auto text = p2p::cli::format_relay_config(c);
  const auto back = parsed(text);
  EXPECT_EQ(back.server.bind_addrs, c.server.bind_addrs);
  EXPECT_EQ(back.server.stun_bind_addrs, c.server.stun_bind_addrs);
  EXPECT_EQ(back.server.tls_cert_file, c.server.tls_cert_file);
  EXPECT_EQ(back.server.tls_key_file, c.server.tls_key_file);
  EXPECT_EQ(back.server.trust_forwarded_for, true);
  EXPECT_EQ(back.server.limits.frame_size_max, 2000U);
  EXPECT_EQ(back.server.limits.client_bytes_per_second, 3U * 1024 * 1024);
  EXPECT_EQ(back.server.limits.idle_timeout, 90s);
  EXPECT_EQ(back.server.restart_reconnect_in, 1500ms);
  EXPECT_EQ(back.log_level, p2p::LogLevel::error);
  EXPECT_NE(text.find("idle_timeout = \"90s\""), std::string::npos) << text;
  EXPECT_NE(text.find("frame_size_max = \"2000\""), std::string::npos) << text;
}

TEST(RelayConfig, FormatsSizesAndDurations) {
  EXPECT_EQ(p2p::cli::format_byte_size(0), "0");
  EXPECT_EQ(p2p::cli::format_byte_size(65536), "64KiB");
  EXPECT_EQ(p2p::cli::format_byte_size(1024 * 1024), "1MiB");
  EXPECT_EQ(p2p::cli::format_byte_size(1000), "1000");
  EXPECT_EQ(p2p::cli::format_config_duration(0s), "0s");
  EXPECT_EQ(p2p::cli::format_config_duration(500ms), "500ms");
  EXPECT_EQ(p2p::cli::format_config_duration(120s), "2m");
  EXPECT_EQ(p2p::cli::format_config_duration(2h), "2h");
}

TEST(RelayConfig, LoadNamesThePath) {
  TempDir dir;
  const auto p = dir.write("relay.conf", "clients_max = 3\nidle_timeout = soon\n");
  auto r = p2p::cli::load_relay_config(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().context(),
            p.string() + ":2: idle_timeout: 'soon' is not a duration (examples: 10s, 500ms, 2m, 1h)");
  auto missing = p2p::cli::load_relay_config(dir.path() / "nope.conf");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().context().starts_with((dir.path() / "nope.conf").string() + ": cannot read"));
  auto directory = p2p::cli::load_relay_config(dir.path());
  ASSERT_FALSE(directory);
  EXPECT_NE(directory.error().context().find("is a directory"), std::string::npos);
}

TEST(RelayConfig, LoadRefusesAFileOverOneMebibyte) {
  TempDir dir;
  // Comments only: valid, but one byte too many.
  std::string text(p2p::cli::kRelayConfigFileSizeMax + 1, '#');
  auto r = p2p::cli::load_relay_config(dir.write("big.conf", text));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().context().find("larger than 1MiB (refused)"), std::string::npos) << r.error().context();
  text.pop_back();
  EXPECT_TRUE(p2p::cli::load_relay_config(dir.write("ok.conf", text)));
}

TEST(RelayConfig, FlagsOverrideTheFile) {
  TempDir dir;
  RelayFlags flags;
  flags.config = dir.write("relay.conf", "bind = \"0.0.0.0:3340\"\nidle_timeout = 20s\nlog_level = \"warn\"\n");
  flags.bind = {"127.0.0.1:0", "[::1]:0"};
  flags.trust_forwarded_for = true;
  flags.log_level = "trace";
  auto r = p2p::cli::resolve_relay_config(flags, p2p::LogLevel::error);
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->server.bind_addrs.size(), 2U);
  EXPECT_EQ(r->server.bind_addrs[0].to_string(), "127.0.0.1:0");
  EXPECT_EQ(r->server.limits.idle_timeout, 20s);
  EXPECT_TRUE(r->server.trust_forwarded_for);
  EXPECT_EQ(r->log_level, p2p::LogLevel::trace);
}

TEST(RelayConfig, FileLogLevelWinsOverTheEnvironment) {
  TempDir dir;
  RelayFlags flags;
  flags.config = dir.write("relay.conf", "log_level = \"info\"\n");
  auto r = p2p::cli::resolve_relay_config(flags, p2p::LogLevel::debug);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->log_level, p2p::LogLevel::info);
  auto no_file = p2p::cli::resolve_relay_config(RelayFlags{}, p2p::LogLevel::debug);
  ASSERT_TRUE(no_file);
  EXPECT_EQ(no_file->log_level, p2p::LogLevel::debug);
}

TEST(RelayConfig, NoFlagsGiveTheLoopbackDefault) {
  auto r = p2p::cli::resolve_relay_config(RelayFlags{});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->server.bind_addrs.size(), 1U);
  EXPECT_EQ(r->server.bind_addrs[0].to_string(), "127.0.0.1:3340");
  EXPECT_EQ(r->log_level, p2p::LogLevel::info);
}

TEST(RelayConfig, BadFlagsNameTheFlag) {
  RelayFlags bind;
  bind.bind = {"1.2.3"};
  auto b = p2p::cli::resolve_relay_config(bind);
  ASSERT_FALSE(b);
  EXPECT_TRUE(b.error().context().starts_with("--bind: bad socket address \"1.2.3\"")) << b.error().context();
  RelayFlags twice;
  twice.bind = {"127.0.0.1:1", "127.0.0.1:1"};
  EXPECT_FALSE(p2p::cli::resolve_relay_config(twice));
  RelayFlags level;
  level.log_level = "loud";
  auto l = p2p::cli::resolve_relay_config(level);
  ASSERT_FALSE(l);
  EXPECT_TRUE(l.error().context().starts_with("--log-level: 'loud': not a log level")) << l.error().context();
}

TEST(RelayConfig, TlsFlagAloneIsAnError) {
  RelayFlags flags;
  flags.tls_cert = "/c.pem";
  auto r = p2p::cli::resolve_relay_config(flags);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().context(),
            "--tls-cert/--tls-key: tls_cert is set without tls_key (give both, or neither for plain HTTP)");
  // The file gives the key, the flag the certificate: both are set.
  TempDir dir;
  flags.config = dir.write("relay.conf", "tls_key = \"/k.pem\"\ntls_cert = \"/old.pem\"\n");
  auto ok = p2p::cli::resolve_relay_config(flags);
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(ok->server.tls_cert_file, "/c.pem");
  EXPECT_EQ(ok->server.tls_key_file, "/k.pem");
}

TEST(RelayConfig, BadFileThroughFlagsIsReported) {
  RelayFlags flags;
  flags.config = "/nonexistent/relay.conf";
  auto r = p2p::cli::resolve_relay_config(flags);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().context().starts_with("/nonexistent/relay.conf: cannot read the config file"));
}

TEST(RelayConfig, DocumentedExampleParses) {
  // The example of docs/operations.md, "Config file".
  const auto c = parsed(R"(# /etc/moosicbox-p2p-relay.conf: behind nginx on the same host
bind = "127.0.0.1:3340"
trust_forwarded_for = true
clients_per_ip_max = 32
client_bytes_per_second = "2MiB"   # per client; 0 is unlimited
idle_timeout = "60s"
)");
  EXPECT_TRUE(c.server.trust_forwarded_for);
  EXPECT_EQ(c.server.limits.clients_per_ip_max, 32U);
  EXPECT_EQ(c.server.limits.client_bytes_per_second, 2U * 1024 * 1024);
}

TEST(RelayConfig, ShippedExampleFileParses) {
  auto r = p2p::cli::load_relay_config(MOOSICBOX_P2P_SOURCE_DIR "/packaging/moosicbox-p2p-relay.conf");
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->server.bind_addrs.size(), 1U);
  EXPECT_EQ(r->server.bind_addrs[0].to_string(), "127.0.0.1:3340");
  EXPECT_TRUE(r->server.trust_forwarded_for);
  EXPECT_FALSE(r->server.tls_cert_file);
}

TEST(RelayConfig, StunFollowsBindUnlessSet) {
  using p2p::env::SocketAddr;
  EXPECT_EQ(parsed("").server.stun_bind_addrs, std::vector<SocketAddr>{SocketAddr::v4_loopback(3478)});
  // One STUN address per distinct IP of bind; an ephemeral bind gets an ephemeral STUN port.
  const auto two = parsed(R"(bind = ["0.0.0.0:3340", "[::]:3340", "0.0.0.0:443"])");
  EXPECT_EQ(two.server.stun_bind_addrs, (std::vector<SocketAddr>{SocketAddr::v4_any(3478), SocketAddr::v6_any(3478)}));
  EXPECT_FALSE(two.stun_set);
  EXPECT_EQ(parsed(R"(bind = "127.0.0.1:0")").server.stun_bind_addrs,
            std::vector<SocketAddr>{SocketAddr::v4_loopback(0)});
  // An explicit stun (string, array, repeated) replaces it; [] turns STUN off.
  const auto set = parsed("stun = \"127.0.0.1:3479\"\nstun = [\"[::1]:3478\"]\nbind = \"127.0.0.2:3340\"\n");
  EXPECT_TRUE(set.stun_set);
  EXPECT_EQ(set.server.stun_bind_addrs,
            (std::vector<SocketAddr>{SocketAddr::v4_loopback(3479), SocketAddr::v6_loopback(3478)}));
  const auto off = parsed("stun = []");
  EXPECT_TRUE(off.stun_set);
  EXPECT_TRUE(off.server.stun_bind_addrs.empty());
  // --print-config says so and reads back.
  const auto text = p2p::cli::format_relay_config(off);
  EXPECT_NE(text.find("\nstun = []\n"), std::string::npos) << text;
  EXPECT_TRUE(parsed(text).server.stun_bind_addrs.empty());
}

TEST(RelayConfig, StunErrors) {
  EXPECT_EQ(error_of("stun = 3478"),
            "relay.conf:1: stun: '3478' is not a string (write addresses in double quotes: \"127.0.0.1:3340\")");
  EXPECT_TRUE(error_of("stun = \"3478\"").starts_with("relay.conf:1: stun: ")) << error_of("stun = \"3478\"");
  EXPECT_TRUE(error_of("stun = \"1.2.3.4\"").starts_with("relay.conf:1: stun: "));
  EXPECT_EQ(error_of("stun = [\"127.0.0.1:3478\", \"127.0.0.1:3478\"]"),
            "relay.conf:1: stun: '127.0.0.1:3478' is listed twice");
  EXPECT_TRUE(error_of("stun = true").starts_with("relay.conf:1: stun: "));
  EXPECT_FALSE(error_of("stun = [\"127.0.0.1:3478\"").empty());
}

TEST(RelayConfig, StunFlags) {
  using p2p::env::SocketAddr;
  RelayFlags follow;
  follow.bind = {"127.0.0.5:4000"};
  auto f = p2p::cli::resolve_relay_config(follow);
  ASSERT_TRUE(f) << f.error().message();
  EXPECT_EQ(f->server.stun_bind_addrs, std::vector<SocketAddr>{SocketAddr::v4({127, 0, 0, 5}, 3478)});
  RelayFlags stun;
  stun.stun = {"127.0.0.1:5000", "127.0.0.1:5001"};
  auto s = p2p::cli::resolve_relay_config(stun);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(s->server.stun_bind_addrs,
            (std::vector<SocketAddr>{SocketAddr::v4_loopback(5000), SocketAddr::v4_loopback(5001)}));
  RelayFlags none;
  none.no_stun = true;
  auto n = p2p::cli::resolve_relay_config(none);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_TRUE(n->server.stun_bind_addrs.empty());
  RelayFlags both = stun;
  both.no_stun = true;
  auto b = p2p::cli::resolve_relay_config(both);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().context(), "--stun and --no-stun contradict each other (give one)");
  RelayFlags bad;
  bad.stun = {"nowhere"};
  auto e = p2p::cli::resolve_relay_config(bad);
  ASSERT_FALSE(e);
  EXPECT_TRUE(e.error().context().starts_with("--stun: ")) << e.error().context();
  RelayFlags twice;
  twice.stun = {"127.0.0.1:1", "127.0.0.1:1"};
  auto t = p2p::cli::resolve_relay_config(twice);
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().context(), "--stun: '127.0.0.1:1' is given twice");
}
