#!/usr/bin/env bash
# Needs the Debian 12 package: postgresql-15 (server binaries in /usr/lib/postgresql/15/bin,
# pg_stat_statements included); openssl, if present, gives the server a self-signed TLS cert.
#
# A throw-away PostgreSQL server for tests: a cluster made with initdb in DIR/data, run with
# pg_ctl (not a system service) on 127.0.0.1, its unix socket and log in DIR.
#   eval "$(postgres.sh start DIR [PORT])"   # REIGN_TEST_POSTGRES_URI (plain TCP), _TLS_URI, _DIR, _CTL
#   postgres.sh stop DIR | restart DIR | pause DIR | resume DIR
#   postgres.sh ctl DIR stop|start|restart|pause|resume   # for REIGN_CONF_SERVER_CTL
# PORT defaults to a random free one; `start` on a DIR that has a cluster reuses it and its
# port. The superuser is `reign` with password $POSTGRES_PASSWORD (default `reign`):
# scram-sha-256 over TCP, trust on the unix socket. PostgreSQL refuses to run as root, so as
# root the server runs as the system user reign-pg (created if missing) and DIR is given to it.
# `stop` signals only the postmaster whose pid is in DIR/data/postmaster.pid, and only while
# that process still is a postgres server; pause/resume SIGSTOP/SIGCONT it and its children.
set -Eeuo pipefail

PACKAGES="postgresql-15"
PG_USER=reign-pg

die() {
  echo "postgres.sh: $*" >&2
  exit 3
}

usage() {
  echo "usage: $0 start DIR [PORT] | stop DIR | restart DIR | pause DIR | resume DIR" >&2
  echo "       $0 ctl DIR stop|start|restart|pause|resume" >&2
  exit 2
}

bindir() { # the newest installed server's bin directory, or $PG_BINDIR
  local d
  if [ -n "${PG_BINDIR:-}" ]; then
    [ -x "$PG_BINDIR/pg_ctl" ] || die "PG_BINDIR=$PG_BINDIR has no pg_ctl"
    echo "$PG_BINDIR"
    return 0
  fi
  d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  if [ ! -x "$d/initdb" ] || [ ! -x "$d/pg_ctl" ]; then
    die "no PostgreSQL server found in /usr/lib/postgresql/*/bin -- install with: apt-get install -y $PACKAGES"
  fi
  echo "$d"
}

# run a command as the server's user (root) or as ourselves
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$PG_USER" -- "$@"
  else
    "$@"
  fi
}

ensure_user() {
  [ "$(id -u)" -eq 0 ] || return 0
  id -u "$PG_USER" >/dev/null 2>&1 && return 0
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$PG_USER" || die "cannot create system user $PG_USER"
}

# the postmaster's pid if it still runs and is a postgres server (not a zombie)
our_pid() {
  local d=$1 pid state
  [ -f "$d/data/postmaster.pid" ] || return 0
  pid=$(head -n 1 "$d/data/postmaster.pid" 2>/dev/null | tr -cd '0-9' || true)
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qE '(^|/)postgres( |$)' || return 0
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
  [ "$state" != "Z" ] || return 0
  echo "$pid"
}

# the postmaster and every process whose parent it is (its backends)
server_pids() {
  local pm=$1 p ppid
  echo "$pm"
  for p in /proc/[0-9]*; do
    ppid=$(awk '{print $4}' "$p/stat" 2>/dev/null || true)
    [ "$ppid" = "$pm" ] && echo "${p#/proc/}"
  done
  return 0
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

random_free_port() {
  local p i
  for i in $(seq 200); do
    p=$((20000 + RANDOM % 40000))
    port_in_use "$p" || { echo "$p"; return 0; }
  done
  die "found no free port on 127.0.0.1"
}

# percent-encode for the userinfo part of a URI
uri_escape() {
  local s=$1 out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case "$c" in
      [A-Za-z0-9._~-]) out+=$c ;;
      *) out+=$(printf '%%%02X' "'$c") ;;
    esac
  done
  echo "$out"
}

