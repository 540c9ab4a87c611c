#!/usr/bin/env bash
# reign's whole test suite, as CI runs it: install what is missing, build
# under ASan+UBSan, start the servers the tests need on 127.0.0.1 with
# throw-away data, run unit + conformance + misbehaving-server + CLI tests and
# the short chaos runs, the handover runs and the `reign shard -- CMD` runs, run the core and every backend's conformance under
# TSan, fuzz each parser for 30 s, stop the servers. Exit non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc)

scripts/deps.sh test
# S3's server is Ceph RGW (~110 packages); REIGN_TEST_S3=0 leaves it out.
[ "${REIGN_TEST_S3:-1}" = 0 ] || scripts/deps.sh s3

work=$(mktemp -d /tmp/reign-test.XXXXXX)
chmod 711 "$work" # servers that refuse root (PostgreSQL) run as their own user
servers=()
cleanup() {
  local rc=$?
  # each entry: DIR under $work, or DIR:SCRIPT when the script is named otherwise
  for s in "${servers[@]}"; do "$root/scripts/servers/${s#*:}.sh" stop "$work/${s%%:*}" >/dev/null 2>&1 || true; done
  if [ $rc -eq 0 ]; then rm -rf "$work"; else echo "test: logs kept in $work" >&2; fi
  exit $rc
}
trap cleanup EXIT

passed=0 failed=0 skipped=0
count_ctest() { # tally ctest's log: "N tests failed out of M"
  local log=$1 total fails skips
  total=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2/p' "$log" | tail -1)
  fails=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -1)
  skips=$(grep -c '\*\*\*Skipped\|Not Run' "$log" || true)
  passed=$((passed + ${total:-0} - ${fails:-0} - skips)); failed=$((failed + ${fails:-1})); skipped=$((skipped + skips))
}

echo "== build (ASan+UBSan)"
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DREIGN_SANITIZE=address \
      -DREIGN_WITH_REDIS=ON -DREIGN_WITH_POSTGRES=ON -DREIGN_WITH_ETCD=ON -DREIGN_WITH_S3=ON >/dev/null
ninja -C build/asan >/dev/null

echo "== servers"
start_server() { # start_server NAME [SCRIPT]: start scripts/servers/SCRIPT.sh (default NAME) in
                 # $work/NAME, eval its exports; fatal on failure
  local out script=${2:-$1}
  out=$("scripts/servers/$script.sh" start "$work/$1") || { echo "test: cannot start the $1 server" >&2; exit 1; }
  servers+=("$1:$script")
  eval "$out"
}
if [ -x scripts/servers/redis.sh ]; then
  start_server redis
  # The conformance suite stops, pauses and restarts this server: it is its own.
  export REIGN_TEST_REDIS_URI="$REDIS_URI" REIGN_TEST_REDIS_DIR="$work/redis"
  # The same over TLS (conformance.rediss), its own server for the same reason.
  REDIS_TLS=1 start_server rediss redis
  export REIGN_TEST_REDISS_URI="$REDIS_URI" REIGN_TEST_REDISS_DIR="$work/rediss"
fi
if [ -x scripts/servers/redis-sentinel.sh ]; then
  # A master, a replica and three sentinels, for conformance.redis_sentinel.
  start_server sentinel redis-sentinel
  export REIGN_TEST_SENTINEL_URI="$SENTINEL_URI" REIGN_TEST_SENTINEL_DIR="$work/sentinel"
fi

if [ -x scripts/servers/postgres.sh ]; then
  start_server postgres
fi
if [ -x scripts/servers/etcd.sh ]; then
  start_server etcd
fi
if [ "${REIGN_TEST_S3:-1}" != 0 ] && [ -x scripts/servers/s3.sh ]; then
  start_server s3
fi

echo "== unit, conformance and CLI tests (ASan+UBSan)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
rc=0
export REIGN_CONF_REPORT="$work/conformance.txt"
ctest --test-dir build/asan --output-on-failure -j "$jobs" 2>&1 | tee "$work/ctest-asan.log" || rc=1
count_ctest "$work/ctest-asan.log"

echo "== CLI tests (ASan build)"
tests/cli/test_cli.sh build/asan/cli/reign 2>&1 | tee "$work/cli.log" || rc=1
count_plain() { # tally a plain "N passed, N failed" closing line
  local line
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -1)
  passed=$((passed + $(echo "$line" | awk '{print $1}')))
  failed=$((failed + $(echo "$line" | awk '{print $3}')))
}
count_plain "$work/cli.log"

