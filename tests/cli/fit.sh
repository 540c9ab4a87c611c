# Sourced by test_cli.sh (its helpers, $REIGN, $U, $TMP and counters):
# how reign fits where people run it — death by the stop signal, flock's
# options, durations, exit 2 with the real range for every bad value,
# --retry-open against a server started late, a lock directory shared by
# two users with mode=, reserved IDs, sd_notify and the unit files.

# tmp_default_warning WANT(yes|no) CMD...: run `CMD watch r` on the default
# URI for a second; the /tmp warning must be printed once (yes) or not (no).
tmp_default_warning() {
    local want=$1
    shift
    env -u REIGN_URI timeout -s TERM 1 "$@" watch r >/dev/null 2>"$TMP/tmpwarn.err"
    local n
    n=$(grep -c "PrivateTmp" "$TMP/tmpwarn.err")
    if { [ "$want" = yes ] && [ "$n" -eq 1 ]; } || { [ "$want" = no ] && [ "$n" -eq 0 ]; }; then
        ok "the /tmp default warning: $want (uid $(id -u) ${*:1:2})"
    else
        not_ok "the /tmp default warning: $want" "$n warnings: $(cat "$TMP/tmpwarn.err")"
    fi
}
# ---- death by the stop signal, as the parent sees it ---------------------------

# A shell reports a signal death and "exit 143" alike; Python's returncode
# tells them apart (-15 vs 143). sig_death NAME SIGNAL CMD...
sig_death() {
    local name=$1 sig=$2
    shift 2
    if ! have python3; then
        skip "$name" "python3 not installed"
        return
    fi
    local out
    out=$(python3 - "$sig" "$@" <<'EOF' 2>&1
import signal, subprocess, sys, time
sig = getattr(signal, "SIG" + sys.argv[1])
p = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
time.sleep(1.0)
p.send_signal(sig)
try:
    rc = p.wait(20)
except subprocess.TimeoutExpired:
    p.kill()
    rc = "hung"
print("returncode", rc, p.stderr.read().decode(errors="replace")[-300:])
EOF
)
    case "$out" in
    "returncode -$(kill -l "$sig") "*) ok "$name" ;;
    *) not_ok "$name" "$out" ;;
    esac
}

rm -f "$TMP/gotsig"
sig_death "lock dies of SIGTERM (the parent sees signal 15, not exit 143)" TERM \
    "$REIGN" lock --uri "$U" sigdeath sh -c "trap 'touch $TMP/gotsig; exit 0' TERM; while :; do sleep 0.01; done"
if [ -e "$TMP/gotsig" ]; then ok "lock passed SIGTERM to the command first"; else not_ok "lock passed SIGTERM to the command first" "no $TMP/gotsig"; fi
check_rc "the resource is free after lock died of SIGTERM" 0 "$REIGN" status --uri "$U" sigdeath
out_has "the resource is free after lock died of SIGTERM (no master)" "sigdeath no master"
"$REIGN" lock --uri "$U" sigdeath-w sleep 5 >/dev/null 2>&1 &
started_pids+=("$!")
sig_death "lock dies of SIGINT while waiting for mastership (signal 2)" INT \
    "$REIGN" lock --uri "$U" sigdeath-w true
sig_death "watch dies of SIGTERM (signal 15)" TERM "$REIGN" watch --uri "$U" sigdeath
sig_death "shard dies of SIGTERM (signal 15)" TERM "$REIGN" shard --uri "$U" --count 2
sig_death "lock --restart-on-lost dies of SIGHUP (signal 1)" HUP \
    "$REIGN" lock --restart-on-lost --uri "$U" sigdeath-r sleep 30

# ---- flock's options: -n, -w, -c, -E, -q, optional -- ---------------------------

rm -f "$TMP/fl-held" "$TMP/fl-release"
"$REIGN" lock --uri "$U" --instance fl-holder fl sh -c \
    "touch $TMP/fl-held; while [ ! -e $TMP/fl-release ]; do sleep 0.01; done" >"$TMP/fl.log" 2>&1 &