print_env() {
  local d=$1 port pass uri
  port=$(cat "$d/port")
  pass=$(cat "$d/password")
  uri="postgres://reign:$(uri_escape "$pass")@127.0.0.1:$port/postgres"
  # Plain TCP for the test URI: a TLS handshake per connection costs more CPU
  # than a loaded test machine has to spare within a 333 ms op timeout.
  # TLS has its own URI when the server has a certificate.
  printf 'export REIGN_TEST_POSTGRES_URI=%q REIGN_TEST_POSTGRES_DIR=%q REIGN_TEST_POSTGRES_CTL=%q\n' \
    "$uri?sslmode=disable" "$d" "$(printf '%q ctl %q' "$(cd "$(dirname "$0")" && pwd)/postgres.sh" "$d")"
  if [ -f "$d/data/server.crt" ]; then
    printf 'export REIGN_TEST_POSTGRES_TLS_URI=%q\n' "$uri?sslmode=require"
  fi
  printf 'export POSTGRES_PORT=%q POSTGRES_SOCKET_DIR=%q\n' "$port" "$d"
}

# a cluster in DIR/data: initdb as the server's user, then our settings
init_cluster() {
  local d=$1 port=$2 bin=$3 pass sockdir ssl_lines="" lib preload=""
  pass=${POSTGRES_PASSWORD:-reign}
  case "$pass" in *[[:space:]]* | "") die "POSTGRES_PASSWORD must be non-empty without blanks" ;; esac
  echo "$pass" >"$d/password"
  echo "$port" >"$d/port"
  (umask 077 && echo "$pass" >"$d/pwfile")
  [ "$(id -u)" -ne 0 ] || chown -R "$PG_USER:" "$d"
  as_pg "$bin/initdb" -D "$d/data" -U reign --pwfile="$d/pwfile" --auth-local=trust \
    --auth-host=scram-sha-256 -E UTF8 --locale=C --no-sync --no-instructions \
    >"$d/initdb.log" 2>&1 || die "initdb failed; see $d/initdb.log"
  rm -f "$d/pwfile"
  # a unix socket path is limited to 107 bytes; leave it out rather than fail
  sockdir=$d
  [ "$((${#d} + 20))" -lt 107 ] || sockdir=""
  lib=$("$bin/pg_config" --pkglibdir 2>/dev/null || echo "$(dirname "$bin")/lib")
  # lets tests count the statements reign sends (tests/postgres)
  [ ! -f "$lib/pg_stat_statements.so" ] || preload="shared_preload_libraries = 'pg_stat_statements'"
  if command -v openssl >/dev/null; then
    # an EC key: its handshakes are cheaper than RSA's
    if as_pg openssl req -new -x509 -days 30 -nodes -subj "/CN=127.0.0.1" \
      -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
      -keyout "$d/data/server.key" -out "$d/data/server.crt" >"$d/openssl.log" 2>&1; then
      as_pg chmod 600 "$d/data/server.key"
      ssl_lines="ssl = on"
    fi
  fi
  as_pg tee -a "$d/data/postgresql.conf" >/dev/null <<CONF

# written by reign's scripts/servers/postgres.sh; throw-away
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
max_connections = 300
fsync = off
full_page_writes = off
$preload
$ssl_lines
log_line_prefix = '%m [%p] %q%a '
CONF
}

run_server() { # run_server DIR: start the cluster of DIR/data and wait until it accepts connections
  local d=$1 bin=$2 port
  port=$(cat "$d/port")
  if port_in_use "$port"; then
    die "127.0.0.1:$port is already in use"
  fi
  as_pg "$bin/pg_ctl" -D "$d/data" -l "$d/postgres.log" -w -t 30 start >/dev/null ||
    die "pg_ctl start failed; see $d/postgres.log"
  [ -n "$(our_pid "$d")" ] || die "the server did not stay up; see $d/postgres.log"
}

