#!/usr/bin/env bash
# The private local stack: a PostgreSQL 15 cluster and a Mosquitto broker, both
# on loopback, on free ports, with their data under one folder. Source this file,
# call `stack_start DIR`, and `stack_stop` runs on exit (also on failure or Ctrl-C).
#
# Exports for tests and tools:
#   TINYFLEET_PG_URI            postgresql://... of the private database
#   TINYFLEET_MQTT_HOST/PORT    the broker (fleetd's listener; the stack's tests use it for
#                               device accounts too), plaintext
#   TINYFLEET_MQTT_DEVICE_PORT  the devices' listener: client id = user name, plaintext
#   TINYFLEET_MQTT_TLS_PORT     fleetd's listener over TLS (server certificate for 127.0.0.1
#                               from TINYFLEET_TLS_CA)
#   TINYFLEET_MQTT_DEVICE_TLS_PORT  the devices' listener over TLS
#   TINYFLEET_MQTT_SERVER_USER/PASSWORD   the server's broker account
#   TINYFLEET_MQTT_PASSWD_FILE  the broker's password file (provisioning adds to it)
#   TINYFLEET_MQTT_PID          send SIGHUP after changing the password file
# Run commands with `stack_run CMD...`: it stops CMD with the reason if the broker dies.
#   TINYFLEET_MQTT_TEST_DEVICES "id:password id:password ..." pre-made device accounts
#   TINYFLEET_TLS_CA/CERT/KEY   a throwaway CA and a server certificate for 127.0.0.1
#   TINYFLEET_TLS_CLIENT_CERT/KEY   a client certificate from that CA (CN=fleetd: fleetd's
#                               side of the mutual TLS link to an Optimizer worker)
#   TINYFLEET_TLS_ROGUE_CERT/KEY    a self-signed certificate for 127.0.0.1 that no CA vouches
#                               for (tests: a server or client that must be refused)

PG_BIN=$(ls -d /usr/lib/postgresql/15/bin 2>/dev/null || true)

free_port() {
  python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# PostgreSQL refuses to run as root; run it as an unprivileged user.
_pg_run() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$STACK_PG_USER" -- "$@"
  else
    "$@"
  fi
}

stack_stop() {
  local rc=$?
  if [ -n "${STACK_DIR:-}" ]; then
    if [ -n "${TINYFLEET_MQTT_PID:-}" ] && kill -0 "$TINYFLEET_MQTT_PID" 2>/dev/null; then
      touch "$STACK_DIR/mqtt/stopping"
      kill "$TINYFLEET_MQTT_PID" 2>/dev/null || true
    fi
    wait "${STACK_BROKER_WATCH:-}" 2>/dev/null || true
    if [ -f "$STACK_DIR/pg/data/postmaster.pid" ]; then
      _pg_run "$PG_BIN/pg_ctl" -D "$STACK_DIR/pg/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    if [ "${STACK_KEEP:-0}" != "1" ]; then rm -rf "$STACK_DIR"; fi
    echo "stack: stopped"
    STACK_DIR=""
  fi
  return $rc
}

_stack_start_pg() {
  STACK_PG_USER=$(id -un)
  if [ "$(id -u)" -eq 0 ]; then
    STACK_PG_USER=postgres
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  fi
  mkdir -p "$STACK_DIR/pg"
  chown "$STACK_PG_USER" "$STACK_DIR/pg"
  _pg_run "$PG_BIN/initdb" -D "$STACK_DIR/pg/data" -U tinyfleet --auth=trust -E UTF8 \
    --locale=C.UTF-8 >"$STACK_DIR/pg/initdb.log" 2>&1 ||
    { cat "$STACK_DIR/pg/initdb.log"; return 1; }
  local port
  port=$(free_port)
  cat >>"$STACK_DIR/pg/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$STACK_DIR/pg'
max_connections = 200
shared_buffers = 128MB
fsync = on
synchronous_commit = off
max_locks_per_transaction = 256
timezone = 'UTC'
CONF
  # Where PostgreSQL's time goes, per statement, for the benches (docs/local-stack.md).
  if [ "${TINYFLEET_PG_STATEMENTS:-0}" = 1 ]; then
    echo "shared_preload_libraries = 'pg_stat_statements'" >>"$STACK_DIR/pg/data/postgresql.conf"
  fi
  _pg_run "$PG_BIN/pg_ctl" -D "$STACK_DIR/pg/data" -l "$STACK_DIR/pg/server.log" -w -t 60 start >/dev/null ||
    { cat "$STACK_DIR/pg/server.log"; return 1; }
  _pg_run "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U tinyfleet tinyfleet
  export TINYFLEET_PG_URI="postgresql://tinyfleet@127.0.0.1:$port/tinyfleet"
  echo "stack: postgresql on 127.0.0.1:$port"
}

