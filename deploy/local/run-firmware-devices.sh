#!/usr/bin/env bash
# Starts N reference-firmware devices (Cortex-M4, QEMU mps2-an386) on a broker's device
# listener, one QEMU each, or stops them. Each device gets a folder DIR/<user>/ with its
# provisioning record (provision.txt: the account from fleetctl's credentials file, the
# fleet, the fleet's root public key, the host's time; docs/firmware.md, "Provisioning
# record"), its NOR flash (flash.bin: the agent's records and model slots), its console
# output (firmware.log) and QEMU's pid (qemu.pid); one image serves them all. A device's
# first start (blank flash) has no model and takes what fleetd's rollouts offer; started
# again on the same DIR it boots what its flash holds.
#
#   run-firmware-devices.sh start --elf reference_firmware.elf --credentials FILE
#       --root-key root.pub --dir DIR [--count N] [--skip K] [--fleet default]
#       [--host 127.0.0.1] [--port $TINYFLEET_MQTT_DEVICE_PORT] [--rate-ms 500]
#       [--window-s 5] [--factory]
#   run-firmware-devices.sh stop --dir DIR [--device USER]
#
# FILE has one "user password" per line (fleetctl devices provision --credentials-out);
# the devices are its lines K+1..K+N (default: all). --factory installs the image's
# built-in digits_cnn v1 into a blank flash. stop sends SIGTERM to each QEMU it started
# (or USER's alone; SIGKILL after 5 s) and removes the pid files; the folders stay (their
# logs and flash).
set -euo pipefail
usage() { sed -n '2,22p' "$0" >&2; exit 2; }
[ $# -ge 1 ] || usage
cmd=$1
shift
elf= creds= root_key= dir= count=0 skip=0 fleet=default host=127.0.0.1
port=${TINYFLEET_MQTT_DEVICE_PORT:-} rate_ms=500 window_s=5 factory=0 device='*'
while [ $# -gt 0 ]; do
  case $1 in
    --elf) elf=$2; shift 2 ;;
    --credentials) creds=$2; shift 2 ;;
    --root-key) root_key=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --count) count=$2; shift 2 ;;
    --skip) skip=$2; shift 2 ;;
    --fleet) fleet=$2; shift 2 ;;
    --host) host=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --rate-ms) rate_ms=$2; shift 2 ;;
    --window-s) window_s=$2; shift 2 ;;
    --factory) factory=1; shift ;;
    --device) device=$2; shift 2 ;;
    *) echo "run-firmware-devices: unknown option $1" >&2; usage ;;
  esac
done
[ -n "$dir" ] || usage

stop_all() {
  local pids=() f
  for f in "$dir"/$device/qemu.pid; do
    [ -f "$f" ] || continue
    pids+=("$(cat "$f")")
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 50); do
    local alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive -eq 1 ] || break
    sleep 0.1
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -f "$dir"/$device/qemu.pid
  echo "run-firmware-devices: stopped ${#pids[@]} devices"
}

case $cmd in
  stop) stop_all; exit 0 ;;
  start) ;;
  *) usage ;;
esac
[ -n "$elf" ] && [ -n "$creds" ] && [ -n "$root_key" ] && [ -n "$port" ] || usage
command -v qemu-system-arm >/dev/null || { echo "run-firmware-devices: no qemu-system-arm" >&2; exit 1; }
[ -f "$elf" ] || { echo "run-firmware-devices: no $elf" >&2; exit 1; }
[ "$(stat -c %s "$root_key")" -eq 32 ] || { echo "run-firmware-devices: $root_key is not a 32-byte key" >&2; exit 1; }
key_hex=$(od -An -v -tx1 "$root_key" | tr -d ' \n')
elf=$(realpath "$elf")
mkdir -p "$dir"
n=0 line=0
while read -r user password _; do
  line=$((line + 1))
  [ -n "$user" ] && [ "$line" -gt "$skip" ] || continue
  [ "$count" -eq 0 ] || [ "$n" -lt "$count" ] || break
  d=$dir/$user
  mkdir -p "$d"
  printf 'user=%s\npassword=%s\nfleet=%s\nroot_key=%s\nnow=%s\nfactory=%s\nmode=run\nrate_ms=%s\nwindow_s=%s\n' \
    "$user" "$password" "$fleet" "$key_hex" "$(date +%s)" "$factory" "$rate_ms" "$window_s" \
    > "$d/provision.txt"
  chmod 600 "$d/provision.txt"
  # UART0 to the broker (reconnect: QEMU dials again if the broker drops the socket; the
  # firmware's MQTT client then connects again over it). -icount shift=0: one instruction
  # a nanosecond of virtual time, so the firmware's latencies are instruction counts;
  # sleep=on: while the firmware sleeps (WFI) virtual time follows real time.
  (cd "$d" && exec qemu-system-arm -M mps2-an386 -cpu cortex-m4 -nographic -monitor none \
      -icount shift=0,sleep=on -serial "tcp:$host:$port,nodelay=on,reconnect=1" \
      -semihosting-config enable=on,target=native -kernel "$elf" > firmware.log 2>&1) &
  echo $! > "$d/qemu.pid"
  n=$((n + 1))
done < "$creds"
[ "$n" -gt 0 ] || { echo "run-firmware-devices: no devices in $creds" >&2; exit 1; }
echo "run-firmware-devices: started $n devices in $dir"
