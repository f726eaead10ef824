#!/usr/bin/env bash
# Local development stack under <project>/.stack/: a PostgreSQL 15 cluster set up for wal2json
# logical decoding (database `aidbox`, sql/*.sql loaded) and a nats-server with JetStream.
# Only loopback, ports recorded in .stack/env; `stop` touches only the processes recorded here.
# Usage: scripts/stack.sh start|stop|status|psql [args]|env
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="$ROOT/.stack"
ENV_FILE="$STACK_DIR/env"
PG_LOCATION_FILE="$STACK_DIR/pg-location"
NATS_DIR="$STACK_DIR/nats"
NATS_PID_FILE="$NATS_DIR/nats.pid"
PG_BIN="${PG_BIN:-$(pg_config --bindir 2>/dev/null || true)}"
[[ -x "$PG_BIN/pg_ctl" ]] || PG_BIN=/usr/lib/postgresql/15/bin
PG_USER=postgres
PG_PASSWORD=postgres
PG_DB=aidbox

log() { echo "stack: $*" >&2; }
die() { log "$*"; exit 1; }

# Runs a command as the OS user that owns the cluster (postgres when we are root).
as_pg() {
  if ((EUID == 0)); then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

port_free() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

# Prints the preferred port if free, else the next free one above it.
pick_port() {
  local port="$1"
  for ((i = 0; i < 200; i++)); do
    if port_free "$port"; then echo "$port"; return 0; fi
    port=$((port + 1))
  done
  die "no free port near $1"
}

load_env() {
  TB_PG_PORT="" TB_NATS_PORT="" TB_NATS_MONITOR_PORT=""
  # shellcheck disable=SC1090
  [[ -f "$ENV_FILE" ]] && source "$ENV_FILE"
  return 0
}

save_env() {
  cat >"$ENV_FILE" <<ENV
TB_PG_PORT=$TB_PG_PORT
TB_NATS_PORT=$TB_NATS_PORT
TB_NATS_MONITOR_PORT=$TB_NATS_MONITOR_PORT
ENV
}

# The cluster lives in .stack/pg unless the postgres user cannot reach it there.
pg_base() {
  if [[ -f "$PG_LOCATION_FILE" ]]; then cat "$PG_LOCATION_FILE"; return; fi
  local base="$STACK_DIR/pg"
  if ((EUID == 0)) && ! as_pg test -x "$STACK_DIR"; then
    base="/tmp/topicbridge-stack-$(id -u)/$(echo "$ROOT" | cksum | cut -d ' ' -f 1)/pg"
  fi
  echo "$base" >"$PG_LOCATION_FILE"
  echo "$base"
}

# True when process $1 exists and is not a zombie waiting to be reaped.
alive() {
  local state
  state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" && [[ -n "$state" && "$state" != Z ]]
}

pg_running() {
  [[ -f "$1/data/postmaster.pid" ]] && alive "$(head -n 1 "$1/data/postmaster.pid")" &&
    as_pg "$PG_BIN/pg_ctl" -D "$1/data" status >/dev/null 2>&1
}

# After a crash the dead postmaster can linger as a zombie for a few seconds; postgres
# refuses to start while the PID in postmaster.pid still exists, so wait for it to go.
wait_stale_postmaster() {
  local pidfile="$1/data/postmaster.pid" pid
  [[ -f "$pidfile" ]] || return 0
  pid="$(head -n 1 "$pidfile")"
  for ((i = 0; i < 150; i++)); do
    [[ -e "/proc/$pid" ]] || return 0
    sleep 0.1
  done
}

pg_init() {
  local base="$1"
  (umask 022 && mkdir -p "$base/socket")
  if ((EUID == 0)); then
    chown -R postgres: "$base"
  fi
  local pwfile="$base/pwfile"
  echo "$PG_PASSWORD" >"$pwfile"
  ((EUID == 0)) && chown postgres: "$pwfile"
  as_pg "$PG_BIN/initdb" -D "$base/data" -U "$PG_USER" --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$base/initdb.log" 2>&1 ||
    { cat "$base/initdb.log" >&2; die "initdb failed"; }
  rm -f "$pwfile"
  cat >>"$base/data/postgresql.conf" <<CONF

# topicbridge local stack
listen_addresses = '127.0.0.1'
unix_socket_directories = '$base/socket'
wal_level = logical
output_plugin_libraries = 'wal2json'
max_replication_slots = 10
max_wal_senders = 10
include_if_exists = 'stack_port.conf'
CONF
}

psql_socket() {
  local base; base="$(pg_base)"
  "$PG_BIN/psql" -h "$base/socket" -p "$TB_PG_PORT" -U "$PG_USER" -v ON_ERROR_STOP=1 -X -q "$@"
}

pg_start() {
  local base; base="$(pg_base)"
  [[ -f "$base/data/PG_VERSION" ]] || pg_init "$base"
  if pg_running "$base"; then
    log "postgres already running (port $TB_PG_PORT)"
  else
    wait_stale_postmaster "$base"
    TB_PG_PORT="$(pick_port "${TB_PG_PORT:-55432}")"
    echo "port = $TB_PG_PORT" >"$base/data/stack_port.conf"
    ((EUID == 0)) && chown postgres: "$base/data/stack_port.conf"
    as_pg "$PG_BIN/pg_ctl" -D "$base/data" -l "$base/postgres.log" -w -t 60 start >/dev/null ||
      { tail -n 20 "$base/postgres.log" >&2; die "postgres did not start"; }
    log "postgres started on 127.0.0.1:$TB_PG_PORT (data $base/data)"
  fi
  save_env
  if [[ "$(psql_socket -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != 1 ]]; then
    psql_socket -d postgres -c "CREATE DATABASE $PG_DB"
  fi
  local f
  for f in "$ROOT"/sql/*.sql; do
    [[ -e "$f" ]] || continue
    psql_socket -d "$PG_DB" -f "$f" >/dev/null
  done
}

pg_stop() {
  local base; base="$(pg_base)"
  if pg_running "$base"; then
    as_pg "$PG_BIN/pg_ctl" -D "$base/data" -m fast -w -t 60 stop >/dev/null
    log "postgres stopped"
  fi
}

# The recorded nats-server PID, only if that process is still a nats-server.
nats_pid() {
  [[ -f "$NATS_PID_FILE" ]] || return 1
  local pid; pid="$(cat "$NATS_PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == nats-server ]] &&
    alive "$pid" || return 1
  echo "$pid"
}

nats_start() {
  if nats_pid >/dev/null; then
    log "nats-server already running (port $TB_NATS_PORT)"
    return 0
  fi
  rm -f "$NATS_PID_FILE"
  mkdir -p "$NATS_DIR/store"
  TB_NATS_PORT="$(pick_port "${TB_NATS_PORT:-54222}")"
  TB_NATS_MONITOR_PORT="$(pick_port "${TB_NATS_MONITOR_PORT:-58222}")"
  save_env
  nohup nats-server -js -a 127.0.0.1 -p "$TB_NATS_PORT" -m "$TB_NATS_MONITOR_PORT" \
    -sd "$NATS_DIR/store" -n topicbridge-stack >>"$NATS_DIR/nats.log" 2>&1 </dev/null &
  echo $! >"$NATS_PID_FILE"
  for ((i = 0; i < 100; i++)); do
    if curl -sf "http://127.0.0.1:$TB_NATS_MONITOR_PORT/healthz" >/dev/null 2>&1; then
      log "nats-server started on 127.0.0.1:$TB_NATS_PORT (monitor $TB_NATS_MONITOR_PORT)"
      return 0
    fi
    nats_pid >/dev/null || break
    sleep 0.1
  done
  tail -n 20 "$NATS_DIR/nats.log" >&2
  die "nats-server did not start"
}

nats_stop() {
  local pid
  if pid="$(nats_pid)"; then
    kill -TERM "$pid"
    for ((i = 0; i < 100; i++)); do
      alive "$pid" || break
      sleep 0.1
    done
    alive "$pid" && kill -KILL "$pid"
    log "nats-server stopped"
  fi
  rm -f "$NATS_PID_FILE"
}

print_env() {
  local base; base="$(pg_base)"
  cat <<ENV
export TB_STACK_DIR='$STACK_DIR'
export TB_PG_HOST=127.0.0.1
export TB_PG_PORT=$TB_PG_PORT
export TB_PG_USER=$PG_USER
export TB_PG_PASSWORD=$PG_PASSWORD
export TB_PG_DB=$PG_DB
export TB_PG_SOCKET_DIR='$base/socket'
export TB_PG_DSN='host=127.0.0.1 port=$TB_PG_PORT dbname=$PG_DB user=$PG_USER password=$PG_PASSWORD'
export TB_NATS_PORT=$TB_NATS_PORT
export TB_NATS_MONITOR_PORT=$TB_NATS_MONITOR_PORT
export TB_NATS_URL=nats://127.0.0.1:$TB_NATS_PORT
ENV
}

status() {
  local base; base="$(pg_base)" rc=0
  if pg_running "$base"; then
    echo "postgres: running pid $(head -n 1 "$base/data/postmaster.pid") on 127.0.0.1:$TB_PG_PORT" \
      "(data $base/data, log $base/postgres.log)"
  else echo "postgres: stopped"; rc=3; fi
  local pid
  if pid="$(nats_pid)"; then
    echo "nats-server: running pid $pid on 127.0.0.1:$TB_NATS_PORT (log $NATS_DIR/nats.log)"
  else echo "nats-server: stopped"; rc=3; fi
  return $rc
}

main() {
  local cmd="${1:-}"
  shift || true
  mkdir -p "$STACK_DIR"
  load_env
  case "$cmd" in
    start) pg_start; nats_start ;;
    stop) nats_stop; pg_stop ;;
    status) status ;;
    psql) exec "$PG_BIN/psql" "host=127.0.0.1 port=$TB_PG_PORT dbname=$PG_DB user=$PG_USER password=$PG_PASSWORD" "$@" ;;
    env) print_env ;;
    *) die "usage: $0 start|stop|status|psql [args]|env" ;;
  esac
}

main "$@"
