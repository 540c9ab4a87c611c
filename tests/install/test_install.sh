#!/usr/bin/env bash
# Packaging test: install a built tree into a throw-away prefix, then build
# examples/election_loop.c against the installed files the way a user would —
# with pkg-config (shared library, also with only reign's .pc files on the
# search path; the static archive with --static; reign-static for a fully
# static chain) and with a CMake project using find_package(reign), also
# with no dependency visible — and run each program once against noop://.
# Checks the installed CLI, the installed examples' standalone project and
# the Python ctypes example too. Prints "N passed, N failed"; exits non-zero on any failure.
#
#   tests/install/test_install.sh BUILD_DIR
#
# BUILD_DIR is a configured reign build (any REIGN_SANITIZE: the programs
# built here get the same sanitizer). It is built first if out of date.
set -uo pipefail

if [ $# -ne 1 ] || [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "$1" 2>/dev/null && pwd) || { echo "test_install: no such directory: $1" >&2; exit 2; }
if [ ! -f "$build/CMakeCache.txt" ]; then
  echo "test_install: $build is not a configured CMake build (no CMakeCache.txt)" >&2
  exit 2
fi

tmp=$(mktemp -d /tmp/reign-install.XXXXXX)
prefix=$tmp/prefix
passed=0 failed=0 skipped=0
cleanup() {
  if [ "$failed" -eq 0 ]; then rm -rf "$tmp"; else echo "test_install: logs kept in $tmp" >&2; fi
}
trap cleanup EXIT

# check NAME COMMAND...: run COMMAND with its output in $tmp/NAME.log; exit
# status 77 means "skipped" (the log's last line says why).
check() {
  local name=$1
  shift
  local rc=0
  "$@" >"$tmp/$name.log" 2>&1 || rc=$?
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1))
    echo "ok   $name"
  elif [ $rc -eq 77 ]; then
    skipped=$((skipped + 1))
    echo "skip $name: $(tail -n 1 "$tmp/$name.log")"
  else
    failed=$((failed + 1))
    echo "FAIL $name (exit $rc); last lines of $tmp/$name.log:"
    tail -n 15 "$tmp/$name.log" | sed 's/^/     /'
  fi
  return $rc
}

# The sanitizer of the build: programs linking its libraries need it too.
sanitize=$(sed -n 's/^REIGN_SANITIZE:[A-Z]*=//p' "$build/CMakeCache.txt")
case "${sanitize:-none}" in
  address) san_flags="-fsanitize=address,undefined -fno-omit-frame-pointer" ;;
  thread) san_flags="-fsanitize=thread" ;;
  *) san_flags="" ;;
esac
cc=${CC:-cc}
cflags="-std=c11 -Wall -Wextra -Werror $san_flags"
version=$(sed -n 's/^#define REIGN_VERSION_STRING "\(.*\)"/\1/p' "$root/include/reign/reign.h")
example=$root/examples/election_loop.c

# run_once BINARY: one mastership on noop://, then exit 0.
run_once() {
  timeout 60 "$1" --once noop:// >"$tmp/run.out" 2>&1
  local rc=$?
  cat "$tmp/run.out"
  [ $rc -eq 0 ] && grep -q '^term [0-9]*: wrote step 1$' "$tmp/run.out"
}

# Both halves of the install must be there.
installed_files() {
  local f missing=0
  for f in include/reign/reign.h bin/reign share/man/man1/reign.1 \
           share/doc/reign/examples/CMakeLists.txt share/doc/reign/examples/election_loop.c \
           share/doc/reign/examples/reign_ctypes.py; do
    [ -e "$prefix/$f" ] || { echo "missing $prefix/$f"; missing=1; }
  done
  for f in libreign.so libreign.a pkgconfig/reign.pc pkgconfig/reign-static.pc \
           cmake/reign/reign-config.cmake \
           cmake/reign/reign-config-version.cmake; do
    [ -e "$libdir/$f" ] || { echo "missing $libdir/$f"; missing=1; }
  done
  return $missing
}

# ---- pkg-config -----------------------------------------------------------

pc() { PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config "$@"; }

pc_metadata() {
  local v
  v=$(pc --modversion reign) || return 1
  echo "modversion $v, header $version"
  [ "$v" = "$version" ] || return 1
  # The paths must lead into the prefix it was installed to, not to the
  # prefix configured at build time.
  local inc lib
  inc=$(pc --variable=includedir reign) && lib=$(pc --variable=libdir reign) || return 1
  echo "includedir $inc, libdir $lib"
  [ "$(realpath -m "$inc")" = "$(realpath "$prefix/include")" ] &&
    [ "$(realpath -m "$lib")" = "$(realpath "$libdir")" ]
}

