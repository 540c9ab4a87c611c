#!/usr/bin/env bash
# Needs the Debian 12 packages: etcd-server (etcd) and etcd-client (etcdctl); openssl for start-tls.
#
# Throw-away etcd servers for tests: subprocesses (not system services) on 127.0.0.1, each
# member's data, log and pid file in one directory.
#   eval "$(etcd.sh start DIR [PORT])"     # one member: ETCD_PORT, ETCD_DIR, REIGN_TEST_ETCD_URI,
#                                           # REIGN_TEST_ETCD_CTL (server control for conformance)
#   eval "$(etcd.sh start-auth DIR [PORT])" # one member with auth on: user root, password
#                                           # $ETCD_PASSWORD or a random one, in the URI
#   eval "$(etcd.sh start-tls DIR [PORT])"  # one member over TLS with client certificates made
#                                           # here with openssl: an etcds:// URI with cacert=…
#   eval "$(etcd.sh start-cluster DIR)"     # three members: REIGN_TEST_ETCD_CLUSTER_URI with
#                                           # all three endpoints, REIGN_TEST_ETCD_CLUSTER_PIDS
#                                           # (same order), REIGN_TEST_ETCD_CLUSTER_DIR
#   etcd.sh restart DIR                     # stop, then start on the same ports with the same data
#   etcd.sh stop DIR
#   etcd.sh pause DIR | resume DIR          # SIGSTOP / SIGCONT every member of DIR
#   etcd.sh ctl DIR stop|start|restart|pause|resume   # the conformance suite's server control
#   etcd.sh member DIR N start|stop|kill|pause|resume # one member of a cluster (N = 1..3)
#   etcd.sh pids DIR                        # the running members' pids, in endpoint order
# Ports default to random free ones. Members run with a 50 ms heartbeat and a 500 ms election
# timeout, so a lost leader is replaced quickly and etcd's smallest lease TTL is 1 s (with the
# defaults it would be 2 s). `start` installs nothing; it prints the apt-get line when etcd is
# missing. `stop` signals only the pids recorded in DIR, and only while each still is an etcd.
set -Eeuo pipefail

PACKAGES="etcd-server etcd-client"

die() {
  echo "etcd.sh: $*" >&2
  exit 3
}

usage() {
  cat >&2 <<USAGE
usage: $0 start DIR [PORT] | start-auth DIR [PORT] | start-tls DIR [PORT] | start-cluster DIR
       $0 restart DIR | stop DIR | pause DIR | resume DIR | pids DIR
       $0 ctl DIR stop|start|restart|pause|resume | member DIR N start|stop|kill|pause|resume
USAGE
  exit 2
}

