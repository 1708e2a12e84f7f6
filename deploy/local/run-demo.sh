#!/usr/bin/env bash
# The end-to-end demo (the README's first command). Installs what is missing, builds
# the release preset, starts a private PostgreSQL and Mosquitto on free loopback ports,
# then fleetd and 50 simulated devices of two classes, and runs three rollouts of a real
# model through fleetctl. Everything runs over TLS with the stack's throwaway CA: gRPC
# and the console (fleetctl pins the CA), and MQTT (fleetd and every device pin it):
#   v1 (digits_cnn) to every device;
#   v2 (digits_cnn fine-tuned five more epochs) through 20, 60 and 100 percent;
#   v3 (digits_cnn trained on shuffled labels) fails its accuracy gate at the canary
#      and is rolled back automatically.
# fleetd's web console is on a free loopback port; its URL and the demo's admin token are
# printed after fleetd starts. Everything it started is stopped and removed on exit.
#   TINYFLEET_PRESET=debug deploy/local/run-demo.sh   # use another build
#   TINYFLEET_DEMO_HOLD=1 deploy/local/run-demo.sh    # keep it all running until Ctrl-C
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
preset=${TINYFLEET_PRESET:-release}
jobs=${TINYFLEET_JOBS:-$(nproc)}
if [ -z "${TINYFLEET_SKIP_BUILD:-}" ]; then
  deploy/local/install-deps.sh
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs" --target fleetd fleetctl fleet-sim
fi
bin=$root/build/$preset
work=$(mktemp -d /tmp/tinyfleet-demo.XXXXXX)
chmod 0755 "$work"  # the stack runs PostgreSQL as its own user when started as root

# shellcheck source=stack.sh
source deploy/local/stack.sh
stack_start "$work/stack"
pids=()
cleanup_demo() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  stack_stop
  rm -rf "$work"
}
trap cleanup_demo EXIT

t0=$(date +%s)
step() { printf '\n== [%3ss] %s\n' "$(($(date +%s) - t0))" "$*"; }
fleetctl() { "$bin/deploy/fleetctl/fleetctl" "$@"; }
data=tests/fixtures/data
models=tests/fixtures/models

step "signing keys: an offline root key certifies fleetd's targets key"
fleetctl keys init --dir "$work/keys" --root-dir "$work/root-key"

step "fleetd: gRPC API, rollout engine, update publisher, telemetry ingestion (TLS)"
export FLEETCTL_TOKEN=demo-admin-$(head -c 9 /dev/urandom | base64 | tr '+/' '-_')
export FLEETCTL_CA_FILE=$TINYFLEET_TLS_CA
"$bin/server/fleetd" --listen=127.0.0.1:0 --port_file="$work/fleetd.port" \
  --tls.cert_file="$TINYFLEET_TLS_CERT" --tls.key_file="$TINYFLEET_TLS_KEY" \
  --database.uri="$TINYFLEET_PG_URI" --bootstrap_admin_token="$FLEETCTL_TOKEN" \
  --mqtt.host="$TINYFLEET_MQTT_HOST" --mqtt.port="$TINYFLEET_MQTT_TLS_PORT" \
  --mqtt.ca_file="$TINYFLEET_TLS_CA" \
  --mqtt.passwd_file="$TINYFLEET_MQTT_PASSWD_FILE" --mqtt.pid="$TINYFLEET_MQTT_PID" \
  --mqtt.user="$TINYFLEET_MQTT_SERVER_USER" --mqtt.password="$TINYFLEET_MQTT_SERVER_PASSWORD" \
  --keys.root_public_key_file="$work/keys/root.pub" --keys.dir="$work/keys" \
  --rollouts.tick_ms=200 --metrics.listen=127.0.0.1:0 --console.listen=127.0.0.1:0 \
  --gates.max_looks=6 --gates.max_wait_seconds=30 \
  >"$work/fleetd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/fleetd.port" ] && break; sleep 0.1; done
[ -s "$work/fleetd.port" ] || { cat "$work/fleetd.log"; exit 1; }
export FLEETCTL_ENDPOINT=localhost:$(cat "$work/fleetd.port")
metrics_port=$(sed -n 's/.*"event":"metrics.serving".*"port":\([0-9]*\).*/\1/p' "$work/fleetd.log" | tail -1)
echo "fleetd on $FLEETCTL_ENDPOINT over TLS (CA: $FLEETCTL_CA_FILE; log: fleetd.log); Prometheus metrics on http://127.0.0.1:$metrics_port/metrics"
console_port=$(sed -n 's/.*"event":"console.serving".*"port":\([0-9]*\).*/\1/p' "$work/fleetd.log" | tail -1)
echo "web console: https://localhost:$console_port/ (certificate from the demo's CA $TINYFLEET_TLS_CA; log in with the token $FLEETCTL_TOKEN)"