build_pkg_shared() {
  local flags
  flags=$(pc --cflags --libs reign) || return 1
  echo "pkg-config --cflags --libs reign: $flags"
  # shellcheck disable=SC2086
  $cc $cflags -o "$tmp/el_pkg_shared" "$example" $flags \
      -Wl,-rpath,"$(pc --variable=libdir reign)" || return 1
  # It must use the installed library, not some other libreign.
  ldd "$tmp/el_pkg_shared" | tee /dev/stderr | grep "libreign.so" | grep -q "=> $(realpath "$libdir")/"
}

# Only reign's own files on pkg-config's search path (PKG_CONFIG_LIBDIR
# replaces the system's): the shared library's flags must need nothing
# else, not the backends' -dev packages.
pc_alone() { PKG_CONFIG_LIBDIR="$libdir/pkgconfig" PKG_CONFIG_PATH= pkg-config "$@"; }

build_pkg_alone() {
  if pc_alone --exists libcurl; then
    echo "libcurl is still visible to pkg-config: the test would prove nothing"
    return 1
  fi
  local flags
  flags=$(pc_alone --cflags --libs reign) || return 1
  echo "pkg-config --cflags --libs reign, with only reign on the path: $flags"
  # shellcheck disable=SC2086
  $cc $cflags -o "$tmp/el_pkg_alone" "$example" $flags -Wl,-rpath,"$libdir" || return 1
  # --static too: Libs.private names the libraries, not their modules.
  pc_alone --static --libs reign | tee /dev/stderr | grep -q -- "-lcurl"
}

# libreign.a with `pkg-config --static --libs reign`: the archive, then
# the dependencies' -l flags from Libs.private, linked as the system has
# them (shared). This shows reign.pc lists everything the archive needs.
build_pkg_static() {
  local flags
  flags=$(pc --static --cflags --libs reign) || return 1
  echo "pkg-config --static --cflags --libs reign: $flags"
  # With both libreign.so and libreign.a installed, -lreign picks the .so.
  flags=$(echo " $flags " | sed "s| -lreign | $libdir/libreign.a |")
  # shellcheck disable=SC2086
  $cc $cflags -o "$tmp/el_pkg_static" "$example" $flags || return 1
  if ldd "$tmp/el_pkg_static" | grep -q libreign.so; then
    echo "el_pkg_static still needs libreign.so"
    return 1
  fi
}

# `pkg-config --static reign-static`: a fully static dependency chain,
# through the dependencies' own modules. It needs the static libraries of
# libcurl's own dependencies, which Debian's libcurl -dev package does not
# install; their absence is a skip, not a failure.
build_pkg_full_static() {
  local flags
  flags=$(pc --static --cflags --libs reign-static) || return 1
  echo "pkg-config --static --cflags --libs reign-static: $flags"
  flags=$(echo " $flags " | sed "s| -lreign | $libdir/libreign.a |")
  # shellcheck disable=SC2086
  if ! $cc $cflags -o "$tmp/el_pkg_full_static" "$example" $flags 2>"$tmp/full_static.err"; then
    cat "$tmp/full_static.err"
    local missing
    missing=$(sed -n 's/.*cannot find \(-l[^:]*\).*/\1/p' "$tmp/full_static.err" | sort -u | tr '\n' ' ')
    if [ -n "$missing" ]; then
      echo "no static libraries on this system for: $missing"
      return 77
    fi
    return 1
  fi
}

# ---- CMake -------------------------------------------------------------------

cmake_consumer() {
  local src=$tmp/consumer
  mkdir -p "$src"
  cat >"$src/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.20)
project(reign_consumer LANGUAGES C)
find_package(reign $version REQUIRED)
message(STATUS "reign \${reign_VERSION} from \${reign_DIR}")
add_executable(el_cmake_shared "$example")
target_link_libraries(el_cmake_shared PRIVATE reign::reign)
add_executable(el_cmake_static "$example")
target_link_libraries(el_cmake_static PRIVATE reign::reign_static)
EOF
  CMAKE_PREFIX_PATH=$prefix cmake -S "$src" -B "$src/build" -DCMAKE_C_STANDARD=11 \
      -DCMAKE_C_FLAGS="-Wall -Wextra -Werror $san_flags" \
      -DCMAKE_EXE_LINKER_FLAGS="$san_flags" || return 1
  [ "$(sed -n 's/^reign_DIR:PATH=//p' "$src/build/CMakeCache.txt")" = "$libdir/cmake/reign" ] ||
    { echo "reign_DIR is not $libdir/cmake/reign"; return 1; }
  cmake --build "$src/build" || return 1
  if ldd "$src/build/el_cmake_static" | grep -q libreign.so; then
    echo "el_cmake_static still needs libreign.so"
    return 1
  fi
}

