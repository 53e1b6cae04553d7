// SPDX-License-Identifier: MIT OR Apache-2.0
// sim_entropy.cpp: seeded getrandom(2) for deterministic simulation (see sim_entropy.hpp).
// Layer: env. The seeded state is thread-local; without a scope, getrandom is the system call.
//
// The definition of getrandom below interposes the C library's for the whole program (the dynamic
// linker binds the TLS library's and libsodium's calls to the executable's definition). It lives in
// the same object as SeededEntropyScope, so only programs that use seeded entropy carry it, and on
// threads without a scope it is exactly the system call.
#include "moosicbox/p2p/env/sim_entropy.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <exception>
#include <thread>

#include "moosicbox/p2p/env/rng.hpp"

namespace moosicbox::p2p::env {

struct SeededEntropyScope::State {
  Rng rng;
  State* previous;
};

namespace {
thread_local SeededEntropyScope::State* t_state = nullptr;  // NOLINT: the per-thread scope
}  // namespace

SeededEntropyScope::SeededEntropyScope(std::uint64_t seed) noexcept : previous_(t_state) {
  t_state = new State{Rng(derive_seed(seed, "getrandom")), previous_};  // NOLINT: freed by the destructor
}

SeededEntropyScope::~SeededEntropyScope() {
  State* s = t_state;
  t_state = previous_;
  delete s;  // NOLINT: owned since the constructor
}

bool SeededEntropyScope::active() noexcept { return t_state != nullptr; }

void run_isolated(std::uint64_t seed, const std::function<void()>& fn) {
  std::exception_ptr error;
  std::thread worker([&] {
    const SeededEntropyScope scope(seed);
    try {
      fn();
    } catch (...) {
      error = std::current_exception();
    }
  });
  worker.join();
  if (error) std::rethrow_exception(error);
}

namespace detail {
// seeded_getrandom fills `buf` from the thread's scope; returns false without one.
bool seeded_getrandom(void* buf, std::size_t n) noexcept {
  SeededEntropyScope::State* s = t_state;
  if (s == nullptr) return false;
  s->rng.fill_random(std::span<std::byte>(static_cast<std::byte*>(buf), n));
  return true;
}
}  // namespace detail

}  // namespace moosicbox::p2p::env

extern "C" ssize_t getrandom(void* buf, std::size_t n, unsigned int flags) {  // NOLINT: interposes libc
  if (moosicbox::p2p::env::detail::seeded_getrandom(buf, n)) return static_cast<ssize_t>(n);
  return static_cast<ssize_t>(::syscall(SYS_getrandom, buf, n, flags));
}