# Adds USER PASSWORD to the broker's password file. The password goes to
# mosquitto_passwd on its stdin (printf is a shell builtin), never on a command line,
# where any local user could read it in /proc.
_stack_add_account() {
  printf '%s\n%s\n' "$2" "$2" | mosquitto_passwd "$TINYFLEET_MQTT_PASSWD_FILE" "$1" >/dev/null
}

# Runs the broker and waits for it: if it exits while the stack is up, writes why (exit
# status, log tail) to mqtt/died and stderr, and stack_run stops its command at once.
_stack_watch_broker() {
  local dir=$1 rc=0
  mosquitto -c "$dir/mosquitto.conf" >"$dir/stdout.log" 2>&1 &
  echo $! >"$dir/pid"
  wait $! || rc=$?
  [ -e "$dir/stopping" ] && return 0
  {
    echo "stack: mosquitto (pid $(cat "$dir/pid")) died: exit status $rc$([ $rc -gt 128 ] && echo " (signal $((rc - 128)))")"
    tail -n 5 "$dir/mosquitto.log" "$dir/stdout.log" 2>/dev/null
  } | tee "$dir/died" >&2
}

# Runs a command with the stack up (its own process group), and stops it with the reason
# as soon as the broker dies instead of letting it hang. Returns the command's status
# (1 when the broker died).
stack_run() {
  setsid -w "$@" &
  local cmd=$! rc=0
  trap 'kill -TERM -- -'"$cmd"' 2>/dev/null; exit 130' INT
  trap 'kill -TERM -- -'"$cmd"' 2>/dev/null; exit 143' TERM
  wait -n "$cmd" "$STACK_BROKER_WATCH" || rc=$?
  if kill -0 "$cmd" 2>/dev/null; then  # the broker went first
    kill -TERM -- -"$cmd" 2>/dev/null || true
    wait "$cmd" 2>/dev/null || true
    echo "stack: stopped '$*': the broker died (mqtt/died)" >&2
    rc=1
  fi
  trap 'exit 130' INT
  trap 'exit 143' TERM
  return $rc
}

