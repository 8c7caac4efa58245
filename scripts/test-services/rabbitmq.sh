#!/usr/bin/env bash
# A private, throw-away RabbitMQ for tests: loopback only, free ports, every file under one folder.
# It never touches a system-wide instance (own node name, ports, epmd, cookie, config and data).
#
#   rabbitmq.sh start [DIR]   start a node whose files live in DIR (default: a new temp dir);
#                             prints the AMQP URL on stdout once the node accepts AMQP
#   rabbitmq.sh stop DIR      stop it and its epmd; removes DIR unless KEEP_RABBITMQ_DIR=1
#   rabbitmq.sh restart DIR   stop then start again on the same port with the same data
#                             (durable queues and persistent messages survive)
#   rabbitmq.sh kill DIR      kill -9 the node (crash, no clean shutdown); `start DIR` revives it
#   rabbitmq.sh url DIR       print the AMQP URL
#   rabbitmq.sh ctl DIR ARGS  run rabbitmqctl against the node (e.g. list_queues name durable)
# RABBITMQ_PROMETHEUS_PORT / RABBITMQ_MANAGEMENT_PORT at the first start: see write_files.
#
# Works as root (the Debian /usr/sbin wrapper would switch to the rabbitmq user and its global
# files, so we call the real scripts in /usr/lib/rabbitmq/bin directly).
set -euo pipefail

RMQ_BIN=${RMQ_BIN:-/usr/lib/rabbitmq/bin}
START_TIMEOUT_S=${RABBITMQ_START_TIMEOUT_S:-90}

die() { echo "rabbitmq.sh: $*" >&2; exit 1; }