flp=$!
started_pids+=("$flp")
wait_for 5000 test -e "$TMP/fl-held" || not_ok "the flock-test holder runs" "$(cat "$TMP/fl.log")"
check_rc "-n on a held resource exits 75" 75 "$REIGN" lock --uri "$U" -n fl true
out_has "-n names the holder" "held by fl-holder"
check_rc "-n -q on a held resource exits 75" 75 "$REIGN" lock --uri "$U" -n -q fl true
if [ -s "$TMP/out" ]; then not_ok "-q prints nothing when busy (for cron)" "$(cat "$TMP/out")"; else ok "-q prints nothing when busy (for cron)"; fi
check_rc "-E 3 -n exits 3 when busy" 3 "$REIGN" lock --uri "$U" -E 3 -n fl true
rm -f "$TMP/fl-ran"
check_rc "--conflict-exit-code 0 --nonblock exits 0 when busy" 0 "$REIGN" lock --uri "$U" --conflict-exit-code 0 --nonblock fl touch "$TMP/fl-ran"
if [ -e "$TMP/fl-ran" ]; then not_ok "-E 0: the command does not run when busy" "it ran"; else ok "-E 0: the command does not run when busy"; fi
t0=$(now_ns)
check_rc "-w 0.3 exits 75 when still busy" 75 "$REIGN" lock --uri "$U" -w 0.3 fl true
ms=$((($(now_ns) - t0) / 1000000))
if [ "$ms" -ge 250 ] && [ "$ms" -lt 3000 ]; then ok "-w 0.3 waits about 0.3 s (${ms} ms)"; else not_ok "-w 0.3 waits about 0.3 s" "${ms} ms"; fi
out_has "-w says how long it waited" "gave up after waiting 300ms"
# -w 10 takes it as soon as the holder lets go.
( sleep 0.3; touch "$TMP/fl-release" ) &
check_rc "-w 10 gets the lock once the holder exits" 0 "$REIGN" lock --uri "$U" -w 10 fl true
wait_exit "$flp" 5000
# shellcheck disable=SC2016 # for the command's shell
check_rc "-c STRING before RESOURCE runs it with a shell" 0 "$REIGN" lock --uri "$U" -c 'echo "c1 $REIGN_RESOURCE"' flc
out_has "-c STRING sees REIGN_RESOURCE" "c1 flc"
# shellcheck disable=SC2016
check_rc "RESOURCE -c STRING (flock's order) runs it" 0 "$REIGN" lock --uri "$U" flc -c 'echo c2; exit 0'
out_has "RESOURCE -c STRING prints" "c2"
check_rc "-c with a command too exits 2" 2 "$REIGN" lock --uri "$U" -c 'true' flc true
check_rc "RESOURCE -c with two strings exits 2" 2 "$REIGN" lock --uri "$U" flc -c true false
check_rc "without --, CMD ARGS run" 0 "$REIGN" lock --uri "$U" flc sh -c 'exit 0'
check_rc "without --, a command starting with - exits 2" 2 "$REIGN" lock --uri "$U" flc -x
out_has "a command starting with - is told to follow --" "goes after --"
check_rc "with --, the command's status passes through" 4 "$REIGN" lock --uri "$U" flc -- sh -c 'exit 4'
check_rc "--wait -1 waits forever (takes a free resource)" 0 "$REIGN" lock --uri "$U" --wait -1 flc true

# ---- durations ------------------------------------------------------------------------

check_rc "--ttl 5s is taken" 0 "$REIGN" lock --uri "$U" --ttl 5s dur true
check_rc "--ttl 1500ms is taken" 0 "$REIGN" lock --uri "$U" --ttl 1500ms dur true
check_rc "--ttl 2m is taken" 0 "$REIGN" lock --uri "$U" --ttl 2m dur true
# A 20 ms lease may legitimately run out on a loaded machine (the guard then
# kills CMD: 137), so this checks that the value is accepted, not the run.
"$REIGN" lock --uri "$U" --ttl 20 dur true >"$TMP/out" 2>&1
rc=$?
if [ "$rc" -ne 2 ] && ! grep -q -- "--ttl" "$TMP/out"; then
    ok "--ttl 20 (bare: ms, the minimum) is taken"
