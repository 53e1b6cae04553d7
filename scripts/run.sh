#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# run.sh: installs what is missing, builds the tool (Release) and runs the main job:
# `moosicbox-p2p demo`, a local demonstration that needs no other machine.
# Extra arguments go to the demo (e.g. --seed 42). Each step is announced; a failing configure
# prints CMake's messages and a failing build prints the compiler's.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
start=$(date +%s)
step() { echo "run.sh: $* ($(( $(date +%s) - start ))s)"; }

step "checking the Debian packages"
bash scripts/install-deps.sh --for run
build_dir=build/release
mkdir -p "$build_dir"
step "configuring $build_dir (log: $build_dir/configure.log)"
if ! cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMOOSICBOX_P2P_BUILD_TESTS=OFF \
  -DMOOSICBOX_P2P_BUILD_BENCH=OFF -DMOOSICBOX_P2P_BUILD_EXAMPLES=OFF >"$build_dir/configure.log" 2>&1; then
  cat "$build_dir/configure.log" >&2
  echo "run.sh: configuring failed (above)" >&2
  exit 1
fi
step "building moosicbox-p2p (a first build takes a few minutes on two cores)"
cmake --build "$build_dir" --target moosicbox-p2p
step "running: moosicbox-p2p demo $*"
exec "$build_dir/tools/moosicbox-p2p/moosicbox-p2p" demo "$@"
