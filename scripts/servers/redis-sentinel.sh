#!/usr/bin/env bash
# Needs the Debian 12 package: redis-server (its binary runs sentinels too, with --sentinel).
#
# A throw-away Redis Sentinel setup for tests, all on 127.0.0.1 under one directory: a master
# and a replica (scripts/servers/redis.sh in DIR/node0 and DIR/node1) watched by three
# sentinels (DIR/s0..s2) under the name "mymaster", quorum 2.
#   eval "$(redis-sentinel.sh start DIR)"   # SENTINEL_URI, SENTINEL_PORTS, SENTINEL_DIR set
#   redis-sentinel.sh failover DIR          # SENTINEL FAILOVER, and wait for the new master
#   redis-sentinel.sh ctl DIR stop|start|restart|pause|resume|failover
#   redis-sentinel.sh stop DIR
# ctl acts on the current master (as the sentinels see it), so the conformance suite's server
# faults hit the server reign writes to. down-after-milliseconds is 20 s, longer than any
# fault the tests inject: failovers happen only when asked for.
set -Eeuo pipefail

here=$(cd "$(dirname "$0")" && pwd)
redis_sh="$here/redis.sh"
NAME=mymaster

die() {
  echo "redis-sentinel.sh: $*" >&2
  exit 3
}
usage() {
  echo "usage: $0 start DIR | stop DIR | failover DIR | ctl DIR stop|start|restart|pause|resume|failover" >&2
  exit 2
}

conf_value() { # conf_value FILE KEY
  awk -v k="$2" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' "$1"
}
sentinel_ports() { # the ports of DIR's sentinels
  local d=$1 i
  for i in 0 1 2; do
    if [ -f "$d/s$i/sentinel.conf" ]; then conf_value "$d/s$i/sentinel.conf" port; fi
  done
}
# the master's address as the first sentinel that answers says: "IP PORT"
master_addr() {
  local d=$1 p out
  for p in $(sentinel_ports "$d"); do
    out=$(redis-cli -h 127.0.0.1 -p "$p" --raw SENTINEL get-master-addr-by-name "$NAME" 2>/dev/null | tr '\n' ' ') || continue
    [ -n "${out// /}" ] && { echo "$out"; return 0; }
  done
  return 1
}
node_of_port() { # the node directory whose redis-server listens on PORT
  local d=$1 port=$2 n
  for n in "$d"/node*; do
    [ "$(conf_value "$n/redis.conf" port)" = "$port" ] && { echo "$n"; return 0; }
  done
  die "no node of $d listens on $port"
}
current_master_dir() {
  local d=$1 addr
  addr=$(master_addr "$d") || die "no sentinel of $d answers"
  node_of_port "$d" "$(awk '{print $2}' <<<"$addr")"
}

sentinel_pid() { # the pid of sentinel DIR/sN if it runs and is ours
  local s=$1 pid
  [ -f "$s/sentinel.pid" ] || return 0
  pid=$(tr -cd '0-9' <"$s/sentinel.pid" 2>/dev/null || true)
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF redis-server || return 0
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 0
  echo "$pid"
}

