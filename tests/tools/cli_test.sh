#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# cli_test.sh: the moosicbox-p2p command line as a user runs it: argument errors, key files, and a
# listen/send round trip on loopback, --json events, the default key, ping, pipe, files and the
# shell completions, and the tunnel benchmark's JSON. Every step is bounded by `timeout`; only processes started
# here are stopped, by PID.
set -uo pipefail
bin=$1
dir=$(mktemp -d)
# The default key lives here, never in the real configuration directory.
export XDG_CONFIG_HOME="$dir/config"
listener=""
piper=""
cleanup() {
  if [ -n "$listener" ]; then kill "$listener" 2>/dev/null; wait "$listener" 2>/dev/null; fi
  if [ -n "$piper" ]; then kill "$piper" 2>/dev/null; wait "$piper" 2>/dev/null; fi
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
check "bench tunnel with busy poll" 2 "$bin" bench tunnel --busy-poll-us 10
check "bench simnet with one endpoint" 2 "$bin" bench simnet --endpoints 1
check "bench simnet with too many endpoints" 2 "$bin" bench simnet --endpoints 50000
check "bench simnet with a non-numeric seed" 2 "$bin" bench simnet --seed abc
check "bench simnet with zero messages" 2 "$bin" bench simnet --messages 0
check "bench quic with a simnet option" 2 "$bin" bench quic --seed 3
expect_text "simnet-only option message" "$dir/err" "^error: --seed, --endpoints and --messages apply to 'bench simnet' only"
check "bench simnet with busy poll" 2 "$bin" bench simnet --busy-poll-us 10
check "bench simnet small" 0 timeout 60 "$bin" bench simnet --json --endpoints 20 --seed 4
expect_text "bench simnet figures" "$dir/out" '^\{"endpoints": 20, "pairs": 10, "connected": 10, .*"trace_hash": "[0-9a-f]{16}"'
check "bench tunnel --json" 0 "$bin" bench tunnel --json
expect_text "bench tunnel figures" "$dir/out" '^\{"tunnel_bulk_mb_per_s": [0-9.]+, .*"tunnel_rpc_64b_per_s": [0-9]+, "tunnel_rtt_us": [0-9.]+'
check "misspelt P2P_LOG" 2 env P2P_LOG=verbose "$bin" id --ephemeral
expect_text "misspelt P2P_LOG message" "$dir/err" "^error: Invalid configuration: P2P_LOG='verbose': not a log level \(accepted: trace, debug, info, warn, error, off\)"
# Operating errors exit 1 with one line naming the problem.
check "send with garbage ticket" 3 "$bin" send not-a-ticket hi
expect_text "garbage ticket message" "$dir/err" "^error: Invalid node ID"
check "listen with bad bind address" 2 "$bin" listen --ephemeral --bind 1.2.3
expect_text "bad bind message" "$dir/err" "missing port"
check "id with missing key" 4 "$bin" id --key "$dir/nope"
expect_text "missing key names the path" "$dir/err" "^error: .*$dir/nope"

# Key files.
check "keygen" 0 "$bin" keygen "$dir/key"
id=$(cat "$dir/out")
check "keygen refuses to overwrite" 4 "$bin" keygen "$dir/key"
check "id reads the key" 0 "$bin" id --key "$dir/key"
expect_text "id prints the same node id" "$dir/out" "node id: $id"
chmod 644 "$dir/key"
check "id refuses a world-readable key" 4 "$bin" id --key "$dir/key"
expect_text "permission message" "$dir/err" "chmod 600"
chmod 600 "$dir/key"

# wait_for FILE SED-EXPR: prints the first match in FILE, polling (bounded) until it appears.
wait_for() {
  local v=""
  for _ in $(seq 1 200); do
    v=$(sed -n "$2" "$1" | head -n 1)
    [ -n "$v" ] && break
    sleep 0.05
  done
  echo "$v"
}
json_ticket='s/.*"event":"listening".*"ticket":"\([^"]*\)".*/\1/p'
# listen + send on loopback.
mkdir -p "$dir/inbox"
timeout 60 "$bin" listen --key "$dir/key" --bind 127.0.0.1:0 --echo --count 2 --out "$dir/inbox" >"$dir/listen.out" 2>&1 &
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
expect_text "listener stored the file" "$dir/listen.out" "file msg.txt \\(10 bytes\\) stored as"
cmp -s "$dir/msg.txt" "$dir/inbox/msg.txt" && echo "ok: stored file is identical" || { echo "FAIL: stored file differs"; failures=$((failures + 1)); }
expect_text "listener knows who sent" "$dir/listen.out" "connected \(direct 127\.0\.0\.1:"
check "send to a node that is gone fails cleanly" 1 timeout 30 "$bin" send "$ticket" late --bind 127.0.0.1:0 --timeout 2

# More usage errors and key files.
check "ping with zero count" 2 "$bin" ping sometoken --count 0
check "ping with bad ticket" 3 "$bin" ping p2p1garbage
expect_text "bad ticket is one line" "$dir/err" "^error: Invalid node ID"
check "pipe with bad ticket" 3 "$bin" pipe nope
check "netcheck without a relay" 2 "$bin" netcheck
expect_text "netcheck without a relay message" "$dir/err" "^error: netcheck: give at least one --relay URL"
check "netcheck with a bad relay URL" 2 "$bin" netcheck --relay ftp://127.0.0.1
check "netcheck with a zero timeout" 2 "$bin" netcheck --relay http://127.0.0.1:9 --timeout-secs 0
check "netcheck with a missing CA file" 2 "$bin" netcheck --relay https://127.0.0.1:9 --relay-ca "$dir/nope.pem"
check "netcheck against a closed loopback port" 0 timeout 20 "$bin" netcheck --relay http://127.0.0.1:9 --timeout-secs 1 --json
expect_text "netcheck reports no UDP and the unreachable relay" "$dir/out" '^\{"event":"netcheck","udp":false,.*"url":"http://127\.0\.0\.1:9",.*"http_status":0'
check "id with --key and --ephemeral" 2 "$bin" id --key "$dir/key" --ephemeral
check "listen --pipe with --json" 2 "$bin" listen --pipe --json
check "listen --out missing dir" 2 "$bin" listen --out "$dir/no-such-dir"
check "completions for an unknown shell" 2 "$bin" completions tcsh
printf 'garbage\n' >"$dir/corrupt.key"
chmod 600 "$dir/corrupt.key"
check "corrupt key file" 4 "$bin" id --key "$dir/corrupt.key"
expect_text "corrupt key names the path" "$dir/err" "^error: .*$dir/corrupt.key"
[ "$(wc -l <"$dir/err")" -eq 1 ] && echo "ok: corrupt key error is one line" || { echo "FAIL: corrupt key error is not one line"; failures=$((failures + 1)); }
check "json error object" 4 "$bin" id --key "$dir/corrupt.key" --json
expect_text "json error event" "$dir/out" '^\{"event":"error","message":".*corrupt.key.*","exit_code":4\}$'

# The persistent default key: created once (0600 in a 0700 directory), then reused.
check "id creates the default key" 0 "$bin" id --json
expect_text "id json names the key" "$dir/out" "\"key\":\"$dir/config/moosicbox-p2p/secret.key\",\"key_created\":true"
first=$(sed -n 's/.*"node_id":"\([^"]*\)".*/\1/p' "$dir/out")
[ "$(stat -c %a "$dir/config/moosicbox-p2p/secret.key")" = 600 ] && echo "ok: default key is 0600" || { echo "FAIL: default key mode"; failures=$((failures + 1)); }
[ "$(stat -c %a "$dir/config/moosicbox-p2p")" = 700 ] && echo "ok: key directory is 0700" || { echo "FAIL: key directory mode"; failures=$((failures + 1)); }
check "id reuses the default key" 0 "$bin" id
expect_text "same node id on the second run" "$dir/out" "^node id: $first$"
expect_text "key path on stderr" "$dir/err" "^key: $dir/config/moosicbox-p2p/secret.key$"
check "id --ephemeral" 0 "$bin" id --ephemeral
if grep -q "$first" "$dir/out"; then echo "FAIL: --ephemeral used the default key"; failures=$((failures + 1)); else echo "ok: --ephemeral is a new key"; fi
chmod 644 "$dir/config/moosicbox-p2p/secret.key"
check "default key readable by others is refused" 4 "$bin" id
expect_text "no silent new key" "$dir/err" "secret.key.*chmod 600"
chmod 600 "$dir/config/moosicbox-p2p/secret.key"
check "keygen --json" 0 "$bin" keygen "$dir/key2" --json
expect_text "keygen json" "$dir/out" '^\{"event":"keygen","node_id":"[a-z0-9]{52}","node_id_hex":"[0-9a-f]{64}","path":'

# listen --json with the default key (the same node id as `id`), ping, a multi-MiB file, messages.
mkdir -p "$dir/files"
timeout 90 "$bin" listen --bind 127.0.0.1:0 --json --out "$dir/files" --count 2 >"$dir/ljson.out" 2>"$dir/ljson.err" &
listener=$!
ticket=$(wait_for "$dir/ljson.out" "$json_ticket")
if [ -z "$ticket" ]; then echo "FAIL: listen --json printed no listening event"; cat "$dir/ljson.out" "$dir/ljson.err"; exit 1; fi
expect_text "listening event" "$dir/ljson.out" "^\{\"event\":\"listening\",\"node_id\":\"$first\",\"ticket\":\"p2p[^\"]+\",\"addresses\":\[\"127.0.0.1:[0-9]+\"\]"
check "ping" 0 timeout 30 "$bin" ping "$ticket" --count 3 --interval 0 --bind 127.0.0.1:0
expect_text "ping per-probe line" "$dir/out" "^seq=3 rtt=[0-9.]+ ms via direct 127.0.0.1:[0-9]+$"
expect_text "ping summary" "$dir/out" "^3 sent, 3 received, 0% loss"
check "ping --json" 0 timeout 30 "$bin" ping "$ticket" --count 2 --interval 5 --bind 127.0.0.1:0 --json
[ "$(grep -c '^{"event":"pong","seq":[12],"rtt_ms":' "$dir/out")" -eq 2 ] && echo "ok: two pong events" || { echo "FAIL: pong events"; cat "$dir/out"; failures=$((failures + 1)); }
expect_text "ping json summary" "$dir/out" '^\{"event":"summary",.*"sent":2,"received":2,'
head -c $((5 * 1024 * 1024 + 123)) /dev/urandom >"$dir/big.bin"
check "send --file of 5 MiB" 0 timeout 60 "$bin" send "$ticket" --file "$dir/big.bin" --bind 127.0.0.1:0 --json
expect_text "send json" "$dir/out" '^\{"event":"sent",.*"file":\{"name":"big.bin","size":5243003,'
[ "$(cksum <"$dir/big.bin")" = "$(cksum <"$dir/files/big.bin" 2>/dev/null)" ] && echo "ok: received file checksum" || { echo "FAIL: received file differs"; failures=$((failures + 1)); }
check "the same name is refused" 1 timeout 60 "$bin" send "$ticket" --file "$dir/big.bin" --bind 127.0.0.1:0
expect_text "refusal message" "$dir/err" "^error: the listener refused big.bin: big.bin exists"
check "send json message" 0 timeout 30 "$bin" send "$ticket" "hé json" --bind 127.0.0.1:0 --json
wait "$listener"; rc=$?; listener=""
[ $rc -eq 0 ] && echo "ok: listen --json exits after --count" || { echo "FAIL: listen --json exit $rc"; failures=$((failures + 1)); }
expect_text "message event" "$dir/ljson.out" '^\{"event":"message","peer":"[a-z0-9]{52}","size":8,"text":"hé json"\}$'
expect_text "file event" "$dir/ljson.out" '^\{"event":"file",.*"name":"big.bin","size":5243003,'
expect_text "connection event" "$dir/ljson.out" '^\{"event":"connection","peer":"[a-z0-9]{52}","path":"direct","addr":"127.0.0.1:[0-9]+"\}$'
expect_text "ping event" "$dir/ljson.out" '^\{"event":"ping","peer":"[a-z0-9]{52}","probes":3\}$'

# pipe: binary data both ways, half-closed at each end, checksums compared.
head -c $((3 * 1024 * 1024 + 7)) /dev/urandom >"$dir/up.bin"
head -c $((2 * 1024 * 1024 + 11)) /dev/urandom >"$dir/down.bin"
timeout 60 "$bin" listen --ephemeral --bind 127.0.0.1:0 --pipe <"$dir/down.bin" >"$dir/pipe-listener.bin" 2>"$dir/pipe-listener.err" &
piper=$!
ticket=$(wait_for "$dir/pipe-listener.err" 's/^ticket: *//p')
if [ -z "$ticket" ]; then echo "FAIL: listen --pipe printed no ticket on stderr"; cat "$dir/pipe-listener.err"; exit 1; fi
check "pipe" 0 timeout 60 "$bin" pipe "$ticket" --bind 127.0.0.1:0 <"$dir/up.bin"
cp "$dir/out" "$dir/pipe-connector.bin"
wait "$piper"; rc=$?; piper=""
[ $rc -eq 0 ] && echo "ok: listen --pipe exits 0" || { echo "FAIL: listen --pipe exit $rc"; cat "$dir/pipe-listener.err"; failures=$((failures + 1)); }
[ "$(cksum <"$dir/up.bin")" = "$(cksum <"$dir/pipe-listener.bin")" ] && echo "ok: pipe up checksum" || { echo "FAIL: pipe up differs"; failures=$((failures + 1)); }
[ "$(cksum <"$dir/down.bin")" = "$(cksum <"$dir/pipe-connector.bin")" ] && echo "ok: pipe down checksum" || { echo "FAIL: pipe down differs"; failures=$((failures + 1)); }

# Completions are generated from the commands and options.
check "bash completions" 0 "$bin" completions bash
cp "$dir/out" "$dir/comp.bash"
words=$(bash -c 'source "$1"; COMP_WORDS=(moosicbox-p2p pi); COMP_CWORD=1; _moosicbox_p2p; echo "${COMPREPLY[*]}"' _ "$dir/comp.bash")
[ "$words" = "ping pipe" ] && echo "ok: bash completes commands" || { echo "FAIL: bash completion gave '$words'"; failures=$((failures + 1)); }
words=$(bash -c 'source "$1"; COMP_WORDS=(moosicbox-p2p listen --e); COMP_CWORD=2; _moosicbox_p2p; echo "${COMPREPLY[*]}"' _ "$dir/comp.bash")
[ "$words" = "--ephemeral --echo" ] && echo "ok: bash completes options" || { echo "FAIL: bash option completion gave '$words'"; failures=$((failures + 1)); }
words=$(bash -c 'source "$1"; COMP_WORDS=(moosicbox-p2p demo --only q); COMP_CWORD=3; _moosicbox_p2p; echo "${COMPREPLY[*]}"' _ "$dir/comp.bash")
[ "$words" = "quic" ] && echo "ok: bash completes choices" || { echo "FAIL: bash choice completion gave '$words'"; failures=$((failures + 1)); }
check "zsh completions" 0 "$bin" completions zsh
expect_text "zsh script" "$dir/out" "^#compdef moosicbox-p2p"
if command -v zsh >/dev/null; then check "zsh script parses" 0 zsh -n "$dir/out"; fi
check "fish completions" 0 "$bin" completions fish
expect_text "fish script" "$dir/out" "__fish_seen_subcommand_from ping.* -l count -s c"
check "help carries examples" 0 "$bin" ping --help
expect_text "ping examples" "$dir/out" "^Examples:"

# The README's main job: the demo (real QUIC on loopback, then a simulated network).
check "demo" 0 timeout 120 "$bin" demo --seed 3
expect_text "demo used the router" "$dir/out" "GET /tracks -> 200"
expect_text "demo simulated a relayed path" "$dir/out" "relayed"
expect_text "demo prints the seed" "$dir/out" "P2P_SIM_SEED=3"
expect_text "demo ran the real stack on simnet" "$dir/out" "phone -> home: connected \\(relay http://203\\.0\\.113\\.1:3340\\)"
expect_text "demo replayed the same trace" "$dir/out" "a second run of seed 3: [0-9a-f]{16} \\(the same\\)"

if [ $failures -ne 0 ]; then echo "$failures failure(s)"; exit 1; fi
echo "all CLI checks passed"
