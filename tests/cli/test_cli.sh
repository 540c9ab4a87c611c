#!/usr/bin/env bash
# Shell tests of the `reign` command against a built binary, on a throw-away
# file:// directory (and mem:// / noop:// where one process is enough).
# Usage: tests/cli/test_cli.sh PATH/TO/reign     Prints "N passed, N failed".
# REIGN_TEST_MAX_LATENCY_MS (default 50) bounds the takeover latencies, for
# slow builds (TSan) or loaded machines.
set -u

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 PATH/TO/reign (an executable)" >&2
    exit 2
fi
REIGN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
TMP=$(mktemp -d /tmp/reign-cli-test.XXXXXX)
U="file://$TMP/locks"
MAX_LATENCY_MS=${REIGN_TEST_MAX_LATENCY_MS:-50}
passed=0
failed=0
started_pids=()

# True if PID is still a child of this shell: a reaped PID may belong to
# somebody else by now, and we kill only what we started.
is_our_child() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }  # past "pid (comm) ": state ppid ...
    # shellcheck disable=SC2086 # split into fields on purpose
    set -- $stat
    [ "$2" = "$$" ]
}

cleanup() {
    for p in "${started_pids[@]}"; do
        is_our_child "$p" && kill -9 "$p" 2>/dev/null
    done
    if [ "$failed" -eq 0 ]; then
        rm -rf "$TMP"
    else
        echo "logs kept in $TMP"
    fi
}
trap cleanup EXIT

ok() {
    passed=$((passed + 1))
    echo "ok   - $1"
}
not_ok() {
    failed=$((failed + 1))
    echo "FAIL - $1: $2"
}
now_ns() { date +%s%N; }

# wait_for MS CMD...: run CMD every 10 ms until it succeeds or MS pass.
wait_for() {
    local deadline=$(($(now_ns) + $1 * 1000000))
    shift
    until "$@"; do
        [ "$(now_ns)" -ge "$deadline" ] && return 1
        sleep 0.01
    done
}

# check NAME EXPECTED_RC CMD...: run CMD (stdout+stderr to $TMP/out), check rc.
check_rc() {
    local name=$1 want=$2
    shift 2
    "$@" >"$TMP/out" 2>&1
    local rc=$?
    if [ "$rc" -eq "$want" ]; then
        ok "$name"
    else
        not_ok "$name" "exit $rc, want $want; output: $(head -c 400 "$TMP/out")"
    fi
}

# out_has NAME TEXT: the last check's output contains TEXT.
out_has() {
    if grep -qF -- "$2" "$TMP/out"; then
        ok "$1"
    else
        not_ok "$1" "output lacks '$2': $(head -c 400 "$TMP/out")"
    fi
}

# A process is gone when it is not there or a zombie nobody reaped yet.
is_dead() {
    [ ! -e "/proc/$1" ] || grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null
}

# wait_exit PID MS: reap our child PID and set $rc to its exit status; if it
# has not exited after MS, SIGKILL it and set rc=999, so no test hangs.
wait_exit() {
    if ! wait_for "$2" is_dead "$1"; then
        is_our_child "$1" && kill -9 "$1" 2>/dev/null
        { wait "$1"; } 2>/dev/null
        rc=999
        return
    fi
    wait "$1"
    rc=$?
}

# ---- global usage --------------------------------------------------------------

check_rc "--help exits 0" 0 "$REIGN" --help
out_has "--help documents the default URI" "file:///tmp/reign-\$UID"
out_has "--help documents exit code 75" "75"
check_rc "--version exits 0" 0 "$REIGN" --version
out_has "--version prints the version" "reign "
for cmd in lock status shard; do
    check_rc "$cmd --help exits 0" 0 "$REIGN" "$cmd" --help
    out_has "$cmd --help shows examples" "Examples:"
done
check_rc "no command exits 2" 2 "$REIGN"
check_rc "unknown command exits 2" 2 "$REIGN" frobnicate
out_has "unknown command is named" "frobnicate"
check_rc "unknown option exits 2" 2 "$REIGN" status --bogus r
check_rc "lock without -- exits 2" 2 "$REIGN" lock --uri "$U" r true
check_rc "lock with a bad --ttl exits 2" 2 "$REIGN" lock --ttl 12x r -- true
check_rc "shard with --count and RESOURCEs exits 2" 2 "$REIGN" shard --count 2 r0
check_rc "shard below the pause minimum exits 2" 2 "$REIGN" shard --pause 5 --count 2

