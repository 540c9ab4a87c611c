#!/usr/bin/env bash
# The handover test (docs/safety.md): no resource ever has two workers at
# once on a voluntary move. Worker processes (tests/handover/worker.c) log
# when they start and stop working on a resource; the checker compares the
# intervals of all of them (CLOCK_MONOTONIC is shared on one machine).
#
#   1. 3 instances share R resources (r0 .. r(R-1)); each has one worker
#   2. a 4th joins: the others hand it its share (balancing moves)
#   3. one drains: it hands all its resources over, one revocation at a time
#   4. 50 resources are added and 50 removed, on each instance a moment
#      apart, so their sets differ for a while
#   5. the instances stop one after another, each draining to the rest
# Every step must end with exactly one worker per resource, and no two
# workers may ever overlap.
#
#   scripts/handover.sh BACKEND [--resources R] [--broken] [--build-dir DIR] [--keep]
#
# --broken builds core with -DREIGN_HANDOVER_BROKEN=ON (the shard releases a
# lease before it revokes the work, as it did before revocations) in its own
# build directory and succeeds only if the checker catches an overlap.
# Exit: 0 pass (or, with --broken, caught), 1 overlap or not settled (or,
# with --broken, not caught), 2 usage or setup error.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
root=$PWD
. "$root/scripts/servers/for_test.sh"

# name      CMake option         server    variable with the URI    URI suffix          TTL ms
BACKENDS='
file        REIGN_WITH_FILE       -         -                        -                   3000
redis       REIGN_WITH_REDIS      redis     REDIS_URI                /0?prefix=handover  3000
postgres    REIGN_WITH_POSTGRES   postgres  REIGN_TEST_POSTGRES_URI  -                   3000
etcd        REIGN_WITH_ETCD       etcd      REIGN_TEST_ETCD_URI      -                   3000
s3          REIGN_WITH_S3         s3        REIGN_TEST_S3_URI        -                   10000
'

usage() {
  echo "usage: $0 BACKEND [--resources R] [--broken] [--build-dir DIR] [--keep]" >&2
  echo "backends: $(awk 'NF { printf "%s ", $1 }' <<<"$BACKENDS")" >&2
  exit 2
}
die() {
  echo "handover.sh: $*" >&2
  exit 2
}

[ $# -ge 1 ] || usage
backend=$1
shift
row=$(awk -v b="$backend" '$1 == b' <<<"$BACKENDS")
[ -n "$row" ] || { echo "handover.sh: unknown backend '$backend'" >&2; usage; }
read -r _ option server urivar suffix ttl <<<"$row"

R=300 broken=0 keep=0 build=''
while [ $# -gt 0 ]; do
  case "$1" in
    --resources) [ $# -ge 2 ] || usage; R=$2; shift 2 ;;
    --build-dir) [ $# -ge 2 ] || usage; build=$2; shift 2 ;;
    --broken) broken=1; shift ;;
    --keep) keep=1; shift ;;
    *) usage ;;
  esac
done
case "$R" in '' | *[!0-9]*) die "--resources wants a whole number, got '$R'" ;; esac
[ "$R" -ge 100 ] || die "--resources must be at least 100 (50 of them are removed)"
if [ -z "$build" ]; then
  build=$root/build-handover
  [ $broken = 0 ] || build=$root/build-handover-broken
fi

# ---- build (configure only when the cache lacks what this run needs)
want_broken=$([ $broken = 1 ] && echo ON || echo OFF)
cache=$build/CMakeCache.txt
if [ ! -f "$cache" ] || ! grep -q "^$option:BOOL=ON" "$cache" ||
   ! grep -q "^REIGN_HANDOVER_BROKEN:BOOL=$want_broken" "$cache"; then
  echo "handover.sh: configuring $build (-D$option=ON -DREIGN_HANDOVER_BROKEN=$want_broken)"
  mkdir -p "$build"
  cmake -S "$root" -B "$build" -G Ninja -D"$option"=ON -DREIGN_HANDOVER_BROKEN="$want_broken" \
    >"$build/handover-configure.log" 2>&1 || { cat "$build/handover-configure.log" >&2; die "cmake failed"; }
fi
ninja -C "$build" reign_handover_worker reign_handover_checker >"$build/handover-build.log" 2>&1 ||
  { tail -40 "$build/handover-build.log" >&2; die "build failed"; }
bin=$build/tests/handover

# ---- server, workers and logs
run=$(mktemp -d /tmp/reign-handover.XXXXXX)
chmod 0755 "$run" # some server scripts run the server as another user (postgres)
pids=()
verdict=2
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do { kill -9 "$p" && wait "$p"; } 2>/dev/null || true; done
  test_backend_stop
  if [ "$verdict" = 0 ] && [ "$keep" = 0 ]; then
    rm -rf "$run"
  else
    echo "handover.sh: logs kept in $run" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT

test_backend_uri

t0=$(date +%s%N)
say() { printf 'handover.sh: %6.1f s  %s\n' "$(( ($(date +%s%N) - t0) / 1000000 ))e-3" "$*"; }

