#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# relay_cli_test.sh: moosicbox-p2p-relay as an operator runs it: --version, --print-config (the
# loopback default, a config file, flags over the file), exit 2 with one `error:` line for bad
# arguments and bad config files, exit 1 when the address is taken, the start-up line with the URL,
# /healthz over plain HTTP, and SIGTERM / SIGINT ending with exit 0.
#   relay_cli_test.sh RELAY_BINARY
# Real sockets on 127.0.0.1 only; every wait is bounded; only processes started here are stopped,
# by PID; the temp directory is removed.
set -uo pipefail
bin=$1
dir=$(mktemp -d)
relay_pid=""
cleanup() {
  if [ -n "$relay_pid" ]; then kill -KILL "$relay_pid" 2>/dev/null; wait "$relay_pid" 2>/dev/null; fi
  rm -rf "$dir"
}
trap cleanup EXIT
passed=0
failures=0
check() { # description, expected exit code, command...
  local what=$1 want=$2
  shift 2
  timeout 20 "$@" >"$dir/out" 2>"$dir/err"
  local got=$?
  if [ "$got" -ne "$want" ]; then
    echo "FAIL: $what: exit $got, expected $want"; sed 's/^/  /' "$dir/out" "$dir/err"; failures=$((failures + 1))
  else
    echo "ok: $what"; passed=$((passed + 1))
  fi
}
expect_text() { # description, file, pattern
  if grep -qE -- "$3" "$2"; then
    echo "ok: $1"; passed=$((passed + 1))
  else
    echo "FAIL: $1: no '$3' in:"; sed 's/^/  /' "$2"; failures=$((failures + 1))
  fi
}
one_line() { # description, file
  local n
  n=$(wc -l <"$2")
  if [ "$n" -eq 1 ]; then echo "ok: $1"; passed=$((passed + 1)); else echo "FAIL: $1: $n lines"; sed 's/^/  /' "$2"; failures=$((failures + 1)); fi
}

check "--version" 0 "$bin" --version
expect_text "--version prints a version" "$dir/out" "[0-9]+\.[0-9]+\.[0-9]+"
check "--help" 0 "$bin" --help
expect_text "--help shows --trust-forwarded-for" "$dir/out" "--trust-forwarded-for"

check "--print-config without arguments" 0 "$bin" --print-config
expect_text "the default binds loopback only" "$dir/out" '^bind = \["127\.0\.0\.1:3340"\]$'
expect_text "the default log level is info" "$dir/out" '^log_level = "info"$'
expect_text "STUN follows bind by default" "$dir/out" '^stun = \["127\.0\.0\.1:3478"\]$'
check "--no-stun" 0 "$bin" --no-stun --print-config
expect_text "--no-stun prints no STUN address" "$dir/out" '^stun = \[\]$'
check "--stun" 0 "$bin" --stun 127.0.0.1:5000 --stun '[::1]:5000' --print-config
expect_text "--stun replaces the default" "$dir/out" '^stun = \["127\.0\.0\.1:5000", "\[::1\]:5000"\]$'

cat >"$dir/relay.conf" <<'EOF'
# test relay
bind = ["0.0.0.0:3340", "[::]:3340"]
idle_timeout = 90s
frame_size_max = 32KiB
EOF
check "--print-config with a config file" 0 "$bin" --config "$dir/relay.conf" --print-config
expect_text "the file's bind" "$dir/out" '^bind = \["0\.0\.0\.0:3340", "\[::\]:3340"\]$'
expect_text "the file's idle_timeout" "$dir/out" '^idle_timeout = "90s"$'
cp "$dir/out" "$dir/printed.conf"
check "the printed config reads back" 0 "$bin" --config "$dir/printed.conf" --print-config
if cmp -s "$dir/out" "$dir/printed.conf"; then echo "ok: printing it again gives the same text"; passed=$((passed + 1)); else echo "FAIL: printed config differs"; failures=$((failures + 1)); fi
check "flags over the file" 0 "$bin" --config "$dir/relay.conf" --bind 127.0.0.1:4000 --trust-forwarded-for --log-level warn --print-config
expect_text "--bind replaces the file's bind" "$dir/out" '^bind = \["127\.0\.0\.1:4000"\]$'
expect_text "--trust-forwarded-for" "$dir/out" '^trust_forwarded_for = true$'
expect_text "--log-level" "$dir/out" '^log_level = "warn"$'
check "P2P_LOG sets the level without --log-level" 0 env P2P_LOG=debug "$bin" --print-config
expect_text "P2P_LOG=debug" "$dir/out" '^log_level = "debug"$'

