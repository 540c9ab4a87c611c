#!/usr/bin/env bash
# Server control for the conformance suite (REIGN_CONF_SERVER_CTL):
#   server_ctl.sh KIND DIR stop|start|restart|pause|resume
# stop/start/restart go to scripts/servers/KIND.sh (start reuses the port and
# password of DIR's config, so the URI stays valid and the data is kept);
# pause/resume SIGSTOP/SIGCONT the server whose pid is in DIR/KIND.pid, and
# only while that process still is the server we started.
set -Eeuo pipefail

here=$(cd "$(dirname "$0")" && pwd)
servers=$(cd "$here/../../scripts/servers" && pwd)

die() {
  echo "server_ctl.sh: $*" >&2
  exit 3
}

[ $# -eq 3 ] || { echo "usage: $0 KIND DIR stop|start|restart|pause|resume" >&2; exit 2; }
kind=$1 dir=$2 action=$3
script="$servers/$kind.sh"
[ -x "$script" ] || [ -f "$script" ] || die "no $script for server kind '$kind'"
[ -d "$dir" ] || die "$dir is not a directory"

# The pid in DIR/KIND.pid while that process runs and its command line names
# the server (a stale pid file must not make us stop a stranger).
server_pid() {
  local pidfile="$dir/$kind.pid" pid
  [ -f "$pidfile" ] || die "$pidfile is missing: is the server running?"
  pid=$(tr -cd '0-9' <"$pidfile")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || die "pid '$pid' in $pidfile is not running"
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qiF "$kind" || die "pid $pid is not a $kind server"
  echo "$pid"
}

conf_value() { # KEY from DIR/redis.conf
  awk -v k="$1" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' "$dir/$kind.conf"
}

case "$action" in
  stop) bash "$script" stop "$dir" ;;
  restart) bash "$script" restart "$dir" >/dev/null ;;
  start)
    case "$kind" in
      redis)
        port=$(conf_value port)
        tls=0
        if [ -n "$(conf_value tls-port)" ]; then port=$(conf_value tls-port) tls=1; fi
        pass=$(conf_value requirepass)
        pass=${pass#\"}
        pass=${pass%\"}
        if [ -n "$pass" ]; then
          REDIS_TLS=$tls REDIS_PASSWORD="$pass" bash "$script" start "$dir" "$port" >/dev/null
        else
          REDIS_TLS=$tls env -u REDIS_PASSWORD bash "$script" start "$dir" "$port" >/dev/null
        fi
        ;;
      *) bash "$script" start "$dir" >/dev/null ;;
    esac
    ;;
  pause) kill -STOP "$(server_pid)" ;;
  resume) kill -CONT "$(server_pid)" ;;
  *) echo "usage: $0 KIND DIR stop|start|restart|pause|resume" >&2; exit 2 ;;
esac