step "device classes from the catalog"
fleetctl classes import optimizer_service/device_classes/catalog.json >/dev/null
fleetctl classes list

step "50 devices of two classes, provisioned (MQTT accounts on the broker)"
fleetctl devices provision --count 25 --prefix m4- --class cortex-m4-256k --tags demo \
  --credentials-out "$work/m4.creds"
fleetctl devices provision --count 25 --prefix s3- --class esp32s3-512k --tags demo \
  --credentials-out "$work/s3.creds"

step "a real model, three versions, each compiled to int8 for both classes"
fleetctl models create digits --description "UCI digits, 8x8" >/dev/null
for v in digits_cnn digits_cnn_v2 digits_cnn_badlabels; do
  echo "-- $v"
  fleetctl versions create digits --onnx "$models/$v.onnx" --calibration "$data/digits_calib.npz" \
    --validation "$data/digits_val.npz" --classes cortex-m4-256k,esp32s3-512k | tail -3
done

step "the simulated fleet starts over MQTT/TLS (no model yet; each device runs the digits validation stream)"
for cls in m4:cortex-m4-256k s3:esp32s3-512k; do
  "$bin/device_agent/fleet-sim" --broker "ssl://$TINYFLEET_MQTT_HOST:$TINYFLEET_MQTT_DEVICE_TLS_PORT" \
    --ca "$TINYFLEET_TLS_CA" \
    --class "${cls#*:}" --credentials "$work/${cls%%:*}.creds" --root-key "$work/keys/root.pub" \
    --data "$data/digits_val.npz" --rate 10 --window 2 --probe-every 1 \
    --state "$work/sim-${cls%%:*}" >"$work/sim-${cls%%:*}.log" 2>&1 &
  pids+=($!)
done
sleep 2

gates="failure_rate <= 0.05 && min_reporting >= 0.9 && accuracy_drop <= 0.10"
step "rollout 1: v1 to every device (its first model: a full artifact)"
fleetctl rollouts create digits-v1 --model digits --version 1 --tags demo --phases 100:2 \
  --gates "failure_rate <= 0.05 && min_reporting >= 0.9 && accuracy >= 0.8" --watch

# A canary of 20% (10 devices): the gates decide with confidence only on at least
# gates.min_devices (5) devices against the control group still on the old model; they
# look every 6 s after the bake and decide within 30 s (gates.max_looks, max_wait_seconds).
step "rollout 2: v2 (fine-tuned) through 20, 60, 100 percent as signed deltas"
fleetctl rollouts create digits-v2 --model digits --version 2 --tags demo \
  --phases 20:4,60:4,100:2 --gates "$gates" --watch

step "rollout 3: v3 (trained on shuffled labels) must fail at the canary and roll back"
if fleetctl rollouts create digits-v3 --model digits --version 3 --tags demo \
  --phases 20:4,60:4,100:2 --gates "$gates" --watch; then
  echo "demo: the bad version was not stopped" >&2
  exit 1
fi
echo "(fleetctl exited non-zero: the rollout was rolled back, as it should be)"

step "rollouts"
fleetctl rollouts list

step "fleet telemetry over the demo: drift and energy as sparklines"
fleetctl telemetry --since 300 --bucket 10 --limit 8

step "every device runs v2 again"
fleetctl devices list --tag demo | awk 'NR>1 {print $4}' | sort | uniq -c
step "fleetctl status: the fleet on one screen"
fleetctl status

step "Prometheus metrics (GET /metrics): rollouts and devices"
exec 3<>"/dev/tcp/127.0.0.1/$metrics_port"
printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
grep -E '^tinyfleet_(rollouts|devices)\{' <&3 || true
exec 3<&-

step "demo finished in $(($(date +%s) - t0)) s"
echo "web console: https://localhost:$console_port/ (token $FLEETCTL_TOKEN)"
if [ -n "${TINYFLEET_DEMO_HOLD:-}" ]; then
  echo "holding fleetd, the devices and the stack for the console; Ctrl-C stops them"
  wait
fi