_stack_start_mqtt() {
  local dir="$STACK_DIR/mqtt" port dport tport tdport
  mkdir -p "$dir"
  port=$(free_port)
  dport=$(free_port)
  tport=$(free_port)
  tdport=$(free_port)
  export TINYFLEET_MQTT_HOST=127.0.0.1 TINYFLEET_MQTT_PORT=$port TINYFLEET_MQTT_DEVICE_PORT=$dport
  export TINYFLEET_MQTT_TLS_PORT=$tport TINYFLEET_MQTT_DEVICE_TLS_PORT=$tdport
  export TINYFLEET_MQTT_SERVER_USER=fleetd
  export TINYFLEET_MQTT_SERVER_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
  export TINYFLEET_MQTT_PASSWD_FILE="$dir/passwd"
  : >"$TINYFLEET_MQTT_PASSWD_FILE"
  chmod 0600 "$TINYFLEET_MQTT_PASSWD_FILE"
  _stack_add_account "$TINYFLEET_MQTT_SERVER_USER" "$TINYFLEET_MQTT_SERVER_PASSWORD"
  local devs="" i id pw
  # Device accounts for tests (tests/support: test_devices() says which test uses which).
  for i in $(seq 1 33); do
    id="test-device-$i"
    pw=$(head -c 12 /dev/urandom | base64 | tr '+/' '-_')
    _stack_add_account "$id" "$pw"
    devs="$devs $id:$pw"
  done
  export TINYFLEET_MQTT_TEST_DEVICES="${devs# }"
  cp "$STACK_SOURCE_DIR/mosquitto.acl" "$dir/acl"
  # Persistence (docs/local-stack.md, "Broker persistence"): retained offers, statuses and
  # persistent sessions are saved every second, so a crash (SIGKILL) loses at most that
  # second (and fleetd re-publishes what is outstanding after it reconnects).
  # Limits (docs/local-stack.md, "Broker limits"): the largest legitimate packet is a
  # chunk answer, 20 bytes of framing and 64 KiB of data, plus topic and MQTT header.
  # The devices' listener replaces each client id with the user name, so no device can
  # take over fleetd's or another device's session; fleetd's own listener must not be
  # reachable by devices in a deployment (here both are on loopback). Each listener also
  # has a TLS twin with the stack CA's server certificate (docs/security.md: the
  # plaintext pair stays for the firmware, whose MQTT client has no TLS yet).
  local tls="$STACK_DIR/tls"
  cat >"$dir/mosquitto.conf" <<CONF
per_listener_settings false
max_packet_size 66560
listener $port 127.0.0.1
listener $dport 127.0.0.1
use_username_as_clientid true
listener $tport 127.0.0.1
certfile $tls/server.pem
keyfile $tls/server.key
tls_version tlsv1.2
listener $tdport 127.0.0.1
use_username_as_clientid true
certfile $tls/server.pem
keyfile $tls/server.key
tls_version tlsv1.2
max_connections 100000
allow_anonymous false
password_file $TINYFLEET_MQTT_PASSWD_FILE
acl_file $dir/acl
persistence true
persistence_location $dir/
autosave_interval ${TINYFLEET_MQTT_AUTOSAVE_S:-1}
autosave_on_changes false
max_inflight_messages 100
max_queued_messages 10000
sys_interval 1
log_dest file $dir/mosquitto.log
log_type error
log_type warning
log_type notice
CONF
  # As root, mosquitto would drop to user 'mosquitto', who cannot read our files.
  if [ "$(id -u)" -eq 0 ]; then echo "user root" >>"$dir/mosquitto.conf"; fi
  chmod 0700 "$dir"
  chmod 0600 "$TINYFLEET_MQTT_PASSWD_FILE"
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true  # one descriptor per device session
  _stack_watch_broker "$dir" &
  STACK_BROKER_WATCH=$!
  until [ -s "$dir/pid" ]; do sleep 0.05; done
  export TINYFLEET_MQTT_PID=$(cat "$dir/pid")
  local tries=0
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
    (exec 3<>"/dev/tcp/127.0.0.1/$tdport") 2>/dev/null; do
    tries=$((tries + 1))
    if [ $tries -gt 100 ] || ! kill -0 "$TINYFLEET_MQTT_PID" 2>/dev/null; then
      cat "$dir/stdout.log" "$dir/mosquitto.log" 2>/dev/null
      return 1
    fi
    sleep 0.1
  done
  echo "stack: mosquitto on 127.0.0.1:$port (devices: $dport; TLS: $tport, devices: $tdport)"
}

# A throwaway CA, a server certificate for localhost/127.0.0.1 (fleetd's gRPC, the
# broker's TLS listeners, an Optimizer worker), a client certificate (fleetd to the
# worker) and a self-signed rogue certificate no one trusts.
_stack_make_tls() {
  local dir="$STACK_DIR/tls"
  mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tinyfleet test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$dir/server.key" -out "$dir/server.csr" >/dev/null 2>&1
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$dir/san.ext"
  openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 2 -extfile "$dir/san.ext" -out "$dir/server.pem" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj "/CN=fleetd" \
    -keyout "$dir/client.key" -out "$dir/client.csr" >/dev/null 2>&1
  printf 'extendedKeyUsage=clientAuth\n' >"$dir/client.ext"
  openssl x509 -req -in "$dir/client.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 2 -extfile "$dir/client.ext" -out "$dir/client.pem" >/dev/null 2>&1
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$dir/rogue.key" -out "$dir/rogue.pem" >/dev/null 2>&1
  chmod 0644 "$dir"/*.pem
  export TINYFLEET_TLS_CA="$dir/ca.pem" TINYFLEET_TLS_CERT="$dir/server.pem"
  export TINYFLEET_TLS_KEY="$dir/server.key"
  export TINYFLEET_TLS_CLIENT_CERT="$dir/client.pem" TINYFLEET_TLS_CLIENT_KEY="$dir/client.key"
  export TINYFLEET_TLS_ROGUE_CERT="$dir/rogue.pem" TINYFLEET_TLS_ROGUE_KEY="$dir/rogue.key"
}

stack_start() {
  STACK_DIR=$(realpath -m "$1")
  STACK_SOURCE_DIR=$(dirname "${BASH_SOURCE[0]}")
  rm -rf "$STACK_DIR"
  mkdir -p "$STACK_DIR"
  chmod 0755 "$STACK_DIR"
  trap stack_stop EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  _stack_start_pg
  _stack_make_tls
  _stack_start_mqtt
}
