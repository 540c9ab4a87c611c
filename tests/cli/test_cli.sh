#!/usr/bin/env bash
# Shell tests of the `reign` command against a built binary, on a throw-away
# file:// directory (and mem:// / noop:// where one process is enough).
# Usage: tests/cli/test_cli.sh PATH/TO/reign     Prints "N passed, N failed".
# REIGN_TEST_MAX_LATENCY_MS (default 50) bounds the takeover latencies, for
# slow builds (TSan) or loaded machines.
# With REIGN_TEST_REDIS_URI (and REIGN_TEST_REDIS_DIR, the server's directory
# for scripts/servers/redis.sh ctl) the Redis parts run too: clean
# resignation on signals, /healthz 503 while the server is stopped, and no
# password in any output (on a fresh password-protected server of our own).
# The HTTP parts need curl; JSON checks need python3. A missing one is a
# printed skip, not a pass.
set -u

if [ $# -ne 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 PATH/TO/reign (an executable)" >&2
    exit 2
fi
REIGN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
REDIS_SH=$ROOT/scripts/servers/redis.sh
TMP=$(mktemp -d /tmp/reign-cli-test.XXXXXX)
U="file://$TMP/locks"
MAX_LATENCY_MS=${REIGN_TEST_MAX_LATENCY_MS:-50}
passed=0
failed=0
started_pids=()
started_redis=()  # directories of redis-servers this script started

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
    for d in "${started_redis[@]}"; do
        "$REDIS_SH" stop "$d" >/dev/null 2>&1
    done
    # The shared server must outlive this script even if a check failed
    # while it was stopped.
    if [ -n "${redis_stopped_by_us:-}" ]; then
        "$REDIS_SH" ctl "$REIGN_TEST_REDIS_DIR" start >/dev/null 2>&1
    fi
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
skip() {
    echo "skip - $1: $2"
}
now_ns() { date +%s%N; }
have() { command -v "$1" >/dev/null; }

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
for cmd in lock status watch members shard; do
    check_rc "$cmd --help exits 0" 0 "$REIGN" "$cmd" --help
    out_has "$cmd --help shows examples" "Examples:"
done
check_rc "no command exits 2" 2 "$REIGN"
check_rc "unknown command exits 2" 2 "$REIGN" frobnicate
out_has "unknown command is named" "frobnicate"
check_rc "unknown option exits 2" 2 "$REIGN" status --bogus r
check_rc "lock without -- runs the command (as flock)" 0 "$REIGN" lock --uri "$U" r true
check_rc "lock with a bad --ttl exits 2" 2 "$REIGN" lock --ttl 12x r -- true
check_rc "shard with --count and RESOURCEs exits 2" 2 "$REIGN" shard --count 2 r0
check_rc "shard below the pause minimum exits 2" 2 "$REIGN" shard --pause 5 --count 2
check_rc "shard with -- and no CMD exits 2" 2 "$REIGN" shard --count 2 --
check_rc "shard --grace without CMD exits 2" 2 "$REIGN" shard --grace 1s --count 2
out_has "shard --grace without CMD says why" "--grace needs -- CMD"
check_rc "shard --on-exit with a bad value exits 2" 2 "$REIGN" shard --on-exit sometimes --count 2 -- true
out_has "shard --on-exit names the choices" "restart or release"
printf 'a\n# comment\n\n  b  \n_reign/member/1\n' >"$TMP/resources.bad"
check_rc "shard --resources-file with a reserved ID exits 2" 2 "$REIGN" shard --uri "$U" --resources-file "$TMP/resources.bad" -- true
out_has "shard --resources-file names the bad line" "resources.bad:5: reserved"
check_rc "shard --resources-file that is missing exits 2" 2 "$REIGN" shard --uri "$U" --resources-file "$TMP/nope" -- true
check_rc "shard with --count and --resources-file exits 2" 2 "$REIGN" shard --count 2 --resources-file "$TMP/resources.bad"

# ---- URIs and status -------------------------------------------------------------

check_rc "bad URI scheme is a usage error (exit 2)" 2 "$REIGN" status --uri bogus://nowhere r
out_has "bad URI error names the URI" "bogus://nowhere"
check_rc "bad URI error hides the password" 2 "$REIGN" status --uri 'bogus://u:s3cret@h/' r
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

# A stopped reign outlives its local deadline: its guard SIGKILLs the command
# at the deadline (no TERM trap can run: the lease may be another's), and
# when reign runs again it reports the loss (exit 76).
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
if [ "$rc" -eq 76 ] && [ ! -e "$TMP/got6" ] && grep -q "killed at the lease deadline" "$TMP/lost.log"; then
    ok "the guard kills the command at the deadline of a stopped reign; reign exits 76"
else
    not_ok "the guard kills the command at the deadline of a stopped reign; reign exits 76" \
        "exit $rc, TERM trap ran: $([ -e "$TMP/got6" ] && echo yes || echo no); $(cat "$TMP/lost.log")"
fi

# ---- shard -------------------------------------------------------------------------------------

"$REIGN" shard --uri "$U" --instance s1 --metadata "weight=2 zone=a" --ttl 2000 --count 3 \
    >"$TMP/shard.log" 2>"$TMP/shard.err" &
p=$!
started_pids+=("$p")
if wait_for 5000 grep -qs "held=3 fair=3/1members \[r0 r1 r2\]" "$TMP/shard.log"; then
    ok "shard gains every resource and prints the held list"
else
    not_ok "shard gains every resource and prints the held list" "$(cat "$TMP/shard.log" "$TMP/shard.err")"
fi
check_rc "status of the shard's resources exits 0" 0 "$REIGN" status --uri "$U" r0 r1 r2
out_has "status shows the shard's instance" "r2 master=s1 term="
check_rc "members exits 0" 0 "$REIGN" members --uri "$U"
out_has "members lists the shard with its weight and metadata" 's1 weight=2 metadata=weight=2\x20zone=a'
if have python3; then
    check_rc "members --json is valid JSON with instance, weight, metadata" 0 sh -c \
        "'$REIGN' members --json --uri '$U' | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d==[{\"instance\":\"s1\",\"weight\":2,\"metadata\":\"weight=2 zone=a\"}], d'"
else
    skip "members --json is valid JSON" "python3 not installed"
fi
kill -TERM "$p"
wait_exit "$p" 10000
if [ "$rc" -eq 143 ] && grep -q " lost r" "$TMP/shard.log"; then
    ok "shard stops on SIGTERM, resigns and dies of it (143)"
else
    not_ok "shard stops on SIGTERM, resigns and dies of it (143)" "exit $rc; $(tail -3 "$TMP/shard.log")"
fi
check_rc "status after the shard stopped exits 0" 0 "$REIGN" status --uri "$U" r0
out_has "the shard's resources are free after it stopped" "r0 no master"

"$REIGN" shard --uri "$U" --instance s2 --no-balance --count 2 >"$TMP/shard2.log" 2>&1 &
p=$!
started_pids+=("$p")
if wait_for 5000 grep -qs "held=2 fair=2/1members \[r0 r1\]" "$TMP/shard2.log"; then
    ok "shard --no-balance gains every resource"
else
    not_ok "shard --no-balance gains every resource" "$(cat "$TMP/shard2.log")"
fi
kill -TERM "$p"
wait_exit "$p" 10000
if [ "$rc" -eq 143 ]; then
    ok "shard --no-balance dies of SIGTERM (143)"
else
    not_ok "shard --no-balance dies of SIGTERM (143)" "exit $rc"
fi

check_rc "shard --slots 0 exits 2" 2 "$REIGN" shard --slots 0 --count 2
check_rc "shard --slots above 4096 exits 2" 2 "$REIGN" shard --slots 4097 --count 2
# One slot, two instances: the second stands by (says so once), holds
# nothing, and takes the slot and the work when the first stops.
"$REIGN" shard --uri "file://$TMP/slots1" --instance sa --slots 1 --count 2 >"$TMP/sa.log" 2>&1 &
pa=$!
started_pids+=("$pa")
wait_for 5000 grep -qs "held=2" "$TMP/sa.log"
"$REIGN" shard --uri "file://$TMP/slots1" --instance sb --slots 1 --count 2 >"$TMP/sb.log" 2>&1 &
pb=$!
started_pids+=("$pb")
if wait_for 5000 grep -qs "member slots are taken: this instance stands by" "$TMP/sb.log" &&
   sleep 1 && ! grep -q " gained " "$TMP/sb.log" &&
   [ "$(grep -c "stands by" "$TMP/sb.log")" -eq 1 ]; then
    ok "shard --slots 1: a second instance stands by, says so once, gains nothing"
else
    not_ok "shard --slots 1: a second instance stands by, says so once, gains nothing" "$(tail -5 "$TMP/sb.log")"
fi
kill -TERM "$pa"
wait_exit "$pa" 10000
if wait_for 15000 grep -qs "held=2" "$TMP/sb.log"; then
    ok "shard --slots 1: the standby takes the freed slot and every resource"
else
    not_ok "shard --slots 1: the standby takes the freed slot and every resource" "$(tail -5 "$TMP/sb.log")"
fi
kill -TERM "$pb"
wait_exit "$pb" 10000

# ---- members and watch: usage, empty backend ------------------------------------------------

check_rc "members with an argument exits 2" 2 "$REIGN" members --uri "$U" extra
check_rc "members of a backend without members exits 0" 0 "$REIGN" members --uri "file://$TMP/nobody"
if [ -s "$TMP/out" ]; then
    not_ok "members prints nothing when there is no member" "$(head -c 400 "$TMP/out")"
else
    ok "members prints nothing when there is no member"
fi
check_rc "members --json without members exits 0" 0 "$REIGN" members --json --uri "file://$TMP/nobody"
out_has "members --json without members prints []" "[]"
check_rc "members of a bad URI exits 2" 2 "$REIGN" members --uri bogus://nowhere
check_rc "watch without RESOURCE exits 2" 2 "$REIGN" watch --uri "$U"
check_rc "watch below the --interval minimum exits 2" 2 "$REIGN" watch --interval 5 r
check_rc "watch with a bad --interval exits 2" 2 "$REIGN" watch --interval 1x r
check_rc "watch of a bad URI exits 2" 2 "$REIGN" watch --uri bogus://nowhere r
out_has "watch of a bad URI names it" "bogus://nowhere"

# Odd bytes in a member's instance ID and metadata come out escaped.
odd_instance=$'m"e\\\x01\xff'
"$REIGN" shard --uri "file://$TMP/odd" --instance "$odd_instance" --metadata $'tab\there' \
    --count 1 >"$TMP/odd.log" 2>&1 &
p=$!
started_pids+=("$p")
if wait_for 5000 sh -c "'$REIGN' members --uri 'file://$TMP/odd' | grep -q weight="; then
    check_rc "members of odd bytes exits 0" 0 "$REIGN" members --uri "file://$TMP/odd"
    out_has "members escapes non-printable bytes (text)" 'm"e\x5c\x01\xff weight=1 metadata=tab\x09here'
    if have python3; then
        check_rc "members --json escapes odd bytes" 0 sh -c \
            "'$REIGN' members --json --uri 'file://$TMP/odd' | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d==[{\"instance\":\"m\\\"e\\\\\\x01\\ufffd\",\"weight\":1,\"metadata\":\"tab\\there\"}], d'"
    else
        skip "members --json escapes odd bytes" "python3 not installed"
    fi
else
    not_ok "a shard with an odd instance ID shows up in members" "$(cat "$TMP/odd.log")"
fi
kill -TERM "$p"
wait_exit "$p" 10000

# ---- watch ------------------------------------------------------------------------------------

# Pushed: with a read interval of an hour, only the backend's notifications
# (inotify on file://) can bring the change within the few seconds waited.
rm -f "$TMP"/wpush.*
"$REIGN" watch --uri "$U" --interval 1h wpush >"$TMP/wpush.log" 2>"$TMP/wpush.err" &
pp=$!
started_pids+=("$pp")
if wait_for 5000 grep -qs " wpush none" "$TMP/wpush.log"; then
    "$REIGN" lock --uri "$U" --instance wp1 wpush -- sleep 0.2
    if wait_for 3000 sh -c "grep -q ' wpush master=wp1 ' '$TMP/wpush.log' && tail -1 '$TMP/wpush.log' | grep -q ' wpush none'"; then
        ok "watch is pushed: holder and release seen with --interval 1h"
    else
        not_ok "watch is pushed: holder and release seen with --interval 1h" "$(cat "$TMP/wpush.log" "$TMP/wpush.err")"
    fi
else
    not_ok "watch is pushed: initial state" "$(cat "$TMP/wpush.log" "$TMP/wpush.err")"
fi
kill -TERM "$pp"
wait_exit "$pp" 5000

rm -f "$TMP"/watch.*
"$REIGN" watch --uri "$U" --interval 20 wa wb >"$TMP/watch.log" 2>"$TMP/watch.err" &
pw=$!
started_pids+=("$pw")
"$REIGN" watch --json --uri "$U" --interval 20 wa wb >"$TMP/watch.json" 2>"$TMP/watch.json.err" &
pj=$!
started_pids+=("$pj")
if wait_for 5000 grep -qs " wb none" "$TMP/watch.log" && wait_for 5000 grep -qs '"resource":"wb"' "$TMP/watch.json"; then
    ok "watch prints the initial state of every resource"
else
    not_ok "watch prints the initial state of every resource" "$(cat "$TMP/watch.log" "$TMP/watch.err")"
fi
"$REIGN" lock --uri "$U" --instance 'w"1' --metadata 'm 1' wa -- sh -c "echo \$REIGN_TERM > $TMP/watch.t1; sleep 0.3"
"$REIGN" lock --uri "$U" --instance w2 wa -- sh -c "echo \$REIGN_TERM > $TMP/watch.t2; sleep 0.3"
# Both end with "wa none" once the second holder has resigned.
watch_settled() {
    [ "$(grep ' wa ' "$TMP/watch.log" | tail -1 | awk '{print $3}')" = none ] &&
        grep -q 'master=w2' "$TMP/watch.log" &&
        tail -1 "$TMP/watch.json" | grep -q '"resource":"wa","master":null' &&
        grep -q '"master":"w2"' "$TMP/watch.json"
}
if wait_for 5000 watch_settled; then
    ok "watch sees both holders come and go"
else
    not_ok "watch sees both holders come and go" "$(cat "$TMP/watch.log" "$TMP/watch.json")"
fi
kill -INT "$pw"
wait_exit "$pw" 5000
if [ "$rc" -eq 130 ]; then ok "watch dies of SIGINT (130)"; else not_ok "watch dies of SIGINT (130)" "exit $rc"; fi
kill -TERM "$pj"
wait_exit "$pj" 5000
if [ "$rc" -eq 143 ]; then ok "watch --json dies of SIGTERM (143)"; else not_ok "watch --json dies of SIGTERM (143)" "exit $rc"; fi
cp "$TMP/watch.log" "$TMP/out"
out_has "watch shows the first holder escaped, with term and metadata" \
    "wa master=w\"1 term=$(cat "$TMP/watch.t1" 2>/dev/null) metadata=m\\x201"
out_has "watch shows the second holder with its term" "wa master=w2 term=$(cat "$TMP/watch.t2" 2>/dev/null) metadata="
if [ "$(grep -c ' wb ' "$TMP/watch.log")" -eq 1 ]; then
    ok "watch prints nothing for a resource that did not change"
else
    not_ok "watch prints nothing for a resource that did not change" "$(grep ' wb ' "$TMP/watch.log")"
fi
if grep -qvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z w[ab] (none|master=[^ ]+ term=[0-9]+ metadata=[^ ]*)$' "$TMP/watch.log"; then
    not_ok "every watch line is TIME RESOURCE none|master= term= metadata=" "$(cat "$TMP/watch.log")"
else
    ok "every watch line is TIME RESOURCE none|master= term= metadata="
fi
if have python3; then
    check_rc "watch --json prints valid JSON lines: changes only, terms rising" 0 python3 -c '
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
wa = [l for l in lines if l["resource"] == "wa"]
assert all(set(l) >= {"time", "resource", "master"} for l in lines), lines
assert wa[0]["master"] is None and wa[-1]["master"] is None, wa
held = [l for l in wa if l["master"] is not None]
assert [l["master"] for l in held] == ["w\"1", "w2"], wa
assert held[0]["metadata"] == "m 1" and held[0]["term"] < held[1]["term"], held
assert all(a["master"] != b["master"] for a, b in zip(wa, wa[1:])), wa
assert len([l for l in lines if l["resource"] == "wb"]) == 1, lines
' "$TMP/watch.json"
else
    skip "watch --json prints valid JSON lines" "python3 not installed"
fi

# ---- lock: --exit-on-lost, --restart-on-lost, signals -----------------------------------------

check_rc "lock with --exit-on-lost and --restart-on-lost exits 2" 2 \
    "$REIGN" lock --exit-on-lost --restart-on-lost r -- true
check_rc "lock --exit-on-lost runs the command" 0 "$REIGN" lock --uri "$U" --exit-on-lost r -- true

rm -f "$TMP"/{held7,got7}
"$REIGN" lock --uri "$U" --ttl 500 --grace 1000 --exit-on-lost lost7 -- sh -c \
    "trap 'touch $TMP/got7; exit 9' TERM; touch $TMP/held7; while :; do sleep 0.01; done" \
    >"$TMP/lost7.log" 2>&1 &
p=$!
started_pids+=("$p")
wait_for 5000 test -e "$TMP/held7"
kill -STOP "$p"
sleep 1
kill -CONT "$p"
wait_exit "$p" 10000
if [ "$rc" -eq 76 ] && [ ! -e "$TMP/got7" ]; then
    ok "--exit-on-lost: loss stops the command; reign exits 76"
else
    not_ok "--exit-on-lost: loss stops the command; reign exits 76" "exit $rc; $(cat "$TMP/lost7.log")"
fi

# The first run loops until stopped; the rerun exits 7 by itself.
rm -f "$TMP"/{runs8,held8}
"$REIGN" lock --uri "$U" --ttl 500 --grace 1000 --restart-on-lost again -- sh -c \
    "echo \$REIGN_TERM >> $TMP/runs8; touch $TMP/held8
     [ \$(wc -l < $TMP/runs8) -ge 2 ] && exit 7; while :; do sleep 0.01; done" \
    >"$TMP/again.log" 2>&1 &
p=$!
started_pids+=("$p")
wait_for 5000 test -e "$TMP/held8"
kill -STOP "$p"
sleep 1
kill -CONT "$p"
wait_exit "$p" 10000
if [ "$rc" -eq 7 ] && [ "$(wc -l <"$TMP/runs8")" -eq 2 ] &&
    [ "$(sed -n 2p "$TMP/runs8")" -gt "$(sed -n 1p "$TMP/runs8")" ]; then
    ok "--restart-on-lost reruns the command with a higher term; exits with its status"
else
    not_ok "--restart-on-lost reruns the command with a higher term; exits with its status" \
        "exit $rc; terms $(tr '\n' ' ' <"$TMP/runs8"); $(cat "$TMP/again.log")"
fi
cp "$TMP/again.log" "$TMP/out"
out_has "--restart-on-lost says it restarts" "restarting the command"

rm -f "$TMP"/{held9,got9}
"$REIGN" lock --uri "$U" --restart-on-lost sig9 -- sh -c \
    "trap 'touch $TMP/got9; exit 9' TERM; touch $TMP/held9; while :; do sleep 0.01; done" \
    >"$TMP/sig9.log" 2>&1 &
p=$!
started_pids+=("$p")
wait_for 5000 test -e "$TMP/held9"
kill -INT "$p"
wait_exit "$p" 10000
if [ "$rc" -eq 130 ] && [ -e "$TMP/got9" ]; then
    ok "--restart-on-lost: SIGINT stops the command, no rerun; reign exits 130"
else
    not_ok "--restart-on-lost: SIGINT stops the command, no rerun; reign exits 130" "exit $rc; $(cat "$TMP/sig9.log")"
fi

# SIGTERM while still waiting for mastership: exit at once, nothing ran.
rm -f "$TMP"/{release10,held10,ran11}
"$REIGN" lock --uri "$U" busy10 -- sh -c \
    "touch $TMP/held10; while [ ! -e $TMP/release10 ]; do sleep 0.01; done" >"$TMP/busy10.log" 2>&1 &
holder=$!
started_pids+=("$holder")
wait_for 5000 test -e "$TMP/held10"
"$REIGN" lock --uri "$U" busy10 -- touch "$TMP/ran11" >"$TMP/wait11.log" 2>&1 &
p=$!
started_pids+=("$p")
sleep 0.3
kill -TERM "$p"
wait_exit "$p" 5000
if [ "$rc" -eq 143 ] && [ ! -e "$TMP/ran11" ]; then
    ok "SIGTERM while waiting for mastership exits 143 without running the command"
else
    not_ok "SIGTERM while waiting for mastership exits 143 without running the command" "exit $rc; $(cat "$TMP/wait11.log")"
fi
touch "$TMP/release10"
wait_exit "$holder" 5000

# ---- logging -------------------------------------------------------------------------------------

REIGN_LOG=debug check_rc "status at REIGN_LOG=debug exits 0" 0 "$REIGN" status --uri "$U" r
if grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z info factory opened ' "$TMP/out"; then
    ok "REIGN_LOG=debug logs 'time level component message' on stderr"
else
    not_ok "REIGN_LOG=debug logs 'time level component message' on stderr" "$(head -c 400 "$TMP/out")"
fi
check_rc "status at the default log level exits 0" 0 "$REIGN" status --uri "$U" r
if grep -q " info factory " "$TMP/out"; then
    not_ok "the default log level hides info lines" "$(head -c 400 "$TMP/out")"
else
    ok "the default log level hides info lines"
fi

# ---- shard --listen: /metrics, /healthz, /status ------------------------------------------------

check_rc "shard --listen without a port exits 2" 2 "$REIGN" shard --count 1 --listen 127.0.0.1
check_rc "shard --listen with a port above 65535 exits 2" 2 "$REIGN" shard --count 1 --listen 127.0.0.1:70000
check_rc "shard --listen without an address exits 2" 2 "$REIGN" shard --count 1 --listen :9100

# The port reign bound ("--listen 127.0.0.1:0": any free one, so no race
# for a port with other programs), from its stderr line.
listen_port() {
    sed -n 's|.*serving /metrics.* on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$1" | head -1
}
# scrape PATH: GET http://127.0.0.1:$port/PATH into $TMP/body, headers in
# $TMP/headers; prints the HTTP status.
scrape() {
    curl -s --max-time 5 -D "$TMP/headers" -o "$TMP/body" -w '%{http_code}' "http://127.0.0.1:$port$1"
}
metric() { # metric NAME: its value in $TMP/body (the first series)
    awk -v n="$1" '$1 ~ "^"n"({|$)" {print $2; exit}' "$TMP/body"
}
masterships_are() { [ "$(scrape /metrics)" = 200 ] && [ "$(metric reign_masterships)" = "$1" ]; }
healthz_is() { [ "$(scrape /healthz)" = "$1" ]; }

if have curl; then
    UL="file://$TMP/listen"
    # la holds r0..r2; lb, listening, gets them when la stops: 0 -> 3.
    "$REIGN" shard --uri "$UL" --instance la --no-balance --count 3 >"$TMP/la.log" 2>&1 &
    pa=$!
    started_pids+=("$pa")
    wait_for 5000 grep -qs "held=3 " "$TMP/la.log" || not_ok "the first shard takes r0..r2" "$(cat "$TMP/la.log")"
    "$REIGN" shard --uri "$UL" --instance lb --no-balance --count 3 --listen 127.0.0.1:0 \
        >"$TMP/lb.log" 2>"$TMP/lb.err" &
    pb=$!
    started_pids+=("$pb")
    port=
    wait_for 5000 sh -c "grep -q 'serving /metrics' '$TMP/lb.err'" && port=$(listen_port "$TMP/lb.err")
    if [ -n "$port" ]; then
        ok "shard --listen 127.0.0.1:0 prints the port it serves on ($port)"
        if wait_for 5000 masterships_are 0; then
            ok "/metrics says reign_masterships 0 while another instance holds everything"
        else
            not_ok "/metrics says reign_masterships 0 while another instance holds everything" "$(head -c 400 "$TMP/body")"
        fi
        if grep -qi '^content-type: text/plain; version=0.0.4' "$TMP/headers"; then
            ok "/metrics is text/plain; version=0.0.4"
        else
            not_ok "/metrics is text/plain; version=0.0.4" "$(cat "$TMP/headers")"
        fi
        if [ "$(scrape /healthz)" = 200 ] && grep -qx ok "$TMP/body"; then
            ok "/healthz is 200 ok"
        else
            not_ok "/healthz is 200 ok" "$(cat "$TMP/headers" "$TMP/body")"
        fi
        kill -TERM "$pa"
        wait_exit "$pa" 10000
        if wait_for 10000 masterships_are 3; then
            ok "reign_masterships moves from 0 to 3 when the holder resigns"
        else
            not_ok "reign_masterships moves from 0 to 3 when the holder resigns" "$(grep '^reign_masterships' "$TMP/body")"
        fi
        if grep -q '^reign_term{resource="r2"} [1-9]' "$TMP/body"; then
            ok "/metrics has the term of each held resource"
        else
            not_ok "/metrics has the term of each held resource" "$(grep '^reign_term' "$TMP/body")"
        fi
        if [ "$(scrape /status)" = 200 ] && have python3; then
            check_rc "/status is JSON: instance, redacted URI, held resources with terms, balance" 0 python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["instance"] == "lb", d
assert d["uri"].startswith("file://"), d
assert [h["resource"] for h in d["held"]] == ["r0", "r1", "r2"], d
assert all(h["term"] >= 1 for h in d["held"]), d
assert d["balance"]["held"] == 3 and d["balance"]["fair_share"] == 3, d
assert d["healthy"] is True, d
' "$TMP/body"
        else
            skip "/status is JSON" "python3 not installed or /status failed: $(head -c 200 "$TMP/body")"
        fi
        if grep -qi '^content-type: application/json' "$TMP/headers"; then
            ok "/status is application/json"
        else
            not_ok "/status is application/json" "$(cat "$TMP/headers")"
        fi
        if [ "$(scrape /nowhere)" = 404 ]; then
            ok "an unknown path is 404"
        else
            not_ok "an unknown path is 404" "$(cat "$TMP/headers")"
        fi
        code=$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/metrics")
        if [ "$code" = 405 ]; then
            ok "POST is 405"
        else
            not_ok "POST is 405" "got $code"
        fi
        check_rc "a second shard on the same port exits 1" 1 \
            "$REIGN" shard --uri "$UL" --count 1 --listen "127.0.0.1:$port"
        out_has "the bind error names the address" "cannot listen on 127.0.0.1:$port"
        if grep -q "gained r0 term=[0-9]* held=[0-9] fair=3/1members" "$TMP/lb.log"; then
            ok "shard lines show the fair share and the members"
        else
            not_ok "shard lines show the fair share and the members" "$(cat "$TMP/lb.log")"
        fi
    else
        not_ok "shard --listen 127.0.0.1:0 prints the port it serves on" "$(cat "$TMP/lb.err")"
    fi
    kill -TERM "$pb"
    wait_exit "$pb" 10000
    if [ "$rc" -eq 143 ]; then ok "shard --listen dies of SIGTERM (143)"; else not_ok "shard --listen dies of SIGTERM (143)" "exit $rc"; fi
else
    skip "shard --listen" "curl not installed"
fi

# ---- Redis: clean resignation on signals, /healthz 503, no password in output ---------------

RURI=${REIGN_TEST_REDIS_URI:-}
redis_stopped_by_us=
if [ -n "$RURI" ]; then
    # SIGINT/SIGTERM resign: with a 30 s TTL only a release frees the
    # resource at once (a dead holder's lease would live on).
    for sig in INT TERM; do
        res="cli-$$-resign-$sig"
        rm -f "$TMP/held-$sig"
        "$REIGN" lock --uri "$RURI" --ttl 30000 "$res" -- sh -c \
            "touch $TMP/held-$sig; while :; do sleep 0.01; done" >"$TMP/resign-$sig.log" 2>&1 &
        p=$!
        started_pids+=("$p")
        wait_for 5000 test -e "$TMP/held-$sig"
        kill "-$sig" "$p"
        wait_exit "$p" 10000
        want=$((128 + $(kill -l "$sig")))
        if [ "$rc" -eq "$want" ]; then
            ok "lock on redis exits $want on SIG$sig"
        else
            not_ok "lock on redis exits $want on SIG$sig" "exit $rc; $(cat "$TMP/resign-$sig.log")"
        fi
        check_rc "status after SIG$sig exits 0" 0 "$REIGN" status --uri "$RURI" "$res"
        out_has "SIG$sig resigns: the resource is free at once (ttl 30 s)" "$res no master"
    done
else
    skip "lock resigns on SIGINT/SIGTERM (redis)" "REIGN_TEST_REDIS_URI is not set"
fi

if [ -n "$RURI" ] && [ -n "${REIGN_TEST_REDIS_DIR:-}" ] && have curl; then
    h0="cli-$$-h0" h1="cli-$$-h1"
    "$REIGN" shard --uri "$RURI" --ttl 1000 --no-balance --listen 127.0.0.1:0 "$h0" "$h1" \
        >"$TMP/h.log" 2>"$TMP/h.err" &
    ph=$!
    started_pids+=("$ph")
    "$REIGN" watch --uri "$RURI" --interval 50 "$h0" "$h1" >"$TMP/hw.log" 2>"$TMP/hw.err" &
    pw=$!
    started_pids+=("$pw")
    port=
    wait_for 5000 sh -c "grep -q 'serving /metrics' '$TMP/h.err'" && port=$(listen_port "$TMP/h.err")
    if [ -n "$port" ] && wait_for 10000 masterships_are 2 && wait_for 5000 healthz_is 200; then
        ok "redis: /healthz is 200 while holding"
        redis_stopped_by_us=1
        "$REDIS_SH" ctl "$REIGN_TEST_REDIS_DIR" stop
        if wait_for 10000 healthz_is 503 && grep -q '^unhealthy: ' "$TMP/body"; then
            ok "redis: /healthz is 503 with the reason while the server is stopped ($(head -1 "$TMP/body"))"
        else
            not_ok "redis: /healthz is 503 with the reason while the server is stopped" "$(cat "$TMP/headers" "$TMP/body")"
        fi
        if wait_for 5000 grep -q "cannot read the masters" "$TMP/hw.err"; then
            ok "watch reports that the backend cannot be read"
        else
            not_ok "watch reports that the backend cannot be read" "$(cat "$TMP/hw.err")"
        fi
        "$REDIS_SH" ctl "$REIGN_TEST_REDIS_DIR" start
        redis_stopped_by_us=
        if wait_for 15000 healthz_is 200; then
            ok "redis: /healthz is 200 again once the server is back"
        else
            not_ok "redis: /healthz is 200 again once the server is back" "$(cat "$TMP/headers" "$TMP/body")"
        fi
        if wait_for 5000 grep -q "answers again" "$TMP/hw.err"; then
            ok "watch says when the backend answers again"
        else
            not_ok "watch says when the backend answers again" "$(cat "$TMP/hw.err")"
        fi
    else
        not_ok "redis: a listening shard holds its resources and is healthy" "port=$port; $(cat "$TMP/h.err" "$TMP/h.log")"
    fi
    kill -TERM "$ph" "$pw"
    wait_exit "$ph" 10000
    if [ "$rc" -eq 143 ]; then
        ok "redis: shard --listen dies of SIGTERM (143)"
    else
        not_ok "redis: shard --listen dies of SIGTERM (143)" "exit $rc"
    fi
    wait_exit "$pw" 10000
    if [ "$rc" -eq 143 ]; then
        ok "redis: watch dies of SIGTERM (143)"
    else
        not_ok "redis: watch dies of SIGTERM (143)" "exit $rc"
    fi
else
    skip "/healthz 503 while redis is stopped" "needs REIGN_TEST_REDIS_URI, REIGN_TEST_REDIS_DIR and curl"
fi

# Every command at REIGN_LOG=debug, on a fresh password-protected server of
# ours: right password (success paths, and backend errors while it is
# stopped) and a wrong one (error paths); and the shared server, which has
# no password, given one (AUTH refused) or given a user and password (taken).
# No password may appear in any output.
# bg_run NAME WANT_RC CMD...: start CMD in the background with its output
# appended to $TMP/pw.log; once it printed something or exited, SIGTERM it
# and check its exit status (WANT_RC 0: it must die of that SIGTERM, 143).
bg_run() {
    local name=$1 want=$2
    shift 2
    "$@" >"$TMP/bg.out" 2>&1 &
    local pid=$!
    started_pids+=("$pid")
    # Ready: watch printed its first line, shard serves; or it exited.
    wait_for 10000 sh -c "grep -q ' none\$\\|serving /metrics' '$TMP/bg.out' || [ ! -e /proc/$pid ] ||
        grep -qs '^[0-9]* ([^)]*) Z' /proc/$pid/stat" || true
    if [ -e "/proc/$pid" ]; then
        local p2
        p2=$(listen_port "$TMP/bg.out")
        if [ -n "$p2" ]; then
            port=$p2
            for path in /status /metrics /healthz; do scrape "$path" >/dev/null; cat "$TMP/body" >>"$TMP/bg.out"; done
        fi
        kill -TERM "$pid" 2>/dev/null
        # Stopped by us: a command that ran well dies of the signal.
        [ "$want" -eq 0 ] && want=143
    fi
    wait_exit "$pid" 10000
    cat "$TMP/bg.out" >>"$TMP/pw.log"
    if [ "$rc" -eq "$want" ]; then
        ok "$name exits $want"
    else
        not_ok "$name exits $want" "exit $rc; $(head -c 400 "$TMP/bg.out")"
    fi
}
if [ -n "$RURI" ] && [ -x "$REDIS_SH" ] && have redis-server; then
    PW="Cli${RANDOM}S3cretPw"
    BADPW="Bad${RANDOM}Passw0rd"
    pwdir="$TMP/redis-pw"
    started_redis+=("$pwdir")
    if REDIS_PASSWORD=$PW "$REDIS_SH" start "$pwdir" >"$TMP/redis-pw.env" 2>"$TMP/redis-pw.err"; then
        pwport=$(sed -n 's/.*REDIS_PORT=\([0-9]*\).*/\1/p' "$TMP/redis-pw.env")
        shared=${RURI#redis://}
        shared=${shared#*@}
        shared=${shared%%/*}
        : >"$TMP/pw.log"
        good1="redis://:$PW@127.0.0.1:$pwport/0"
        good2="redis://default:$PW@127.0.0.1:$pwport/0"
        bad1="redis://:$BADPW@127.0.0.1:$pwport/0"
        bad2="redis://:$BADPW@$shared/0"
        # A user "default" without a password takes any password: not an
        # error for Redis, but a password in the URI all the same.
        unneeded="redis://default:$BADPW@$shared/0"
        export REIGN_LOG=debug
        for spec in "good1 $good1 0" "good2 $good2 0" "bad1 $bad1 1" "bad2 $bad2 1" "unneeded $unneeded 0"; do
            # shellcheck disable=SC2086 # three words on purpose
            set -- $spec
            label=$1 uri=$2 want=$3
            for args in "status r" "status --json r" "members" "members --json"; do
                # shellcheck disable=SC2086 # split on purpose
                check_rc "password $label: $args" "$want" "$REIGN" $args --uri "$uri"
                cat "$TMP/out" >>"$TMP/pw.log"
            done
            check_rc "password $label: lock --wait 0" "$want" "$REIGN" lock --uri "$uri" --wait 0 "cli-$$-pw" -- true
            cat "$TMP/out" >>"$TMP/pw.log"
            REIGN_URI=$uri check_rc "password $label: status via REIGN_URI" "$want" "$REIGN" status r
            cat "$TMP/out" >>"$TMP/pw.log"
            bg_run "password $label: watch" "$want" "$REIGN" watch --uri "$uri" r
            bg_run "password $label: shard --listen" "$want" \
                "$REIGN" shard --uri "$uri" --ttl 1000 --listen 127.0.0.1:0 --count 2
        done
        # Backend errors while running: the server stops under a shard.
        "$REIGN" shard --uri "$good1" --ttl 1000 --listen 127.0.0.1:0 --count 2 >"$TMP/pws.log" 2>&1 &
        p=$!
        started_pids+=("$p")
        port=
        wait_for 5000 sh -c "grep -q 'serving /metrics' '$TMP/pws.log'" && port=$(listen_port "$TMP/pws.log")
        if [ -n "$port" ] && wait_for 10000 healthz_is 200; then
            "$REDIS_SH" ctl "$pwdir" stop
            if wait_for 10000 healthz_is 503; then
                ok "password: /healthz is 503 while the server is stopped"
            else
                not_ok "password: /healthz is 503 while the server is stopped" "$(cat "$TMP/body")"
            fi
            cat "$TMP/body" >>"$TMP/pw.log"
            scrape /status >/dev/null
            cat "$TMP/body" >>"$TMP/pw.log"
            "$REDIS_SH" ctl "$pwdir" start
            wait_for 15000 healthz_is 200 || not_ok "password: /healthz is 200 again" "$(cat "$TMP/body")"
        else
            not_ok "password: a listening shard becomes healthy" "$(cat "$TMP/pws.log")"
        fi
        kill -TERM "$p"
        wait_exit "$p" 10000
        cat "$TMP/pws.log" >>"$TMP/pw.log"
        unset REIGN_LOG
        if grep -qF -e "$PW" -e "$BADPW" "$TMP/pw.log"; then
            not_ok "no password in any output at REIGN_LOG=debug" "$(grep -F -e "$PW" -e "$BADPW" "$TMP/pw.log" | head -5)"
        else
            ok "no password in any output at REIGN_LOG=debug ($(wc -l <"$TMP/pw.log") lines checked)"
        fi
        if grep -q '\*\*\*@127.0.0.1' "$TMP/pw.log" && grep -q ' debug \| info ' "$TMP/pw.log"; then
            ok "the output checked names the redacted URI and has library log lines"
        else
            not_ok "the output checked names the redacted URI and has library log lines" "$(head -c 400 "$TMP/pw.log")"
        fi
    else
        not_ok "a password-protected redis-server starts" "$(cat "$TMP/redis-pw.err")"
    fi
else
    skip "no password in any output (redis)" "needs REIGN_TEST_REDIS_URI, scripts/servers/redis.sh and redis-server"
fi

# ---- the same commands on every networked backend whose server the suite runs ---------------
# lock, status (text and JSON), members and a brief shard on each URI given:
# a user swaps backends by changing the URI and nothing else.

backend_round() { # backend_round NAME URI
    local name=$1 uri=$2 res pid
    res="cli-$name-$$"
    check_rc "$name: lock runs the command as master" 0 "$REIGN" lock --uri "$uri" --ttl 2000 "$res" -- true
    "$REIGN" lock --uri "$uri" --ttl 2000 "$res" -- sleep 30 >"$TMP/$name-lock.log" 2>&1 &
    pid=$!
    started_pids+=("$pid")
    if wait_for 10000 sh -c "'$REIGN' status --uri '$uri' '$res' 2>/dev/null | grep -qv 'no master'"; then
        ok "$name: status shows the holder of a held resource"
        check_rc "$name: a second lock --wait 0 gives up with 75" 75 \
            "$REIGN" lock --uri "$uri" --ttl 2000 --wait 0 "$res" -- true
        if have python3; then
            check_rc "$name: status --json exits 0" 0 "$REIGN" status --json --uri "$uri" "$res"
            if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d else 1)' "$TMP/out" 2>/dev/null; then
                ok "$name: status --json is JSON"
            else
                not_ok "$name: status --json is JSON" "$(head -c 300 "$TMP/out")"
            fi
        fi
    else
        not_ok "$name: status shows the holder of a held resource" "$(cat "$TMP/$name-lock.log")"
    fi
    is_our_child "$pid" && kill -TERM "$pid" 2>/dev/null
    wait_exit "$pid" 10000
    if [ "$rc" -eq 143 ]; then
        ok "$name: lock resigns and exits on SIGTERM"
    else
        not_ok "$name: lock resigns and exits on SIGTERM" "exit $rc"
    fi
    if wait_for 5000 sh -c "'$REIGN' status --uri '$uri' '$res' 2>/dev/null | grep -q 'no master'"; then
        ok "$name: the resource is free at once after the resignation"
    else
        not_ok "$name: the resource is free at once after the resignation" "$("$REIGN" status --uri "$uri" "$res" 2>&1)"
    fi
    timeout -s TERM 4 "$REIGN" shard --uri "$uri" --ttl 2000 --instance "cli-$name" \
        --count 3 >"$TMP/$name-shard.log" 2>&1
    if grep -q "held=3" "$TMP/$name-shard.log"; then
        ok "$name: a lone shard instance takes all 3 resources"
    else
        not_ok "$name: a lone shard instance takes all 3 resources" "$(tail -5 "$TMP/$name-shard.log")"
    fi
}

net_done=0
for spec in "postgres REIGN_TEST_POSTGRES_URI" "etcd REIGN_TEST_ETCD_URI" "s3 REIGN_TEST_S3_URI"; do
    set -- $spec
    uri=${!2:-}
    if [ -z "$uri" ]; then
        skip "$1: lock, status, shard" "$2 is not set"
    elif ! "$REIGN" --help | grep -q "^Built into this reign:.*\b$1\b"; then
        skip "$1: lock, status, shard" "this reign is built without $1"
    else
        backend_round "$1" "$uri"
        net_done=$((net_done + 1))
    fi
done

# ---- systemd, cron and flock habits, shared directories, strict input (fit.sh) ----------------

# shellcheck source=tests/cli/fit.sh
. "$ROOT/tests/cli/fit.sh"

# ---- man page -------------------------------------------------------------------------------

MAN=$ROOT/docs/reign.1
if [ -f "$MAN" ]; then
    for cmd in lock status watch members shard; do
        if grep -qE "^\.SS \"?(reign )?$cmd( |\"|$)" "$MAN"; then
            ok "the man page documents $cmd"
        else
            not_ok "the man page documents $cmd" "no .SS $cmd in $MAN"
        fi
    done
    for opt in --restart-on-lost --exit-on-lost --listen --interval --json --wait --grace \
               --nonblock --timeout --conflict-exit-code --quiet --command --retry-open; do
        # roff writes a hyphen-minus as \-
        if sed 's/\\-/-/g' "$MAN" | grep -q -- "$opt"; then
            ok "the man page documents $opt"
        else
            not_ok "the man page documents $opt" "not in $MAN"
        fi
    done
    if have groff; then
        warnings=$(groff -man -Tutf8 -ww -z "$MAN" 2>&1)
        if [ -z "$warnings" ]; then
            ok "the man page renders without groff warnings"
        else
            not_ok "the man page renders without groff warnings" "$warnings"
        fi
    else
        skip "the man page renders without groff warnings" "groff not installed"
    fi
else
    not_ok "the man page exists" "no $MAN"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