echo "== install and packaging test"
tests/install/test_install.sh build/asan 2>&1 | tee "$work/install.log" || rc=1
count_plain "$work/install.log"

# run_scripted NAME PATTERN RUN...: scripts/NAME.sh once per RUN (its
# arguments), each line of PATTERN from its log shown, one pass or fail each.
run_scripted() {
  local name=$1 pattern=$2 ok=0 bad=0 run st
  shift 2
  for run in "$@"; do
    st=0
    # shellcheck disable=SC2086 # the run's words are its arguments
    "scripts/$name.sh" $run >"$work/$name.log" 2>&1 || st=$?
    echo "$name.sh $run: exit $st"
    grep -E "$pattern" "$work/$name.log" | tail -6 || true
    if [ "$st" -eq 0 ]; then ok=$((ok + 1)); else bad=$((bad + 1)); rc=1; cat "$work/$name.log" >>"$work/$name-failed.log"; fi
  done
  echo "$ok passed, $bad failed" | tee "$work/$name-summary.log"
  count_plain "$work/$name-summary.log"
}

echo "== chaos: no two masters at once (file, redis, redis-sentinel, postgres, etcd, s3), and a broken build is caught"
chaos_backends=(file redis postgres etcd)
[ "${REIGN_TEST_S3:-1}" = 0 ] || chaos_backends+=(s3)
chaos_runs=()
for b in "${chaos_backends[@]}"; do chaos_runs+=("$b --failovers 50 --seed 1 --build-dir build/asan"); done
# Sentinel: a short run with forced failovers (a longer one by hand: --failovers 100)
chaos_runs+=("redis-sentinel --failovers 20 --seed 1 --build-dir build/asan")
chaos_runs+=("redis --broken --seed 1")
run_scripted chaos "checker:|caught|violation|FAIL" "${chaos_runs[@]}"

echo "== handover: never two workers at once on a voluntary move (every backend), and a broken build is caught"
ho_runs=("file" "redis" "postgres" "etcd")
[ "${REIGN_TEST_S3:-1}" = 0 ] || ho_runs+=("s3 --resources 100")
for i in "${!ho_runs[@]}"; do ho_runs[$i]="${ho_runs[$i]} --build-dir build/asan"; done
ho_runs+=("file --broken")
run_scripted handover "checker:|caught|FAIL|PASS" "${ho_runs[@]}"

echo "== reign shard -- CMD: a guarded CMD per resource, no overlap on moves, pauses or SIGKILL (every backend), broken builds caught"
sc_runs=("file" "redis" "postgres" "etcd")
[ "${REIGN_TEST_S3:-1}" = 0 ] || sc_runs+=("s3 fleet")
sc_runs+=("file --broken-ack" "redis --broken-guard")
run_scripted shard_cmd "^fleet: (SIGKILL|max overlap|[0-9]+ voluntary)|^pause:|^FAIL|caught|PASS" "${sc_runs[@]}"

echo "== conformance figures (ms)"
cat "$REIGN_CONF_REPORT" 2>/dev/null || true

echo "== core, every backend's conformance and the misbehaving servers under TSan"
cmake -S . -B build/tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DREIGN_SANITIZE=thread \
      -DREIGN_WITH_REDIS=ON -DREIGN_WITH_POSTGRES=ON -DREIGN_WITH_ETCD=ON -DREIGN_WITH_S3=ON \
      -DREIGN_BUILD_BENCH=OFF -DREIGN_BUILD_EXAMPLES=OFF >/dev/null
ninja -C build/tsan >/dev/null
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
unset REIGN_CONF_REPORT # the figures above are the ASan run's
ctest --test-dir build/tsan --output-on-failure -j "$jobs" -L 'unit|conformance|misbehave' 2>&1 |
  tee "$work/ctest-tsan.log" || rc=1
count_ctest "$work/ctest-tsan.log"

echo "== fuzz smoke: each libFuzzer target for 30 s (clang, ASan+UBSan)"
FUZZ_BUILD_DIR="$root/build/fuzz" scripts/fuzz.sh 30 2>&1 | tee "$work/fuzz.log" || rc=1
line=$(grep -E '^fuzz: [0-9]+ passed, [0-9]+ failed' "$work/fuzz.log" | tail -1 || true)
if [ -n "$line" ]; then
  passed=$((passed + $(echo "$line" | awk '{print $2}')))
  failed=$((failed + $(echo "$line" | awk '{print $4}')))
else
  failed=$((failed + 1)) # the build failed before any target ran
fi

echo
echo "$passed passed, $failed failed, $skipped skipped"
exit $rc
