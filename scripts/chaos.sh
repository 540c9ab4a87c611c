#!/usr/bin/env bash
# reign's chaos safety test against one backend (docs/safety.md): build the
# chaos programs if needed, start the backend's throw-away server with
# scripts/servers/<name>.sh, run the driver (workers + fault injection) and the
# checker, stop the server.
#
#   scripts/chaos.sh BACKEND [--failovers N] [--seed S] [--duration SECONDS]
#                    [--ttl-ms T] [--workers N] [--resources R] [--broken]
#                    [--build-dir DIR] [--keep]
#
# --broken builds core with -DREIGN_CHAOS_BROKEN=ON (the engine believes for
# ttl x 1.5, past its lease) in its own build directory and succeeds only if
# the checker catches it (an overlap or a belief past the deadline bound).
# Exit: 0 pass (or, with --broken, violation caught), 1 violation (or, with
# --broken, not caught), 2 usage or setup error. Logs are kept on failure.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
root=$PWD
. "$root/scripts/servers/for_test.sh"

# One line per backend; adding a backend is adding a line.
#   name     CMake option         server    variable with the URI    URI suffix       killed    faults
#                                 script                              (- none)         holder's  (all, or a
#                                 (- none)                                             lease     list: --faults)
# server: scripts/servers/<name>.sh (start DIR / ctl DIR restart|pause|resume); "killed holder's
# lease": expiry = it outlives the holder until the backend expires it, holder = it dies with it.
# s3's throw-away server keeps objects in RAM, so its restart loses the terms: no restart fault.
# redis-sentinel: a master, a replica, three sentinels; server-failover is a forced SENTINEL
# FAILOVER; wait_replicas=1 makes an ACQUIRE/RENEW count only once the replica has it, so every
# lease believed survives the failover (docs/backends/redis.md shows a run without it).
BACKENDS='
file       REIGN_WITH_FILE       -         -                        -                holder    all
redis      REIGN_WITH_REDIS      redis     REDIS_URI                /0?prefix=chaos  expiry    all
redis-sentinel REIGN_WITH_REDIS  redis-sentinel SENTINEL_URI       /0?prefix=chaos&wait_replicas=1 expiry    kill,stop,resign,server-pause-short,server-failover
postgres   REIGN_WITH_POSTGRES   postgres  REIGN_TEST_POSTGRES_URI  -                expiry    all
etcd       REIGN_WITH_ETCD       etcd      REIGN_TEST_ETCD_URI      -                expiry    all
s3         REIGN_WITH_S3         s3        REIGN_TEST_S3_URI        -                expiry    kill,stop,resign,server-pause-short,server-pause-long
'

usage() {
  echo "usage: $0 BACKEND [--failovers N] [--seed S] [--duration SECONDS] [--ttl-ms T]" >&2
  echo "                 [--workers N] [--resources R] [--broken] [--build-dir DIR] [--keep]" >&2
  echo "backends: $(awk 'NF { printf "%s ", $1 }' <<<"$BACKENDS")" >&2
  exit 2
}
die() {
  echo "chaos.sh: $*" >&2
  exit 2
}
number() { # number NAME VALUE
  case "$2" in '' | *[!0-9]*) die "$1 wants a whole number, got '$2'" ;; esac
}

[ $# -ge 1 ] || usage
backend=$1
shift
row=$(awk -v b="$backend" '$1 == b' <<<"$BACKENDS")
[ -n "$row" ] || { echo "chaos.sh: unknown backend '$backend'" >&2; usage; }
read -r _ option server urivar suffix handoff faults <<<"$row"

failovers='' seed='' duration='' ttl=500 workers=4 resources=8 broken=0 keep=0 build=''
while [ $# -gt 0 ]; do
  case "$1" in
    --failovers) [ $# -ge 2 ] || usage; number "$1" "$2"; failovers=$2; shift 2 ;;
    --seed) [ $# -ge 2 ] || usage; number "$1" "$2"; seed=$2; shift 2 ;;
    --duration) [ $# -ge 2 ] || usage; number "$1" "$2"; duration=$2; shift 2 ;;
    --ttl-ms) [ $# -ge 2 ] || usage; number "$1" "$2"; ttl=$2; shift 2 ;;
    --workers) [ $# -ge 2 ] || usage; number "$1" "$2"; workers=$2; shift 2 ;;
    --resources) [ $# -ge 2 ] || usage; number "$1" "$2"; resources=$2; shift 2 ;;
    --build-dir) [ $# -ge 2 ] || usage; build=$2; shift 2 ;;
    --broken) broken=1; shift ;;
    --keep) keep=1; shift ;;
    *) usage ;;
  esac
