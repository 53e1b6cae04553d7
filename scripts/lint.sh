#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# lint.sh: the repository rules a compiler cannot check.
#  1. Determinism: outside src/env (and the OS CSPRNG wrapper in src/core), library code never reads a
#     clock, sleeps, uses asio's real-time timers, or draws system randomness.
#  2. Hygiene: no co_spawn(..., detached) in the library, no `using namespace` in public headers.
#  3. Formatting: clang-format --dry-run -Werror over every C++ file.
# Exits non-zero and prints each violation as file:line: rule.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0

lib_dirs=(include/moosicbox/p2p src)
excluded='^(src/env/|include/moosicbox/p2p/env/|src/core/secret_key.cpp)'
lib_files=$(find "${lib_dirs[@]}" -name '*.cpp' -o -name '*.hpp' | grep -vE "$excluded" | sort)

check_lib() { # pattern, description
  local pattern=$1 what=$2 f
  for f in $lib_files; do
    grep -nE "$pattern" "$f" | while IFS= read -r hit; do echo "lint: $f:${hit%%:*}: $what"; done
    if grep -qE "$pattern" "$f"; then status=1; fi
  done
}

check_lib 'steady_clock::now|system_clock::now|high_resolution_clock::now' 'reads a clock (use the Environment)'
check_lib 'sleep_for|sleep_until|usleep\(|nanosleep' 'sleeps (use an Environment timer)'
check_lib 'steady_timer|system_timer|high_resolution_timer|cancel_after' 'real-time asio timer (use env.make_timer())'
check_lib 'random_device|[^a-z_]rand\(|srand\(|randombytes_buf|getrandom\(' 'system randomness (use env.fill_random)'
check_lib 'asio::detached|boost::asio::detached' 'detached co_spawn drops errors (use spawn_logged)'

# g++ 12 miscompiles co_await inside an if/while/switch condition and as an operand of && / || / ?:
# (the coroutine resumes in a wrong state). Bind the result first: `auto r = co_await f(); if (!r)`
# or `if (auto r = co_await f(); !r)`.
all_cpp=$(find include src tests tools examples bench -name '*.cpp' -o -name '*.hpp' 2>/dev/null | sort)
for f in $all_cpp; do
  hits=$(grep -nE '\b(if|while|switch) \(!?\(?co_await|(&&|\|\||\?) *co_await|co_await [^;]*(&&|\|\|) *co_await' "$f" || true)
  if [ -n "$hits" ]; then
    while IFS= read -r hit; do echo "lint: $f:${hit%%:*}: co_await in a condition or operand (g++ 12 miscompiles it)"; done <<<"$hits"
    status=1
  fi
done

for f in $(find include/moosicbox/p2p -name '*.hpp' | sort); do
  if grep -nE '^\s*using namespace' "$f" >/dev/null; then
    echo "lint: $f: 'using namespace' in a public header"
    status=1
  fi
done

if command -v clang-format >/dev/null; then
  files=$(git ls-files '*.cpp' '*.hpp' 2>/dev/null || find include src tests tools bench examples -name '*.[ch]pp')
  if ! clang-format --dry-run -Werror $files 2>/tmp/p2p-clang-format.log; then
    grep -E 'error:' /tmp/p2p-clang-format.log | sed 's/^/lint: clang-format: /' | head -50
    status=1
  fi
else
  echo "lint: clang-format not installed (scripts/install-deps.sh installs it)"
  status=1
fi

if [ $status -eq 0 ]; then echo "lint: clean"; fi
exit $status
