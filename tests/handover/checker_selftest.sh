#!/usr/bin/env bash
# The handover checker must pass clean logs and catch crafted overlaps.
set -euo pipefail
checker=$1
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
fails=0
expect() { # expect RC DESCRIPTION ARGS...
  local want=$1 what=$2 rc=0
  shift 2
  "$checker" "$@" >"$d/out" 2>&1 || rc=$?
  if [ "$rc" = "$want" ]; then echo "ok: $what"; else echo "FAIL: $what (exit $rc, want $want)"; cat "$d/out"; fails=$((fails + 1)); fi
}
printf 'start r1 1 100\nstop r1 1 200 balance\nstart r2 1 100\n' >"$d/a.log"
printf 'start r1 2 201\nstop r1 2 300 stop\n' >"$d/b.log"
expect 0 "a handover after the stop" "$d/a.log" "$d/b.log"
printf 'r2\n' >"$d/set"
expect 0 "settled: r2 has one worker, r1 none" --settled "$d/set" "$d/a.log" "$d/b.log"
printf 'r1\nr2\n' >"$d/set2"
expect 3 "not settled: r1 has no worker" --settled "$d/set2" "$d/a.log" "$d/b.log"
printf 'start r1 2 150\nstop r1 2 300 stop\n' >"$d/c.log"
expect 1 "the next owner starts before the stop" "$d/a.log" "$d/c.log"
printf 'start r2 5 150\n' >"$d/e.log"
expect 1 "two open intervals" "$d/a.log" "$d/e.log"
printf 'start r1 1 100\nstop r1 1 200 x\nstart r1 3 250\n' >"$d/f.log"
expect 0 "one instance again later" "$d/f.log"
"$checker" --held a "$d/a.log" | grep -qx 'held a 1' && echo "ok: --held counts" || { echo "FAIL: --held"; fails=$((fails + 1)); }
[ $fails = 0 ]
