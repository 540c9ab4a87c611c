# Sourced by scripts/chaos.sh and scripts/handover.sh: the backend under test
# and its URI. Needs: root, server (a scripts/servers/<name>.sh, or - for
# none), urivar, suffix (- for none), run (the run's directory) and die().
#   test_backend_uri   sets uri (and starts the server into $run/server)
#   test_backend_stop  stops it again (for the EXIT trap)
test_backend_uri() {
  if [ "$server" = - ]; then
    uri="file://$run/locks"
    return
  fi
  local script=$root/scripts/servers/$server.sh env_out='' attempt
  [ -x "$script" ] || die "$script is missing"
  # A random free port can be taken between the script's check and the
  # server's bind: try a few times.
  for attempt in 1 2 3; do
    if env_out=$("$script" start "$run/server"); then break; fi
    "$script" stop "$run/server" >/dev/null 2>&1 || true
    env_out=''
    echo "$(basename "$0"): $server server did not start (attempt $attempt)" >&2
  done
  [ -n "$env_out" ] || die "$server server did not start"
  eval "$env_out"
  [ -n "${!urivar:-}" ] || die "scripts/servers/$server.sh start printed no $urivar"
  uri=${!urivar}
  [ "$suffix" = - ] || uri=$uri$suffix
}

test_backend_stop() {
  [ "$server" = - ] || "$root/scripts/servers/$server.sh" stop "$run/server" >/dev/null 2>&1 || true
}
