#!/usr/bin/env bash
# A private, throw-away PostgreSQL 15 for the database tests: loopback only, a free port, its own
# data folder, the upstream tables of CONTRACT §5 created in `product_video_matching`.
#
#   postgres.sh start [DIR]   initialise DIR (a new temp folder when omitted) and start the server;
#                             prints the DSN on stdout (also written to DIR/dsn), DIR on stderr
#   postgres.sh pause DIR     stop the server, keep its data and port (simulates an outage)
#   postgres.sh resume DIR    start it again on the same port with the same data
#   postgres.sh stop DIR      stop the server and delete DIR
#   postgres.sh dsn DIR       print the DSN of DIR's server
#
# Works as a normal user, and as root (CI): initdb refuses to run as root, so then every server
# command runs as the `postgres` system user that Debian's postgresql package creates.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
DB_NAME=product_video_matching
DB_USER=postgres
DB_PASSWORD=dev
UPSTREAM_TABLES_SQL="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/deploy/compose/init_db/10-segmentor-tables.sql"

log() { echo "postgres.sh: $*" >&2; }
die() { log "$*"; exit 1; }

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

port_in_use() {
  # A successful connect means something listens there.
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pick_port() {
  local port tries
  for tries in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    if ! port_in_use "$port"; then
      echo "$port"
      return 0
    fi
  done
  die "no free port found after 50 tries"
}

dsn_of() {
  local dir=$1
  echo "host=127.0.0.1 port=$(cat "$dir/port") dbname=$DB_NAME user=$DB_USER password=$DB_PASSWORD"
}

server_start() {
  local dir=$1
  as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
}

# Mode fast: a clean shutdown that keeps the data (pause); immediate: the data is deleted next.
server_stop() {
  local dir=$1 mode=${2:-fast}
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m "$mode" -w -t 60 stop >/dev/null
  fi
}

psql_run() {
  local dir=$1 db=$2
  shift 2
  PGPASSWORD=$DB_PASSWORD "$PG_BIN/psql" -h 127.0.0.1 -p "$(cat "$dir/port")" -U "$DB_USER" \
    -d "$db" -v ON_ERROR_STOP=1 -q "$@"
}

cmd_start() {
  local dir=${1:-}
  [ -x "$PG_BIN/initdb" ] || die "$PG_BIN/initdb not found: install the Debian package postgresql"
  if [ -z "$dir" ]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/segmentor-pg.XXXXXX")
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ -e "$dir/data" ] && die "$dir already holds a server: use resume, or stop to delete it"
  if [ "$(id -u)" = 0 ]; then
    # The postgres user must reach and own the folder (mktemp makes it 0700 root).
    chown postgres: "$dir"
    chmod 0755 "$dir"
  fi

  local pwfile="$dir/pwfile"
  echo "$DB_PASSWORD" >"$pwfile"
  [ "$(id -u)" = 0 ] && chown postgres: "$pwfile"
  as_owner "$PG_BIN/initdb" -D "$dir/data" -U "$DB_USER" --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 --no-sync \
    >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  rm -f "$pwfile"

  local attempt port
  for attempt in 1 2 3 4 5; do
    port=$(pick_port)
    # Loopback only; the socket stays inside DIR so nothing touches /var/run/postgresql.
    cat >>"$dir/data/postgresql.conf" <<EOF
# segmentor test server (attempt $attempt)
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = off
max_connections = 50
EOF
    echo "$port" >"$dir/port"
    if server_start "$dir"; then
      break
    fi
    log "start on port $port failed (attempt $attempt); see $dir/server.log"
    [ "$attempt" = 5 ] && { tail -n 20 "$dir/server.log" >&2 || true; die "server did not start"; }
  done

  psql_run "$dir" postgres -c "CREATE DATABASE $DB_NAME"
  # The upstream tables this worker updates (CONTRACT §5 DDL), from the same file the compose
  # project loads, so tests and deployment cannot drift; the worker creates its own tables.
  psql_run "$dir" "$DB_NAME" <"$UPSTREAM_TABLES_SQL"
  dsn_of "$dir" >"$dir/dsn"
  log "server running in $dir"
  dsn_of "$dir"
}

require_dir() {
  [ -n "${1:-}" ] || die "usage: postgres.sh $2 DIR"
  [ -f "$1/port" ] || die "$1 holds no server started by this script"
}

cmd=${1:-}
shift || true
case "$cmd" in
  start) cmd_start "${1:-}" ;;
  pause)
    require_dir "${1:-}" pause
    server_stop "$1"
    ;;
  resume)
    require_dir "${1:-}" resume
    server_start "$1"
    ;;
  stop)
    require_dir "${1:-}" stop
    server_stop "$1" immediate
    rm -rf "$1"
    ;;
  dsn)
    require_dir "${1:-}" dsn
    dsn_of "$1"
    ;;
  *)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
