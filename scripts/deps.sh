#!/usr/bin/env bash
# Installs what certwright needs on Debian 12, and nothing when it is all there already.
#   scripts/deps.sh build   — compiler and libraries
#   scripts/deps.sh test    — build + the independent checkers and real servers the tests use
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config libgit2-dev libssl-dev libyaml-dev libssh2-1-dev
            libcurl4-openssl-dev libjansson-dev libcmocka-dev git openssl ca-certificates)
test_pkgs=(gnutls-bin softether-vpnserver softether-vpncmd openssh-server iproute2 procps
           util-linux python3)

want=("${build_pkgs[@]}")
[ "${1:-build}" = test ] && want+=("${test_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "certwright: missing packages: ${missing[*]}" >&2
  echo "certwright: run as root (or with sudo) to install them" >&2
  exit 1
fi
echo "certwright: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# vpnserver's package would start a service that calls out to the Internet: keep
# services from starting during installation.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
