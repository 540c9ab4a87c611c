#!/usr/bin/env bash
# Runs reign_conformance against one backend (ctest's conformance.<backend>):
#   run_backend.sh BACKEND PROGRAM [BUILT=ON|OFF]
# sets REIGN_CONF_URI / _BACKEND / _CAPS / _SERVER_CTL for it. Exit 77 means
# skipped (backend not built, or no server given), never passed.
# redis: needs REIGN_TEST_REDIS_URI; with REIGN_TEST_REDIS_DIR (the DIR given
# to scripts/servers/redis.sh start) the server-fault cases run too.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
backend=${1:?usage: run_backend.sh BACKEND PROGRAM [BUILT]}
prog=${2:?usage: run_backend.sh BACKEND PROGRAM [BUILT]}
built=${3:-ON}

skip() {
  echo "SKIPPED conformance.$backend: $*"
  exit 77
}

case "$built" in
  ON | on | 1 | TRUE | true | YES | yes) ;;
  *) skip "reign was built without REIGN_WITH_$(echo "$backend" | tr a-z A-Z)" ;;
esac

export REIGN_CONF_BACKEND=$backend
unset REIGN_CONF_SERVER_CTL REIGN_CONF_DEAD_URI

case "$backend" in
  file)
    dir=$(mktemp -d "${TMPDIR:-/tmp}/reign-conf-file.XXXXXX") || exit 1
    # The kernel frees a dead holder's OFD lock at once; a stopped holder is
    # alive and keeps it.
    export REIGN_CONF_URI="file://$dir" REIGN_CONF_CAPS="instantdeath,stoppedholds"
    "$prog"
    rc=$?
    if [ "$rc" -eq 0 ]; then
      rm -rf "$dir"
    else
      echo "conformance.file: kept $dir for inspection"
    fi
    exit "$rc"
    ;;
  mem)
    # One store per run; it lives in this process only.
    export REIGN_CONF_URI="mem://conformance-$$" REIGN_CONF_CAPS="noprocess"
    exec "$prog"
    ;;
  noop)
    export REIGN_CONF_URI="noop://" REIGN_CONF_CAPS="nocontention"
    exec "$prog"
    ;;
  redis)
    if [ -z "${REIGN_TEST_REDIS_URI:-}" ]; then
      skip "REIGN_TEST_REDIS_URI is not set; e.g. eval \"\$(scripts/servers/redis.sh start /tmp/r)\"" \
        "&& REIGN_TEST_REDIS_URI=\$REDIS_URI REIGN_TEST_REDIS_DIR=\$REDIS_DIR ctest -R conformance.redis"
    fi
    export REIGN_CONF_URI=$REIGN_TEST_REDIS_URI REIGN_CONF_CAPS=""
    if [ -n "${REIGN_TEST_REDIS_DIR:-}" ]; then
      REIGN_CONF_SERVER_CTL="$(printf '%q redis %q' "$here/server_ctl.sh" "$REIGN_TEST_REDIS_DIR")"
      export REIGN_CONF_SERVER_CTL
    else
      echo "conformance.redis: REIGN_TEST_REDIS_DIR is not set: server-fault cases will be skipped"
    fi
    exec "$prog"
    ;;
  *)
    skip "run_backend.sh has no setup for backend '$backend'"
    ;;
esac
