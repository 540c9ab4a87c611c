#!/usr/bin/env bash
# Fair-share balancing, measured with real `reign shard` processes:
#   1. 3 instances over R resources reach an even spread (each within ±1 of ⌈R/M⌉);
#   2. a 4th joins: the spread is even again and no resource moves twice;
#   3. one is SIGKILLed: all its resources are mastered again (≤ TTL + 1 s) and
#      the spread is even over the 3 survivors.
# Prints the times and move counts; exits non-zero if a bound is missed.
#
#   scripts/balance.sh [file|redis|postgres|etcd|s3] [--resources R] [--build DIR]
# A server backend gets a throw-away server from scripts/servers/<name>.sh.
# s3 runs with a 10 s TTL and a 1 s membership refresh, so that one Ceph RGW
# on a small machine keeps up (S3 has no batch read: every member slot and
# every lease is a request). Its re-mastering bound cannot be TTL + 1 s: an
# observer judges a lease dead only after seeing its last record unchanged
# for a TTL of its own time (docs/backends/s3.md), and the survivors start
# looking at the dead instance's resources only when its member slot has
# been judged dead, itself a TTL after its last write.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

backend=file R=300 build=build/demo TTL=2000 REFRESH=200 STABLE=1000
while [ $# -gt 0 ]; do
  case "$1" in
    file | redis | postgres | etcd | s3) backend=$1 ;;
    --resources) R=$2; shift ;;
    --build) build=$2; shift ;;
    *) echo "usage: $0 [file|redis|postgres|etcd|s3] [--resources R] [--build DIR]" >&2; exit 2 ;;
  esac
  shift
done

# (re)build when there is no reign there, or one without this backend
if [ ! -x "$build/cli/reign" ] ||
   ! "$build/cli/reign" --help | grep -q "^Built into this reign:.*\b$backend\b"; then
  scripts/deps.sh build
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DREIGN_WITH_REDIS=ON \
        -DREIGN_WITH_POSTGRES=ON -DREIGN_WITH_ETCD=ON -DREIGN_WITH_S3=ON \
        -DREIGN_BUILD_TESTS=OFF >/dev/null
  ninja -C "$build" reign_cli >/dev/null
fi
reign=$root/$build/cli/reign

work=$(mktemp -d /tmp/reign-balance.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "$backend" = file ] || scripts/servers/$backend.sh stop "$work/$backend" >/dev/null 2>&1
  if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

chmod 0755 "$work" # the postgres script runs its server as another user
case "$backend" in
  file) uri="file://$work/locks" ;;
  redis)
    eval "$(scripts/servers/redis.sh start "$work/redis")"
    uri=$REDIS_URI ;;
  postgres)
    eval "$(scripts/servers/postgres.sh start "$work/postgres")"
    uri=$REIGN_TEST_POSTGRES_URI ;;
  etcd)
    eval "$(scripts/servers/etcd.sh start "$work/etcd")"
    uri=$REIGN_TEST_ETCD_URI ;;
  s3)
    eval "$(scripts/servers/s3.sh start "$work/s3")"
    uri=$REIGN_TEST_S3_URI TTL=10000 REFRESH=1000 STABLE=3000
    BOUND=$((2 * TTL + 2 * REFRESH + 1000)) ;;
esac

ms() { date +%s%3N; }

start_instance() { # start_instance NAME
  "$reign" shard --uri "$uri" --instance "$1" --ttl "$TTL" --count "$R" \
    --refresh-interval "$REFRESH" --stabilization "$STABLE" --check-interval 100 \
    >"$work/$1.log" 2>&1 &
  pids+=($!)
  eval "pid_$1=$!"
}

ids=()
for ((i = 0; i < R; i++)); do ids+=("r$i"); done

