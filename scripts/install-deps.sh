#!/usr/bin/env bash
# SPDX-License-Identifier: MIT OR Apache-2.0
# install-deps.sh: installs every Debian 12 package moosicbox-p2p needs to build, test and run.
# Idempotent: packages already present are skipped, and the script is silent when nothing is missing.
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build pkg-config ccache clang-format git
  # libraries
  libboost1.81-dev libboost-json1.81-dev
  libgnutls28-dev libsodium-dev
  libfmt-dev libspdlog-dev libcli11-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev librapidcheck-dev libbenchmark-dev
  # network lab (namespaces, NAT rules)
  iproute2 nftables
)

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
  echo "install-deps: adding the bookworm-backports suite ($uri)"
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
    "$uri" "${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}" |
    "${sudo_cmd[@]}" tee /etc/apt/sources.list.d/moosicbox-p2p-backports.sources >/dev/null
}

[ ${#missing_bp[@]} -eq 0 ] || add_backports_source
echo "install-deps: installing$(printf " %s" "${missing[@]}" "${missing_bp[@]}")"
"${sudo_cmd[@]}" apt-get update -qq
if [ ${#missing[@]} -ne 0 ]; then
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ ${#missing_bp[@]} -ne 0 ]; then
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends -t bookworm-backports "${missing_bp[@]}" >/dev/null
fi
echo "install-deps: done"
