#!/usr/bin/env bash
# reign's benchmarks (docs/benchmarks.md): build in Release, start the servers the
# backends need on 127.0.0.1 with throw-away data (scripts/servers/<name>.sh), run
# build-bench/bench/reign_bench against every backend, print one markdown table
# (measure x backend, with units and repetitions) and write it to docs/benchmarks.md.
#
#   scripts/bench.sh [--quick] [--only NAME[,NAME...]] [--doc | --no-doc] [--keep]
#
# --quick  fewer repetitions, a 1,000-resource scale run with the scale runs of
#          all backends at once: checks that everything works, in under 2 min.
#          It leaves docs/benchmarks.md alone unless --doc is given.
# (full)   the measurement: 14-17 min, writes docs/benchmarks.md unless --no-doc.
#          Run it on a quiet machine: the table records the load average.
# --only   run these backends only;  --keep  keep the scratch directory.
# Not part of CI: nothing fails on speed. The exit status is non-zero only when
# the build fails or no backend could be measured.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# One line per backend; adding a backend is adding a line. A backend runs when
# backends/<name>/ exists and, if it has one, its server script starts.
#   name      server script             URI, expanded after the server's exports
#             (scripts/servers/<s>.sh)    ($WORK is the run's scratch directory)
BACKENDS='
file        -                          file://$WORK/file
redis       redis                      $REDIS_URI
postgres    postgres                   $REIGN_TEST_POSTGRES_URI
etcd        etcd                       $REIGN_TEST_ETCD_URI
s3          s3                         $REIGN_TEST_S3_URI
'

usage() {
  sed -n '7,15p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
die() {
  echo "bench.sh: $*" >&2
  exit 1
}

quick=0 only="" doc="" keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --only) [ $# -ge 2 ] || usage; only=",$2,"; shift ;;
    --doc) doc=1 ;;
    --no-doc) doc=0 ;;
    --keep) keep=1 ;;
    -h | --help) usage ;;
    *) echo "bench.sh: unknown argument $1" >&2; usage ;;
  esac
  shift
done
[ -n "$doc" ] || doc=$((1 - quick))
qflag=()
[ "$quick" = 0 ] || qflag=(--quick)
t_start=$(date +%s)