start_worker() { # start_worker K
  : >"$run/w$1.ctl"
  : >"$run/w$1.log"
  "$bin/reign_handover_worker" --uri "$uri" --instance "w$1" --log "$run/w$1.log" \
    --control "$run/w$1.ctl" --count "$R" --ttl "$ttl" 2>"$run/w$1.err" &
  pids[$1]=$!
}

logs() { ls "$run"/w*.log 2>/dev/null; }

caught=0
fail() { # an overlap ends the run at once; anything else is a failure too
  "$bin/reign_handover_checker" $(logs) | tail -25 || true
  if [ $broken = 1 ] && [ "$caught" = 1 ]; then
    echo "handover.sh: $backend --broken: the overlap was caught, as it must be"
    verdict=0
    exit 0
  fi
  echo "handover.sh: $backend: FAIL: $*"
  verdict=1
  exit 1
}

wait_settled() { # wait_settled SETFILE TIMEOUT_S WHAT
  local until=$(($(date +%s) + $2)) rc out
  while :; do
    rc=0
    out=$("$bin/reign_handover_checker" --settled "$1" $(logs)) || rc=$?
    case $rc in
      0) say "$3: one worker per resource"; return 0 ;;
      1) caught=1; echo "$out" | tail -5; fail "two workers at once ($3)" ;;
      3) ;;
      *) fail "checker failed (exit $rc)" ;;
    esac
    [ "$(date +%s)" -lt "$until" ] || { echo "$out"; fail "not settled after $2 s ($3)"; }
    sleep 0.5
  done
}

held() { # held K: sets HELD to how many resources w$K works on now (an overlap ends the run)
  local out rc=0
  out=$("$bin/reign_handover_checker" --held "w$1" $(logs)) || rc=$?
  case $rc in
    0) ;;
    1) caught=1; echo "$out" | grep OVERLAP | head -5 >&2; fail "two workers at once" ;;
    *) fail "checker failed (exit $rc)" ;;
  esac
  HELD=$(awk '/^held/ { print $3 }' <<<"$out")
}

wait_held() { # wait_held K OP N TIMEOUT_S WHAT: until w$K works on OP N resources
  local until=$(($(date +%s) + $4)) h
  while :; do
    held "$1"
    h=$HELD
    if [ "$2" = ge ] && [ "$h" -ge "$3" ]; then break; fi
    if [ "$2" = eq ] && [ "$h" -eq "$3" ]; then break; fi
    [ "$(date +%s)" -lt "$until" ] || fail "w$1 works on $h resources after $4 s ($5)"
    sleep 0.5
  done
  say "$5: w$1 works on $h"
}

alive() {
  for p in "${pids[@]}"; do
    kill -0 "$p" 2>/dev/null || { cat "$run"/w*.err >&2; fail "a worker exited by itself"; }
  done
}

[ $broken = 0 ] || echo "handover.sh: BROKEN build ($build): the checker must find an overlap"
say "$backend: $R resources, TTL $ttl ms, $uri"
seq 0 $((R - 1)) | sed 's/^/r/' >"$run/set"

for k in 0 1 2; do start_worker $k; done
wait_settled "$run/set" 60 "3 instances"
alive

start_worker 3
share=$((R / 4))
# The others hand over once they have held theirs for the hold interval (10 s).
wait_held 3 ge $((share - 1)) 90 "a 4th joined"
wait_settled "$run/set" 60 "a 4th joined"
alive

echo drain >>"$run/w1.ctl"
wait_held 1 eq 0 60 "w1 drained"
wait_settled "$run/set" 60 "w1 drained"
alive

{ seq 0 $((R - 51)) | sed 's/^/r/'; seq 0 49 | sed 's/^/x/'; } >"$run/set2"
for k in 0 1 2 3; do
  { seq $((R - 50)) $((R - 1)) | sed 's/^/remove r/'; seq 0 49 | sed 's/^/add x/'; } >>"$run/w$k.ctl"
  sleep 0.3 # the instances' sets differ for a while
done
wait_settled "$run/set2" 60 "50 added, 50 removed"
alive

for k in 0 2 3 1; do
  echo stop >>"$run/w$k.ctl"
  rc=0
  wait "${pids[$k]}" || rc=$?
  unset "pids[$k]"
  [ $rc = 0 ] || { cat "$run/w$k.err" >&2; fail "w$k exited $rc on stop"; }
  say "w$k stopped (drained to the others)"
done
pids=()

rc=0
"$bin/reign_handover_checker" $(logs) || rc=$?
if [ $broken = 1 ]; then
  if [ $rc = 1 ]; then
    echo "handover.sh: $backend --broken: the overlap was caught, as it must be"
    verdict=0
  else
    echo "handover.sh: $backend --broken: NOT caught: the checker passed a shard that releases before revoking"
    verdict=1
  fi
elif [ $rc = 0 ]; then
  echo "handover.sh: $backend: PASS"
  verdict=0
else
  echo "handover.sh: $backend: FAIL"
  verdict=1
fi
exit $verdict
