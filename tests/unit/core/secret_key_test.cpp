// SPDX-License-Identifier: MIT OR Apache-2.0
// secret_key_test.cpp: key derivation, signatures, and key files (permissions, malformed content).
#include "moosicbox/p2p/core/secret_key.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "moosicbox/p2p/env/rng.hpp"

namespace moosicbox::p2p {
namespace {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "p2p-key-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

void write_file(const std::filesystem::path& p, std::string_view content, mode_t mode) {
  std::ofstream(p) << content;
  ::chmod(p.c_str(), mode);
}

TEST(SecretKey, FromSeedIsDeterministic) {
  std::array<std::byte, 32> seed{};
  seed[0] = std::byte{7};
  const auto a = SecretKey::from_seed(seed);
  const auto b = SecretKey::from_seed(seed);
  EXPECT_EQ(a.public_key(), b.public_key());
  seed[0] = std::byte{8};
  EXPECT_NE(SecretKey::from_seed(seed).public_key(), a.public_key());
}

TEST(SecretKey, GenerateDrawsFromTheGivenSource) {
  env::Rng r1(42);
  env::Rng r2(42);
  env::Rng r3(43);
  EXPECT_EQ(SecretKey::generate(r1).public_key(), SecretKey::generate(r2).public_key());
  env::Rng r4(42);
  EXPECT_NE(SecretKey::generate(r3).public_key(), SecretKey::generate(r4).public_key());
}

TEST(SecretKey, SignatureVerifiesOnlyWithTheRightKeyAndMessage) {
  const auto key = test_secret_key("alice");
  const auto msg = as_bytes("hello");
  const auto sig = key.sign(msg);
  EXPECT_TRUE(verify(key.public_key(), msg, sig));
  EXPECT_FALSE(verify(test_node_id("bob"), msg, sig));
  EXPECT_FALSE(verify(key.public_key(), as_bytes("hellp"), sig));
  auto bad = sig;
  bad[10] ^= 1;
  EXPECT_FALSE(verify(key.public_key(), msg, bad));
}

TEST(SecretKey, SavesWithMode0600AndLoadsBack) {
  TempDir dir;
  const auto path = dir.path() / "node.key";
  const auto key = test_secret_key("carol");
  ASSERT_TRUE(key.save(path));
  struct ::stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);
  auto loaded = SecretKey::load(path);
  ASSERT_TRUE(loaded) << loaded.error().message();
  EXPECT_EQ(loaded->public_key(), key.public_key());
}

TEST(SecretKey, RefusesToOverwriteUnlessAsked) {
  TempDir dir;
  const auto path = dir.path() / "node.key";
  ASSERT_TRUE(test_secret_key("a").save(path));
  auto again = test_secret_key("b").save(path);
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message().find("already exists"), std::string::npos);
  EXPECT_EQ(SecretKey::load(path)->public_key(), test_node_id("a"));
  ASSERT_TRUE(test_secret_key("b").save(path, true));
  EXPECT_EQ(SecretKey::load(path)->public_key(), test_node_id("b"));
}

TEST(SecretKey, RefusesKeyFileReadableByOthers) {
  TempDir dir;
  const auto path = dir.path() / "node.key";
  ASSERT_TRUE(test_secret_key("a").save(path));
  ::chmod(path.c_str(), 0644);
  auto r = SecretKey::load(path);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), P2PErrc::invalid_configuration);
  EXPECT_NE(r.error().message().find("permissions 0644"), std::string::npos);
  ::chmod(path.c_str(), 0640);
  EXPECT_FALSE(SecretKey::load(path));
}

TEST(SecretKey, RejectsMissingAndMalformedFiles) {
  TempDir dir;
  EXPECT_FALSE(SecretKey::load(dir.path() / "missing"));
  EXPECT_FALSE(SecretKey::load(dir.path()));  // a directory
  const auto p = dir.path() / "k";
  const std::string hex(64, 'a');
  const std::string header = "moosicbox-p2p secret key v1\n";
  struct Case {
    const char* name;
    std::string content;
  };
  const Case cases[] = {
      {"empty", ""},
      {"bad header", "ssh-ed25519 key\n" + hex + "\n"},
      {"short key", header + std::string(63, 'a') + "\n"},
      {"long key", header + std::string(66, 'a') + "\n"},
      {"bad hex", header + std::string(63, 'a') + "z\n"},
      {"trailing", header + hex + "\nextra\n"},
      {"binary", std::string("\0\1\2\3", 4)},
  };
  for (const auto& c : cases) {
    std::filesystem::remove(p);
    write_file(p, c.content, 0600);
    auto r = SecretKey::load(p);
    EXPECT_FALSE(r) << c.name;
    if (!r) {
      EXPECT_EQ(r.error().code(), P2PErrc::invalid_configuration) << c.name;
    }
  }
  std::filesystem::remove(p);
  write_file(p, header + hex + "\n", 0600);
  EXPECT_TRUE(SecretKey::load(p));
  std::filesystem::remove(p);
  write_file(p, std::string(10000, 'a'), 0600);
  EXPECT_NE(SecretKey::load(p).error().message().find("too large"), std::string::npos);
}

}  // namespace
}  // namespace moosicbox::p2p
