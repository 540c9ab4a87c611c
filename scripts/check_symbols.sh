#!/usr/bin/env bash
# check_symbols.sh LIB...: every global symbol a reign library defines is
# named reign_*, so a program that links it statically (with its own
# file_lock_record or runner_step) never clashes. Prints the offenders and
# exits 1 if there are any. Sanitizer bookkeeping (__odr_asan.*, __tsan_*)
# and the shared object's own markers (_init, _fini, …) are not ours.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 LIB..." >&2; exit 2; }
bad=0
for lib in "$@"; do
  case "$lib" in
    *.so*) syms=$(nm -D --defined-only "$lib") ;;
    *) syms=$(nm -g --defined-only "$lib") ;;
  esac
  offenders=$(awk 'NF >= 3 && $2 ~ /^[A-Za-z]$/ {print $3}' <<<"$syms" |
    grep -v -E '^(reign_|__odr_asan|__asan|__tsan|__ubsan|__sanitizer|_init$|_fini$|_edata$|_end$|__bss_start$)' |
    sort -u || true)
  if [ -n "$offenders" ]; then
    echo "$lib: global symbols without the reign_ prefix:" >&2
    sed 's/^/  /' <<<"$offenders" >&2
    bad=1
  fi
done
exit $bad
