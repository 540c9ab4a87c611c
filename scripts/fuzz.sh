#!/usr/bin/env bash
# Build reign's libFuzzer targets (tests/fuzz, clang + ASan + UBSan) and run
# each for SECONDS (default 30), printing the executions per target. A crash,
# leak or timeout fails the run and leaves its input under
# $FUZZ_BUILD_DIR/fuzz-artifacts/ (make it a corpus file or a unit test).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     e.g. scripts/fuzz.sh 600 fuzz_uri
#
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_JOBS (parallel
# fuzzing processes per target, default 1), FUZZ_RUNS (stop a target after
# that many executions, SECONDS still being the limit: the long run of
# docs/safety.md §6 is FUZZ_RUNS=10000000 scripts/fuzz.sh 7200). New inputs the fuzzer finds go
# to $FUZZ_BUILD_DIR/fuzz-corpus/TARGET, never into the committed seeds of
# tests/fuzz/corpus/TARGET. Needs clang and libclang-rt-14-dev (Debian 12).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=${1:-30}
shift || true
case $seconds in '' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;; esac
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=${FUZZ_JOBS:-1}

command -v clang >/dev/null || { echo "fuzz: needs clang: apt-get install clang libclang-rt-14-dev" >&2; exit 1; }

# The backends whose libraries are here get their targets (as a build with
# -DREIGN_WITH_<B>=ON would need them anyway).
have() { pkg-config --exists "$@" 2>/dev/null && echo ON || echo OFF; }
opts=(-DREIGN_FUZZ=ON -DREIGN_SANITIZE=none -DCMAKE_BUILD_TYPE=Debug
      -DREIGN_BUILD_BENCH=OFF -DREIGN_BUILD_EXAMPLES=OFF
      -DREIGN_WITH_REDIS="$(have hiredis)" -DREIGN_WITH_ETCD="$(have jansson)"
      -DREIGN_WITH_S3="$(have jansson libcrypto)" -DREIGN_WITH_POSTGRES="$(have libpq)")

# tests/CMakeLists.txt adds tests/fuzz; until it does, a two-line wrapper
# project adds it beside the library.
src=$root
grep -q 'add_subdirectory(fuzz)' tests/CMakeLists.txt || src=$build/wrapper-src
if [ -f "$build/CMakeCache.txt" ] && ! grep -q "^CMAKE_HOME_DIRECTORY:INTERNAL=$src\$" "$build/CMakeCache.txt"; then
  rm -rf "$build"  # configured from another source directory: start over
fi
if [ "$src" != "$root" ]; then
  mkdir -p "$src"
  printf 'cmake_minimum_required(VERSION 3.20)\nproject(reign_fuzz_wrapper C)\nenable_testing()\nadd_subdirectory(%s main)\nadd_subdirectory(%s/tests/fuzz fuzz)\n' \
    "$root" "$root" >"$src/CMakeLists.txt"
fi
mkdir -p "$build"
CC=clang cmake -S "$src" -B "$build" -G Ninja "${opts[@]}" >"$build/fuzz-configure.log" 2>&1 ||
  { cat "$build/fuzz-configure.log" >&2; exit 1; }
bin=$(find "$build" -name targets.txt -path '*fuzz*' | head -1)
[ -n "$bin" ] || { echo "fuzz: no tests/fuzz in the build (REIGN_FUZZ?)" >&2; exit 1; }
bin=$(dirname "$bin")
mapfile -t all <"$bin/targets.txt"
targets=("${@:-${all[@]}}")
ninja -C "$build" "${targets[@]}" >"$build/fuzz-ninja.log" 2>&1 || { tail -40 "$build/fuzz-ninja.log" >&2; exit 1; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$build/fuzz-artifacts"
passed=0 failed=0
printf '%-20s %14s %8s %10s  %s\n' target executions seconds exec/s result
for t in "${targets[@]}"; do
  [ -n "$t" ] || continue
  work=$build/fuzz-corpus/$t
  mkdir -p "$work"
  log=$build/fuzz-artifacts/$t.log
  start=$(date +%s)
  rc=0
  extra=()
  [ "$jobs" -gt 1 ] && extra=(-fork="$jobs" -ignore_crashes=0)
  [ -n "${FUZZ_RUNS:-}" ] && extra+=(-runs="$FUZZ_RUNS")
  "$bin/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/fuzz-artifacts/$t-" "${extra[@]}" "$work" "tests/fuzz/corpus/$t" \
    >"$log" 2>&1 || rc=$?
  took=$(( $(date +%s) - start ))
  execs=$(grep -a 'stat::number_of_executed_units' "$log" | awk '{s += $2} END {print s + 0}')
  [ "$execs" -eq 0 ] && execs=$(grep -ao '^#[0-9]*' "$log" | tail -1 | tr -d '#')
  execs=${execs:-0}
  if [ $rc -eq 0 ]; then
    result=ok; passed=$((passed + 1))
  else
    result="FAILED (rc $rc; log $log)"; failed=$((failed + 1))
    grep -a -m1 -E 'ERROR:|fuzz check failed|runtime error' "$log" >&2 || true
    grep -a 'Test unit written to' "$log" >&2 || true
  fi
  printf '%-20s %14s %8s %10s  %s\n' "$t" "$execs" "$took" "$((execs / (took > 0 ? took : 1)))" "$result"
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
