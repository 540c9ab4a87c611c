#!/usr/bin/env bash
# Needs the Debian 12 packages: redis-server (redis-tools, for redis-cli, comes with it); openssl
# for REDIS_TLS=1.
#
# A throw-away redis-server for tests: a subprocess (not a system service) on 127.0.0.1, its
# config, data (appendonly), log, pidfile and unix socket all in one directory.
#   eval "$(redis.sh start DIR [PORT])"   # REDIS_PORT, REDIS_URI, REDIS_SOCKET, REDIS_DIR now set
#   redis.sh restart DIR                  # stop, then start on the same port with the same data
#   redis.sh stop DIR
# PORT defaults to a random free one. With $REDIS_PASSWORD set, `start` makes the server require
# it (requirepass) and puts it in REDIS_URI. With REDIS_TLS=1 the port speaks TLS only (no
# plaintext port), with certificates made by tls_certs.sh in DIR/tls, client certificates
# required (Redis's default, tls-auth-clients yes), and REDIS_URI is a rediss:// URI naming
# them; REDIS_TLS_DIR is exported too. `start` installs nothing; it prints the apt-get line
# when redis-server is missing. `stop` signals only the pid in DIR/redis.pid, and only while that
# process still is a redis-server.
set -Eeuo pipefail

PACKAGES="redis-server"

die() {
  echo "redis.sh: $*" >&2
  exit 3
}

usage() {
  echo "usage: $0 start DIR [PORT] | restart DIR | stop DIR | pause DIR | resume DIR | ctl DIR stop|start|restart|pause|resume" >&2
  exit 2
}

