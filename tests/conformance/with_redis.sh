#!/usr/bin/env bash
# Run a command with a throw-away redis-server for the conformance suite:
#   tests/conformance/with_redis.sh ctest --test-dir build -R conformance.redis --output-on-failure
# starts one with scripts/servers/redis.sh in a temporary directory, exports
# REIGN_TEST_REDIS_URI and REIGN_TEST_REDIS_DIR (so the server-fault cases,
# which stop, pause and restart it, run too), runs the command and stops the
# server again. Its logs are kept when the command fails.
set -Eeuo pipefail

here=$(cd "$(dirname "$0")" && pwd)
redis_sh="$here/../../scripts/servers/redis.sh"
[ $# -ge 1 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/reign-conf-redis.XXXXXX")
cleanup() {
  local rc=$?
  bash "$redis_sh" stop "$dir" || true
  if [ "$rc" -eq 0 ]; then
    rm -rf "$dir"
  else
    echo "with_redis.sh: kept $dir (redis.log) for inspection" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
eval "$(bash "$redis_sh" start "$dir")"
export REIGN_TEST_REDIS_URI="$REDIS_URI" REIGN_TEST_REDIS_DIR="$REDIS_DIR"
"$@"