done
if [ -z "$failovers" ] && [ -z "$duration" ]; then
  failovers=$([ $broken = 1 ] && echo 100 || echo 50)
fi
if [ $broken = 1 ] && [ "$handoff" = holder ]; then
  die "--broken needs a backend whose lease outlives its holder: $backend's lock dies with its holder and a stopped holder keeps it, so believing past the lease cannot show (use redis)"
fi
if [ -z "$build" ]; then
  build=$root/build-chaos
  [ $broken = 0 ] || build=$root/build-chaos-broken
fi

# ---- build (configure only when the cache lacks what this run needs)
want_broken=$([ $broken = 1 ] && echo ON || echo OFF)
cache=$build/CMakeCache.txt
if [ ! -f "$cache" ] || ! grep -q "^$option:BOOL=ON" "$cache" ||
   ! grep -q "^REIGN_CHAOS_BROKEN:BOOL=$want_broken" "$cache"; then
  echo "chaos.sh: configuring $build (-D$option=ON -DREIGN_CHAOS_BROKEN=$want_broken)"
  mkdir -p "$build"
  cmake -S "$root" -B "$build" -G Ninja -D"$option"=ON -DREIGN_CHAOS_BROKEN="$want_broken" \
    >"$build/chaos-configure.log" 2>&1 || { cat "$build/chaos-configure.log" >&2; die "cmake failed"; }
fi
ninja -C "$build" reign_chaos_worker reign_chaos_driver reign_chaos_checker >"$build/chaos-build.log" 2>&1 ||
  { tail -40 "$build/chaos-build.log" >&2; die "build failed"; }
bin=$build/tests/chaos

# ---- server and logs
run=$(mktemp -d /tmp/reign-chaos.XXXXXX)
chmod 0755 "$run" # some server scripts run the server as another user (postgres)
server_ctl=''
verdict=2
cleanup() {
  local rc=$?
  test_backend_stop
  if [ "$verdict" = 0 ] && [ "$keep" = 0 ]; then
    rm -rf "$run"
  else
    echo "chaos.sh: logs kept in $run" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT

test_backend_uri
[ "$server" = - ] || server_ctl="$root/scripts/servers/$server.sh ctl $run/server"

args=(--worker "$bin/reign_chaos_worker" --uri "$uri" --dir "$run/logs" --backend "$backend"
      --workers "$workers" --resources "$resources" --ttl-ms "$ttl")
[ -z "$failovers" ] || args+=(--failovers "$failovers")
[ -z "$duration" ] || args+=(--duration "$duration")
[ -z "$seed" ] || args+=(--seed "$seed")
[ -z "$server_ctl" ] || args+=(--server-ctl "$server_ctl")
if [ $broken = 1 ]; then
  # The broken engine believes 1.5 TTL past its last good RENEW. Long server
  # pauses show that every time (RENEWs fail, the worker sees itself master
  # past its bound); stops often. Keep to the faults that reveal it.
  reveal=kill,stop,server-pause-long
  [ "$faults" = all ] || reveal=$(tr , '\n' <<<"$faults" | grep -xE 'kill|stop|server-pause-long' | paste -sd, -)
  args+=(--faults "$reveal")
elif [ "$faults" != all ]; then
  args+=(--faults "$faults")
fi
checker_args=()
[ "$handoff" != holder ] || checker_args+=(--lease-dies-with-holder)

[ $broken = 0 ] || echo "chaos.sh: BROKEN build ($build): the checker must find a violation"
driver_rc=0
"$bin/reign_chaos_driver" "${args[@]}" || driver_rc=$?
[ $driver_rc -le 1 ] || die "driver failed (exit $driver_rc)"
checker_rc=0
"$bin/reign_chaos_checker" "${checker_args[@]}" "$run/logs" || checker_rc=$?
[ $checker_rc -le 1 ] || die "checker failed (exit $checker_rc)"

if [ $broken = 1 ]; then
  if [ $checker_rc = 1 ]; then
    echo "chaos.sh: $backend --broken: the violation was caught, as it must be"
    verdict=0
  else
    echo "chaos.sh: $backend --broken: NOT caught: the checker passed a build that believes past its leases"
    verdict=1
  fi
elif [ $checker_rc = 0 ] && [ $driver_rc = 0 ]; then
  echo "chaos.sh: $backend: PASS"
  verdict=0
else
  [ $driver_rc = 0 ] || echo "chaos.sh: $backend: a worker exited by itself (see the .err files)"
  echo "chaos.sh: $backend: FAIL"
  verdict=1
fi
exit $verdict
