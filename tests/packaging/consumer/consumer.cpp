// SPDX-License-Identifier: MIT OR Apache-2.0
// consumer.cpp: a program built against the installed package; exits 0 when the library works.
#include <moosicbox/p2p/core/node_id.hpp>
#include <moosicbox/p2p/core/secret_key.hpp>

#include <cstdio>

namespace p2p = moosicbox::p2p;

int main() {
  const auto id = p2p::test_node_id("consumer");
  auto parsed = p2p::NodeId::parse(id.to_string());
  if (!parsed || *parsed != id) return 1;
  std::printf("%s\n", id.fmt_short().c_str());
  return 0;
}