need_etcd() {
  if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
    die "etcd or etcdctl is missing -- install with: apt-get install -y $PACKAGES"
  fi
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# a free port not in the list of ports already picked ($@)
random_free_port() {
  local p i q taken
  for i in $(seq 200); do
    p=$((20000 + RANDOM % 40000))
    taken=0
    for q in "$@"; do [ "$q" != "$p" ] || taken=1; done
    [ "$taken" = 1 ] || port_in_use "$p" || { echo "$p"; return 0; }
  done
  die "found no free port on 127.0.0.1"
}

# the pid in FILE if that process still runs, is an etcd and is not a zombie
live_pid() {
  local f=$1 pid state
  [ -f "$f" ] || return 0
  pid=$(tr -cd '0-9' <"$f" 2>/dev/null || true)
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qE '(^|/)etcd ' || return 0
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
  [ "$state" != "Z" ] || return 0
  echo "$pid"
}

# DIR/etcd.conf holds shell assignments written by start*: MODE, MEMBERS, CLIENT_PORTS,
# PEER_PORTS, TOKEN, PASSWORD; read it in a subshell-safe way
load_conf() {
  local d=$1
  [ -f "$d/etcd.conf" ] || die "$d/etcd.conf is missing: nothing was started there"
  # shellcheck disable=SC1091
  . "$d/etcd.conf"
}

# member N's pid file: the single member's is DIR/etcd.pid (what the conformance suite's
# server_ctl.sh reads); cluster members use DIR/mN.pid
pid_file() {
  local d=$1 n=$2
  if [ "$MEMBERS" = 1 ]; then echo "$d/etcd.pid"; else echo "$d/m$n.pid"; fi
}

scheme() {
  if [ "$MODE" = tls ]; then echo https; else echo http; fi
}

client_url() { # client_url N
  local ports=($CLIENT_PORTS)
  echo "$(scheme)://127.0.0.1:${ports[$(($1 - 1))]}"
}

ctl_flags() { # etcdctl flags for member N (TLS files, credentials)
  local n=$1 d=$2
  echo "--endpoints=$(client_url "$n") --dial-timeout=1s --command-timeout=2s"
  [ "$MODE" != tls ] || echo "--cacert=$d/tls/ca.pem --cert=$d/tls/client.pem --key=$d/tls/client-key.pem"
}

etcdctl_auth() { # etcdctl_auth DIR N ARGS...: etcdctl against member N, as root when auth is on
  local d=$1 n=$2
  shift 2
  # shellcheck disable=SC2046
  if [ -n "${PASSWORD:-}" ] && [ -f "$d/auth.on" ]; then
    etcdctl $(ctl_flags "$n" "$d") --user "root:$PASSWORD" "$@"
  else
    etcdctl $(ctl_flags "$n" "$d") "$@"
  fi
}

run_member() { # run_member DIR N: start member N in the background, record its pid
  local d=$1 n=$2 cps pps name cluster="" i pf
  cps=($CLIENT_PORTS)
  pps=($PEER_PORTS)
  name="m$n"
  pf=$(pid_file "$d" "$n")
  [ -z "$(live_pid "$pf")" ] || return 0
  if port_in_use "${cps[$((n - 1))]}" || port_in_use "${pps[$((n - 1))]}"; then
    die "port ${cps[$((n - 1))]} or ${pps[$((n - 1))]} on 127.0.0.1 is already in use"
  fi
  for i in $(seq "$MEMBERS"); do
    cluster+="${cluster:+,}m$i=http://127.0.0.1:${pps[$((i - 1))]}"
  done
  local tls=()
  if [ "$MODE" = tls ]; then
    tls=(--cert-file "$d/tls/server.pem" --key-file "$d/tls/server-key.pem"
      --trusted-ca-file "$d/tls/ca.pem" --client-cert-auth)
  fi
  mkdir -p "$d/$name"
  etcd --name "$name" --data-dir "$d/$name/data" \
    --listen-client-urls "$(client_url "$n")" --advertise-client-urls "$(client_url "$n")" \
    --listen-peer-urls "http://127.0.0.1:${pps[$((n - 1))]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${pps[$((n - 1))]}" \
    --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "$TOKEN" \
    --heartbeat-interval 50 --election-timeout 500 "${tls[@]}" \
    </dev/null >>"$d/$name/etcd.log" 2>&1 &
  echo $! >"$pf"
}

# try_healthy DIR N...: until each member answers `endpoint health`; returns 1 (with the reason
# on stderr) if one exits or stays unhealthy for 15 s
try_healthy() {
  local d=$1 n i
  shift
  for n in "$@"; do
    for i in $(seq 150); do
      if etcdctl_auth "$d" "$n" endpoint health >/dev/null 2>&1; then
        continue 2
      fi
      if [ -z "$(live_pid "$(pid_file "$d" "$n")")" ]; then
        echo "etcd.sh: etcd member $n exited; see $d/m$n/etcd.log" >&2
        return 1
      fi
      sleep 0.1
    done
    echo "etcd.sh: etcd member $n did not become healthy on $(client_url "$n") within 15 s; see $d/m$n/etcd.log" >&2
    return 1
  done
}

wait_healthy() { # wait_healthy DIR N...: try_healthy or die
  try_healthy "$@" || exit 3
}

# a member of DIR exited because another process took its port between our check and its bind
lost_port_race() {
  grep -qs "address already in use" "$1"/m[0-9]*/etcd.log
}

uri_escape() { # percent-encode for the userinfo part of a URI
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
  local d=$1 cps hosts="" i uri userinfo="" query="" pids=""
  cps=($CLIENT_PORTS)
  for i in $(seq "$MEMBERS"); do
    hosts+="${hosts:+,}127.0.0.1:${cps[$((i - 1))]}"
    pids+="${pids:+,}$(live_pid "$(pid_file "$d" "$i")")"
  done
  [ -z "${PASSWORD:-}" ] || userinfo="root:$(uri_escape "$PASSWORD")@"
  if [ "$MODE" = tls ]; then
    query="?cacert=$d/tls/ca.pem&cert=$d/tls/client.pem&key=$d/tls/client-key.pem"
    uri="etcds://$userinfo$hosts$query"
  else
    uri="etcd://$userinfo$hosts"
  fi
  local ctl
  ctl="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}") ctl $d"
  if [ "$MEMBERS" = 1 ]; then
    printf 'export ETCD_PORT=%q ETCD_DIR=%q ETCD_PID=%q ETCD_URI=%q REIGN_TEST_ETCD_URI=%q REIGN_TEST_ETCD_CTL=%q\n' \
      "${cps[0]}" "$d" "$pids" "$uri" "$uri" "$ctl"
    if [ "$MODE" = auth ]; then
      printf 'export REIGN_TEST_ETCD_AUTH_URI=%q ETCD_PASSWORD=%q\n' "$uri" "$PASSWORD"
    elif [ "$MODE" = tls ]; then
      printf 'export REIGN_TEST_ETCD_TLS_URI=%q\n' "$uri"
    fi
  else
    printf 'export REIGN_TEST_ETCD_CLUSTER_URI=%q REIGN_TEST_ETCD_CLUSTER_PIDS=%q REIGN_TEST_ETCD_CLUSTER_DIR=%q REIGN_TEST_ETCD_CLUSTER_CTL=%q\n' \
      "$uri" "$pids" "$d" "$ctl"
  fi
}