else
    not_ok "--ttl 20 (bare: ms, the minimum) is taken" "exit $rc; $(head -c 300 "$TMP/out")"
fi
check_rc "--ttl 19 (below the minimum) exits 2" 2 "$REIGN" lock --uri "$U" --ttl 19 dur true
check_rc "--wait 300ms and --grace 1s are taken" 0 "$REIGN" lock --uri "$U" --wait 300ms --grace 1s dur true
check_rc "watch --interval 1s is taken (help exits 0 first)" 0 "$REIGN" watch --interval 1s --help
rm -f "$TMP/tgrace"
"$REIGN" lock --uri "$U" --grace 0.2s durg sh -c "trap '' TERM; touch $TMP/tgrace; sleep 30" >/dev/null 2>&1 &
gp=$!
started_pids+=("$gp")
wait_for 5000 test -e "$TMP/tgrace"
t0=$(now_ns)
kill -TERM "$gp"
wait_exit "$gp" 10000
ms=$((($(now_ns) - t0) / 1000000))
if [ "$rc" -eq 143 ] && [ "$ms" -lt 3000 ]; then ok "--grace 0.2s: a command ignoring SIGTERM is killed soon (${ms} ms)"; else not_ok "--grace 0.2s kills soon" "exit $rc after ${ms} ms"; fi

# ---- every bad value: exit 2 with the real range ----------------------------------

long256=$(printf 'i%.0s' $(seq 256))
long4097=$(printf 'm%.0s' $(seq 4097))
long1025=$(printf 'r%.0s' $(seq 1025))
bad_value() { # bad_value NAME TEXT_IN_MESSAGE ARGS...
    local name=$1 text=$2
    shift 2
    check_rc "$name exits 2" 2 "$REIGN" "$@"
    out_has "$name names the range" "$text"
}
bad_value "--ttl 0" "20ms..24h" lock --uri "$U" --ttl 0 r true
bad_value "--ttl 10" "20ms..24h" lock --uri "$U" --ttl 10 r true
bad_value "--ttl 25h" "20ms..24h" lock --uri "$U" --ttl 25h r true
bad_value "--ttl 5x" "not a duration" lock --uri "$U" --ttl 5x r true
bad_value "--ttl on shard" "20ms..24h" shard --uri "$U" --ttl 0 --count 1
bad_value "shard --hold 5s" "10s..24h" shard --uri "$U" --hold 5s --count 1
bad_value "shard --check-interval 10ms" "50ms..24h" shard --uri "$U" --check-interval 10ms --count 1
bad_value "shard --stabilization 2d" "not a duration" shard --uri "$U" --stabilization 2d --count 1
bad_value "shard RESOURCE of 1025 bytes" "maximum is 1024" shard --uri "$U" "$long1025"
bad_value "--instance of 256 bytes" "maximum is 255" lock --uri "$U" --instance "$long256" r true
bad_value "--metadata of 4097 bytes" "maximum is 4096" lock --uri "$U" --metadata "$long4097" r true
bad_value "-E 256" "0..255" lock --uri "$U" -E 256 r true
bad_value "-E -1" "0..255" lock --uri "$U" -E -1 r true
bad_value "--wait -2" "-1: forever" lock --uri "$U" --wait -2 r true
bad_value "-w abc" "not a duration" lock --uri "$U" -w abc r true
bad_value "--grace 25h" "0..24h" lock --uri "$U" --grace 25h r true
bad_value "watch --interval 5" "10ms" watch --uri "$U" --interval 5 r
bad_value "--retry-open=soon" "not a duration" status --uri "$U" --retry-open=soon r
bad_value "a RESOURCE of 1025 bytes" "maximum is 1024" lock --uri "$U" "$long1025" true
if [ "$(wc -c <"$TMP/out")" -lt 400 ]; then ok "a 1 KB RESOURCE is not echoed whole"; else not_ok "a 1 KB RESOURCE is not echoed whole" "$(wc -c <"$TMP/out") bytes of message"; fi
bad_value "file:/x (one slash)" "file:///" status --uri "file:$TMP/x" r
bad_value "file://tmp/x (two slashes)" "three slashes" status --uri "file://tmp/x" r
bad_value "a bare path as URI" "is a path, not a URI" status --uri "$TMP/x" r
bad_value "file:// mode=0777" "mode=0777" status --uri "file://$TMP/m?mode=0777" r

