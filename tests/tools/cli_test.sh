#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# cli_test.sh: the moosicbox-p2p command line as a user runs it: argument errors, key files, and a
# listen/send round trip on loopback. Every step is bounded by `timeout`; only processes started
# here are stopped, by PID.
set -uo pipefail
bin=$1
dir=$(mktemp -d)
listener=""
cleanup() {
  if [ -n "$listener" ]; then kill "$listener" 2>/dev/null; wait "$listener" 2>/dev/null; fi
  rm -rf "$dir"
}
trap cleanup EXIT
failures=0
check() { # description, expected exit code, command...
  local what=$1 want=$2
  shift 2
  "$@" >"$dir/out" 2>"$dir/err"
  local got=$?
  if [ "$got" -ne "$want" ]; then
    echo "FAIL: $what: exit $got, expected $want"; sed 's/^/  /' "$dir/out" "$dir/err"; failures=$((failures + 1))
  else
    echo "ok: $what"
  fi
}
expect_text() { # description, file, pattern
  if grep -qE "$3" "$2"; then echo "ok: $1"; else echo "FAIL: $1: no '$3' in:"; sed 's/^/  /' "$2"; failures=$((failures + 1)); fi
}

# Argument errors: usage errors exit 2 with one clear line.
check "no subcommand" 2 "$bin"
check "unknown subcommand" 2 "$bin" frobnicate
check "send without ticket" 2 "$bin" send
check "demo with bad part" 2 "$bin" demo --only everything
check "listen with zero count" 2 "$bin" listen --count 0
check "send with text and file" 2 "$bin" send sometoken hi --file /etc/hostname
check "bench quic with unknown part" 2 "$bin" bench quic --only rpc,warp
expect_text "unknown part message" "$dir/err" "^error: .*unknown benchmark part 'warp'"
check "bench quic with empty part" 2 "$bin" bench quic --only rpc,
check "bench sim with a quic option" 2 "$bin" bench sim --only rpc
check "bench router with the trace switch" 2 "$bin" bench router --no-stop-sending-codes
check "bench quic with oversized payload" 2 "$bin" bench quic --udp-payload 70000
check "bench quic with undersized payload" 2 "$bin" bench quic --udp-payload 1000
expect_text "undersized payload message" "$dir/err" "^error: --udp-payload 1000 is below"
check "bench quic with negative busy poll" 2 "$bin" bench quic --busy-poll-us -5
check "bench sim with busy poll" 2 "$bin" bench sim --busy-poll-us 10
check "bench quic with busy poll out of range" 2 "$bin" bench quic --busy-poll-us 2000000
check "bench quic with non-numeric busy poll" 2 "$bin" bench quic --busy-poll-us fast
check "bench router with a quic-only option" 2 "$bin" bench router --only rpc
# Operating errors exit 1 with one line naming the problem.
check "send with garbage ticket" 1 "$bin" send not-a-ticket hi
expect_text "garbage ticket message" "$dir/err" "^error: Invalid node ID"
check "listen with bad bind address" 1 "$bin" listen --bind 1.2.3
expect_text "bad bind message" "$dir/err" "missing port"
check "id with missing key" 1 "$bin" id --key "$dir/nope"

# Key files.
check "keygen" 0 "$bin" keygen "$dir/key"
id=$(cat "$dir/out")
check "keygen refuses to overwrite" 1 "$bin" keygen "$dir/key"
check "id reads the key" 0 "$bin" id --key "$dir/key"
expect_text "id prints the same node id" "$dir/out" "node id: $id"
chmod 644 "$dir/key"
check "id refuses a world-readable key" 1 "$bin" id --key "$dir/key"
expect_text "permission message" "$dir/err" "chmod 600"
chmod 600 "$dir/key"

# listen + send on loopback.
timeout 60 "$bin" listen --key "$dir/key" --bind 127.0.0.1:0 --echo --count 2 >"$dir/listen.out" 2>&1 &
listener=$!
ticket=""
for _ in $(seq 1 100); do
  ticket=$(awk '/^ticket:/ {print $2}' "$dir/listen.out")
  [ -n "$ticket" ] && break
  sleep 0.1
done
if [ -z "$ticket" ]; then echo "FAIL: listen printed no ticket"; cat "$dir/listen.out"; exit 1; fi
check "send text with reply" 0 timeout 30 "$bin" send "$ticket" "hello over quic" --bind 127.0.0.1:0 --wait-reply
expect_text "reply is the echo" "$dir/out" "^reply: hello over quic"
printf 'file body\n' >"$dir/msg.txt"
check "send a file" 0 timeout 30 "$bin" send "$ticket" --file "$dir/msg.txt" --bind 127.0.0.1:0
wait "$listener"
rc=$?
listener=""
[ $rc -eq 0 ] && echo "ok: listener exits after --count messages" || { echo "FAIL: listener exit $rc"; failures=$((failures + 1)); }
expect_text "listener printed the text" "$dir/listen.out" ": hello over quic$"
expect_text "listener printed the file" "$dir/listen.out" ": file body$"
expect_text "listener knows who sent" "$dir/listen.out" "connected from 127.0.0.1:"
check "send to a node that is gone fails cleanly" 1 timeout 30 "$bin" send "$ticket" late --bind 127.0.0.1:0 --timeout 2

# The README's main job: the demo (real QUIC on loopback, then a simulated network).
check "demo" 0 timeout 120 "$bin" demo --seed 3
expect_text "demo used the router" "$dir/out" "GET /tracks -> 200"
expect_text "demo simulated a relayed path" "$dir/out" "relayed"
expect_text "demo prints the seed" "$dir/out" "P2P_SIM_SEED=3"

if [ $failures -ne 0 ]; then echo "$failures failure(s)"; exit 1; fi
echo "all CLI checks passed"
