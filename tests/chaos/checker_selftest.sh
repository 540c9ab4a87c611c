#!/usr/bin/env bash
# Self-test of the chaos checker on crafted logs: each case must pass or fail
# as stated, so a checker that passes everything cannot hide behind a green
# chaos run. usage: checker_selftest.sh PATH/TO/reign_chaos_checker
set -uo pipefail
checker=${1:?usage: $0 CHECKER}
work=$(mktemp -d /tmp/reign-chaos-selftest.XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0

# Times in ns; the run starts at 1000 s. TTL 500 ms, belief 470 ms, slack 10 ms.
S=1000000000000
ms() { echo $((S + $1 * 1000000)); }   # ms N -> the time N ms after the start

# new_case NAME: a log directory with two workers (pids 100 and 200), one resource
new_case() {
  dir=$work/$1
  mkdir -p "$dir"
  printf 'start 1 %s redis 500 2 1\nspawn 0 100 %s a\nspawn 1 200 %s b\n' "$S" "$S" "$S" >"$dir/driver.log"
  printf 'hello 100 0 plain 500 470000000 10000000 1 %s\n' "$S" >"$dir/w0.1.log"
  printf 'hello 200 1 plain 500 470000000 10000000 1 %s\n' "$S" >"$dir/w1.1.log"
}
a() { echo "$*" >>"$dir/w0.1.log"; }
b() { echo "$*" >>"$dir/w1.1.log"; }
drv() { echo "$*" >>"$dir/driver.log"; }

# expect NAME EXIT [PATTERN] [checker flags...]
expect() {
  local name=$1 want=$2 pattern=${3:-} out rc
  shift 3 || shift $#
  out=$("$checker" "$@" "$work/$name" 2>&1)
  rc=$?
  if [ "$rc" != "$want" ] || { [ -n "$pattern" ] && ! grep -q -- "$pattern" <<<"$out"; }; then
    echo "selftest: $name: want exit $want${pattern:+ and '$pattern'}, got exit $rc:"
    echo "$out" | sed 's/^/    /'
    failures=$((failures + 1))
  else
    echo "selftest: $name: ok (exit $rc)"
  fi
}

# A resigns, B takes over 0.5 ms later: no overlap.
new_case resign_handoff_passes
a "open 0 1 $(ms 100) $(ms 580) gained"
a "close 0 1 $(ms 300) resign 0"
b "open 0 2 $((S + 300500000)) $((S + 780500000)) gained"
expect resign_handoff_passes 0 "checker: PASS"

# A is killed after a RENEW (bound 680 ms); B begins at 600 ms: the lease
# outlives its holder, so this is an overlap...
new_case kill_before_bound_fails
a "open 0 1 $(ms 100) $(ms 580) gained"
a "renew 0 1 $(ms 200) $(ms 680)"
drv "kill 100 $(ms 250) $(ms 251)"
b "open 0 2 $(ms 600) $(ms 1080) gained"
expect kill_before_bound_fails 1 "FAIL overlap on r0"
# ...but not where the lease dies with its holder (file): it ended at 250 ms.
expect kill_before_bound_fails 0 "checker: PASS" --lease-dies-with-holder

# B begins after A's bound: fine.
new_case kill_after_bound_passes
a "open 0 1 $(ms 100) $(ms 580) gained"
a "renew 0 1 $(ms 200) $(ms 680)"
drv "kill 100 $(ms 250) $(ms 251)"
b "open 0 2 $(ms 700) $(ms 1180) gained"
expect kill_after_bound_passes 0 "checker: PASS"

# The RENEW that set the 680 ms bound failed (unrenew): the bound goes back
# to 580 ms, so B at 600 ms is fine.
new_case failed_renew_does_not_move_the_bound
a "open 0 1 $(ms 100) $(ms 580) gained"
a "renew 0 1 $(ms 200) $(ms 680) $(ms 199)"
a "unrenew 0 1 $(ms 370) $(ms 580)"
drv "kill 100 $(ms 400) $(ms 401)"
b "open 0 2 $(ms 600) $(ms 1080) gained"
expect failed_renew_does_not_move_the_bound 0 "checker: PASS"

# A froze itself for the kill while a RENEW (bound 680 ms) was in flight and
# never applied: the bound at the freeze is 580 ms, so B at 600 ms is fine.
new_case renew_in_flight_at_freeze_does_not_count
a "open 0 1 $(ms 100) $(ms 580) gained"
a "renew 0 1 $(ms 200) $(ms 680) $(ms 199)"
a "frozen 0 1 $(ms 201) $(ms 580)"
drv "kill 100 $(ms 202) $(ms 203)"
b "open 0 2 $(ms 600) $(ms 1080) gained"
expect renew_in_flight_at_freeze_does_not_count 0 "checker: PASS"

# A stopped from 500 ms to 1200 ms; a RENEW went out unseen just before the
# stop, so A may believe until 500 + 470 + 10 = 980 ms: B at 800 ms overlaps.
new_case unseen_renew_before_stop_fails
a "open 0 1 $(ms 100) $(ms 580) gained"
a "renew 0 1 $(ms 200) $(ms 680)"
drv "stop 100 $(ms 500) $(ms 1200)"
a "close 0 1 $(ms 1201) expired $(ms 499)"
b "open 0 2 $(ms 800) $(ms 1280) gained"
expect unseen_renew_before_stop_fails 1 "FAIL overlap on r0"

# The same without the unseen RENEW: A's belief ended by its bound (680 ms).
new_case stop_without_unseen_renew_passes
a "open 0 1 $(ms 100) $(ms 580) gained"
a "renew 0 1 $(ms 200) $(ms 680)"
drv "stop 100 $(ms 500) $(ms 1200)"
a "close 0 1 $(ms 1201) expired 0"
b "open 0 2 $(ms 800) $(ms 1280) gained"
expect stop_without_unseen_renew_passes 0 "checker: PASS"

# Terms must grow in time order.
new_case term_going_back_fails
a "open 0 5 $(ms 100) $(ms 580) gained"
a "close 0 5 $(ms 300) resign 0"
b "open 0 3 $(ms 301) $(ms 781) gained"
expect term_going_back_fails 1 "FAIL terms on r0"

# A worker that saw itself master past its own bound.
new_case late_belief_fails
a "open 0 1 $(ms 100) $(ms 580) gained"
a "late 0 1 $(ms 600) $(ms 580)"
a "close 0 1 $(ms 700) backend 0"
expect late_belief_fails 1 "FAIL invariant 1 on r0"

# A mastership no poll saw, within a stop: bounded by stop + belief + slack.
new_case missed_mastership_is_checked
drv "stop 100 $(ms 150) $(ms 900)"
a "missed 0 $(ms 140) $(ms 901)"
b "open 0 2 $(ms 500) $(ms 980) gained"
expect missed_mastership_is_checked 1 "FAIL overlap on r0"

# A line cut short by SIGKILL is ignored.
new_case partial_last_line_is_ignored
a "open 0 1 $(ms 100) $(ms 580) gained"
a "close 0 1 $(ms 300) resign 0"
b "open 0 2 $(ms 301) $(ms 781) gained"
printf 'open 0 9 %s' "$(ms 302)" >>"$dir/w0.1.log"
expect partial_last_line_is_ignored 0 "checker: PASS"

# No driver log: bad input, not a pass.
new_case missing_driver_log_is_an_error
rm "$dir/driver.log"
expect missing_driver_log_is_an_error 2 "driver.log"

[ $failures = 0 ] || { echo "selftest: $failures case(s) failed"; exit 1; }
echo "selftest: all cases behaved"
