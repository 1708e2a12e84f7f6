#!/usr/bin/env bash
# Installs every Debian 12 package tinyfleet builds, tests or runs with.
# Idempotent: packages already present are skipped, apt is not touched at all
# when nothing is missing.
set -euo pipefail

PACKAGES=(
  cmake ninja-build g++ pkg-config git openssl
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libboost-dev libpqxx-dev postgresql-15 postgresql-client-15
  libpaho-mqttpp-dev libpaho-mqtt-dev mosquitto mosquitto-clients libnats-dev nats-server
  libgtest-dev libgmock-dev libbenchmark-dev
  libsodium-dev libcrypt-dev libp11-kit-dev softhsm2 libzstd-dev zstd liblzma-dev libflatbuffers-dev flatbuffers-compiler libonnx-dev zlib1g-dev
  gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib libstdc++-arm-none-eabi-dev qemu-system-arm qemu-user
  libxnnpack-dev libpthreadpool-dev bsdiff xdelta3 clang-format lld nlohmann-json3-dev libcli11-dev prometheus-cpp-dev prometheus clang libclang-rt-14-dev python3 python3-numpy
  libcpp-httplib-dev chromium chromium-driver python3-selenium fonts-liberation
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
# The Debian postgresql package may start a system cluster on 5432; ours is private.
if command -v service >/dev/null 2>&1; then
  $SUDO service postgresql stop >/dev/null 2>&1 || true
  $SUDO service mosquitto stop >/dev/null 2>&1 || true
  $SUDO service nats-server stop >/dev/null 2>&1 || true
  $SUDO service prometheus stop >/dev/null 2>&1 || true
fi
