#!/usr/bin/env bash
# check_includes.sh ROOT: the layering rules of docs/design.md, from the
# #include lines alone.
#   1. No circle among the files of one folder (core/, each backend, cli/):
#      x.c and x.h are one unit "x"; x depends on y when either includes y.h.
#      A circle means two units that cannot be understood (or tested) apart.
#   2. A backend includes nothing of core/ or of another backend: only
#      reign/*.h and its own folder's headers.
# Prints each offence and exits 1 if there is one.
set -euo pipefail
root=${1:-.}
bad=0

check_folder() {
  local dir=$1 pairs="" f unit dep
  for f in "$dir"/*.c "$dir"/*.h; do
    [ -e "$f" ] || continue
    unit=$(basename "$f"); unit=${unit%.*}
    pairs+="$unit $unit"$'\n'
    while read -r dep; do
      dep=${dep%.h}
      [ "$dep" != "$unit" ] && [ -e "$dir/$dep.h" ] && pairs+="$unit $dep"$'\n'
    done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"/]*\.h\)".*/\1/p' "$f")
  done
  local out
  if ! out=$(printf '%s' "$pairs" | tsort 2>&1 >/dev/null) || [ -n "$out" ]; then
    echo "$dir: the includes make a circle:" >&2
    grep -v '^tsort: -: input contains a loop:$' <<<"$out" | sed 's/^tsort: /  /' >&2
    bad=1
  fi
}

for dir in "$root/core" "$root/cli" "$root"/backends/*; do
  [ -d "$dir" ] && check_folder "$dir"
done

for f in "$root"/backends/*/*.[ch]; do
  while read -r inc; do
    case "$inc" in
      reign/*.h) ;;
      */*) echo "$f: includes \"$inc\" (a backend includes only reign/*.h and its own files)" >&2
           bad=1 ;;
      *) [ -e "$(dirname "$f")/$inc" ] ||
           { echo "$f: includes \"$inc\", which is not in its own folder" >&2; bad=1; } ;;
    esac
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f")
done
exit $bad
