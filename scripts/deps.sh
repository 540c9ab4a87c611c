#!/usr/bin/env bash
# Install what reign needs to build and test on Debian 12, only if missing.
# Usage: scripts/deps.sh [build|test|s3]   (test adds the servers the tests start;
# s3 adds Ceph RGW for the opt-in S3 server tests)
set -euo pipefail

want=(cmake ninja-build gcc pkg-config libcurl4-openssl-dev libhiredis-dev libmicrohttpd-dev libpq-dev libjansson-dev libssl-dev)
if [ "${1:-build}" = s3 ]; then
  want+=(radosgw ceph-mon ceph-osd)
fi
if [ "${1:-build}" = test ]; then
  # systemd: systemd-analyze verify of contrib/systemd; passwd (useradd) and
  # util-linux (runuser) for the two-user mode= test are in every Debian.
  want+=(libcmocka-dev redis-server clang libclang-rt-14-dev curl python3 postgresql-15 etcd-server etcd-client openssl systemd passwd util-linux)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
if [ "$(id -u)" != 0 ]; then
  echo "deps: run as root or install: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
