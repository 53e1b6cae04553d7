#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# install-deps.sh: installs the Debian 12 packages moosicbox-p2p needs.
#   install-deps.sh [--for run|test]
#     run   what building the library and the moosicbox-p2p tool needs (scripts/run.sh)
#     test  that plus what the tests, benchmarks, lint and API reference need (default; scripts/test.sh)
# Idempotent: packages already present are skipped, and the script prints nothing when nothing is
# missing. apt's own output goes to a log file that is printed only when apt fails.
set -euo pipefail

profile=test
while [ $# -gt 0 ]; do
  case "$1" in
    --for) profile=${2:-}; shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "install-deps.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

# Building the library and the tool.
packages=(
  g++ cmake ninja-build pkg-config ccache git
  libboost1.81-dev libboost-json1.81-dev
  libgnutls28-dev libsodium-dev libssl-dev
  libfmt-dev libspdlog-dev libcli11-dev
)
case "$profile" in
  run) ;;
  test)
    packages+=(
      # tests, property tests, micro benchmarks
      libgtest-dev libgmock-dev librapidcheck-dev libbenchmark-dev
      # lint and the API reference
      clang-format doxygen
      # the relay behind the shipped nginx recipe (tests/relay_ops/nginx_test.sh): Debian 12's nginx
      # has the ssl and proxy modules built in (installed without starting its default site: see
      # policy-rc.d below; the test runs a private instance); openssl makes the test's
      # certificate, curl is the client
      nginx openssl curl
    ) ;;
  *) echo "install-deps.sh: --for takes run or test, not '$profile'" >&2; exit 2 ;;
esac

# From bookworm-backports, pinned per package: bookworm's ngtcp2 0.12 lacks what the QUIC engine
# needs (its fixed per-connection allocations held idle memory over budget; no 1452-byte PMTU probe).
backports=(libngtcp2-dev libngtcp2-crypto-gnutls-dev)
backports_version_min=1.11

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
recent_enough() {
  local v
  v=$(dpkg-query -W -f='${Version}' "$1" 2>/dev/null) || return 1
  dpkg --compare-versions "$v" ge "$backports_version_min"
}

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done
missing_bp=()
for p in "${backports[@]}"; do
  { installed "$p" && recent_enough "$p"; } || missing_bp+=("$p")
done

if [ ${#missing[@]} -eq 0 ] && [ ${#missing_bp[@]} -eq 0 ]; then
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp "${TMPDIR:-/tmp}/moosicbox-p2p-apt.XXXXXX")
start=$(date +%s)
say() { echo "install-deps: $* ($(( $(date +%s) - start ))s)"; }
# run_apt runs one apt-get command with its output in the log; on failure it prints the log's end.
run_apt() {
  if ! "${sudo_cmd[@]}" apt-get "$@" >>"$log" 2>&1; then
    echo "install-deps: apt-get $* failed; its last lines (full log: $log):" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
}

# The backports suite comes from the archive and keyring the machine's bookworm entry already uses.
# Idempotent: any existing bookworm-backports entry (deb822 or one-line) is left as it is.
add_backports_source() {
  if grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then return 0; fi
  local uri="http://deb.debian.org/debian" keyring="/usr/share/keyrings/debian-archive-keyring.gpg" f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    if grep -qE '^Suites:.*\bbookworm\b' "$f"; then
      uri=$(awk '/^URIs:/ {print $2; exit}' "$f")
      keyring=$(awk '/^Signed-By:/ {print $2; exit}' "$f")
      break
    fi
  done
  say "adding the bookworm-backports suite ($uri)"
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
    "$uri" "${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}" |
    "${sudo_cmd[@]}" tee /etc/apt/sources.list.d/moosicbox-p2p-backports.sources >/dev/null
}

# Packages install without starting services (nginx would start its default site on port 80): a
# policy-rc.d that refuses every start, for the duration of this script, unless the machine has
# its own.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# moosicbox-p2p install-deps: no service starts while it installs packages\nexit 101\n' |
    "${sudo_cmd[@]}" tee "$policy" >/dev/null
  "${sudo_cmd[@]}" chmod 755 "$policy"
  trap '"${sudo_cmd[@]}" rm -f "$policy"' EXIT
fi

[ ${#missing_bp[@]} -eq 0 ] || add_backports_source
say "to install:$(printf " %s" "${missing[@]}" "${missing_bp[@]}")"
say "apt-get update"
run_apt update -q
if [ ${#missing[@]} -ne 0 ]; then
  say "installing ${missing[*]}"
  run_apt install -y -q --no-install-recommends "${missing[@]}"
fi
if [ ${#missing_bp[@]} -ne 0 ]; then
  say "installing from bookworm-backports: ${missing_bp[*]}"
  run_apt install -y -q --no-install-recommends -t bookworm-backports "${missing_bp[@]}"
fi
rm -f "$log"
say "done"