# Bad arguments and configuration: exit 2, one line starting with error:.
check "unknown flag" 2 "$bin" --frobnicate
check "bad --bind" 2 "$bin" --bind 1.2.3 --print-config
expect_text "bad --bind message" "$dir/err" '^error: Invalid configuration: --bind: bad socket address'
one_line "bad --bind is one line" "$dir/err"
check "bad --stun" 2 "$bin" --stun 127.0.0.1 --print-config
expect_text "bad --stun message" "$dir/err" '^error: Invalid configuration: --stun: '
check "--stun with --no-stun" 2 "$bin" --stun 127.0.0.1:5000 --no-stun --print-config
expect_text "--stun with --no-stun message" "$dir/err" 'contradict each other'
check "bad --log-level" 2 "$bin" --log-level loud --print-config
expect_text "bad --log-level message" "$dir/err" "^error: Invalid configuration: --log-level: 'loud': not a log level"
check "misspelt P2P_LOG" 2 env P2P_LOG=verbose "$bin" --print-config
check "--tls-cert without --tls-key" 2 "$bin" --tls-cert "$dir/cert.pem" --print-config
expect_text "tls message" "$dir/err" '^error: .*tls_cert is set without tls_key'
printf 'clients_max = 5\nframe_size_max = 64q\n' >"$dir/bad.conf"
check "bad config file" 2 "$bin" --config "$dir/bad.conf"
expect_text "bad config file message names file:line and key" "$dir/err" \
  "^error: Invalid configuration: $dir/bad.conf:2: frame_size_max: '64q' is not a byte size \(examples: 65536, 64KiB\)$"
one_line "bad config file is one line" "$dir/err"
printf 'idle_timout = 5s\n' >"$dir/unknown.conf"
check "unknown key" 2 "$bin" --config "$dir/unknown.conf"
expect_text "unknown key message" "$dir/err" "unknown.conf:1: idle_timout: unknown key"
check "missing config file" 2 "$bin" --config "$dir/nope.conf"
expect_text "missing config file message" "$dir/err" "nope.conf: cannot read the config file"
head -c 1048577 /dev/zero | tr '\0' '#' >"$dir/big.conf"
check "config file over 1 MiB" 2 "$bin" --config "$dir/big.conf"
expect_text "big file message" "$dir/err" "larger than 1MiB"
check "missing TLS files" 2 "$bin" --bind 127.0.0.1:0 --tls-cert "$dir/nope.pem" --tls-key "$dir/nope.key"

# start_relay ARGS...: starts the relay in the background and waits (bounded) for its start-up line;
# sets relay_pid and relay_port.
start_relay() {
  "$bin" "$@" 2>"$dir/relay.log" &
  relay_pid=$!
  relay_port=""
  for _ in $(seq 1 100); do
    relay_port=$(sed -n 's|^relay: serving http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$dir/relay.log" | head -n 1)
    [ -n "$relay_port" ] && return 0
    kill -0 "$relay_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# stop_relay SIGNAL: sends it and waits (bounded, 12 s) for the exit; sets rc to the exit code.
stop_relay() {
  rc="still running"
  kill "-$1" "$relay_pid"
  for _ in $(seq 1 120); do
    if ! kill -0 "$relay_pid" 2>/dev/null; then
      wait "$relay_pid"
      rc=$?
      relay_pid=""
      return
    fi
    sleep 0.1
  done
}

if start_relay --bind 127.0.0.1:0; then
  echo "ok: the relay prints 'relay: serving http://127.0.0.1:$relay_port'"; passed=$((passed + 1))
  expect_text "the relay prints its STUN address" "$dir/relay.log" "STUN on udp 127\.0\.0\.1:[0-9]+"
  if command -v curl >/dev/null; then
    body=$(curl -sS -m 5 "http://127.0.0.1:$relay_port/healthz" 2>&1)
    if [ "$body" = "ok" ]; then echo "ok: /healthz"; passed=$((passed + 1)); else echo "FAIL: /healthz: '$body'"; failures=$((failures + 1)); fi
  fi
  # The same address again: cannot bind, exit 1.
  check "an address in use" 1 "$bin" --bind "127.0.0.1:$relay_port"
  expect_text "address in use message" "$dir/err" "^error: "
  stop_relay TERM
  if [ "$rc" = "0" ]; then echo "ok: SIGTERM exits 0"; passed=$((passed + 1)); else echo "FAIL: SIGTERM: $rc"; sed 's/^/  /' "$dir/relay.log"; failures=$((failures + 1)); fi
else
  echo "FAIL: the relay did not start"; sed 's/^/  /' "$dir/relay.log"; failures=$((failures + 1))
fi
if start_relay --bind 127.0.0.1:0 --log-level warn; then
  stop_relay INT
  if [ "$rc" = "0" ]; then echo "ok: SIGINT exits 0"; passed=$((passed + 1)); else echo "FAIL: SIGINT: $rc"; failures=$((failures + 1)); fi
else
  echo "FAIL: the relay did not start with --log-level warn"; sed 's/^/  /' "$dir/relay.log"; failures=$((failures + 1))
fi

echo "$passed passed, $failures failed"
[ "$failures" -eq 0 ]