# the pid in DIR/redis.pid if that process still runs and is a redis-server (not a zombie)
our_pid() {
  local d=$1 pid state
  [ -f "$d/redis.pid" ] || return 0
  # the daemon may be writing or removing it right now
  pid=$(tr -cd '0-9' <"$d/redis.pid" 2>/dev/null || true)
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF redis-server || return 0
  # a zombie has exited already; it only waits for its parent to reap it
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
  [ "$state" != "Z" ] || return 0
  echo "$pid"
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

conf_value() { # conf_value DIR KEY: a value from DIR/redis.conf ('' if absent)
  awk -v k="$2" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' "$1/redis.conf"
}

server_port() { # the port clients use: the TLS one if there is one
  local p
  p=$(conf_value "$1" tls-port)
  [ -n "$p" ] || p=$(conf_value "$1" port)
  echo "$p"
}

cli() { # cli DIR ARGS...: redis-cli against the server of DIR
  local d=$1 port pass tls=()
  shift
  port=$(server_port "$d")
  [ -z "$(conf_value "$d" tls-port)" ] ||
    tls=(--tls --cacert "$d/tls/ca.crt" --cert "$d/tls/client.crt" --key "$d/tls/client.key")
  pass=$(conf_value "$d" requirepass)
  pass=${pass#\"}
  pass=${pass%\"}
  if [ -n "$pass" ]; then
    REDISCLI_AUTH="$pass" redis-cli -h 127.0.0.1 -p "$port" "${tls[@]}" "$@"
  else
    redis-cli -h 127.0.0.1 -p "$port" "${tls[@]}" "$@"
  fi
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

run_server() { # run_server DIR: start the server of DIR/redis.conf and wait until it answers
  local d=$1 port i
  port=$(server_port "$d")
  if port_in_use "$port"; then
    die "127.0.0.1:$port is already in use"
  fi
  rm -f "$d/redis.pid"
  redis-server "$d/redis.conf" </dev/null >>"$d/redis.out" 2>&1 ||
    die "redis-server failed to start; see $d/redis.out and $d/redis.log"
  # ready = answers PING and has written its pidfile (stop needs it)
  for i in $(seq 100); do
    if [ "$(cli "$d" ping 2>/dev/null)" = "PONG" ] && [ -n "$(our_pid "$d")" ]; then
      return 0
    fi
    sleep 0.1
  done
  die "redis-server did not answer on 127.0.0.1:$port within 10 s (or wrote no $d/redis.pid); see $d/redis.log"
}

print_env() {
  local d=$1 port pass uri scheme=redis query=''
  port=$(server_port "$d")
  pass=$(conf_value "$d" requirepass)
  pass=${pass#\"}
  pass=${pass%\"}
  if [ -n "$(conf_value "$d" tls-port)" ]; then
    scheme=rediss
    query="?cacert=$d/tls/ca.crt&cert=$d/tls/client.crt&key=$d/tls/client.key"
  fi
  uri="$scheme://127.0.0.1:$port$query"
  [ -z "$pass" ] || uri="$scheme://:$(uri_escape "$pass")@127.0.0.1:$port$query"
  printf 'export REDIS_PORT=%q REDIS_URI=%q REDIS_SOCKET=%q REDIS_DIR=%q\n' \
    "$port" "$uri" "$d/redis.sock" "$d"
  [ -z "$query" ] || printf 'export REDIS_TLS_DIR=%q\n' "$d/tls"
}

start() {
  local d=$1 port=${2:-}
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    die "redis-server or redis-cli is missing -- install with: apt-get install -y $PACKAGES"
  fi
  if [ -n "$port" ]; then
    case "$port" in *[!0-9]*) echo "PORT must be a number" >&2; exit 2 ;; esac
    if [ "$port" -lt 1024 ] || [ "$port" -gt 65535 ]; then
      echo "PORT must be 1024..65535" >&2
      exit 2
    fi
  else
    port=$(random_free_port)
  fi
  mkdir -p "$d"
  d=$(cd "$d" && pwd)
  [ -z "$(our_pid "$d")" ] || die "a redis-server from an earlier start still runs in $d; run: $0 stop $d"
  case "${REDIS_PASSWORD:-}" in *[[:space:]\"\\]*) die "REDIS_PASSWORD must not hold blanks, quotes or backslashes" ;; esac
  # a unix socket path is limited to 107 bytes; leave it out rather than fail
  local sock="unixsocket $d/redis.sock"
  [ "${#d}" -lt 95 ] || sock="# unixsocket: $d is too long a path for a socket"
  local listen="port $port"
  if [ "${REDIS_TLS:-0}" = 1 ]; then
    bash "$(dirname "$0")/tls_certs.sh" "$d/tls"
    listen="port 0
tls-port $port
tls-cert-file $d/tls/server.crt
tls-key-file $d/tls/server.key
tls-ca-cert-file $d/tls/ca.crt
tls-auth-clients yes
tls-protocols \"TLSv1.2 TLSv1.3\""
  fi
  cat >"$d/redis.conf" <<CONF
# written by reign's scripts/servers/redis.sh; throw-away
bind 127.0.0.1
protected-mode yes
$listen
$sock
unixsocketperm 700
daemonize yes
supervised no
pidfile $d/redis.pid
logfile $d/redis.log
dir $d
# data survives restart: every write is in the append-only file, fsync'd each second
appendonly yes
appendfsync everysec
save ""
# leases must never be evicted early, nor terms lost
maxmemory-policy noeviction
CONF
  [ -z "${REDIS_PASSWORD:-}" ] || echo "requirepass \"$REDIS_PASSWORD\"" >>"$d/redis.conf"
  run_server "$d"
  print_env "$d"
}

stop() {
  local d=$1 pid i
  [ -d "$d" ] || return 0
  d=$(cd "$d" && pwd)
  pid=$(our_pid "$d")
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do
    [ -n "$(our_pid "$d")" ] || return 0
    sleep 0.1
  done
  # still there after 10 s: it is throw-away, so kill it
  kill -KILL "$pid" 2>/dev/null || true
  for i in $(seq 50); do
    [ -n "$(our_pid "$d")" ] || return 0
    sleep 0.1
  done
  die "redis-server $pid in $d did not exit"
}

restart() {
  local d=$1
  [ -f "$d/redis.conf" ] || die "$d/redis.conf is missing: nothing was started there"
  d=$(cd "$d" && pwd)
  stop "$d"
  run_server "$d"
  print_env "$d"
}

signal() { # signal DIR SIG: SIGSTOP/SIGCONT the server of DIR (pause/resume)
  local pid
  pid=$(our_pid "$1")
  [ -n "$pid" ] || die "no redis-server of ours runs in $1"
  kill "-$2" "$pid"
}

# ctl DIR stop|start|restart|pause|resume: the conformance suite's server control;
# start after stop reuses the recorded port and data.
ctl() {
  local d=$1 cmd=$2
  case "$cmd" in
    stop) stop "$d" ;;
    start) d=$(cd "$d" && pwd); run_server "$d" >/dev/null ;;
    restart) restart "$d" >/dev/null ;;
    pause) signal "$d" STOP ;;
    resume) signal "$d" CONT ;;
    *) usage ;;
  esac
}

[ $# -ge 2 ] || usage
case "$1" in
  start) [ $# -le 3 ] || usage; start "$2" "${3:-}" ;;
  restart) [ $# -eq 2 ] || usage; restart "$2" ;;
  stop) [ $# -eq 2 ] || usage; stop "$2" ;;
  ctl) [ $# -eq 3 ] || usage; ctl "$2" "$3" ;;
  pause) [ $# -eq 2 ] || usage; signal "$2" STOP ;;
  resume) [ $# -eq 2 ] || usage; signal "$2" CONT ;;
  *) usage ;;
esac