# ---- reserved IDs ---------------------------------------------------------------------

check_rc "lock of _reign/member/5 exits 2" 2 "$REIGN" lock --uri "$U" _reign/member/5 true
out_has "lock of _reign/member/5 says reserved" "reserved"
check_rc "shard of _reign/member/5 exits 2" 2 "$REIGN" shard --uri "$U" a _reign/member/5
out_has "shard of _reign/member/5 says reserved" "reserved"
check_rc "members after the refused lock exits 0" 0 "$REIGN" members --uri "$U"
if grep -q . "$TMP/out"; then not_ok "no fake member from a _reign/ lock" "$(cat "$TMP/out")"; else ok "no fake member from a _reign/ lock"; fi
check_rc "status of _reign/member/0 (a read) is allowed" 0 "$REIGN" status --uri "$U" _reign/member/0

# ---- --retry-open against a server started late -------------------------------------------

if have redis-server && [ -x "$REDIS_SH" ]; then
    rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 16399)
    ruri="redis://127.0.0.1:$rport/0"
    t0=$(now_ns)
    check_rc "lock without --retry-open fails at once on a down server (exit 1)" 1 "$REIGN" lock --uri "$ruri" late true
    ms=$((($(now_ns) - t0) / 1000000))
    if [ "$ms" -lt 3000 ]; then ok "... within 3 s (${ms} ms)"; else not_ok "lock fails at once on a down server" "${ms} ms"; fi
    check_rc "--retry-open=500ms gives up with exit 1" 1 "$REIGN" lock --uri "$ruri" --retry-open=500ms late true
    out_has "--retry-open=500ms says it gave up" "gave up retrying"
    rm -f "$TMP/late-ran"
    "$REIGN" lock --retry-open --uri "$ruri" late touch "$TMP/late-ran" >"$TMP/late-lock.log" 2>&1 &
    lp=$!
    started_pids+=("$lp")
    "$REIGN" watch --uri "$ruri" --interval 50 late >"$TMP/late-watch.out" 2>"$TMP/late-watch.err" &
    wp=$!
    started_pids+=("$wp")
    "$REIGN" shard --uri "$ruri" --ttl 1s --count 2 >"$TMP/late-shard.out" 2>"$TMP/late-shard.err" &
    sp=$!
    started_pids+=("$sp")
    sleep 2.5
    late_dir="$TMP/redis-late"
    started_redis+=("$late_dir")
    if "$REDIS_SH" start "$late_dir" "$rport" >/dev/null 2>"$TMP/late-redis.err"; then
        wait_exit "$lp" 20000
        if [ "$rc" -eq 0 ] && [ -e "$TMP/late-ran" ]; then ok "lock --retry-open runs its command once the server is up"; else not_ok "lock --retry-open runs once the server is up" "exit $rc; $(cat "$TMP/late-lock.log")"; fi
        n=$(grep -c "cannot open" "$TMP/late-lock.log")
        if [ "$n" -eq 1 ] && grep -q "retrying until stopped" "$TMP/late-lock.log"; then ok "the reason is on stderr once while retrying"; else not_ok "the reason is on stderr once" "$n lines: $(cat "$TMP/late-lock.log")"; fi
        if wait_for 10000 grep -q " late none" "$TMP/late-watch.out"; then ok "watch retries by default and reads once the server is up"; else not_ok "watch retries by default" "$(cat "$TMP/late-watch.err")"; fi
        if wait_for 15000 grep -q "held=2" "$TMP/late-shard.out"; then ok "shard retries by default and takes its resources once the server is up"; else not_ok "shard retries by default" "$(tail -3 "$TMP/late-shard.err")"; fi
        kill -TERM "$wp" "$sp"
        wait_exit "$wp" 10000
        wait_exit "$sp" 10000
    else
        not_ok "a late redis-server starts on port $rport" "$(cat "$TMP/late-redis.err")"
    fi
    "$REDIS_SH" stop "$late_dir" >/dev/null 2>&1
    # A stop signal ends the retrying at once: dies of it.
    sig_death "lock --retry-open dies of SIGTERM while the server is down" TERM \
        "$REIGN" lock --retry-open --uri "$ruri" late true