# find_package(reign) for the shared library with none of the static
# library's dependencies visible to pkg-config; asking for the static
# component then fails, naming what is missing.
cmake_alone() {
  local src=$tmp/consumer-alone
  mkdir -p "$src" "$tmp/empty-pc"
  cat >"$src/CMakeLists.txt" <<END
cmake_minimum_required(VERSION 3.20)
project(reign_consumer_alone LANGUAGES C)
find_package(reign $version REQUIRED)
add_executable(el_cmake_alone "$example")
target_link_libraries(el_cmake_alone PRIVATE reign::reign)
if(WANT_STATIC)
  find_package(reign $version REQUIRED COMPONENTS static)
endif()
END
  PKG_CONFIG_LIBDIR=$tmp/empty-pc PKG_CONFIG_PATH= CMAKE_PREFIX_PATH=$prefix \
    cmake -S "$src" -B "$src/build" -DCMAKE_C_FLAGS="-Wall -Wextra -Werror $san_flags" \
      -DCMAKE_EXE_LINKER_FLAGS="$san_flags" || return 1
  cmake --build "$src/build" || return 1
  run_once "$src/build/el_cmake_alone" || return 1
  if PKG_CONFIG_LIBDIR=$tmp/empty-pc PKG_CONFIG_PATH= CMAKE_PREFIX_PATH=$prefix \
    cmake -S "$src" -B "$src/build-static" -DWANT_STATIC=ON >"$tmp/cmake_static.out" 2>&1; then
    echo "find_package(reign COMPONENTS static) succeeded without the dependencies"
    return 1
  fi
  grep -q "needs the pkg-config modules" "$tmp/cmake_static.out" || { cat "$tmp/cmake_static.out"; return 1; }
}

# The examples as installed under share/doc/reign/examples, built with their
# own CMake project against the installed reign, as a user copies them.
examples_standalone() {
  local b=$tmp/examples-build
  CMAKE_PREFIX_PATH=$prefix cmake -S "$prefix/share/doc/reign/examples" -B "$b" \
      -DCMAKE_C_FLAGS="-Wall -Wextra -Werror $san_flags" \
      -DCMAKE_EXE_LINKER_FLAGS="$san_flags" || return 1
  cmake --build "$b" || return 1
  ctest --test-dir "$b" --output-on-failure
}

# The installed ctypes example against the installed shared library.
python_example() {
  command -v python3 >/dev/null || { echo "python3 not installed"; return 77; }
  local pre=""
  [ "${sanitize:-none}" = address ] && pre=$($cc -print-file-name=libasan.so)
  [ "${sanitize:-none}" = thread ] && { echo "a TSan library cannot be loaded into python3"; return 77; }
  LD_PRELOAD=$pre ASAN_OPTIONS=detect_leaks=0 timeout 60 \
    python3 "$prefix/share/doc/reign/examples/reign_ctypes.py" "$libdir/libreign.so"
}

installed_cli() {
  "$prefix/bin/reign" --version | tee /dev/stderr | grep -qx "reign $version" || return 1
  # shellcheck disable=SC2016 # $REIGN_TERM is for the child shell
  timeout 60 "$prefix/bin/reign" lock --uri noop:// install-test -- sh -c 'test "$REIGN_TERM" -ge 1'
}

# ---- run ------------------------------------------------------------------------

echo "== packaging test of $build (sanitizer: ${sanitize:-none}) into $prefix"
check build cmake --build "$build"
check install cmake --install "$build" --prefix "$prefix"
pcfile=$(find "$prefix" -name reign.pc -path '*/pkgconfig/*' 2>/dev/null | head -n 1)
libdir=$(dirname "$(dirname "${pcfile:-$prefix/lib/pkgconfig/reign.pc}")")
check installed_files installed_files
check pkg_config_metadata pc_metadata
check pkg_config_shared_build build_pkg_shared
check pkg_config_shared_run run_once "$tmp/el_pkg_shared"
check pkg_config_alone_build build_pkg_alone
check pkg_config_alone_run run_once "$tmp/el_pkg_alone"
check pkg_config_static_build build_pkg_static
check pkg_config_static_run run_once "$tmp/el_pkg_static"
if check pkg_config_full_static_build build_pkg_full_static; then
  check pkg_config_full_static_run run_once "$tmp/el_pkg_full_static"
fi
check cmake_find_package_build cmake_consumer
check cmake_shared_run run_once "$tmp/consumer/build/el_cmake_shared"
check cmake_static_run run_once "$tmp/consumer/build/el_cmake_static"
check cmake_find_package_without_deps cmake_alone
check examples_standalone examples_standalone
check python_example python_example
check installed_cli installed_cli

[ "$skipped" -eq 0 ] || echo "($skipped skipped)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
