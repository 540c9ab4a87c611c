#!/usr/bin/env bash
# Runs reign_conformance against one backend (ctest's conformance.<backend>):
#   run_backend.sh BACKEND PROGRAM [BUILT=ON|OFF]
# sets REIGN_CONF_URI / _BACKEND / _CAPS / _SERVER_CTL for it. Exit 77 means
# skipped (backend not built, or no server given), never passed.
# redis: needs REIGN_TEST_REDIS_URI; with REIGN_TEST_REDIS_DIR (the DIR given
# to scripts/servers/redis.sh start) the server-fault cases run too. rediss
# (REIGN_TEST_REDISS_URI, _DIR) is the same over TLS (REDIS_TLS=1 redis.sh);
# redis_sentinel (REIGN_TEST_SENTINEL_URI, _DIR) goes through the sentinels of
# scripts/servers/redis-sentinel.sh, whose ctl acts on the current master.
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
    export REIGN_CONF_URI="noop://" REIGN_CONF_CAPS="nocontention,nopush"
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
  rediss)
    [ -n "${REIGN_TEST_REDISS_URI:-}" ] ||
      skip "REIGN_TEST_REDISS_URI is not set; e.g. eval \"\$(REDIS_TLS=1 scripts/servers/redis.sh start /tmp/rs)\""
    export REIGN_CONF_URI=$REIGN_TEST_REDISS_URI REIGN_CONF_CAPS=""
    if [ -n "${REIGN_TEST_REDISS_DIR:-}" ]; then
      REIGN_CONF_SERVER_CTL="$(printf '%q redis %q' "$here/server_ctl.sh" "$REIGN_TEST_REDISS_DIR")"
      export REIGN_CONF_SERVER_CTL
    fi
    exec "$prog"
    ;;
  redis_sentinel)
    [ -n "${REIGN_TEST_SENTINEL_URI:-}" ] ||
      skip "REIGN_TEST_SENTINEL_URI is not set; e.g. eval \"\$(scripts/servers/redis-sentinel.sh start /tmp/rsen)\""
    export REIGN_CONF_URI=$REIGN_TEST_SENTINEL_URI REIGN_CONF_CAPS=""
    # The derived dead URI moves only the last port: every sentinel must be
    # unreachable (nothing listens on the privileged ports 1 and 2 here).
    export REIGN_CONF_DEAD_URI="${REIGN_CONF_URI%%://*}://127.0.0.1:1,127.0.0.1:2/mymaster"
    if [ -n "${REIGN_TEST_SENTINEL_DIR:-}" ]; then
      REIGN_CONF_SERVER_CTL="$(printf '%q ctl %q' "$here/../../scripts/servers/redis-sentinel.sh" "$REIGN_TEST_SENTINEL_DIR")"
      export REIGN_CONF_SERVER_CTL
    fi
    exec "$prog"
    ;;
  postgres)
    [ -n "${REIGN_TEST_POSTGRES_URI:-}" ] ||
      skip "REIGN_TEST_POSTGRES_URI is not set; e.g. eval \"\$(scripts/servers/postgres.sh start /tmp/pg)\""
    export REIGN_CONF_URI=$REIGN_TEST_POSTGRES_URI REIGN_CONF_CAPS=""
    # Its own ctl: a pause must stop every backend process of the server.
    if [ -n "${REIGN_TEST_POSTGRES_CTL:-}" ]; then
      export REIGN_CONF_SERVER_CTL=$REIGN_TEST_POSTGRES_CTL
    fi
    exec "$prog"
    ;;
  etcd)
    [ -n "${REIGN_TEST_ETCD_URI:-}" ] ||
      skip "REIGN_TEST_ETCD_URI is not set; e.g. eval \"\$(scripts/servers/etcd.sh start /tmp/etcd)\""
    export REIGN_CONF_URI=$REIGN_TEST_ETCD_URI REIGN_CONF_CAPS="${REIGN_TEST_ETCD_CAPS:-}"
    # etcd grants leases in whole seconds, and 1,000 renewals are one
    # keep-alive plus a range of the whole prefix: at a 1 s TTL the renew
    # period and the op timeout are 333 ms, which a loaded 2-core machine
    # running the ASan build overran in CI (a renew tick late, some ops timed
    # out; no resource went without its master). The 1,000-resource cases
    # use a 3 s TTL.
    export REIGN_CONF_MANY_TTL_MS=${REIGN_CONF_MANY_TTL_MS:-3000}
    [ -n "${REIGN_TEST_ETCD_CTL:-}" ] && export REIGN_CONF_SERVER_CTL=$REIGN_TEST_ETCD_CTL
    exec "$prog"
    ;;
  s3)
    [ -n "${REIGN_TEST_S3_URI:-}" ] ||
      skip "REIGN_TEST_S3_URI is not set; e.g. eval \"\$(scripts/servers/s3.sh start /tmp/s3)\""
    # RGW's memstore keeps objects in RAM: a restart loses them (norestart).
    # S3 charges per request and this RGW serves a few hundred a second: the
    # 1,000-resource cases run with a 30 s TTL and candidates that look again
    # only when a lease could have expired (poll=expiry).
    export REIGN_CONF_URI=$REIGN_TEST_S3_URI REIGN_CONF_CAPS="${REIGN_TEST_S3_CAPS:-norestart,nopush}"
    export REIGN_CONF_MANY_URI="$REIGN_TEST_S3_URI&poll=expiry" REIGN_CONF_MANY_TTL_MS=30000
    if [ -n "${REIGN_TEST_S3_CTL:-}" ]; then
      export REIGN_CONF_SERVER_CTL=$REIGN_TEST_S3_CTL
    elif [ -n "${S3_DIR:-}" ]; then
      REIGN_CONF_SERVER_CTL="$(printf '%q ctl %q' "$here/../../scripts/servers/s3.sh" "$S3_DIR")"
      export REIGN_CONF_SERVER_CTL
    fi
    exec "$prog"
    ;;
  *)
    skip "run_backend.sh has no setup for backend '$backend'"
    ;;
esac
