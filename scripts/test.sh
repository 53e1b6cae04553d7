#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# test.sh: installs what is missing, then runs every quality gate of the project:
#   lint (determinism rules + clang-format), a warnings-as-errors build of everything (library, tools,
#   tests, benchmarks, examples, the C++ snippets of the docs, the Doxygen API reference), every test
#   label (unit, prop, sim, integration, packaging), and an
#   AddressSanitizer + UBSan build, on the portable UDP path, running the unit, prop, sim and
#   integration tests.
# Prints the ctest summaries and exits non-zero on any failure.
# Options: --no-sanitize (skip the ASan+UBSan pass), --build-dir DIR (default build/ci).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

sanitize=1
build_dir=build/ci
while [ $# -gt 0 ]; do
  case "$1" in
    --no-sanitize) sanitize=0 ;;
    --build-dir) build_dir=$2; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

start=$(date +%s)
step() { echo; echo "==== $* ($(( $(date +%s) - start ))s)"; }
# configure runs CMake with its messages in a log file, printed when configuring fails.
configure() {
  local dir=$1; shift
  mkdir -p "$dir"
  if ! cmake -S . -B "$dir" -G Ninja "$@" >"$dir/configure.log" 2>&1; then
    cat "$dir/configure.log" >&2
    echo "test.sh: configuring $dir failed (above)" >&2
    exit 1
  fi
}
failures=()

step "checking the Debian packages"
bash scripts/install-deps.sh --for test

step "lint"
bash scripts/lint.sh || failures+=("lint")

step "configure $build_dir (Release, warnings as errors; log: $build_dir/configure.log)"
configure "$build_dir" -DCMAKE_BUILD_TYPE=Release -DMOOSICBOX_P2P_WERROR=ON \
  -DMOOSICBOX_P2P_BUILD_TESTS=ON -DMOOSICBOX_P2P_BUILD_BENCH=ON -DMOOSICBOX_P2P_BUILD_EXAMPLES=ON \
  -DMOOSICBOX_P2P_BUILD_DOCS=ON
step "build $build_dir (library, tools, tests, benchmarks, examples, doc snippets, API reference)"
cmake --build "$build_dir"

step "tests: unit prop sim integration packaging"
ctest --test-dir "$build_dir" -j2 --output-on-failure -L 'unit|prop|sim|integration|packaging' \
  || failures+=("tests")

if [ $sanitize -eq 1 ]; then
  step "configure $build_dir-asan (AddressSanitizer + UBSan, portable UDP path)"
  # -O0: half the compile time of -O1 on the template-heavy test files; the sanitized tests still
  # take well under a minute. This build also forces the portable POSIX socket path, so the
  # integration tests run on both UDP paths.
  configure "$build_dir-asan" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O0 -g1" \
    -DMOOSICBOX_P2P_SANITIZE=ON -DMOOSICBOX_P2P_WERROR=ON -DMOOSICBOX_P2P_BUILD_TESTS=ON \
    -DMOOSICBOX_P2P_BUILD_BENCH=OFF -DMOOSICBOX_P2P_BUILD_EXAMPLES=OFF -DMOOSICBOX_P2P_BUILD_TOOLS=OFF \
    -DMOOSICBOX_P2P_INSTALL=OFF -DMOOSICBOX_P2P_PORTABLE_SOCKETS=ON
  step "build $build_dir-asan"
  cmake --build "$build_dir-asan"
  step "tests under ASan+UBSan: unit prop sim integration"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$build_dir-asan" -j2 --output-on-failure -L 'unit|prop|sim|integration' \
    || failures+=("sanitized tests")
fi

step "done"
if [ ${#failures[@]} -ne 0 ]; then
  echo "test.sh: FAILED: ${failures[*]}"
  exit 1
fi
echo "test.sh: all gates passed in $(( $(date +%s) - start ))s"