else
    skip "--retry-open against a server started late" "redis-server or $REDIS_SH missing"
fi

# ---- a lock directory shared by two users with mode= ------------------------------------------

if [ "$(id -u)" = 0 ] && have useradd && have runuser; then
    getent group reign-test-share >/dev/null || groupadd reign-test-share
    for u in reign-test-a reign-test-b; do
        id "$u" >/dev/null 2>&1 || useradd -M -N -s /bin/sh -G reign-test-share "$u"
    done
    # The users need the binary and a directory they can reach.
    share=$(mktemp -d /tmp/reign-share-test.XXXXXX)
    chmod 755 "$share"
    cp "$REIGN" "$share/reign"
    mkdir "$share/locks"
    chgrp reign-test-share "$share/locks"
    chmod 2770 "$share/locks"
    su_run() { local who=$1; shift; runuser -u "$who" -- "$@"; }
    suri="file://$share/locks?mode=0660"
    rm -f "$share/held"
    chmod 1777 "$share"
    su_run reign-test-a "$share/reign" lock --uri "$suri" --instance user-a shared sh -c \
        "touch $share/held; sleep 1.5" >"$TMP/share-a.log" 2>&1 &
    ap=$!
    started_pids+=("$ap")
    wait_for 5000 test -e "$share/held"
    check_rc "mode=0660: user b sees user a's lock (-n exits 75, not a permission error)" 75 \
        su_run reign-test-b "$share/reign" lock -n --uri "$suri" shared true
    out_has "mode=0660: user b is told user a holds it" "held by user-a"
    wait_exit "$ap" 10000
    check_rc "mode=0660: user b takes the lock after user a" 0 \
        su_run reign-test-b "$share/reign" lock -n --uri "$suri" shared true
    mode=$(stat -c %a "$share/locks/shared.lock" 2>/dev/null)
    if [ "$mode" = 660 ]; then ok "mode=0660: the lock file is 0660"; else not_ok "mode=0660: the lock file is 0660" "mode $mode"; fi
    grp=$(stat -c %G "$share/locks/shared.lock" 2>/dev/null)
    if [ "$grp" = reign-test-share ]; then ok "the lock file has the setgid directory's group"; else not_ok "the lock file has the directory's group" "group $grp"; fi
    # Without mode=: the second user is told whose directory it is.
    check_rc "without mode=, user a makes a private directory" 0 \
        su_run reign-test-a "$share/reign" lock --uri "file://$share/private" p true
    check_rc "without mode=, user b fails at open (exit 1)" 1 \
        su_run reign-test-b "$share/reign" lock -n --uri "file://$share/private" p true
    out_has "the error names the owner" "owned by user reign-test-a"
    out_has "the error gives the fix" "mode=0660"
    # Another user on the per-user /tmp default is warned, once.
    tmp_default_warning yes runuser -u reign-test-a -- "$share/reign"
    rm -rf "$share" /tmp/reign-"$(id -u reign-test-a)"
else
    skip "a lock directory shared by two users (mode=)" "needs root, useradd and runuser"
fi

# ---- the default directory ----------------------------------------------------------------------

if [ "$(id -u)" = 0 ] && [ -d /run/lock ]; then
    check_rc "--help names root's default /run/lock/reign" 0 "$REIGN" --help
    out_has "root's default is file:///run/lock/reign" "here file:///run/lock/reign"
fi
if [ "$(id -u)" = 0 ] && [ -d /run/lock ]; then
    tmp_default_warning no "$REIGN"
elif [ "$(id -u)" != 0 ]; then
    tmp_default_warning yes "$REIGN"
fi

