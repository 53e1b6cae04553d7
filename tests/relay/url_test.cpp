// SPDX-License-Identifier: MIT OR Apache-2.0
// url_test.cpp: relay URL parsing accepts http(s) URLs with names, IPv4 and bracketed IPv6 hosts,
// and refuses malformed ones with a message that names the problem.
#include "relay/url.hpp"

#include <gtest/gtest.h>

namespace moosicbox::p2p::relay {
namespace {

TEST(RelayUrl, ParsesSchemesHostsAndPorts) {
  auto a = parse_relay_url("http://127.0.0.1:3340");
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(*a, (RelayUrl{false, "127.0.0.1", 3340, false}));
  EXPECT_EQ(a->host_header(), "127.0.0.1:3340");

  auto b = parse_relay_url("https://relay.example.org/ignored/path?x=1");
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ(*b, (RelayUrl{true, "relay.example.org", 443, false}));
  EXPECT_EQ(b->host_header(), "relay.example.org");

  auto c = parse_relay_url("http://[::1]:8080");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(*c, (RelayUrl{false, "::1", 8080, true}));
  EXPECT_EQ(c->host_header(), "[::1]:8080");

  auto d = parse_relay_url("HTTP://localhost");
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->port, 80);
  EXPECT_EQ(d->host_header(), "localhost");

  auto e = parse_relay_url("https://[::1]");
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->port, 443);
  EXPECT_TRUE(e->tls);
}

TEST(RelayUrl, RefusesMalformedUrlsWithClearMessages) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "empty"},
      {"127.0.0.1:3340", "no scheme"},
      {"ftp://relay.example.org", "unsupported scheme 'ftp'"},
      {"http://", "empty host"},
      {"http://:80", "empty host"},
      {"http://[]:80", "empty host"},
      {"http://host:abc", "bad port 'abc'"},
      {"http://host:", "empty port"},
      {"http://host:0", "port 0"},
      {"http://host:65536", "out of range"},
      {"http://host:99999999999999999999", "out of range"},
      {"http://ho st", "space"},
      {" http://host", "space"},
      {"http://[::1", "unbalanced"},
      {"http://::1:80", "brackets"},
      {"http://[::1]x", "after ']'"},
      {"http://user@host", "user information"},
      {"http://host:-1", "bad port"},
  };
  for (const auto& [url, why] : cases) {
    const auto r = parse_relay_url(url);
    ASSERT_FALSE(r.has_value()) << url;
    EXPECT_EQ(r.error().code(), P2PErrc::invalid_configuration) << url;
    EXPECT_NE(r.error().message().find(why), std::string::npos) << url << " -> " << r.error().message();
  }
}

}  // namespace
}  // namespace moosicbox::p2p::relay
