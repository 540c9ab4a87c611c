#!/usr/bin/env bash
# The reign demo: build the CLI, share 12 resources among 3 `reign shard`
# instances on the file backend, SIGKILL one of them and time how long the
# others take to pick up its resources. Needs no server; cleans up after itself.
# Usage: scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=build/demo
COUNT=12
TTL_MS=2000
REFRESH_MS=100  # membership refresh: how soon survivors notice a death
INSTANCES=(a b c)

WORK=$(mktemp -d /tmp/reign-demo.XXXXXX)
URI="file://$WORK/locks"
declare -A pid=()

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
    local rc=$?
    for i in "${!pid[@]}"; do
        if is_our_child "${pid[$i]}"; then
            kill -9 "${pid[$i]}" 2>/dev/null || true
        fi
        wait "${pid[$i]}" 2>/dev/null || true
    done
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() { printf '\n== %s\n' "$*"; }
die() {
    echo "demo: $*" >&2
    exit 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ---- build -------------------------------------------------------------------

step "Build dependencies (scripts/deps.sh build)"
scripts/deps.sh build
echo "ok"

step "Building reign (Release) in $BUILD"
if ! { cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DREIGN_SANITIZE=none \
        -DREIGN_BUILD_TESTS=OFF -DREIGN_BUILD_BENCH=OFF -DREIGN_BUILD_EXAMPLES=OFF &&
       ninja -C "$BUILD" reign_cli; } >"$WORK/build.log" 2>&1; then
    cat "$WORK/build.log" >&2
    die "build failed (output above)"
fi
REIGN=$BUILD/cli/reign
echo "ok: $("$REIGN" --version)"

# ---- helpers -----------------------------------------------------------------

RESOURCES=()
for ((n = 0; n < COUNT; n++)); do
    RESOURCES+=("r$n")
done

declare -A holder=() term=()
# Read every resource's master into holder[] and term[] ("" = no master).
read_status() {
    local out line r h t
    holder=()
    term=()
    out=$("$REIGN" status --uri "$URI" "${RESOURCES[@]}") || return 1
    while read -r line; do
        r=${line%% *}
        case $line in
        *" no master") holder[$r]="" term[$r]="" ;;
        *)
            h=${line#* master=}
            h=${h%% *}
            t=${line#* term=}
            t=${t%% *}
            holder[$r]=$h term[$r]=$t
            ;;
        esac
    done <<<"$out"
}

all_held() {
    read_status || return 1
    for r in "${RESOURCES[@]}"; do
        [ -n "${holder[$r]}" ] || return 1
    done
}

held_by() { # held_by INSTANCE: its resources in the last status, space-separated
    local list=() r
    for r in "${RESOURCES[@]}"; do
        [ "${holder[$r]}" = "$1" ] && list+=("$r")
    done
    echo "${list[*]}"
}

print_table() {
    printf '  %-9s %-9s %s\n' resource master term
    for r in "${RESOURCES[@]}"; do
        printf '  %-9s %-9s %s\n' "$r" "${holder[$r]:--}" "${term[$r]:--}"
    done
    for i in "${INSTANCES[@]}"; do
        local mine
        mine=$(held_by "$i")
        printf '  %s holds %2d: %s\n' "$i" "$(wc -w <<<"$mine")" "$mine"
    done
}

# ---- three instances share twelve resources ------------------------------------

SHARD_ARGS=(--ttl "$TTL_MS" --count "$COUNT" --refresh-interval "$REFRESH_MS")
step "Starting instances ${INSTANCES[*]}: reign shard --uri $URI --instance I ${SHARD_ARGS[*]}"
# The instances see each other through the membership and split the
# resources fairly; each campaigns only for its share.
for i in "${INSTANCES[@]}"; do
    "$REIGN" shard --uri "$URI" --instance "$i" "${SHARD_ARGS[@]}" \
        >"$WORK/$i.log" 2>"$WORK/$i.err" &
    pid[$i]=$!
    echo "  $i: pid ${pid[$i]}"
done

t_start=$(now_ms)
until all_held; do
    for i in "${INSTANCES[@]}"; do
        kill -0 "${pid[$i]}" 2>/dev/null || { cat "$WORK/$i.err" >&2; die "instance $i exited"; }
    done
    [ $(($(now_ms) - t_start)) -lt 20000 ] || die "not all $COUNT resources held after 20 s"
    sleep 0.02
done
step "All $COUNT resources held after $(($(now_ms) - t_start)) ms"
# A few refreshes more, so that every instance has settled on its share.
sleep 0.5
read_status
print_table

# ---- kill one holder ------------------------------------------------------------

# The victim: the instance holding the most, so the most has to move.
victim=""
most=0
for i in "${INSTANCES[@]}"; do
    n=$(wc -w <<<"$(held_by "$i")")
    if [ "$n" -gt "$most" ]; then
        victim=$i
        most=$n
    fi
done
[ -n "$victim" ] || die "no instance holds anything"
read -ra victim_res <<<"$(held_by "$victim")"
declare -A old_term=()
for r in "${victim_res[@]}"; do
    old_term[$r]=${term[$r]}
done

step "SIGKILL to $victim (pid ${pid[$victim]}), holder of ${victim_res[*]}"
t_kill_ns=$(date +%s%N)
kill -9 "${pid[$victim]}"
{ wait "${pid[$victim]}" || true; } 2>/dev/null
unset "pid[$victim]"
survivors=()
for i in "${INSTANCES[@]}"; do
    [ "$i" = "$victim" ] || survivors+=("$i")
done

taken_over() {
    read_status || return 1
    for r in "${victim_res[@]}"; do
        [ -n "${holder[$r]}" ] && [ "${holder[$r]}" != "$victim" ] || return 1
    done
}
until taken_over; do
    [ $((($(date +%s%N) - t_kill_ns) / 1000000)) -lt 30000 ] ||
        die "${victim}'s resources not taken over after 30 s"
    sleep 0.005
done
t_seen_ns=$(date +%s%N)

# The survivors' own lines say when each of them gained a resource (wall
# clock, ms); the latest of those is the takeover as the survivors saw it.
last_gain_ms=0
for r in "${victim_res[@]}"; do
    for i in "${survivors[@]}"; do
        line=$(grep " gained $r term=" "$WORK/$i.log" | tail -1 || true)
        [ -n "$line" ] || continue
        ms=$(date -d "${line%% *}" +%s%3N)
        [ "$ms" -gt "$last_gain_ms" ] && last_gain_ms=$ms
    done
done

step "Takeover"
echo "  (its file locks died with it; the survivors see it gone at their next"
echo "   membership refresh, every $REFRESH_MS ms here, and campaign for its resources)"
echo "  ${victim}'s ${#victim_res[@]} resources were all held by ${survivors[*]}" \
    "$(((t_seen_ns - t_kill_ns) / 1000000)) ms after the SIGKILL (polling reign status)"
if [ "$last_gain_ms" -gt 0 ]; then
    echo "  the survivors logged the last gain $((last_gain_ms - t_kill_ns / 1000000)) ms after the SIGKILL"
fi
printf '  %-9s %-11s %s\n' resource "new master" "term (was)"
for r in "${victim_res[@]}"; do
    printf '  %-9s %-11s %s (%s)\n' "$r" "${holder[$r]}" "${term[$r]}" "${old_term[$r]}"
done
for r in "${victim_res[@]}"; do
    [ "${term[$r]}" -gt "${old_term[$r]}" ] || die "term of $r did not increase"
done

step "Survivors' log lines since the kill"
for i in "${survivors[@]}"; do
    while read -r line; do
        ms=$(date -d "${line%% *}" +%s%3N)
        [ "$ms" -ge $((t_kill_ns / 1000000)) ] && echo "  $i: $line"
    done <"$WORK/$i.log"
done

# ---- stop the others ------------------------------------------------------------

step "Stopping the survivors (SIGTERM): they resign everything"
for i in "${survivors[@]}"; do
    kill -TERM "${pid[$i]}"
done
for i in "${survivors[@]}"; do
    rc=0
    wait "${pid[$i]}" || rc=$?
    echo "  $i exited $rc"
    unset "pid[$i]"
done
read_status
left=0
for r in "${RESOURCES[@]}"; do
    [ -z "${holder[$r]}" ] || left=$((left + 1))
done
echo "  resources still held: $left"
echo
echo "Demo done. Try it yourself: $REIGN --help"
