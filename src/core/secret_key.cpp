// SPDX-License-Identifier: MIT OR Apache-2.0
// secret_key.cpp: ed25519 keys over libsodium, key files, and the OS CSPRNG.
// Layer: core (the only layer that includes libsodium). Stateless apart from sodium_init; thread-safe.
#include "moosicbox/p2p/core/secret_key.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/sodium_init.hpp"
#include "moosicbox/p2p/core/assert.hpp"

namespace moosicbox::p2p {

namespace detail {
void ensure_sodium() noexcept {
  static const int rc = sodium_init();
  MOOSICBOX_P2P_ASSERT(rc >= 0);
}
}  // namespace detail

void os_random_bytes(std::span<std::byte> out) noexcept {
  detail::ensure_sodium();
  randombytes_buf(out.data(), out.size());
}

namespace {
// A key file is two lines: a versioned header, then the seed in hex. Text, so that a person can tell
// what it is; the header lets a later format coexist.
constexpr std::string_view kKeyFileHeader = "moosicbox-p2p secret key v1";
constexpr std::size_t kKeyFileSizeMax = 4096;

P2PError key_file_error(const std::filesystem::path& path, std::string_view why) {
  return P2PError::invalid_configuration(fmt::format("key file {}: {}", path.string(), why));
}
}  // namespace

SecretKey::~SecretKey() {
  sodium_memzero(seed_.data(), seed_.size());
  sodium_memzero(expanded_.data(), expanded_.size());
}

void SecretKey::wipe(std::span<std::byte> bytes) noexcept { sodium_memzero(bytes.data(), bytes.size()); }

SecretKey SecretKey::from_seed(std::span<const std::byte, kSeedSize> seed) {
  detail::ensure_sodium();
  std::array<std::uint8_t, crypto_sign_PUBLICKEYBYTES> pk{};
  std::array<std::uint8_t, crypto_sign_SECRETKEYBYTES> sk{};
  const int rc = crypto_sign_seed_keypair(pk.data(), sk.data(), reinterpret_cast<const unsigned char*>(seed.data()));
  MOOSICBOX_P2P_ASSERT(rc == 0);
  std::array<std::byte, kSeedSize> s{};
  std::memcpy(s.data(), seed.data(), kSeedSize);
  SecretKey key(s, sk, NodeId(pk));
  sodium_memzero(sk.data(), sk.size());
  sodium_memzero(s.data(), s.size());
  return key;
}

Signature SecretKey::sign(std::span<const std::byte> message) const {
  Signature sig{};
  const int rc = crypto_sign_detached(sig.data(), nullptr, reinterpret_cast<const unsigned char*>(message.data()),
                                      message.size(), expanded_.data());
  MOOSICBOX_P2P_ASSERT(rc == 0);
  return sig;
}

bool verify(const NodeId& signer, std::span<const std::byte> message, const Signature& signature) noexcept {
  detail::ensure_sodium();
  return crypto_sign_verify_detached(signature.data(), reinterpret_cast<const unsigned char*>(message.data()),
                                     message.size(), signer.as_bytes().data()) == 0;
}

SecretKey test_secret_key(std::string_view name) {
  detail::ensure_sodium();
  // The seed is a keyed BLAKE2b hash of the name, so test identities never collide with real ones
  // drawn at random and stay stable across runs and machines.
  static constexpr std::string_view kDomain = "moosicbox-p2p test key";
  std::array<std::byte, SecretKey::kSeedSize> seed{};
  crypto_generichash(reinterpret_cast<unsigned char*>(seed.data()), seed.size(),
                     reinterpret_cast<const unsigned char*>(name.data()), name.size(),
                     reinterpret_cast<const unsigned char*>(kDomain.data()), kDomain.size());
  return SecretKey::from_seed(seed);
}

P2PResult<SecretKey> SecretKey::load(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return fail(key_file_error(path, std::strerror(errno)));
  struct ::stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return fail(key_file_error(path, std::strerror(e)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail(key_file_error(path, "not a regular file"));
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    return fail(key_file_error(
        path, fmt::format("permissions {:04o} let others access it; run chmod 600", st.st_mode & 07777)));
  }
  if (st.st_size > static_cast<::off_t>(kKeyFileSizeMax)) {
    ::close(fd);
    return fail(key_file_error(path, "too large to be a key file"));
  }
  std::string content(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < content.size()) {
    const auto n = ::read(fd, content.data() + got, content.size() - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  content.resize(got);

  std::istringstream in(content);
  std::string header;
  std::string hex;
  std::getline(in, header);
  std::getline(in, hex);
  std::string rest;
  std::getline(in, rest);
  if (header != kKeyFileHeader) return fail(key_file_error(path, "not a moosicbox-p2p key file (bad header)"));
  if (hex.size() != 2 * kSeedSize) return fail(key_file_error(path, "malformed key (expected 64 hex characters)"));
  if (!rest.empty() || !in.eof()) return fail(key_file_error(path, "unexpected content after the key"));
  std::array<std::byte, kSeedSize> seed{};
  std::size_t bin_len = 0;
  const int rc = sodium_hex2bin(reinterpret_cast<unsigned char*>(seed.data()), seed.size(), hex.data(), hex.size(),
                                nullptr, &bin_len, nullptr);
  sodium_memzero(hex.data(), hex.size());
  sodium_memzero(content.data(), content.size());
  if (rc != 0 || bin_len != kSeedSize) return fail(key_file_error(path, "malformed key (bad hex)"));
  auto key = from_seed(seed);
  wipe(seed);
  return key;
}

P2PResult<void> SecretKey::save(const std::filesystem::path& path, bool overwrite) const {
  std::error_code ec;
  if (!overwrite && std::filesystem::exists(path, ec)) {
    return fail(key_file_error(path, "already exists (refusing to overwrite a key)"));
  }
  auto tmp = path;
  tmp += ".tmp";
  std::filesystem::remove(tmp, ec);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return fail(key_file_error(path, std::strerror(errno)));
  std::array<char, 2 * kSeedSize + 1> hex{};
  sodium_bin2hex(hex.data(), hex.size(), reinterpret_cast<const unsigned char*>(seed_.data()), seed_.size());
  std::string content = fmt::format("{}\n{}\n", kKeyFileHeader, std::string_view(hex.data(), 2 * kSeedSize));
  sodium_memzero(hex.data(), hex.size());
  std::size_t done = 0;
  bool ok = ::fchmod(fd, 0600) == 0;
  while (ok && done < content.size()) {
    const auto n = ::write(fd, content.data() + done, content.size() - done);
    if (n <= 0)
      ok = false;
    else
      done += static_cast<std::size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const int e = errno;
  ::close(fd);
  sodium_memzero(content.data(), content.size());
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    std::filesystem::remove(tmp, ec);
    return fail(key_file_error(path, std::strerror(ok ? errno : e)));
  }
  return {};
}

}  // namespace moosicbox::p2p