make_tls() { # make_tls DIR: a CA, a server certificate for 127.0.0.1 and a client certificate
  local t=$1/tls
  command -v openssl >/dev/null || die "openssl is missing -- install with: apt-get install -y openssl"
  mkdir -p "$t"
  (
    cd "$t"
    openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=reign test CA" \
      -keyout ca-key.pem -out ca.pem
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server-key.pem -out server.csr
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 7 \
      -extfile server.ext -out server.pem
    openssl req -newkey rsa:2048 -nodes -subj "/CN=root" -keyout client-key.pem -out client.csr
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 7 \
      -extfile client.ext -out client.pem
  ) >"$t/openssl.log" 2>&1 || die "openssl failed; see $t/openssl.log"
}

start() { # start MODE MEMBERS DIR [PORT]
  local mode=$1 members=$2 d=$3 port=${4:-} cps=() pps=() i p attempt
  need_etcd
  if [ -n "$port" ]; then
    case "$port" in *[!0-9]*) echo "PORT must be a number" >&2; exit 2 ;; esac
    if [ "$port" -lt 1024 ] || [ "$port" -gt 65535 ]; then
      echo "PORT must be 1024..65535" >&2
      exit 2
    fi
  fi
  mkdir -p "$d"
  d=$(cd "$d" && pwd)
  if [ -f "$d/etcd.conf" ]; then
    (
      load_conf "$d"
      for i in $(seq "$MEMBERS"); do
        [ -z "$(live_pid "$(pid_file "$d" "$i")")" ] ||
          die "an etcd from an earlier start still runs in $d; run: $0 stop $d"
      done
    )
  fi
  local password=""
  if [ "$mode" = auth ]; then
    password=${ETCD_PASSWORD:-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')}
    case "$password" in *[[:space:]\'\"\\]*) die "ETCD_PASSWORD must not hold blanks, quotes or backslashes" ;; esac
  fi
  # Random ports can be taken by someone else between our check and etcd's bind: then start
  # over with other ports (a few times).
  for attempt in 1 2 3 4 5; do
    cps=()
    pps=()
    for i in $(seq "$members"); do
      if [ "$i" = 1 ] && [ -n "$port" ]; then
        p=$port
      else
        p=$(random_free_port "${cps[@]}" "${pps[@]}")
      fi
      cps+=("$p")
      pps+=("$(random_free_port "${cps[@]}" "${pps[@]}")")
    done
    rm -rf "$d"/m[0-9]* "$d/auth.on" "$d/tls"
    cat >"$d/etcd.conf" <<CONF
# written by reign's scripts/servers/etcd.sh; throw-away
MODE='$mode'
MEMBERS='$members'
CLIENT_PORTS='${cps[*]}'
PEER_PORTS='${pps[*]}'
TOKEN='reign-test-$$-$RANDOM'
PASSWORD='$password'
CONF
    [ "$mode" != tls ] || make_tls "$d"
    load_conf "$d"
    for i in $(seq "$members"); do run_member "$d" "$i"; done
    try_healthy "$d" $(seq "$members") && break
    lost_port_race "$d" && [ "$attempt" -lt 5 ] || { stop "$d"; exit 3; }
    echo "etcd.sh: a port was taken meanwhile; starting again on other ports" >&2
    stop "$d"
  done
  if [ "$mode" = auth ]; then
    etcdctl_auth "$d" 1 user add "root:$PASSWORD" >/dev/null
    etcdctl_auth "$d" 1 role add root >/dev/null 2>&1 || true
    etcdctl_auth "$d" 1 user grant-role root root >/dev/null 2>&1 || true
    etcdctl_auth "$d" 1 auth enable >/dev/null
    touch "$d/auth.on"
  fi
  print_env "$d"
}

stop_member() { # stop_member DIR N [SIGNAL]
  local d=$1 n=$2 sig=${3:-TERM} pf pid i
  pf=$(pid_file "$d" "$n")
  pid=$(live_pid "$pf")
  [ -n "$pid" ] || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  kill -CONT "$pid" 2>/dev/null || true # a paused member cannot act on SIGTERM
  for i in $(seq 100); do
    [ -n "$(live_pid "$pf")" ] || return 0
    sleep 0.1
  done
  # still there after 10 s: it is throw-away, so kill it
  kill -KILL "$pid" 2>/dev/null || true
  for i in $(seq 50); do
    [ -n "$(live_pid "$pf")" ] || return 0
    sleep 0.1
  done
  die "etcd $pid in $d did not exit"
}

stop() {
  local d=$1 i
  [ -d "$d" ] && [ -f "$d/etcd.conf" ] || return 0
  d=$(cd "$d" && pwd)
  load_conf "$d"
  for i in $(seq "$MEMBERS"); do stop_member "$d" "$i"; done
}

run_all() { # start every member of DIR again (same ports, same data) and wait for health
  local d=$1 i
  load_conf "$d"
  for i in $(seq "$MEMBERS"); do run_member "$d" "$i"; done
  wait_healthy "$d" $(seq "$MEMBERS")
}

restart() {
  local d=$1
  [ -f "$d/etcd.conf" ] || die "$d/etcd.conf is missing: nothing was started there"
  d=$(cd "$d" && pwd)
  stop "$d"
  run_all "$d"
  print_env "$d"
}

signal_all() { # signal_all DIR SIG
  local d=$1 i pid found=0
  d=$(cd "$d" && pwd)
  load_conf "$d"
  for i in $(seq "$MEMBERS"); do
    pid=$(live_pid "$(pid_file "$d" "$i")")
    [ -z "$pid" ] || { kill "-$2" "$pid"; found=1; }
  done
  [ "$found" = 1 ] || die "no etcd of ours runs in $d"
}

member() { # member DIR N ACTION
  local d=$1 n=$2 action=$3 pid
  d=$(cd "$d" && pwd)
  load_conf "$d"
  case "$n" in *[!0-9]* | "") usage ;; esac
  [ "$n" -ge 1 ] && [ "$n" -le "$MEMBERS" ] || die "member $n: $d has members 1..$MEMBERS"
  case "$action" in
    start) run_member "$d" "$n"; wait_healthy "$d" "$n" ;;
    stop) stop_member "$d" "$n" ;;
    kill) stop_member "$d" "$n" KILL ;;
    pause | resume)
      pid=$(live_pid "$(pid_file "$d" "$n")")
      [ -n "$pid" ] || die "member $n of $d is not running"
      if [ "$action" = pause ]; then kill -STOP "$pid"; else kill -CONT "$pid"; fi
      ;;
    *) usage ;;
  esac
}

