#!/usr/bin/env bash
# Needs Debian 12 packages: radosgw ceph-mon ceph-osd curl   (Ceph 16.2.x; ceph-common comes with them)
#
# A throw-away S3 server for tests: single-host Ceph (one monitor, one memstore OSD, no mgr) and its
# RADOS Gateway on 127.0.0.1, everything in one directory, no systemd, no disks. The monitor takes
# PORT+1, the OSD free ports from 6800 up. User REIGNTESTKEY/reigntestsecret, bucket "reign".
#   eval "$(s3.sh start DIR [PORT])"   # prints REIGN_TEST_S3_URI, AWS_*, S3_ENDPOINT, S3_DIR
#   s3.sh stop DIR | restart DIR | pause DIR | resume DIR
#   s3.sh ctl DIR stop|start|restart|pause|resume     (for REIGN_CONF_SERVER_CTL)
# Objects live in the OSD's RAM (memstore): stop, restart and start-after-stop LOSE EVERY OBJECT
# (the bucket and user are made again, terms start over). pause/resume SIGSTOP/SIGCONT the gateway
# only, so the cluster behind it keeps its heartbeats. `start` installs nothing: it prints the
# apt-get line when a package is missing. Every daemon's pid is recorded in DIR/pids; `stop` signals
# only those, and only while their command line still names DIR's ceph.conf. Logs: DIR/*.log.
# Adapted from /work/shared/servers/s3-server.sh (tested recipe, start ~1.3 s, stop ~1.7 s).
set -Eeuo pipefail

PACKAGES="radosgw ceph-mon ceph-osd curl"
KEY=REIGNTESTKEY
SECRET=reigntestsecret
BUCKET=reign
REGION=us-east-1

log() { [ -z "${S3_SERVER_VERBOSE:-}" ] || echo "s3.sh: $(date +%T.%N | cut -c1-12) $*" >&2; }
die() {
  echo "s3.sh: $*" >&2
  exit 3
}
usage() {
  echo "usage: $0 start DIR [PORT] | stop DIR | restart DIR | pause DIR | resume DIR |" \
    "ctl DIR stop|start|restart|pause|resume" >&2
  exit 2
}

