#!/usr/bin/env bash
# The production topology on one machine, all on loopback: Debian's PostgreSQL, a gRPC code
# server, the daemon and the webserver, with deploy/dagster.yaml.
#   deploy/local.sh up | down | status
# State (the database, DAGSTER_HOME, logs, pids) lives in $ISE_DEPLOY_HOME (./.deploy).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=${ISE_DEPLOY_HOME:-$ROOT/.deploy}
BIN=$ROOT/.venv/bin
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
export DAGSTER_PG_HOST=127.0.0.1 DAGSTER_PG_PORT=${DAGSTER_PG_PORT:-5433} \
  DAGSTER_PG_USER=dagster DAGSTER_PG_PASSWORD=${DAGSTER_PG_PASSWORD:-dagster} DAGSTER_PG_DB=dagster
export DAGSTER_HOME=$STATE/home ISE_DATA_DIR=${ISE_DATA_DIR:-$STATE/data}
WEB_PORT=${ISE_WEB_PORT:-3000}

as_postgres() {  # initdb and postgres refuse to run as root
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {  # name, command...: in its own process group, so `down` stops its children too
  local name=$1; shift
  setsid "$@" >"$STATE/logs/$name.log" 2>&1 < /dev/null &
  echo $! >"$STATE/pids/$name"
}

wait_for() {  # what, command...
  local what=$1; shift
  for _ in $(seq 1 120); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  echo "local.sh: $what did not come up; see $STATE/logs" >&2
  return 1
}

up() {
  [ -x "$PG_BIN/initdb" ] || { echo "no PostgreSQL server: apt-get install postgresql" >&2; exit 1; }
  "$BIN/python" -c "import dagster_postgres" 2>/dev/null \
    || { echo "dagster-postgres is missing: .venv/bin/pip install -e '.[deploy]'" >&2; exit 1; }
  mkdir -p "$STATE/logs" "$STATE/pids" "$DAGSTER_HOME" "$ISE_DATA_DIR"
  if [ ! -d "$STATE/pg" ]; then
    mkdir -p "$STATE/pg"
    if [ "$(id -u)" = 0 ]; then chown postgres "$STATE/pg"; fi
    pwfile=$(mktemp) && echo "$DAGSTER_PG_PASSWORD" >"$pwfile" && chmod 644 "$pwfile"
    as_postgres "$PG_BIN/initdb" -D "$STATE/pg" -U dagster --pwfile="$pwfile" \
      --auth=scram-sha-256 >"$STATE/logs/initdb.log"
    rm -f "$pwfile"
  fi
  if [ "$(id -u)" = 0 ]; then chown postgres "$STATE/logs"; fi
  as_postgres "$PG_BIN/pg_ctl" -D "$STATE/pg" -l "$STATE/logs/postgres.log" -w \
    -o "-h 127.0.0.1 -p $DAGSTER_PG_PORT -k /tmp" status >/dev/null 2>&1 \
    || as_postgres "$PG_BIN/pg_ctl" -D "$STATE/pg" -l "$STATE/logs/postgres.log" -w \
      -o "-h 127.0.0.1 -p $DAGSTER_PG_PORT -k /tmp" start >/dev/null
  PGPASSWORD=$DAGSTER_PG_PASSWORD psql -h 127.0.0.1 -p "$DAGSTER_PG_PORT" -U dagster -d postgres \
    -tAc "SELECT 1 FROM pg_database WHERE datname='dagster'" | grep -q 1 \
    || PGPASSWORD=$DAGSTER_PG_PASSWORD createdb -h 127.0.0.1 -p "$DAGSTER_PG_PORT" -U dagster dagster
  cp deploy/dagster.yaml "$DAGSTER_HOME/dagster.yaml"
  start code-server "$BIN/dagster" code-server start -h 127.0.0.1 -p 4266 \
    -m ise_dagster.definitions --working-directory "$ROOT"
  wait_for "the code server" "$BIN/dagster" api grpc-health-check -p 4266
  start daemon "$BIN/dagster-daemon" run -w deploy/workspace.yaml
  start webserver "$BIN/dagster-webserver" -h 127.0.0.1 -p "$WEB_PORT" -w deploy/workspace.yaml
  wait_for "the webserver" curl -sf "http://127.0.0.1:$WEB_PORT/server_info"
  echo "up: http://127.0.0.1:$WEB_PORT (DAGSTER_HOME=$DAGSTER_HOME, data in $ISE_DATA_DIR)"
}

down() {
  for name in webserver daemon code-server; do
    pid_file=$STATE/pids/$name
    [ -f "$pid_file" ] || continue
    pid=$(cat "$pid_file")
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$pid_file"
  done
  if [ -d "$STATE/pg" ]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$STATE/pg" -m fast -w stop >/dev/null 2>&1 || true
  fi
  echo "down"
}

status() {
  for name in code-server daemon webserver; do
    pid_file=$STATE/pids/$name
    if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
      echo "$name: running (pid $(cat "$pid_file"))"
    else
      echo "$name: stopped"
    fi
  done
  as_postgres "$PG_BIN/pg_ctl" -D "$STATE/pg" status >/dev/null 2>&1 \
    && echo "postgres: running (127.0.0.1:$DAGSTER_PG_PORT)" || echo "postgres: stopped"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: deploy/local.sh up|down|status" >&2; exit 2 ;;
esac