# ---- URIs and status -------------------------------------------------------------

check_rc "bad URI scheme fails" 1 "$REIGN" status --uri bogus://nowhere r
out_has "bad URI error names the URI" "bogus://nowhere"
check_rc "bad URI error hides the password" 1 "$REIGN" status --uri 'bogus://u:s3cret@h/' r
if grep -q s3cret "$TMP/out"; then
    not_ok "password is not printed" "$(cat "$TMP/out")"
else
    ok "password is not printed"
fi
check_rc "status of an unheld resource exits 0" 0 "$REIGN" status --uri "$U" free-res
out_has "status of an unheld resource says no master" "free-res no master"
check_rc "status on mem:// exits 0" 0 "$REIGN" status --uri mem://cli-test r
out_has "status on mem:// says no master" "r no master"
check_rc "status of odd bytes exits 0" 0 "$REIGN" status --uri "$U" $'a\nb c\x01'
out_has "status escapes non-printable bytes (text)" 'a\x0ab\x20c\x01 no master'
if command -v python3 >/dev/null; then
    check_rc "status --json is valid JSON" 0 sh -c \
        "'$REIGN' status --json --uri '$U' 'q\"uo\\te' \"\$(printf 'ctl\\001\\377')\" r |
         python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[0][\"resource\"]==\"q\\\"uo\\\\te\", d; assert d[1][\"resource\"]==\"ctl\\x01\\ufffd\", d; assert d[2][\"master\"] is None, d'"
else
    echo "skip - status --json is valid JSON: python3 not installed"
fi
REIGN_URI="$U" check_rc "REIGN_URI is the default URI" 0 "$REIGN" status r

# ---- lock: exit codes and environment -------------------------------------------------

check_rc "lock passes the command's exit status" 3 "$REIGN" lock --uri "$U" r -- sh -c 'exit 3'
check_rc "lock reports 128+N when the command dies of signal N" 137 \
    "$REIGN" lock --uri "$U" r -- sh -c 'kill -9 $$'
check_rc "lock of a missing command exits 127" 127 "$REIGN" lock --uri "$U" r -- /nonexistent/cmd
# shellcheck disable=SC2016 # expanded by the command's shell, not ours
check_rc "lock sets REIGN_* in the environment" 0 "$REIGN" lock --uri "$U" --instance me r -- \
    sh -c 'echo "res=$REIGN_RESOURCE inst=$REIGN_INSTANCE term=$REIGN_TERM"'
out_has "lock sets REIGN_RESOURCE and REIGN_INSTANCE" "res=r inst=me term="
# shellcheck disable=SC2016
check_rc "lock on mem:// runs the command" 0 "$REIGN" lock --uri mem://cli-test r -- \
    sh -c 'test "$REIGN_TERM" -ge 1'
check_rc "lock on noop:// runs the command" 0 "$REIGN" lock --uri noop:// r -- true

# ---- lock: two competing processes -------------------------------------------------------

# The holder runs until $TMP/release exists, then writes when it ended.
rm -f "$TMP"/{release,held1,end1,start2,term1,term2}
"$REIGN" lock --uri "$U" --instance holder --metadata m1 race -- sh -c \
    "echo \$REIGN_TERM > $TMP/term1; touch $TMP/held1;
     while [ ! -e $TMP/release ]; do sleep 0.005; done; date +%s%N > $TMP/end1" \
    >"$TMP/holder.log" 2>&1 &
holder=$!
started_pids+=("$holder")
if wait_for 5000 test -e "$TMP/held1"; then
    ok "the first lock runs its command"
else
    not_ok "the first lock runs its command" "no $TMP/held1 after 5 s"
fi
check_rc "status of a held resource exits 0" 0 "$REIGN" status --uri "$U" race
out_has "status shows the holder's instance, term and metadata" "race master=holder term=$(cat "$TMP/term1" 2>/dev/null) metadata=m1"
t0=$(now_ns)
check_rc "--wait 100 on a held resource exits 75" 75 "$REIGN" lock --uri "$U" --wait 100 race -- true
elapsed_ms=$((($(now_ns) - t0) / 1000000))
if [ "$elapsed_ms" -lt 2000 ]; then
    ok "--wait 100 gives up soon (${elapsed_ms} ms)"
else
    not_ok "--wait 100 gives up soon" "took ${elapsed_ms} ms"
fi
out_has "--wait names the holder" "held by holder"

"$REIGN" lock --uri "$U" --instance waiter race -- sh -c \
    "date +%s%N > $TMP/start2; echo \$REIGN_TERM > $TMP/term2" >"$TMP/waiter.log" 2>&1 &
waiter=$!
started_pids+=("$waiter")
# An observation window: the waiter must not run while the holder holds,
# and it is campaigning by the end of it (if not, the latency below can only
# come out larger: the test errs towards failing).
sleep 0.3
if [ -e "$TMP/start2" ]; then
    not_ok "the second lock waits while the first holds" "it ran its command"
else
    ok "the second lock waits while the first holds"
fi
touch "$TMP/release"
if wait_for 5000 test -s "$TMP/start2" && wait_exit "$holder" 5000 && [ "$rc" -eq 0 ]; then
    exit_latency_ms=$((($(cat "$TMP/start2") - $(cat "$TMP/end1")) / 1000000))
    if [ "$exit_latency_ms" -le "$MAX_LATENCY_MS" ]; then
        ok "the waiter starts within $MAX_LATENCY_MS ms of the holder's exit (${exit_latency_ms} ms)"
    else
        not_ok "the waiter starts within $MAX_LATENCY_MS ms of the holder's exit" "${exit_latency_ms} ms"
    fi
else
    not_ok "the waiter starts after the holder exits" "no start within 5 s; $(cat "$TMP/waiter.log")"
fi
wait_exit "$waiter" 5000
if [ -s "$TMP/term1" ] && [ -s "$TMP/term2" ] && [ "$(cat "$TMP/term2")" -gt "$(cat "$TMP/term1")" ]; then
    ok "REIGN_TERM increases across holders ($(cat "$TMP/term1") < $(cat "$TMP/term2"))"
else
    not_ok "REIGN_TERM increases across holders" "term1=$(cat "$TMP/term1" 2>/dev/null) term2=$(cat "$TMP/term2" 2>/dev/null)"
fi

# ---- lock: the holder's reign process is SIGKILLed ------------------------------------------

rm -f "$TMP"/{held3,child3,start4,term3,term4}
"$REIGN" lock --uri "$U" --ttl 2000 crash -- sh -c \
    "echo \$\$ > $TMP/child3; echo \$REIGN_TERM > $TMP/term3; touch $TMP/held3; exec sleep 60" \
    >"$TMP/crash-holder.log" 2>&1 &
holder=$!
started_pids+=("$holder")
wait_for 5000 test -e "$TMP/held3" || not_ok "the crash holder runs" "no $TMP/held3 after 5 s"
"$REIGN" lock --uri "$U" --ttl 2000 crash -- sh -c \
    "date +%s%N > $TMP/start4; echo \$REIGN_TERM > $TMP/term4" >"$TMP/crash-waiter.log" 2>&1 &
waiter=$!
started_pids+=("$waiter")
sleep 0.3
t_kill=$(now_ns)
kill -9 "$holder"
{ wait "$holder"; } 2>/dev/null  # reap it quietly ("Killed" is expected)
if wait_for 5000 test -s "$TMP/start4"; then
    kill_latency_ms=$((($(cat "$TMP/start4") - t_kill) / 1000000))
    if [ "$kill_latency_ms" -le "$MAX_LATENCY_MS" ]; then
        ok "the waiter starts within $MAX_LATENCY_MS ms of a SIGKILL of the holder (${kill_latency_ms} ms)"
    else
        not_ok "the waiter starts within $MAX_LATENCY_MS ms of a SIGKILL of the holder" "${kill_latency_ms} ms"
    fi
else
    not_ok "the waiter starts after the holder is killed" "no start within 5 s; $(cat "$TMP/crash-waiter.log")"
fi
wait_exit "$waiter" 5000
child3=$(cat "$TMP/child3" 2>/dev/null)
if [ -n "$child3" ] && wait_for 2000 is_dead "$child3"; then
    ok "the command dies with its reign process"
else
    not_ok "the command dies with its reign process" "pid $child3 still alive"
    [ -n "$child3" ] && kill -9 "$child3" 2>/dev/null
fi
if [ "$(cat "$TMP/term4" 2>/dev/null)" -gt "$(cat "$TMP/term3" 2>/dev/null)" ] 2>/dev/null; then
    ok "REIGN_TERM increases after a crash ($(cat "$TMP/term3") < $(cat "$TMP/term4"))"
else
    not_ok "REIGN_TERM increases after a crash" "term3=$(cat "$TMP/term3" 2>/dev/null) term4=$(cat "$TMP/term4" 2>/dev/null)"
fi

# ---- lock: signals and loss of mastership ------------------------------------------------

rm -f "$TMP"/{held5,got5}
"$REIGN" lock --uri "$U" sig -- sh -c \
    "trap 'touch $TMP/got5; exit 9' TERM; touch $TMP/held5; while :; do sleep 0.01; done" \
    >"$TMP/sig.log" 2>&1 &
p=$!
started_pids+=("$p")
wait_for 5000 test -e "$TMP/held5"
kill -TERM "$p"
wait_exit "$p" 10000
if [ "$rc" -eq 143 ] && [ -e "$TMP/got5" ]; then
    ok "SIGTERM to reign reaches the command; reign exits 143"
else
    not_ok "SIGTERM to reign reaches the command; reign exits 143" "exit $rc, command got TERM: $([ -e "$TMP/got5" ] && echo yes || echo no)"
fi
check_rc "status after SIGTERM exits 0" 0 "$REIGN" status --uri "$U" sig
out_has "the resource is free after SIGTERM" "sig no master"

# A stopped reign outlives its local deadline: when it runs again it must stop
# the command (exit 76), whether or not the backend still has its lease.
rm -f "$TMP"/{held6,got6}
"$REIGN" lock --uri "$U" --ttl 500 --grace 1000 lost -- sh -c \
    "trap 'touch $TMP/got6; exit 9' TERM; touch $TMP/held6; while :; do sleep 0.01; done" \
    >"$TMP/lost.log" 2>&1 &
p=$!
started_pids+=("$p")
wait_for 5000 test -e "$TMP/held6"
kill -STOP "$p"
sleep 1
kill -CONT "$p"
wait_exit "$p" 10000
if [ "$rc" -eq 76 ] && [ -e "$TMP/got6" ]; then
    ok "loss of mastership stops the command; reign exits 76"
else
    not_ok "loss of mastership stops the command; reign exits 76" "exit $rc; $(cat "$TMP/lost.log")"
fi

# ---- shard -------------------------------------------------------------------------------------

"$REIGN" shard --uri "$U" --instance s1 --ttl 2000 --count 3 >"$TMP/shard.log" 2>"$TMP/shard.err" &
p=$!
started_pids+=("$p")
if wait_for 5000 grep -q "held=3 \[r0 r1 r2\]" "$TMP/shard.log"; then
    ok "shard gains every resource and prints the held list"
else
    not_ok "shard gains every resource and prints the held list" "$(cat "$TMP/shard.log" "$TMP/shard.err")"
fi
check_rc "status of the shard's resources exits 0" 0 "$REIGN" status --uri "$U" r0 r1 r2
out_has "status shows the shard's instance" "r2 master=s1 term="
kill -TERM "$p"
wait_exit "$p" 10000
if [ "$rc" -eq 0 ] && grep -q " lost r" "$TMP/shard.log"; then
    ok "shard stops on SIGTERM, resigns and exits 0"
else
    not_ok "shard stops on SIGTERM, resigns and exits 0" "exit $rc; $(tail -3 "$TMP/shard.log")"
fi
check_rc "status after the shard stopped exits 0" 0 "$REIGN" status --uri "$U" r0
out_has "the shard's resources are free after it stopped" "r0 no master"

"$REIGN" shard --uri "$U" --instance s2 --no-balance --count 2 >"$TMP/shard2.log" 2>&1 &
p=$!
started_pids+=("$p")
if wait_for 5000 grep -q "held=2 \[r0 r1\]" "$TMP/shard2.log"; then
    ok "shard --no-balance gains every resource"
else
    not_ok "shard --no-balance gains every resource" "$(cat "$TMP/shard2.log")"
fi
kill -TERM "$p"
wait_exit "$p" 10000
if [ "$rc" -eq 0 ]; then
    ok "shard --no-balance exits 0 on SIGTERM"
else
    not_ok "shard --no-balance exits 0 on SIGTERM" "exit $rc"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