# "name pid" of each recorded daemon that still runs with DIR's ceph.conf on its command line
our_pids() {
  local d=$1 name pid state
  [ -f "$d/pids" ] || return 0
  while read -r name pid; do
    [ -r "/proc/$pid/cmdline" ] || continue
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
    [ "$state" != Z ] || continue # exited, waiting to be reaped
    if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$d/ceph.conf"; then echo "$name $pid"; fi
  done <"$d/pids"
  return 0
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

random_free_port() { # a port P with P and P+1 free (RGW and the monitor)
  local p i
  for i in $(seq 200); do
    p=$((20000 + RANDOM % 40000))
    port_in_use "$p" || port_in_use $((p + 1)) || { echo "$p"; return 0; }
  done
  die "found no two free ports in a row on 127.0.0.1"
}

# run one daemon in the foreground (-f), in its own session, detached from our output; record its pid
spawn() {
  local d=$1 name=$2
  shift 2
  setsid "$@" </dev/null >>"$d/$name.out" 2>&1 &
  echo "$name $!" >>"$d/pids"
}

stop() {
  local d=$1 pids i
  [ -d "$d" ] || return 0
  d=$(cd "$d" && pwd)
  pids=$(our_pids "$d" | awk '{print $2}')
  if [ -n "$pids" ]; then
    # a stopped gateway ignores TERM until continued
    kill -CONT $pids 2>/dev/null || true
    # everything is throw-away: ask politely, then after 1.5 s (RGW alone can take 6 s) kill
    kill -TERM $pids 2>/dev/null || true
    for i in $(seq 15); do [ -n "$(our_pids "$d")" ] || break; sleep 0.1; done
    pids=$(our_pids "$d" | awk '{print $2}')
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
    for i in $(seq 50); do [ -n "$(our_pids "$d")" ] || break; sleep 0.1; done
    [ -z "$(our_pids "$d")" ] || die "daemons in $d did not exit: $(our_pids "$d" | tr '\n' ' ')"
  fi
  rm -f "$d/pids"
}

print_env() {
  local port=$1 d=$2
  cat <<ENV
export AWS_ACCESS_KEY_ID=$KEY
export AWS_SECRET_ACCESS_KEY=$SECRET
export AWS_REGION=$REGION
export S3_ENDPOINT=http://127.0.0.1:$port
export S3_BUCKET=$BUCKET
export S3_DIR=$d
export REIGN_TEST_S3_URI='s3://$BUCKET/test?endpoint=http://127.0.0.1:$port&path_style=1&region=$REGION'
ENV
}

start_once() {
  local d=$1 port=$2 b
  for b in "$port" $((port + 1)); do
    if port_in_use "$b"; then
      echo "s3.sh: 127.0.0.1:$b is already in use (RGW needs PORT, the monitor PORT+1)" >&2
      exit 3
    fi
  done
  # remove what an earlier run left (only the names this script creates)
  rm -rf "$d/mon" "$d/osd0" "$d/run" "$d/pids" "$d/monmap" "$d/keyring" "$d/ceph.conf" "$d"/*.log "$d"/*.out
  mkdir -p "$d/mon" "$d/osd0" "$d/run"
  echo "$port" >"$d/port"
  # a failure after this point stops whatever was started
  trap 'echo "s3.sh: start failed; logs in $d" >&2; stop "$d"' ERR

  local mon_port=$((port + 1)) fsid
  fsid=$(cat /proc/sys/kernel/random/uuid)
  cat >"$d/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$mon_port
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
# the default 1 s paxos batching makes each of RGW's pool creations wait; 14 s to ready -> ~1.3 s
paxos propose interval = 0.05
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
run dir = $d/run
admin socket = $d/run/\$name.asok
log file = $d/\$name.log
[mon.a]
mon data = $d/mon
[osd.0]
osd data = $d/osd0
# at boot the osd may send these mon commands before it knows the fsid ('wrong fsid', osd exits);
# this script places osd.0 in the crush map itself
osd crush update on start = false
osd class update on start = false
osd objectstore = memstore
memstore device bytes = 1073741824
[client.rgw]
# RGW writes headers and body apart: without tcp_nodelay, Nagle + the client's delayed ACK add
# 40 ms to every GET on a kept-alive connection
rgw frontends = beast endpoint=127.0.0.1:$port tcp_nodelay=1
# virtual-host addressing too: http://reign.localhost:PORT/key (curl resolves *.localhost locally)
rgw dns name = localhost
CONF
  local c=(-c "$d/ceph.conf")
  log "mon mkfs"
  monmaptool --create --add a "v1:127.0.0.1:$mon_port" --fsid "$fsid" "$d/monmap" >>"$d/setup.log" 2>&1
  ceph-authtool --create-keyring "$d/keyring" --gen-key -n mon. --cap mon 'allow *' >>"$d/setup.log" 2>&1
  ceph-mon --mkfs -i a --monmap "$d/monmap" --keyring "$d/keyring" "${c[@]}" >>"$d/setup.log" 2>&1
  spawn "$d" mon.a ceph-mon -f -i a "${c[@]}"
  log "osd create"
  timeout 30 ceph "${c[@]}" osd create >>"$d/setup.log" 2>&1
  ceph-osd -i 0 --mkfs "${c[@]}" >>"$d/setup.log" 2>&1
  spawn "$d" osd.0 ceph-osd -f -i 0 "${c[@]}"
  log "crush add"
  timeout 30 ceph "${c[@]}" osd crush add osd.0 1.0 host=localhost root=default >>"$d/setup.log" 2>&1
  log "rgw"
  spawn "$d" rgw radosgw -f -n client.rgw "${c[@]}"
  local i code=""
  for i in $(seq 240); do
    code=$(curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/" 2>/dev/null || true)
    [ "$code" = 200 ] && break
    [ "$(our_pids "$d" | wc -l)" = 3 ] || { echo "s3.sh: a daemon exited early" >&2; break; }
    sleep 0.25
  done
  [ "$code" = 200 ] || { echo "s3.sh: RGW not answering on 127.0.0.1:$port" >&2; false; }
  log "user create"
  timeout 60 radosgw-admin "${c[@]}" user create --uid=reign --display-name=reign \
    --access-key="$KEY" --secret-key="$SECRET" >>"$d/setup.log" 2>&1
  # curl 7.88's --aws-sigv4 does not add x-amz-content-sha256, which S3 requires
  log "bucket create"
  for i in $(seq 40); do
    code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X PUT --aws-sigv4 "aws:amz:$REGION:s3" \
      --user "$KEY:$SECRET" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "http://127.0.0.1:$port/$BUCKET" || true)
    [ "$code" = 200 ] && break
    sleep 0.25
  done
  [ "$code" = 200 ] || { echo "s3.sh: bucket not created (HTTP $code)" >&2; false; }
  trap - ERR
  log "ready"
}

start() {
  local d=$1 port=${2:-} missing="" b attempt rc chosen=0
  for b in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph-authtool ceph curl setsid; do
    command -v "$b" >/dev/null || missing="$missing $b"
  done
  [ -z "$missing" ] || die "missing:$missing -- install with: apt-get install -y $PACKAGES"
  if [ -n "$port" ]; then
    case "$port" in *[!0-9]*) echo "PORT must be a number" >&2; exit 2 ;; esac
    [ "$port" -ge 1024 ] && [ "$port" -le 65534 ] || { echo "PORT must be 1024..65534" >&2; exit 2; }
  else
    port=$(random_free_port)
    chosen=1
  fi
  mkdir -p "$d"
  d=$(cd "$d" && pwd)
  [ -z "$(our_pids "$d")" ] || die "daemons from an earlier start still run in $d; run: $0 stop $d"
  # a fresh cluster is cheap (~1.5 s): on a failed start (which cleans up after itself) try again,
  # each attempt in its own process so that set -e holds inside it
  for attempt in 1 2 3; do
    rc=0
    "$BASH" "$0" start-once "$d" "$port" || rc=$?
    case "$rc" in
      0) print_env "$port" "$d"; return 0 ;;
      2) exit 2 ;;                            # usage: no retry
      3) [ "$chosen" = 1 ] || exit 3 ;;       # a port the caller gave is in use: no retry
    esac
    [ "$attempt" = 3 ] || echo "s3.sh: retrying start ($attempt failed)" >&2
    # a port we picked may have been taken between the check and the bind
    # (RGW: "failed to bind address"): pick another
    [ "$chosen" = 0 ] || port=$(random_free_port)
  done
  exit 1
}

recorded_port() {
  local d=$1
  [ -f "$d/port" ] || die "$d/port is missing: nothing was started there"
  tr -cd '0-9' <"$d/port"
}

signal_gateway() { # signal_gateway DIR SIG: the RADOS Gateway of DIR only
  local d=$1 sig=$2 pid
  d=$(cd "$d" && pwd)
  pid=$(our_pids "$d" | awk '$1 == "rgw" {print $2}')
  [ -n "$pid" ] || die "no running gateway recorded in $d/pids"
  kill "-$sig" "$pid"
}

action() { # action ACTION DIR
  local a=$1 d=$2 port
  case "$a" in
    stop) stop "$d" ;;
    start)
      port=$(recorded_port "$d")
      start "$d" "$port" >/dev/null
      ;;
    restart)
      port=$(recorded_port "$d")
      echo "s3.sh: restart loses every object (memstore keeps them in RAM)" >&2
      stop "$d"
      start "$d" "$port"
      ;;
    pause) signal_gateway "$d" STOP ;;
    resume) signal_gateway "$d" CONT ;;
    *) usage ;;
  esac
}

[ $# -ge 2 ] || usage
case "$1" in
  start) [ $# -le 3 ] || usage; start "$2" "${3:-}" ;;
  start-once) [ $# -eq 3 ] || exit 2; start_once "$2" "$3" ;;
  stop | restart | pause | resume) [ $# -eq 2 ] || usage; action "$1" "$2" ;;
  ctl) [ $# -eq 3 ] || usage; action "$3" "$2" ;;
  *) usage ;;
esac