# counts: "a=100 b=100 c=100 none=0" from one batched status read
counts() {
  "$reign" status --uri "$uri" "${ids[@]}" 2>/dev/null |
    awk '{ if ($2 == "no") n["none"]++; else { split($2, m, "="); n[m[2]]++ } }
         END { for (k in n) printf "%s=%d ", k, n[k]; print "" }'
}

# wait_even NAMES... : until each named instance holds ⌈R/M⌉ or ⌈R/M⌉-1 and nothing is unheld
wait_even() {
  local want=$(((R + $# - 1) / $#)) deadline=$(($(ms) + 60000)) c ok
  while [ "$(ms)" -lt "$deadline" ]; do
    c=$(counts); ok=1
    for n in "$@"; do
      v=$(echo "$c" | tr ' ' '\n' | sed -n "s/^$n=//p"); v=${v:-0}
      if [ "$v" -lt $((want - 1)) ] || [ "$v" -gt "$want" ]; then ok=0; fi
    done
    echo "$c" | grep -q 'none=' && ok=0
    [ $ok = 1 ] && { echo "$c"; return 0; }
    sleep 0.05
  done
  echo "not even after 60 s: $c" >&2
  return 1
}

# moves: gains logged by the instances in a time window
gains_between() { # gains_between FROM_MS TO_MS: "resource instance" per gain in that window
  for n in a b c d; do
    [ -f "$work/$n.log" ] || continue
    awk -v from="$1" -v to="$2" -v who="$n" '$2 == "gained" {
        cmd = "date -d " $1 " +%s%3N"; cmd | getline t; close(cmd)
        if (t >= from && t <= to) print $3, who }' "$work/$n.log"
  done
}

echo "== reign balance ($backend, $R resources, ttl $TTL ms)"
t0=$(ms)
for n in a b c; do start_instance "$n"; done
c=$(wait_even a b c)
t1=$(ms)
echo "three instances even after $((t1 - t0)) ms: $c"

mark=$(ms)
start_instance d
c=$(wait_even a b c d)
t2=$(ms)
moves=$(gains_between "$mark" "$t2" | awk '{ n[$1]++ } END { m = 0; t = 0; for (k in n) { t += n[k]; if (n[k] > m) m = n[k] } print t, m }')
total=${moves% *} most=${moves#* }
echo "a fourth joined: even again after $((t2 - mark)) ms: $c"
echo "  resources moved: $total (each at most $most time(s))"

# b's resources at the kill: the bound is about them. (The survivors' own
# resources may move among them afterwards, as the fair share changes from
# 75 to 100; each such move is a resign and a prompt handoff, not a death.)
mapfile -t b_res < <("$reign" status --uri "$uri" "${ids[@]}" 2>/dev/null | awk '$2 == "master=b" { print $1 }')
[ ${#b_res[@]} -gt 0 ] || { echo "FAIL: b holds nothing before the kill" >&2; exit 1; }
disown "$pid_b" # no "Killed" line from the shell
kill -KILL "$pid_b"
tk=$(ms)
bound=${BOUND:-$((TTL + 1000))}
deadline=$((tk + bound))
while [ "$(ms)" -lt $((tk + 60000)) ]; do
  "$reign" status --uri "$uri" "${b_res[@]}" 2>/dev/null |
    grep -qE '^[^ ]+ (no master|master=b )' || break
  sleep 0.02
done
t3=$(ms)
echo "b SIGKILLed: all ${#b_res[@]} of its resources mastered again after $((t3 - tk)) ms (bound $bound ms$([ -n "${BOUND:-}" ] && echo ": 2 ttl + 2 refreshes + 1 s, see above" || echo " = ttl + 1 s"))"
c=$(wait_even a c d)
t4=$(ms)
echo "  even over the survivors after $((t4 - tk)) ms: $c"

fail=0
[ "$most" -le 1 ] || { echo "FAIL: a resource moved $most times" >&2; fail=1; }
[ "$t3" -le "$deadline" ] || { echo "FAIL: re-mastering took longer than $bound ms" >&2; fail=1; }
exit $fail