# ---- sd_notify: READY when master, STATUS for a standby ------------------------------------------

if have python3; then
    cat >"$TMP/notify.py" <<'EOF'
# notify.py SOCKET OUT: collect sd_notify datagrams on SOCKET ("@name" =
# abstract) into OUT, one per line (newlines as |), until killed.
import os, socket, sys
path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + path[1:] if path.startswith("@") else path)
with open(out + ".tmp", "w") as f:
    pass
os.rename(out + ".tmp", out)
while True:
    msg = s.recv(4096).decode()
    with open(out, "a") as f:
        f.write(msg.replace("\n", "|") + "\n")
EOF
    for sock in "@reign-test-notify-$$" "$TMP/notify.sock"; do
        rm -f "$TMP/notify.out" "$TMP/notify.sock"
        python3 "$TMP/notify.py" "$sock" "$TMP/notify.out" &
        np=$!
        started_pids+=("$np")
        wait_for 5000 test -e "$TMP/notify.out"
        rm -f "$TMP/nt-held" "$TMP/nt-release"
        NOTIFY_SOCKET=$sock "$REIGN" lock --uri "$U" --instance nt-a nt sh -c \
            "touch $TMP/nt-held; while [ ! -e $TMP/nt-release ]; do sleep 0.01; done" >/dev/null 2>&1 &
        a=$!
        started_pids+=("$a")
        wait_for 5000 test -e "$TMP/nt-held"
        if wait_for 3000 grep -q "^READY=1|STATUS=master of nt (term [0-9]*)" "$TMP/notify.out"; then
            ok "sd_notify ($sock): READY=1 and STATUS=master once master"
        else
            not_ok "sd_notify ($sock): READY=1 once master" "$(cat "$TMP/notify.out")"
        fi
        : >"$TMP/notify.out"
        NOTIFY_SOCKET=$sock "$REIGN" lock --uri "$U" --instance nt-b nt true >/dev/null 2>&1 &
        b=$!
        started_pids+=("$b")
        if wait_for 5000 grep -q "^STATUS=standby for nt; master is nt-a (term [0-9]*)" "$TMP/notify.out"; then
            ok "sd_notify ($sock): a standby says who is master"
        else
            not_ok "sd_notify ($sock): a standby says who is master" "$(cat "$TMP/notify.out")"
        fi
        if grep -q READY "$TMP/notify.out"; then not_ok "sd_notify: no READY while standing by" "$(cat "$TMP/notify.out")"; else ok "sd_notify: no READY while standing by"; fi
        touch "$TMP/nt-release"
        wait_exit "$a" 5000
        wait_exit "$b" 5000
        if grep -q "^STOPPING=1" "$TMP/notify.out"; then ok "sd_notify: STOPPING=1 when resigning"; else not_ok "sd_notify: STOPPING=1 when resigning" "$(cat "$TMP/notify.out")"; fi
        is_our_child "$np" && kill "$np"
        { wait "$np"; } 2>/dev/null
    done
else
    skip "sd_notify" "python3 not installed"
fi

# ---- the unit files parse ---------------------------------------------------------------------

for unit in "$ROOT"/contrib/systemd/*.service; do
    [ -e "$unit" ] || { not_ok "contrib/systemd has unit files" "none"; break; }
    name=$(basename "$unit")
    if ! have systemd-analyze; then
        skip "$name parses (systemd-analyze verify)" "systemd-analyze not installed"
        continue
    fi
    # verify wants ExecStart's binary to exist: point it at this reign.
    mkdir -p "$TMP/units"
    sed "s|/usr/bin/reign|$REIGN|g" "$unit" >"$TMP/units/$name"
    if SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$TMP/units/$name" >"$TMP/verify.out" 2>&1 &&
        ! grep -v "Failed to .*\(bus\|journal\)\|Cannot add dependency\|No such file or directory.*\.target" "$TMP/verify.out" | grep -q .; then
        ok "$name parses (systemd-analyze verify)"
    else
        not_ok "$name parses (systemd-analyze verify)" "$(cat "$TMP/verify.out")"
    fi
done