WORK=$(mktemp -d /tmp/reign-bench.XXXXXX)
# searchable by others: postgres.sh runs the server as its own user when root
chmod 711 "$WORK"
export WORK
results=$WORK/results.tsv
: >"$results"
started=() # "name script" of servers to stop
ok=0
cleanup() {
  local rc=$? s
  for s in "${started[@]}"; do
    set -- $s
    "$root/scripts/servers/$2.sh" stop "$WORK/$1" >/dev/null 2>&1 || true
  done
  if [ "$keep" = 1 ] || [ "$rc" != 0 ] || [ "$ok" = 0 ]; then
    echo "bench.sh: logs kept in $WORK" >&2
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- which backends ---------------------------------------------------------------
names=() scripts=() templates=() skipped=()
while read -r name script template; do
  [ -n "$name" ] || continue
  if [ -n "$only" ] && [[ "$only" != *",$name,"* ]]; then continue; fi
  if [ ! -f "backends/$name/CMakeLists.txt" ]; then
    skipped+=("$name: backends/$name/ is not there yet")
    continue
  fi
  if [ "$script" != - ] && [ ! -x "scripts/servers/$script.sh" ]; then
    skipped+=("$name: no scripts/servers/$script.sh")
    continue
  fi
  names+=("$name") scripts+=("$script") templates+=("$template")
done <<<"$BACKENDS"
[ ${#names[@]} -gt 0 ] || die "no backend to measure"

# ---- build (Release) ---------------------------------------------------------------
build=$root/build-bench
opts=()
for n in "${names[@]}"; do opts+=("-DREIGN_WITH_${n^^}=ON"); done
echo "== build (Release) in $build" >&2
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DREIGN_BUILD_TESTS=OFF \
  -DREIGN_BUILD_EXAMPLES=OFF -DREIGN_BUILD_BENCH=ON "${opts[@]}" >"$WORK/cmake.log" 2>&1 ||
  { cat "$WORK/cmake.log" >&2; die "cmake failed"; }
ninja -C "$build" reign_bench >"$WORK/ninja.log" 2>&1 || { tail -40 "$WORK/ninja.log" >&2; die "build failed"; }
bench=$build/bench/reign_bench

# ---- servers (started at once) ---------------------------------------------------------
echo "== servers" >&2
pids=()
for i in "${!names[@]}"; do
  pids[$i]=""
  [ "${scripts[$i]}" != - ] || continue
  "scripts/servers/${scripts[$i]}.sh" start "$WORK/${names[$i]}" >"$WORK/${names[$i]}.env" \
    2>"$WORK/${names[$i]}.server.log" &
  pids[$i]=$!
  started+=("${names[$i]} ${scripts[$i]}")
done
run_names=() run_uris=()
for i in "${!names[@]}"; do
  n=${names[$i]}
  if [ -n "${pids[$i]}" ] && ! wait "${pids[$i]}"; then
    # servers started together may pick the same free port: try once more, alone
    echo "bench.sh: $n's server did not start; once more ($(tail -1 "$WORK/$n.server.log"))" >&2
    "scripts/servers/${scripts[$i]}.sh" stop "$WORK/$n" >/dev/null 2>&1 || true
    mv "$WORK/$n" "$WORK/$n.failed-start" 2>/dev/null || true
    if ! "scripts/servers/${scripts[$i]}.sh" start "$WORK/$n" >"$WORK/$n.env" 2>>"$WORK/$n.server.log"; then
      skipped+=("$n: its server did not start ($(tail -1 "$WORK/$n.server.log"))")
      keep=1
      continue
    fi
  fi
  [ -f "$WORK/$n.env" ] || : >"$WORK/$n.env"
  uri=$(set +u; . "$WORK/$n.env"; eval "echo \"${templates[$i]}\"")
  if [ -z "$uri" ] || [[ "$uri" == *'://' ]]; then
    skipped+=("$n: its server printed no URI")
    continue
  fi
  [ "$n" != file ] || mkdir -p "$WORK/file"
  run_names+=("$n") run_uris+=("$uri")
done
[ ${#run_names[@]} -gt 0 ] || die "no backend could be started"

# ---- the benchmarks -------------------------------------------------------------------
# run NAME URI COMMAND [ARGS...]: one reign_bench subcommand in NAME's environment;
# its table goes to the terminal and NAME's log; a failure is noted, not fatal
run() {
  local n=$1 uri=$2 cmd=$3 rc=0
  shift 3
  echo "== $n: $cmd" >&2
  (
    set +u
    . "$WORK/$n.env"
    set -u
    exec timeout 900 "$bench" "$cmd" --backend "$n" --uri "$uri" --out "$results" "${qflag[@]}" "$@"
  ) 2>&1 | tee -a "$WORK/$n.log" || rc=$?
  if [ "$rc" != 0 ]; then
    printf '%s\t%s\terror\t\t0\texit %s\n' "$n" "$cmd" "$rc" >>"$results"
    echo "bench.sh: $n $cmd failed (exit $rc; log $WORK/$n.log)" >&2
  fi
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for i in "${!run_names[@]}"; do
  n=${run_names[$i]} u=${run_uris[$i]}
  run "$n" "$u" rtt
  run "$n" "$u" handoff --method wait
  run "$n" "$u" handoff --method poll
  run "$n" "$u" failover
  run "$n" "$u" is-master
  run "$n" "$u" observe
  [ "$quick" = 1 ] || run "$n" "$u" scale
  run "$n" "$u" shard
done
if [ "$quick" = 1 ]; then
  # --quick: every backend's scale run at once (a check, not a measurement)
  spids=()
  for i in "${!run_names[@]}"; do
    run "${run_names[$i]}" "${run_uris[$i]}" scale >/dev/null &
    spids+=($!)
  done
  for p in "${spids[@]}"; do wait "$p" || true; done
  for n in "${run_names[@]}"; do grep -A12 '^scale,' "$WORK/$n.log" || true; done
fi
peer_note=""
for i in "${!run_names[@]}"; do
  [ "${run_names[$i]}" = etcd ] || continue
  if command -v etcdctl >/dev/null; then
    pc=()
    [ "$quick" = 1 ] || pc=(--peer-crash)
    run etcd "${run_uris[$i]}" peer "${pc[@]}"
  else
    peer_note="etcdctl is not installed (apt-get install etcd-client): no peer comparison"
  fi
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the table --------------------------------------------------------------------------
version_of() { "$@" 2>/dev/null | head -1 || true; }
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
versions="reign $(sed -n 's/#define REIGN_VERSION_STRING "\(.*\)"/\1/p' include/reign/reign.h)"
rev=$(git rev-parse --short HEAD 2>/dev/null || true)
[ -z "$rev" ] || versions+=" (git $rev + working tree)"
versions+="; $(version_of cc --version)"
for n in "${run_names[@]}"; do
  case $n in
    redis) versions+="; $(version_of redis-server --version | cut -d' ' -f1-3)" ;;
    postgres) [ -z "$pgbin" ] || versions+="; $(version_of "$pgbin/postgres" --version)" ;;
    etcd) versions+="; $(version_of etcd --version); $(version_of etcdctl version)" ;;
    s3) versions+="; Ceph RGW $(version_of radosgw --version | awk '{print $3}') (memstore OSD)" ;;
  esac
done
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
mode=full
[ "$quick" = 0 ] || mode="quick (a check, not a measurement)"

table=$WORK/table.md
{
  echo "### Results: $(date -u '+%Y-%m-%d %H:%M UTC'), $mode run"
  echo
  echo "Machine: $(nproc) cores ($cpu), Linux $(uname -r); load average at start $load_start, at end $load_end."
  echo "Versions: $versions."
  echo
  awk -F'\t' -v backends="${run_names[*]}" -f - "$results" <<'AWK'
function fmt(v,   a) {
  if (v == "") return "—"
  if (v == "nan") return "n/a"
  v += 0; a = v < 0 ? -v : v
  if (a >= 100) return sprintf("%.0f", v)
  if (a >= 10) return sprintf("%.1f", v)
  if (a >= 1) return sprintf("%.2f", v)
  if (a == 0) return "0"
  return sprintf("%.2g", v)
}
function has(b, k) { return ((b SUBSEP k) in val) }
function get(b, k) { return has(b, k) ? val[b, k] : "" }
function missing(b, cmd) { return ((b SUBSEP cmd) in failed) ? "error (log)" : "—" }
function one(b, k, cmd, n) { if (!has(b, k)) return missing(b, cmd); return fmt(get(b, k)) (n ? " (" cnt[b, k] ")" : "") }
function two(b, k1, k2, cmd) {
  if (!has(b, k1)) return missing(b, cmd)
  return fmt(get(b, k1)) " / " fmt(get(b, k2)) " (" cnt[b, k1] ")"
}
function row(title, target, kind, k1, k2, cmd,   i, b, c, line) {
  line = "| " title " | " target " |"
  for (i = 1; i <= nb; i++) {
    b = B[i]
    if (kind == "one") c = one(b, k1, cmd, 1)
    else if (kind == "bare") c = one(b, k1, cmd, 0)
    else if (kind == "two") c = two(b, k1, k2, cmd)
    else if (kind == "rtt") c = !has(b, k1) ? missing(b, cmd) : fmt(get(b, k1)) " / " (has(b, k2) ? fmt(get(b, k2)) : "—") " (" cnt[b, k1] ")"
    else if (kind == "ratio2") c = (has(b, k1) && get(b, "rtt_p50") > 0) ? fmt(get(b, k1) / get(b, "rtt_p50")) "× / " (get(b, "rtt_write_p50") > 0 ? fmt(get(b, k1) / get(b, "rtt_write_p50")) "×" : "—") : "—"
    else if (kind == "excess") c = b == "file" ? "n/a: lock freed at death" : two(b, k1, k2, cmd)
    else if (kind == "settle") c = has(b, k1) ? fmt(get(b, k1)) " (" fmt(get(b, "scale_first_s")) " / " fmt(get(b, "scale_complete_s")) ")" : missing(b, cmd)
    else if (kind == "spread") c = has(b, k1) ? fmt(get(b, k1)) "–" fmt(get(b, k2)) ": " (get(b, "scale_within_one") == 1 ? "yes" : "**no**") : missing(b, cmd)
    else if (kind == "ops") c = has(b, k1) ? fmt(get(b, k1)) " (" fmt(get(b, "scale_renew_per_tick")) " / " fmt(get(b, "scale_acquire_per_tick")) " / " fmt(get(b, "scale_read_per_tick")) ")" : missing(b, cmd)
    else if (kind == "pair0") c = has(b, k1) ? fmt(get(b, k1)) " / " fmt(get(b, k2)) : missing(b, cmd)
    else if (kind == "batches") c = has(b, k1) ? fmt(get(b, k1)) " (" fmt(get(b, k2)) ")" : missing(b, cmd)
    line = line " " c " |"
  }
  print line
}
function miss(b, what, v, op, limit, unit) {
  if (v == "" || v == "nan") return
  if ((op == "<=" && v + 0 > limit + 0) || (op == "==" && v + 0 != limit + 0))
    misses[++nm] = "- **" b "**: " what " " fmt(v) unit " (target " (op == "<=" ? "≤ " : "") limit unit ")"
}
BEGIN { nb = split(backends, B, " ") }
$3 == "error" { failed[$1, $2] = 1; next }
{ val[$1, $2] = $3; cnt[$1, $2] = $5; unitof[$1, $2] = $4; note[$1, $2] = $6 }
END {
  head = "| Measure | Target |"; sep = "|---|---|"
  for (i = 1; i <= nb; i++) { head = head " " B[i] " |"; sep = sep "---|" }
  print head; print sep
  row("Graceful handoff p50 / p99, ms (reps): B waits in `reign_election_wait`", "≤ 1 / 5; etcd ≤ 3 / 10", "two", "handoff_wait_p50", "handoff_wait_p99", "handoff")
  row("Graceful handoff p50 / p99, ms (reps): B polls `is_master` every 20 µs", "", "two", "handoff_poll_p50", "handoff_poll_p99", "handoff")
  row("Round trip p50, ms (samples), read / write: the physical limit", "", "rtt", "rtt_p50", "rtt_write_p50", "rtt")
  row("Handoff p50 (wait) as a multiple of the round trip, read / write", "", "ratio2", "handoff_wait_p50", "", "")
  row("Crash failover, kill → other master p50 / p99, ms (reps)", "file ≤ 10", "two", "failover_total_p50", "failover_total_p99", "failover")
  row("Crash failover excess over TTL p50 / p99, ms", "≤ 100", "excess", "failover_excess_p50", "failover_excess_p99", "failover")
  row("Scale: settled after, s (first master / all held)", "", "settle", "scale_converge_s", "", "scale")
  row("Scale: held per instance min–max; all within ±1 of ⌈R/M⌉", "yes", "spread", "scale_held_min", "scale_held_max", "scale")
  row("Scale: at the end, resources with no master / with 2+ masters", "0 / 0", "pair0", "scale_missing", "scale_double", "scale")
  row("Scale: masterships lost during the steady-state window (all instances)", "0", "bare", "scale_lost_in_window", "", "scale")
  row("Scale: backend round trips per renew tick per instance (of them with renewals)", "1", "batches", "scale_batches_per_tick", "scale_renew_batches_per_tick", "scale")
  row("Scale: backend ops per renew tick per instance: all (RENEW / ACQUIRE / READ)", "", "ops", "scale_ops_per_tick", "", "scale")
  row("Scale: CPU, % of one core per instance (max of 3)", "≤ 1", "bare", "scale_cpu_pct", "", "scale")
  row("Scale: RSS per instance, MiB (max of 3)", "", "bare", "scale_rss_mib", "", "scale")
  row("is_master, ns per call, 4 threads: p50 / p99 (thread × round samples)", "≤ 50", "two", "is_master_ns_p50", "is_master_ns_p99", "is-master")
  row("Observer: acquire → callback p50 / p99, ms (reps); pushed, s3 polled every 1000 ms", "", "two", "observe_acquire_p50_ms", "observe_acquire_p99_ms", "observe")
  row("Observer: release → callback p50 / p99, ms (reps)", "", "two", "observe_release_p50_ms", "observe_release_p99_ms", "observe")

  sn = "R resources, 3 instances"
  for (i = nb; i >= 1; i--) if (has(B[i], "scale_converge_s")) sn = note[B[i], "scale_converge_s"]
  print ""
  print "Handoff: A resigns, time until B is master; two instances (factories) in one process. Failover: TTL " \
        "1000 ms, excess = other master − (child's last RENEW + TTL). Scale: " sn ", shard defaults " \
        "(balancing on); one renew tick = TTL/3. Round trip: " \
        "file = F_OFD_SETLK lock + unlock, redis = PING, postgres = SELECT 1, etcd = a range " \
        "through the JSON gateway, s3 = a signed HEAD of the bucket; writes: SET, an upsert, a put, " \
        "a PUT object; each on one kept-open connection."

  if (has("etcd", "peer_handoff_reign_p50")) {
    print ""
    print "| reign on etcd vs `etcdctl elect` (same etcd, separate processes, same clock) | reign | etcdctl | reign ÷ etcdctl |"
    print "|---|---|---|---|"
    r = get("etcd", "peer_handoff_reign_p50"); e = get("etcd", "peer_handoff_etcdctl_p50")
    print "| Graceful handoff (SIGINT the leader) p50, ms (reps) | " fmt(r) " (" cnt["etcd", "peer_handoff_reign_p50"] ") | " fmt(e) " (" cnt["etcd", "peer_handoff_etcdctl_p50"] ") | " (e > 0 ? fmt(r / e) : "—") " |"
    r = get("etcd", "peer_handoff_reign_p99"); e = get("etcd", "peer_handoff_etcdctl_p99")
    print "| Graceful handoff p99, ms | " fmt(r) " | " fmt(e) " | " (e > 0 ? fmt(r / e) : "—") " |"
    if (has("etcd", "peer_crash_reign_p50")) {
      r = get("etcd", "peer_crash_reign_p50"); e = get("etcd", "peer_crash_etcdctl_p50")
      print "| Crash failover (SIGKILL the leader; TTL 60 s, etcdctl's fixed session TTL) p50, ms (pairs) | " fmt(r) " (" cnt["etcd", "peer_crash_reign_p50"] ") | " fmt(e) " (" cnt["etcd", "peer_crash_etcdctl_p50"] ") | " (e > 0 ? fmt(r / e) : "—") " |"
      r = get("etcd", "peer_crash_reign_excess_p50"); e = get("etcd", "peer_crash_etcdctl_excess_p50")
      print "| … of which past (leader's line + 60 s) p50, ms | " fmt(r) " | " fmt(e) " | " (e > 0 ? fmt(r / e) : "—") " |"
    } else {
      print "| Crash failover | not run (--quick; etcdctl's session TTL is 60 s) | | |"
    }
  }

  for (i = 1; i <= nb; i++) {
    b = B[i]
    h50 = b == "etcd" ? 3 : 1; h99 = b == "etcd" ? 10 : 5
    if (b != "s3") {
      miss(b, "graceful handoff p50", get(b, "handoff_wait_p50"), "<=", h50, " ms")
      miss(b, "graceful handoff p99", get(b, "handoff_wait_p99"), "<=", h99, " ms")
    }
    if (b == "file") {
      miss(b, "crash failover p50", get(b, "failover_total_p50"), "<=", 10, " ms")
      miss(b, "crash failover p99", get(b, "failover_total_p99"), "<=", 10, " ms")
    } else {
      miss(b, "crash failover excess p50", get(b, "failover_excess_p50"), "<=", 100, " ms")
      miss(b, "crash failover excess p99", get(b, "failover_excess_p99"), "<=", 100, " ms")
    }
    if (get(b, "scale_within_one") == "0")
      misses[++nm] = "- **" b "**: scale: held " fmt(get(b, "scale_held_min")) "–" fmt(get(b, "scale_held_max")) " per instance, not all within ±1 of ⌈R/M⌉"
    miss(b, "scale: resources without a master at the end", get(b, "scale_missing"), "==", 0, "")
    miss(b, "scale: resources with 2+ masters at the end", get(b, "scale_double"), "==", 0, "")
    if (has(b, "scale_first_s") && get(b, "scale_converge_s") == "nan")
      misses[++nm] = "- **" b "**: scale: never settled (every resource held, counts = targets) within the time allowed"
    miss(b, "scale: backend round trips per renew tick", get(b, "scale_batches_per_tick"), "<=", 1.05, "")
    miss(b, "scale: CPU % of a core", get(b, "scale_cpu_pct"), "<=", 1, " %")
    miss(b, "scale: masterships lost in the steady-state window", get(b, "scale_lost_in_window"), "==", 0, "")
    miss(b, "is_master ns per call p50", get(b, "is_master_ns_p50"), "<=", 50, " ns")
    for (k in failed) { split(k, kk, SUBSEP); if (kk[1] == b) misses[++nm] = "- **" b "**: `" kk[2] "` failed (see its log)" }
  }
  print ""
  if (nm == 0) print "Every target was met in this run."
  else {
    print "Targets missed in this run (what limits each: see \"Misses\" above):"
    print ""
    for (i = 1; i <= nm; i++) print misses[i]
  }
}
AWK
  for s in "${skipped[@]}"; do echo "- skipped: $s"; done
  [ -z "$peer_note" ] || echo "- $peer_note"
  echo
  echo "Run time: $(($(date +%s) - t_start)) s (\`scripts/bench.sh${qflag:+ --quick}\`)."
} >"$table"

echo
cat "$table"

# ---- docs/benchmarks.md: replace the generated section ---------------------------------
if [ "$doc" = 1 ]; then
  docf=docs/benchmarks.md
  begin='<!-- BEGIN scripts/bench.sh output -->'
  end='<!-- END scripts/bench.sh output -->'
  if [ -f "$docf" ] && grep -qF "$begin" "$docf" && grep -qF "$end" "$docf"; then
    awk -v b="$begin" -v e="$end" -v t="$table" '
      $0 == b { print; while ((getline l < t) > 0) print l; skip = 1; next }
      $0 == e { skip = 0 }
      !skip { print }' "$docf" >"$WORK/doc.md"
  else
    { echo "# reign benchmarks"; echo; echo "$begin"; cat "$table"; echo "$end"; } >"$WORK/doc.md"
  fi
  cp "$WORK/doc.md" "$docf"
  echo "bench.sh: wrote $docf" >&2
fi
ok=1