pids() {
  local d=$1 i out=""
  d=$(cd "$d" && pwd)
  load_conf "$d"
  for i in $(seq "$MEMBERS"); do out+="${out:+ }$(live_pid "$(pid_file "$d" "$i")")"; done
  echo "$out"
}

# ctl DIR stop|start|restart|pause|resume: the conformance suite's server control;
# start after stop reuses the recorded ports and data.
ctl() {
  local d=$1 cmd=$2
  case "$cmd" in
    stop) stop "$d" ;;
    start) d=$(cd "$d" && pwd); run_all "$d" ;;
    restart) restart "$d" >/dev/null ;;
    pause) signal_all "$d" STOP ;;
    resume) signal_all "$d" CONT ;;
    *) usage ;;
  esac
}

[ $# -ge 2 ] || usage
case "$1" in
  start) [ $# -le 3 ] || usage; start single 1 "$2" "${3:-}" ;;
  start-auth) [ $# -le 3 ] || usage; start auth 1 "$2" "${3:-}" ;;
  start-tls) [ $# -le 3 ] || usage; start tls 1 "$2" "${3:-}" ;;
  start-cluster) [ $# -eq 2 ] || usage; start cluster 3 "$2" ;;
  restart) [ $# -eq 2 ] || usage; restart "$2" ;;
  stop) [ $# -eq 2 ] || usage; stop "$2" ;;
  ctl) [ $# -eq 3 ] || usage; ctl "$2" "$3" ;;
  member) [ $# -eq 4 ] || usage; member "$2" "$3" "$4" ;;
  pids) [ $# -eq 2 ] || usage; pids "$2" ;;
  pause) [ $# -eq 2 ] || usage; signal_all "$2" STOP ;;
  resume) [ $# -eq 2 ] || usage; signal_all "$2" CONT ;;
  *) usage ;;
esac
