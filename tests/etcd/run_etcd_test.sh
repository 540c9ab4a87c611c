#!/usr/bin/env bash
# Runs one case of reign_etcd_tests (ctest's etcd.<case>):
#   run_etcd_test.sh CASE PROGRAM ETCD_SH
# Exit 77 (skipped) unless REIGN_TEST_ETCD_URI is set (an etcd from
# `eval "$(scripts/servers/etcd.sh start DIR)"`). The renew and watch cases
# use that server. cluster, auth and tls use REIGN_TEST_ETCD_CLUSTER_URI
# (+ _PIDS, _DIR), REIGN_TEST_ETCD_AUTH_URI (+ _AUTH_DIR) and
# REIGN_TEST_ETCD_TLS_URI when set, else start their own throw-away servers
# here and stop them afterwards (logs are kept when the case fails).
set -uo pipefail

case_name=${1:?usage: run_etcd_test.sh CASE PROGRAM ETCD_SH}
prog=${2:?usage: run_etcd_test.sh CASE PROGRAM ETCD_SH}
etcd_sh=${3:?usage: run_etcd_test.sh CASE PROGRAM ETCD_SH}
export REIGN_TEST_ETCD_SCRIPT=$etcd_sh

if [ -z "${REIGN_TEST_ETCD_URI:-}" ]; then
  echo "SKIPPED etcd.$case_name: REIGN_TEST_ETCD_URI is not set; e.g." \
    "eval \"\$(scripts/servers/etcd.sh start /tmp/etcd)\" && ctest -L etcd"
  exit 77
fi

own_dir=""
cleanup() {
  local rc=$?
  if [ -n "$own_dir" ]; then
    bash "$etcd_sh" stop "$own_dir" || true
    if [ "$rc" -eq 0 ]; then rm -rf "$own_dir"; else echo "etcd.$case_name: kept $own_dir for inspection"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT

start_own() { # start_own start-cluster|start-auth|start-tls
  own_dir=$(mktemp -d "${TMPDIR:-/tmp}/reign-etcd-$case_name.XXXXXX") || exit 1
  local out
  out=$(bash "$etcd_sh" "$1" "$own_dir") || { echo "etcd.sh $1 failed"; exit 1; }
  eval "$out"
}

case "$case_name" in
  renew | watch) ;;
  cluster)
    [ -n "${REIGN_TEST_ETCD_CLUSTER_URI:-}" ] || start_own start-cluster
    ;;
  auth)
    if [ -z "${REIGN_TEST_ETCD_AUTH_URI:-}" ]; then
      start_own start-auth
      export REIGN_TEST_ETCD_AUTH_DIR=$own_dir
    fi
    ;;
  tls)
    if [ -z "${REIGN_TEST_ETCD_TLS_URI:-}" ]; then
      command -v openssl >/dev/null || { echo "SKIPPED etcd.tls: openssl is missing"; exit 77; }
      start_own start-tls
    fi
    ;;
  *) echo "run_etcd_test.sh: unknown case '$case_name'"; exit 2 ;;
esac
"$prog" "$case_name"
