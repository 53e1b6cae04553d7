#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# run.sh: installs what is missing, builds the tools (Release) and runs the main job:
# `moosicbox-p2p demo`, a local demonstration that needs no other machine.
# Extra arguments go to the demo (e.g. --seed 42).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh
build_dir=build/release
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMOOSICBOX_P2P_BUILD_TESTS=OFF \
  -DMOOSICBOX_P2P_BUILD_BENCH=OFF -DMOOSICBOX_P2P_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build_dir" --target moosicbox-p2p >/dev/null
exec "$build_dir/tools/moosicbox-p2p/moosicbox-p2p" demo "$@"
