#!/usr/bin/env bash
# The component tour: install what is missing, build the
# release preset, start a private PostgreSQL and Mosquitto on free loopback ports, and
# run the longest path the project has so far. Everything is stopped and removed on exit.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
jobs=${TINYFLEET_JOBS:-$(nproc)}

deploy/local/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"

# shellcheck source=stack.sh
source deploy/local/stack.sh
stack_start "$root/build/release/demo-stack"
bin=build/release
model=tests/fixtures/models/digits_cnn.onnx

step() { printf '\n== %s\n' "$*"; }

step "schema: apply the numbered migrations (twice: the second run is a no-op)"
"$bin/storage/tinyfleet-db" migrate
"$bin/storage/tinyfleet-db" migrate

step "blob store: the same model stored twice is kept once (content-addressed, sha256)"
"$bin/storage/tinyfleet-db" put-blob "$model" "$model"

step "database status"
"$bin/storage/tinyfleet-db" status

step "compiler: a real ONNX model to int8 for two device classes (float vs int8 top-1, fit, estimates)"
for cls in cortex-m4-256k cortex-m0plus-32k; do
  "$bin/optimizer_service/tinyfleet-compile" tests/fixtures/models/digits_resnet.onnx --class "$cls" \
    --calib tests/fixtures/data/digits_calib.npz --val tests/fixtures/data/digits_val.npz \
    -o "$root/build/release/digits_resnet.$cls.tfa"
  echo
done

step "kernels: an int8 artifact built on this host runs on an emulated Cortex-M4 (QEMU mps2-an386)"
cmake -DFIXTURE="$bin/tests/kernels/firmware/make_firmware_fixture" \
  -DSOURCE="$root/kernels/firmware" -DWORK="$root/build/release/demo-firmware" \
  -P tests/kernels/firmware/run_qemu_test.cmake 2>&1 | grep -E "TOTALS|text|qemu_app|host:|qemu:"

step "kernels: MLPerf Tiny layers, optimized vs reference vs XNNPACK (single thread)"
"$bin/bench/kernels/ops/bench_conv_layers" --benchmark_min_time=0.05 2>/dev/null |
  sed -n '/^layer/,$p'
step "demo finished"
