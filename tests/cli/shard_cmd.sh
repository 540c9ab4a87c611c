#!/usr/bin/env bash
# `reign shard -- CMD` against one backend ($REIGN_TEST_SHARD_URI, default a
# file:// directory of its own). The CMD is tests/cli/shard_worker.c: it logs
# start/tick/stop lines with CLOCK_MONOTONIC to one shared log, and
# tests/cli/shard_cmd.awk reads the log.
#
#   pause:  the holder's reign process (not its children) is SIGSTOPped for
#           2 x TTL while another instance waits: the other's CMD must start
#           (the lease ran out) and no two CMDs may overlap by more than the
#           guard's reaction time, GUARD_MS. Needs a server backend: a
#           stopped process keeps its file:// lock, so no one takes over.
#   lockpause: the same for `reign lock` (its CMD runs under the same guard).
#   fleet:  3 instances x 30 resources (a --resources-file); a 4th joins;
#           the file changes (5 out, 5 in) under SIGHUP; one instance gets
#           SIGTERM (drains, dies of the signal); one gets SIGKILL. After
#           each step every resource has exactly one CMD; no two CMDs of a
#           resource overlap at any time. Prints the figures: voluntary move
#           start (revoking) -> new owner's CMD started, and SIGKILL -> all
#           of the killed instance's resources run elsewhere.
#   onexit: a CMD that exits by itself: --on-exit restart runs it again on
#           the same instance with the same term; --on-exit release hands
#           the resource to the other instance.
#
# Usage: tests/cli/shard_cmd.sh REIGN WORKER [pause|lockpause|fleet|onexit]...
# Environment: REIGN_TEST_SHARD_URI, TTL_MS (default 1000), STOP_MS (the CMD's work after SIGTERM,
# default 0), REIGN_TEST_GUARD_MS (default 20), KEEP=1 keeps the logs.
# REIGN_SHARD_BROKEN_GUARD=1 / REIGN_SHARD_BROKEN_ACK=1 break reign on
# purpose (the guard ignores deadlines / revocations are acknowledged before
# CMD stopped): the pause / fleet test must then fail.
# Prints "ok NAME" / "FAIL NAME ..." and "N passed, N failed"; exit 0 if all passed.
set -u
REIGN=$1 WORKER=$2
shift 2
[ $# -gt 0 ] || set -- fleet onexit
here=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d /tmp/reign-shard-cmd.XXXXXX)
URI=${REIGN_TEST_SHARD_URI:-file://$TMP/locks}
GUARD_MS=${REIGN_TEST_GUARD_MS:-20}
TTL_MS=${TTL_MS:-1000}
SLOW=$((20 + 20 * TTL_MS / 1000)) # seconds a step may take to settle (a loaded machine)
secs() { awk -v ms="$1" 'BEGIN { printf "%.3f", ms / 1000 }'; } # for sleep
TICK_MS=20 # fleet and onexit; the pause test ticks every 5 ms
export STOP_MS=${STOP_MS:-0}
pids=()
passed=0 failed=0
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    if [ -n "${KEEP:-}" ] || [ "$failed" -gt 0 ]; then echo "logs kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

ok() { echo "ok $1"; passed=$((passed + 1)); }
not_ok() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
now() { "$WORKER" --now; }
check() { awk -f "$here/shard_cmd.awk" "$@"; }
over() { awk -v o="${1%% *}" -v m="$GUARD_MS" 'BEGIN { exit !(o > m) }'; }

start() { # NAME LOG ARGS... : reign shard in the background; its pid in $last
    local name=$1 log=$2
    shift 2
    # Created here, not by the background job's redirection: a check right
    # after this must not see an older file.
    : >"$OUT/$name.out"
    LOG=$log "$REIGN" shard --uri "$URI" --instance "$name" --json "$@" -- "$WORKER" \
        >>"$OUT/$name.out" 2>"$OUT/$name.err" &
    last=$!
    pids+=("$last")
}

wait_for() { # SECONDS COMMAND...: poll every 100 ms
    local end=$((SECONDS + $1))
    shift
    while ! "$@"; do
        [ $SECONDS -ge $end ] && return 1
        sleep 0.1
    done
}

settled() { # SETFILE LOG: every ID of SETFILE has exactly one CMD now
    local out
    out=$(check -v mode=settled -v now="$(now)" -v window=$((5 * TICK_MS * 1000000)) "$1" "$2")
    last_settled=$out
    [ "$out" = settled ]
}

# pause_case NAME START: START a and START b run the holder and the waiter
# (functions taking the instance name; pid in $last); a's reign is stopped.
pause_case() {
    local name=$1 starter=$2 log=$TMP/$1.log
    : >"$log"
    export TICK_MS=5 LOG=$log
    "$starter" a
    local a=$last
    a_works() { awk '$1 == "start" && $5 == "a" { f = 1 } END { exit !f }' "$log"; }
    wait_for "$SLOW" a_works || { not_ok "$name" "a never started CMD"; return; }
    "$starter" b
    local b=$last
    sleep "$(secs $((TTL_MS / 2)))"
    kill -STOP "$a"
    sleep "$(secs $((2 * TTL_MS)))"
    # At least 2 x TTL; longer (up to 6 x TTL) until b's CMD runs, for a slow
    # machine: only a takeover while a is stopped tests the guard.
    b_works() { awk '$1 == "start" && $5 == "b" { f = 1 } END { exit !f }' "$log"; }
    local started_b=no
    wait_for $((4 * TTL_MS / 1000 + 1)) b_works && started_b=yes
    kill -CONT "$a"
    sleep "$(secs "$TTL_MS")"
    kill -TERM "$a" "$b" 2>/dev/null
    wait "$a" "$b" 2>/dev/null
    unset LOG
    local o
    o=$(check -v mode=overlap "$log")
    echo "$name: b started during the pause: $started_b; max overlap ms: $o (allowed: $GUARD_MS)"
    if [ "$started_b" != yes ]; then
        not_ok "$name" "b never took over while a was stopped"
    elif [ "$o" = none ] || over "$o"; then
        not_ok "$name" "two CMDs overlapped by more than $GUARD_MS ms: $o"
    else
        ok "$name"
    fi
}

pause_shard() { start "$1" "$LOG" --ttl "${TTL_MS}ms" --no-balance --grace 200ms p; }
pause_lock() {
    : >"$OUT/$1.out"
    "$REIGN" lock --uri "$URI" --instance "$1" --ttl "${TTL_MS}ms" --grace 200ms p -- "$WORKER" \
        >>"$OUT/$1.out" 2>"$OUT/$1.err" &
    last=$!
    pids+=("$last")
}
test_pause() { pause_case pause pause_shard; }
test_lockpause() { pause_case lockpause pause_lock; }

# The instances' event lines, with an "inst" field, in time order.
merged_events() {
    local f name
    for f in "$OUT"/[a-z].out; do
        name=$(basename "$f" .out)
        sed "s/^{/{\"inst\":\"$name\",/" "$f"
    done | sort -t'"' -k8,8
}

# The moves' figure: for every voluntary revocation (balance, drain), the
# time from its "revoking" line until another instance's CMD for that
# resource "started" (wall clock ms of the event lines).
move_figures() {
    merged_events | awk '
        function field(line, key,   v) {
            if (!match(line, "\"" key "\":\"[^\"]*\"")) return ""
            v = substr(line, RSTART + length(key) + 4, RLENGTH - length(key) - 5); return v
        }
        function ms(t) { return ((substr(t, 12, 2) * 60 + substr(t, 15, 2)) * 60 + substr(t, 18, 6)) * 1000 }
        { inst = field($0, "inst"); id = field($0, "resource"); ev = field($0, "event"); t = ms(field($0, "time")) }
        ev == "revoking" && field($0, "reason") ~ /^(balance|drain)$/ { rev[id] = t; from[id] = inst }
        ev == "started" && (id in rev) && inst != from[id] { d[++n] = t - rev[id]; delete rev[id] }
        END {
            if (n == 0) { print "fleet: no voluntary moves"; exit }
            for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (d[j] < d[i]) { x = d[i]; d[i] = d[j]; d[j] = x }
            p90 = int(n * 0.9 + 0.5); if (p90 < 1) p90 = 1
            printf "fleet: %d voluntary moves, revoking -> new owner CMD started: p50 %d ms, p90 %d ms, max %d ms\n",
                n, d[int((n + 1) / 2)], d[p90], d[n]
        }'
}

test_fleet() {
    local log=$TMP/fleet.log set=$TMP/fleet.set ids=() i
    : >"$log"
    for i in $(seq 0 29); do echo "r$i"; done >"$set"
    printf '# the fleet test resources\n\n' | cat - "$set" >"$TMP/resources"
    local common=(--ttl "${TTL_MS}ms" --hold 10s --refresh-interval 200ms --stabilization 600ms --grace 2s
                  --drain-timeout 20s --resources-file "$TMP/resources")
    export TICK_MS
    start a "$log" "${common[@]}"; local a=$last
    start b "$log" "${common[@]}"; local b=$last
    start c "$log" "${common[@]}"; local c=$last
    if ! wait_for "$SLOW" settled "$set" "$log"; then not_ok fleet "3 instances never settled: $last_settled"; return; fi
    echo "fleet: 3 instances: one CMD per resource"
    start d "$log" "${common[@]}"; local d=$last
    local d_has=0
    held_d() { d_has=$(check -v mode=held -v inst=d -v at="$(now)" -v window=$((5 * TICK_MS * 1000000)) "$log" | wc -l); [ "$d_has" -ge 6 ]; }
    if ! wait_for "$SLOW" held_d || ! wait_for "$SLOW" settled "$set" "$log"; then
        not_ok fleet "the 4th instance never got its share (it runs $d_has): $last_settled"; return
    fi
    echo "fleet: a 4th joined: it runs $d_has CMDs, one CMD per resource"

    for i in $(seq 5 34); do echo "r$i"; done >"$set"
    cp "$set" "$TMP/resources"
    kill -HUP "$a" "$b" "$c" "$d"
    if ! wait_for "$SLOW" settled "$set" "$log"; then not_ok fleet "after SIGHUP (r0-r4 out, r30-r34 in): $last_settled"; return; fi
    echo "fleet: SIGHUP, resources file changed: one CMD per resource of the new set"

    kill -TERM "$a"
    local st=0
    wait "$a" || st=$?
    if [ "$st" -ne 143 ]; then not_ok fleet "SIGTERM: exit $st, not death by SIGTERM (143)"; return; fi
    if ! wait_for "$SLOW" settled "$set" "$log"; then not_ok fleet "after a's SIGTERM: $last_settled"; return; fi
    echo "fleet: SIGTERM: a drained and died of the signal; one CMD per resource"

    local t_kill held_b
    t_kill=$(now)
    check -v mode=held -v inst=b -v at="$t_kill" -v window=$((5 * TICK_MS * 1000000)) "$log" >"$TMP/held_b"
    kill -KILL "$b"
    wait "$b" 2>/dev/null
    # Past the window in which b's CMDs, killed with it, still look running.
    sleep "$(secs $((10 * TICK_MS)))"
    if ! wait_for "$SLOW" settled "$set" "$log"; then not_ok fleet "after b's SIGKILL: $last_settled"; return; fi
    held_b=$(wc -l <"$TMP/held_b")
    local elsewhere
    elsewhere=$(check -v mode=elsewhere -v inst=b -v at="$t_kill" "$TMP/held_b" "$log")
    echo "fleet: SIGKILL of b (running $held_b CMDs): all of them run elsewhere after $elsewhere ms"

    kill -TERM "$c" "$d"
    wait "$c" "$d" 2>/dev/null
    local o
    o=$(check -v mode=overlap "$log")
    echo "fleet: max overlap of two CMDs of one resource, ms: $o (allowed: $GUARD_MS)"
    move_figures
    if [ "$o" = none ] || over "$o"; then
        not_ok fleet "two CMDs of one resource overlapped: $o"
    else
        ok fleet
    fi
}

test_onexit() {
    local log=$TMP/onexit.log
    : >"$log"
    # restart: the same instance, the same term, after the delay
    EXIT_MS=300 TICK_MS=$TICK_MS start x "$log" --ttl "${TTL_MS}ms" --no-balance --restart-delay 200ms e1
    local x=$last
    local runs=0
    count_runs() { runs=$(awk '$1 == "start" && $2 == "e1"' "$log" | wc -l); [ "$runs" -ge 3 ]; }
    if ! wait_for "$SLOW" count_runs; then not_ok onexit "restart: CMD ran $runs times"; return; fi
    local terms insts
    terms=$(awk '$1 == "start" && $2 == "e1" { print $3 }' "$log" | sort -u | wc -l)
    insts=$(awk '$1 == "start" && $2 == "e1" { print $5 }' "$log" | sort -u | wc -l)
    kill -TERM "$x"; wait "$x" 2>/dev/null
    if [ "$terms" -ne 1 ] || [ "$insts" -ne 1 ]; then
        not_ok onexit "restart: $runs runs over $terms terms on $insts instances (want 1 and 1)"; return
    fi
    echo "onexit: restart: $runs runs, one term, one instance"
    # release: the other instance takes the resource over
    : >"$log"
    EXIT_MS=300 TICK_MS=$TICK_MS start y "$log" --ttl "${TTL_MS}ms" --no-balance --on-exit release --restart-delay 2s e2
    local y=$last
    wait_for "$SLOW" grep -q '"started"' "$OUT/y.out" || { not_ok onexit "release: y never started CMD"; return; }
    TICK_MS=$TICK_MS start z "$log" --ttl "${TTL_MS}ms" --no-balance e2
    local z=$last
    # z's CMD itself must have started (not only been spawned) before the end.
    z_works() { awk '$1 == "start" && $5 == "z" { f = 1 } END { exit !f }' "$log"; }
    if ! wait_for "$SLOW" z_works; then
        kill -TERM "$y" "$z"; wait "$y" "$z" 2>/dev/null
        not_ok onexit "release: z never got the resource y released"; return
    fi
    kill -TERM "$y" "$z"; wait "$y" "$z" 2>/dev/null
    local o; o=$(check -v mode=overlap "$log")
    if [ "$o" = none ] || over "$o"; then not_ok onexit "release: overlap $o"; return; fi
    echo "onexit: release: the other instance took the resource over (gap $o ms)"
    ok onexit
}

for t in "$@"; do
    OUT=$TMP/$t # each test's instance outputs
    mkdir -p "$OUT"
    "test_$t"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
