#!/usr/bin/env bash
# `reign shard -- CMD` on a file:// backend (or $REIGN_TEST_SHARD_URI):
#   pause:  the holder's reign process (not its children) is SIGSTOPped for
#           2 x TTL while another instance waits; no two CMDs of a resource
#           may overlap by more than the guard's reaction time (GUARD_MS).
#   moves:  2 instances x 12 resources, a third joins, one gets SIGTERM
#           (drain), one SIGKILL; no overlap on any move, and every resource
#           ends with exactly one CMD.
# Usage: tests/cli/shard_cmd.sh PATH/TO/reign PATH/TO/reign_shard_test_worker [pause|moves]...
# Exit 0 if all passed. REIGN_SHARD_BROKEN_GUARD=1 / REIGN_SHARD_BROKEN_ACK=1
# in the environment break reign on purpose: the test must then fail.
set -u
REIGN=$1 WORKER=$2
shift 2
[ $# -gt 0 ] || set -- pause moves
TMP=$(mktemp -d /tmp/reign-shard-cmd.XXXXXX)
URI=${REIGN_TEST_SHARD_URI:-file://$TMP/locks}
GUARD_MS=${REIGN_TEST_GUARD_MS:-20}
pids=()
failed=0
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    [ -n "${KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

# The largest overlap (ms, negative: a gap) between work intervals of one
# resource by two different (instance, term), from the log's first and last
# line per (resource, instance, term); "none" if no two intervals.
max_overlap() {
    awk '{ k = $2 " " $5 " " $3; if (!(k in lo)) { lo[k] = $4; id[k] = $2 } hi[k] = $4 }
         END {
           best = "none"
           for (a in lo) for (b in lo) if (a < b && id[a] == id[b]) {
             s = lo[a] > lo[b] ? lo[a] : lo[b]; e = hi[a] < hi[b] ? hi[a] : hi[b]
             o = (e - s) / 1e6
             if (best == "none" || o > best) { best = o; where = id[a] ": " a " / " b }
           }
           if (best == "none") print "none"; else printf "%.1f %s\n", best, where
         }' "$1"
}

start() { # NAME LOG ARGS... : reign shard in the background, pid in $last
    local name=$1 log=$2
    shift 2
    LOG=$log "$REIGN" shard --uri "$URI" --instance "$name" --json "$@" -- "$WORKER" \
        >"$TMP/$name.out" 2>"$TMP/$name.err" &
    last=$!
    pids+=("$last")
}

wait_for() { # SECONDS COMMAND...: poll every 50 ms
    local end=$((SECONDS + $1))
    shift
    while ! "$@"; do
        [ $SECONDS -ge $end ] && return 1
        sleep 0.05
    done
}

test_pause() {
    local log=$TMP/pause.log
    : >"$log"
    start a "$log" --ttl 1s --no-balance --grace 200ms p
    local a=$last
    wait_for 10 grep -q '"started"' "$TMP/a.out" || { echo "FAIL pause: a never started CMD"; failed=1; return; }
    start b "$log" --ttl 1s --no-balance --grace 200ms p
    local b=$last
    sleep 0.5
    kill -STOP "$a"
    sleep 2
    local started_b=no
    grep -q '"started"' "$TMP/b.out" && started_b=yes
    kill -CONT "$a"
    sleep 1
    kill -TERM "$a" "$b"
    wait "$a" "$b" 2>/dev/null
    local o
    o=$(max_overlap "$log")
    echo "pause: b started during the pause: $started_b; max overlap ms: $o (allowed: $GUARD_MS)"
    if [ "$started_b" != yes ] || [ "$o" = none ] || awk -v o="${o%% *}" -v m="$GUARD_MS" 'BEGIN { exit !(o > m) }'; then
        echo "FAIL pause"
        failed=1
    else
        echo "ok pause"
    fi
}

test_moves() {
    local log=$TMP/moves.log ids=()
    : >"$log"
    for i in $(seq 0 11); do ids+=("m$i"); done
    local common=(--ttl 1s --hold 10s --refresh-interval 200ms --stabilization 600ms --grace 1s)
    start a "$log" "${common[@]}" "${ids[@]}"; local a=$last
    start b "$log" "${common[@]}" "${ids[@]}"; local b=$last
    sleep 4
    start c "$log" "${common[@]}" "${ids[@]}"; local c=$last
    sleep 14   # hold 10s, then moves to c
    local t0; t0=$(date +%s%N)
    kill -TERM "$a"; wait "$a" 2>/dev/null
    sleep 3
    kill -KILL "$b"; wait "$b" 2>/dev/null
    sleep 4
    local o; o=$(max_overlap "$log")
    # Every resource: exactly one CMD running now, on c (ticks in the last 200 ms).
    local now; now=$(awk '{print $4}' "$log" | sort -n | tail -1)
    local running
    running=$(awk -v now="$now" '$4 > now - 200e6 { print $2, $5 }' "$log" | sort -u | awk '{n[$1]++} END { for (k in n) print k, n[k] }' | sort)
    local n_one; n_one=$(echo "$running" | awk '$2 == 1' | wc -l)
    kill -TERM "$c"; wait "$c" 2>/dev/null
    echo "moves: max overlap ms: $o; resources with exactly one CMD at the end: $n_one/12"
    grep -h '"revoking"' "$TMP"/[abc].out | head -0
    if [ "$o" = none ] || awk -v o="${o%% *}" -v m="$GUARD_MS" 'BEGIN { exit !(o > m) }' || [ "$n_one" -ne 12 ]; then
        echo "FAIL moves"
        failed=1
    else
        echo "ok moves"
    fi
}

for t in "$@"; do "test_$t"; done
exit $failed