start() {
  local d=$1 port=${2:-} bin
  bin=$(bindir)
  if [ -n "$port" ]; then
    case "$port" in *[!0-9]*) echo "PORT must be a number" >&2; exit 2 ;; esac
    if [ "$port" -lt 1024 ] || [ "$port" -gt 65535 ]; then
      echo "PORT must be 1024..65535" >&2
      exit 2
    fi
  fi
  ensure_user
  mkdir -p "$d"
  d=$(cd "$d" && pwd)
  [ -z "$(our_pid "$d")" ] || die "a server from an earlier start still runs in $d; run: $0 stop $d"
  if [ -f "$d/data/PG_VERSION" ]; then
    # an existing cluster: keep its data; a new PORT replaces the recorded one
    if [ -n "$port" ] && [ "$port" != "$(cat "$d/port")" ]; then
      echo "$port" >"$d/port"
      as_pg sed -i "s/^port = .*/port = $port/" "$d/data/postgresql.conf"
    fi
  else
    [ -z "$(ls -A "$d" 2>/dev/null)" ] || die "$d is not empty and holds no cluster; give an empty or new directory"
    [ -n "$port" ] || port=$(random_free_port)
    if [ "$(id -u)" -eq 0 ]; then
      chown "$PG_USER:" "$d"
      runuser -u "$PG_USER" -- test -w "$d" ||
        die "user $PG_USER cannot write $d (a parent directory not searchable by others?); use e.g. /tmp/..."
    fi
    init_cluster "$d" "$port" "$bin"
  fi
  run_server "$d" "$bin"
  print_env "$d"
}

stop() {
  local d=$1 pid i bin
  [ -d "$d" ] || return 0
  d=$(cd "$d" && pwd)
  pid=$(our_pid "$d")
  [ -n "$pid" ] || return 0
  bin=$(bindir)
  # a paused server cannot shut down
  for p in $(server_pids "$pid"); do kill -CONT "$p" 2>/dev/null || true; done
  if as_pg "$bin/pg_ctl" -D "$d/data" -m fast -w -t 30 stop >/dev/null 2>&1; then
    return 0
  fi
  # still there after 30 s: it is throw-away, so kill it
  for p in $(server_pids "$pid"); do kill -KILL "$p" 2>/dev/null || true; done
  for i in $(seq 50); do
    [ -n "$(our_pid "$d")" ] || return 0
    sleep 0.1
  done
  die "postgres $pid in $d did not exit"
}

restart() {
  local d=$1
  [ -f "$d/data/PG_VERSION" ] || die "$d/data holds no cluster: nothing was started there"
  d=$(cd "$d" && pwd)
  stop "$d"
  run_server "$d" "$(bindir)"
  print_env "$d"
}

signal_all() { # signal_all DIR SIG: the postmaster first, so it forks no new child meanwhile
  local d=$1 sig=$2 pid p
  [ -d "$d" ] || die "$d is not a directory"
  d=$(cd "$d" && pwd)
  pid=$(our_pid "$d")
  [ -n "$pid" ] || die "no server of ours runs in $d"
  for p in $(server_pids "$pid"); do kill "-$sig" "$p" 2>/dev/null || true; done
}

[ $# -ge 2 ] || usage
case "$1" in
  start) [ $# -le 3 ] || usage; start "$2" "${3:-}" ;;
  stop) [ $# -eq 2 ] || usage; stop "$2" ;;
  restart) [ $# -eq 2 ] || usage; restart "$2" ;;
  pause) [ $# -eq 2 ] || usage; signal_all "$2" STOP ;;
  resume) [ $# -eq 2 ] || usage; signal_all "$2" CONT ;;
  ctl)
    [ $# -eq 3 ] || usage
    case "$3" in
      start) [ -f "$2/data/PG_VERSION" ] || die "$2 holds no cluster; use: $0 start $2 [PORT]"
        start "$2" >/dev/null ;;
      stop) stop "$2" ;;
      restart) restart "$2" >/dev/null ;;
      pause) signal_all "$2" STOP ;;
      resume) signal_all "$2" CONT ;;
      *) usage ;;
    esac
    ;;
  *) usage ;;
esac