wait_until() { # wait_until SECONDS WHAT CMD...: poll CMD every 0.1 s
  local secs=$1 what=$2 i
  shift 2
  for i in $(seq $((secs * 10))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "$what did not happen within $secs s"
}
replica_known() { # every sentinel lists the replica and the two other sentinels
  local d=$1 p
  for p in $(sentinel_ports "$d"); do
    [ "$(redis-cli -h 127.0.0.1 -p "$p" SENTINEL replicas "$NAME" | grep -c '^slave$' || true)" -ge 1 ] || return 1
    [ "$(redis-cli -h 127.0.0.1 -p "$p" SENTINEL sentinels "$NAME" | grep -c '^name$' || true)" -ge 2 ] || return 1
  done
}
in_sync() { # the replica's link to the master is up
  local d=$1 m n port
  m=$(current_master_dir "$d")
  for n in "$d"/node*; do
    [ "$n" != "$m" ] || continue
    port=$(conf_value "$n/redis.conf" port)
    redis-cli -h 127.0.0.1 -p "$port" INFO replication | grep '^master_link_status:up' >/dev/null || return 1
  done
}

start() {
  local d=$1 i mport p0 ports=() uri hosts=""
  command -v redis-server >/dev/null || die "redis-server is missing -- install with: apt-get install -y redis-server"
  mkdir -p "$d"
  d=$(cd "$d" && pwd)
  eval "$(bash "$redis_sh" start "$d/node0")"
  mport=$REDIS_PORT
  eval "$(bash "$redis_sh" start "$d/node1")"
  # replicaof in the config too, so a restart of the replica keeps its role
  echo "replicaof 127.0.0.1 $mport" >>"$d/node1/redis.conf"
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" REPLICAOF 127.0.0.1 "$mport" >/dev/null
  for i in 0 1 2; do
    mkdir -p "$d/s$i"
    p0=$((20000 + RANDOM % 40000))
    while (exec 3<>"/dev/tcp/127.0.0.1/$p0") 2>/dev/null; do p0=$((20000 + RANDOM % 40000)); done
    ports+=("$p0")
    cat >"$d/s$i/sentinel.conf" <<CONF
# written by reign's scripts/servers/redis-sentinel.sh; throw-away (sentinel rewrites it)
bind 127.0.0.1
port $p0
daemonize yes
pidfile $d/s$i/sentinel.pid
logfile $d/s$i/sentinel.log
dir $d/s$i
sentinel monitor $NAME 127.0.0.1 $mport 2
sentinel down-after-milliseconds $NAME 20000
sentinel failover-timeout $NAME 10000
sentinel parallel-syncs $NAME 1
CONF
    redis-server "$d/s$i/sentinel.conf" --sentinel </dev/null >>"$d/s$i/sentinel.out" 2>&1 ||
      die "sentinel $i failed to start; see $d/s$i/sentinel.log"
    hosts+="${hosts:+,}127.0.0.1:$p0"
  done
  wait_until 30 "sentinels discovering the replica and each other" replica_known "$d"
  wait_until 10 "the replica's first sync" in_sync "$d"
  uri="redis-sentinel://$hosts/$NAME"
  printf 'export SENTINEL_URI=%q SENTINEL_PORTS=%q SENTINEL_DIR=%q SENTINEL_PORT=%q\n' \
    "$uri" "${ports[*]}" "$d" "${ports[0]}"
}

failover() {
  local d=$1 before p i out
  before=$(master_addr "$d") || die "no sentinel of $d answers"
  # the replica must be in sync, or the failover loses the writes it missed
  wait_until 10 "the replica catching up" in_sync "$d"
  p=$(sentinel_ports "$d" | awk 'NR == 1') # not head: pipefail and SIGPIPE
  new_master_up() {
    local addr port
    addr=$(master_addr "$d") || return 1
    [ "$addr" != "$before" ] || return 1
    port=$(awk '{print $2}' <<<"$addr")
    [ "$(redis-cli -h 127.0.0.1 -p "$port" ROLE | awk 'NR == 1')" = master ]
  }
  # A failover can abort (seen once on a loaded machine: the promoted replica
  # was not seen as a master within failover-timeout): ask again, 3 times.
  local attempt done=0
  for attempt in 1 2 3; do
    for i in $(seq 50); do
      out=$(redis-cli -h 127.0.0.1 -p "$p" SENTINEL FAILOVER "$NAME" 2>&1 || true)
      [ "$out" = OK ] && break
      sleep 0.2 # INPROG (the last one is still ending) or NOGOODSLAVE (not seen yet)
    done
    [ "$out" = OK ] || die "SENTINEL FAILOVER: $out"
    for i in $(seq 150); do
      if new_master_up; then done=1; break; fi
      sleep 0.1
    done
    [ "$done" = 0 ] || break
    echo "redis-sentinel.sh: the failover from $before did not end within 15 s; asking again" >&2
  done
  [ "$done" = 1 ] || die "three failovers from $before did not end"
  # Sentinel turns the old master into a replica of the new one when its
  # next INFO (every 10 s) shows it still a master. Do it now, as Sentinel
  # would, so the next failover finds a replica in sync to promote.
  local new old_port
  new=$(master_addr "$d")
  old_port=$(awk '{print $2}' <<<"$before")
  redis-cli -h 127.0.0.1 -p "$old_port" REPLICAOF $new >/dev/null 2>&1 || true
  wait_until 30 "the old master rejoining as a replica" in_sync "$d"
}

stop() {
  local d=$1 s pid i n
  [ -d "$d" ] || return 0
  d=$(cd "$d" && pwd)
  for s in "$d"/s*; do
    [ -d "$s" ] || continue
    pid=$(sentinel_pid "$s")
    [ -n "$pid" ] || continue
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do [ -n "$(sentinel_pid "$s")" ] || break; sleep 0.1; done
    [ -z "$(sentinel_pid "$s")" ] || kill -KILL "$pid" 2>/dev/null || true
  done
  for n in "$d"/node*; do
    [ -d "$n" ] && bash "$redis_sh" stop "$n"
  done
  return 0
}

ctl() {
  local d=$1 cmd=$2 m
  d=$(cd "$d" && pwd)
  case "$cmd" in
    failover) failover "$d" ;;
    stop | start | restart | pause | resume)
      # start after stop: the master is still the one stopped (no failover within 20 s)
      m=$(current_master_dir "$d")
      bash "$redis_sh" ctl "$m" "$cmd"
      ;;
    *) usage ;;
  esac
}

[ $# -ge 2 ] || usage
case "$1" in
  start) [ $# -eq 2 ] || usage; start "$2" ;;
  stop) [ $# -eq 2 ] || usage; stop "$2" ;;
  failover) [ $# -eq 2 ] || usage; failover "$(cd "$2" && pwd)" ;;
  ctl) [ $# -eq 3 ] || usage; ctl "$2" "$3" ;;
  *) usage ;;
esac