free_port() {
  # Ask the kernel for a free port on loopback. Python is on every Debian image; fall back to
  # probing a random range with bash's /dev/tcp.
  if command -v /usr/bin/python3 >/dev/null 2>&1; then
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
    return
  fi
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 20000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  die "no free port found"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Exports every variable the node and its epmd need, from DIR/ports.
load_env() {
  local dir=$1
  [[ -f "$dir/ports" ]] || die "$dir/ports missing: was the node started with 'start $dir'?"
  # shellcheck disable=SC1091
  source "$dir/ports"
  export HOME="$dir/home"
  export RABBITMQ_NODENAME="$NODE_NAME@localhost"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT="$AMQP_PORT"
  export RABBITMQ_DIST_PORT="$DIST_PORT"
  export ERL_EPMD_PORT="$EPMD_PORT"
  export ERL_EPMD_ADDRESS=127.0.0.1
  export RABBITMQ_CTL_DIST_PORT_MIN="$CTL_PORT"
  export RABBITMQ_CTL_DIST_PORT_MAX="$CTL_PORT"
  export RABBITMQ_MNESIA_BASE="$dir/mnesia"
  export RABBITMQ_LOG_BASE="$dir/log"
  export RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf"
  export RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config"
  export RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
  export RABBITMQ_PLUGINS_EXPAND_DIR="$dir/plugins-expand"
  export RABBITMQ_PID_FILE="$dir/rabbitmq.pid"
}

write_files() {
  local dir=$1
  mkdir -p "$dir/home" "$dir/mnesia" "$dir/log" "$dir/plugins-expand"
  cat >"$dir/ports" <<PORTS
NODE_NAME=segtest$$_$RANDOM
AMQP_PORT=$(free_port)
DIST_PORT=$(free_port)
EPMD_PORT=$(free_port)
CTL_PORT=$(free_port)
PORTS
  # No listeners but AMQP on loopback; small disk limit so CI machines with little space work.
  cat >"$dir/rabbitmq.conf" <<'CONF'
listeners.tcp.default = 127.0.0.1:0
disk_free_limit.absolute = 50MB
log.console = false
log.file.level = info
CONF
  # listeners.tcp.default is overridden by RABBITMQ_NODE_IP_ADDRESS/PORT; keep the file valid.
  sed -i '/listeners.tcp.default/d' "$dir/rabbitmq.conf"
  echo '[].' >"$dir/advanced.config"
  echo '[].' >"$dir/enabled_plugins"
  # RABBITMQ_PROMETHEUS_PORT=N: also serve the broker's own metrics (per queue) on loopback:N;
  # RABBITMQ_MANAGEMENT_PORT=M: the management HTTP API on loopback:M (tests publish through it).
  # For the test that checks the alert rules and the dashboard against real exporters.
  local plugins=()
  if [[ -n "${RABBITMQ_PROMETHEUS_PORT:-}" ]]; then
    plugins+=(rabbitmq_prometheus)
    cat >>"$dir/rabbitmq.conf" <<CONF
prometheus.tcp.ip = 127.0.0.1
prometheus.tcp.port = $RABBITMQ_PROMETHEUS_PORT
prometheus.return_per_object_metrics = true
CONF
  fi
  if [[ -n "${RABBITMQ_MANAGEMENT_PORT:-}" ]]; then
    plugins+=(rabbitmq_management)
    cat >>"$dir/rabbitmq.conf" <<CONF
management.tcp.ip = 127.0.0.1
management.tcp.port = $RABBITMQ_MANAGEMENT_PORT
CONF
  fi
  if ((${#plugins[@]})); then
    (IFS=,; echo "[${plugins[*]}]." >"$dir/enabled_plugins")
  fi
  : >"$dir/rabbitmq-env.conf"
  # A private cookie: the CLI and the node find it through HOME.
  head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/home/.erlang.cookie"
  chmod 400 "$dir/home/.erlang.cookie"
}

do_start() {
  local dir=${1:-}
  if [[ -z "$dir" ]]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/segmentor-rabbitmq.XXXXXX")
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [[ -x "$RMQ_BIN/rabbitmq-server" ]] || die "$RMQ_BIN/rabbitmq-server not found (apt-get install rabbitmq-server)"
  [[ -f "$dir/ports" ]] || write_files "$dir"
  load_env "$dir"
  if port_open "$AMQP_PORT"; then die "port $AMQP_PORT already in use"; fi
  # epmd on our own port, started explicitly so that its lifetime is ours to end.
  epmd -daemon -port "$EPMD_PORT" -address 127.0.0.1 >/dev/null 2>&1 || true
  # A simple command with '&' so that nothing but the server holds our stdout's other end: a
  # caller reading the URL through a pipe would otherwise wait for the server to exit.
  cd "$dir"
  nohup "$RMQ_BIN/rabbitmq-server" </dev/null >"$dir/log/startup.out" 2>&1 &
  echo $! >"$dir/server.pid"
  cd - >/dev/null
  local deadline=$(( SECONDS + START_TIMEOUT_S ))
  until port_open "$AMQP_PORT"; do
    if ! kill -0 "$(cat "$dir/server.pid")" 2>/dev/null; then
      tail -n 30 "$dir/log/startup.out" >&2 || true
      die "rabbitmq-server exited during start-up (files in $dir)"
    fi
    (( SECONDS < deadline )) || { tail -n 30 "$dir/log/startup.out" >&2; die "no AMQP on port $AMQP_PORT after ${START_TIMEOUT_S}s"; }
    sleep 0.3
  done
  # The port opens before the node is fully booted; await_startup waits for the rest.
  "$RMQ_BIN/rabbitmqctl" -q await_startup >/dev/null 2>&1 || true
  echo "rabbitmq.sh: node $RABBITMQ_NODENAME up, files in $dir" >&2
  do_url "$dir"
}

do_url() { load_env "$1"; echo "amqp://guest:guest@127.0.0.1:$AMQP_PORT/"; }

node_pids() {
  # The Erlang VM of this node only. The node name is passed through the environment, not argv;
  # the VM's "-home DIR/home" argument is ours alone.
  pgrep -f -- "-home $HOME -" || true
}

wait_port_closed() {
  local deadline=$(( SECONDS + 30 ))
  while port_open "$AMQP_PORT" && (( SECONDS < deadline )); do sleep 0.2; done
}

do_stop_node() {
  local dir=$1
  load_env "$dir"
  "$RMQ_BIN/rabbitmqctl" -q shutdown >/dev/null 2>&1 || true
  local pid
  pid=$(cat "$dir/server.pid" 2>/dev/null || true)
  if [[ -n "$pid" ]]; then
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null || true
  fi
  for p in $(node_pids); do kill -KILL "$p" 2>/dev/null || true; done
  wait_port_closed
}

do_kill() {
  local dir=$1
  load_env "$dir"
  for p in $(node_pids); do kill -KILL "$p" 2>/dev/null || true; done
  wait_port_closed
}

do_stop() {
  local dir=$1
  do_stop_node "$dir"
  epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true
  if [[ "${KEEP_RABBITMQ_DIR:-0}" != 1 ]]; then rm -rf "$dir"; fi
}

cmd=${1:-}
case "$cmd" in
  start) do_start "${2:-}" ;;
  stop) [[ -n "${2:-}" ]] || die "usage: $0 stop DIR"; do_stop "$2" ;;
  restart) [[ -n "${2:-}" ]] || die "usage: $0 restart DIR"; do_stop_node "$2"; do_start "$2" ;;
  kill) [[ -n "${2:-}" ]] || die "usage: $0 kill DIR"; do_kill "$2" ;;
  url) [[ -n "${2:-}" ]] || die "usage: $0 url DIR"; do_url "$2" ;;
  ctl) [[ -n "${2:-}" ]] || die "usage: $0 ctl DIR ARGS..."; load_env "$2"; shift 2
       exec "$RMQ_BIN/rabbitmqctl" -q "$@" ;;
  *) die "usage: $0 start [DIR] | stop DIR | restart DIR | kill DIR | url DIR | ctl DIR ARGS..." ;;
esac
