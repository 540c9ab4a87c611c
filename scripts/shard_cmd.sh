#!/usr/bin/env bash
# `reign shard -- CMD` against one backend with a throw-away server of its
# own: runs tests/cli/shard_cmd.sh (see there for the tests).
#
#   scripts/shard_cmd.sh BACKEND [--build-dir DIR] [--broken-guard | --broken-ack] [TEST...]
#
# TESTs: pause lockpause fleet onexit (default: all; the pause tests only on
# a server backend, where a stopped process' lease runs out). --broken-guard
# runs the pause tests with a guard that ignores deadlines, --broken-ack the fleet
# test with revocations acknowledged before CMD stopped (and a CMD that
# takes 300 ms to stop): each passes only if the test catches the overlap.
# Exit: 0 pass (or, when broken, caught), 1 fail (or not caught), 2 setup.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
root=$PWD
. "$root/scripts/servers/for_test.sh"

# name      server    variable with the URI    URI suffix          TTL ms
BACKENDS='
file        -         -                        -                   1000
redis       redis     REDIS_URI                /0?prefix=shardcmd  1000
postgres    postgres  REIGN_TEST_POSTGRES_URI  -                   1000
etcd        etcd      REIGN_TEST_ETCD_URI      -                   1000
s3          s3        REIGN_TEST_S3_URI        -                   3000
'
usage() {
  echo "usage: $0 BACKEND [--build-dir DIR] [--broken-guard | --broken-ack] [pause|lockpause|fleet|onexit]..." >&2
  exit 2
}
die() {
  echo "shard_cmd.sh: $*" >&2
  exit 2
}

[ $# -ge 1 ] || usage
backend=$1
shift
row=$(awk -v b="$backend" '$1 == b' <<<"$BACKENDS")
[ -n "$row" ] || { echo "shard_cmd.sh: unknown backend '$backend'" >&2; usage; }
read -r _ server urivar suffix ttl <<<"$row"

build=$root/build/asan broken='' tests=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) [ $# -ge 2 ] || usage; build=$2; shift 2 ;;
    --broken-guard) broken=guard; shift ;;
    --broken-ack) broken=ack; shift ;;
    pause | lockpause | fleet | onexit) tests+=("$1"); shift ;;
    *) usage ;;
  esac
done
if [ ${#tests[@]} -eq 0 ]; then
  case "$broken" in
    guard) tests=(pause lockpause) ;;
    ack) tests=(fleet) ;;
    *) tests=(fleet onexit); [ "$server" = - ] || tests+=(pause lockpause) ;;
  esac
fi
ninja -C "$build" reign_cli reign_shard_test_worker >/dev/null || die "cannot build reign in $build"

run=$(mktemp -d /tmp/reign-shard-cmd-run.XXXXXX)
chmod 0755 "$run" # some server scripts run the server as another user (postgres)
trap 'test_backend_stop; rm -rf "$run"' EXIT
test_backend_uri
export REIGN_TEST_SHARD_URI=$uri TTL_MS=$ttl

case "$broken" in
  guard) export REIGN_SHARD_BROKEN_GUARD=1 ;;
  ack) export REIGN_SHARD_BROKEN_ACK=1 STOP_MS=300 ;;
esac
st=0
tests/cli/shard_cmd.sh "$build/cli/reign" "$build/cli/reign_shard_test_worker" "${tests[@]}" || st=$?
if [ -z "$broken" ]; then
  [ $st = 0 ] && echo "shard_cmd.sh: $backend: PASS" || echo "shard_cmd.sh: $backend: FAIL"
  exit $st
fi
if [ $st = 0 ]; then
  echo "shard_cmd.sh: $backend --broken-$broken: FAIL: the overlap was not caught"
  exit 1
fi
echo "shard_cmd.sh: $backend --broken-$broken: the overlap was caught, as it must be"
