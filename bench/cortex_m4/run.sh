#!/usr/bin/env bash
# bench_cortex_m4: builds the host compiler (debug preset), compiles the digits models of
# tests/fixtures, the MLPerf Tiny KWS reference (int8 .tflite) and a generated VWW-sized
# MobileNetV1-0.25 (tests/fixtures/scripts/make_vww_mobilenet.py, Debian's python3-onnx)
# and the MLPerf Tiny-shaped IC and AD models (tests/fixtures/models/mlperf_shaped) for
# cortex-m4-256k, builds the Cortex-M4F firmware bench_cortex_m4.elf
# and runs it on QEMU mps2-an386 with -icount shift=0 (one instruction per ns of
# virtual time). Prints instructions per MAC per layer and per inference per model.
#   bench/cortex_m4/run.sh            # about a minute after the builds
# Env: HOST_BUILD (default build/debug), WORK (default $HOST_BUILD/bench-cortex-m4).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
host=${HOST_BUILD:-$root/build/debug}
work=${WORK:-$host/bench-cortex-m4}
if [ ! -f "$host/build.ninja" ]; then
  cmake --preset debug >/dev/null
fi
cmake --build "$host" --target tinyfleet-compile >/dev/null
mkdir -p "$work"
args=()
for m in digits_mlp digits_cnn digits_dscnn digits_resnet digits_autoencoder; do
  report=$("$host/optimizer_service/tinyfleet-compile" "tests/fixtures/models/$m.onnx" \
    --class cortex-m4-256k --calib tests/fixtures/data/digits_calib.npz -o "$work/$m.tfa")
  macs=$(sed -n 's/^MACs per inference *\([0-9]*\).*/\1/p' <<<"$report")
  args+=("$m=${macs:-0}")
done
# MLPerf Tiny KWS DS-CNN: fully int8, keeps its own quantization (no --calib).
report=$("$host/optimizer_service/tinyfleet-compile" \
  tests/fixtures/models/thirdparty/mlperf_tiny/kws_ref_model.tflite \
  --class cortex-m4-256k -o "$work/kws_ref.tfa")
args+=("kws_ref=$(sed -n 's/^MACs per inference *\([0-9]*\).*/\1/p' <<<"$report")")
# VWW-sized MobileNetV1-0.25: random fixed weights (seed 23), generated here (no network).
/usr/bin/python3 tests/fixtures/scripts/make_vww_mobilenet.py "$work"
report=$("$host/optimizer_service/tinyfleet-compile" "$work/vww_mobilenet_v1_025.onnx" \
  --class cortex-m4-256k --calib "$work/vww_calib.npz" -o "$work/vww_mobilenet_v1_025.tfa")
args+=("vww_mobilenet_v1_025=$(sed -n 's/^MACs per inference *\([0-9]*\).*/\1/p' <<<"$report")")
# MLPerf Tiny-shaped IC (ResNet-8, CIFAR-10) and AD (FC autoencoder): committed, random
# fixed weights (tests/fixtures/scripts/make_mlperf_ic_ad.py).
shaped=tests/fixtures/models/mlperf_shaped
for m in ic_resnet8:ic_calib ad_autoencoder:ad_calib; do
  report=$("$host/optimizer_service/tinyfleet-compile" "$shaped/${m%%:*}.onnx" \
    --class cortex-m4-256k --calib "$shaped/${m##*:}.npz" -o "$work/${m%%:*}.tfa")
  args+=("${m%%:*}=$(sed -n 's/^MACs per inference *\([0-9]*\).*/\1/p' <<<"$report")")
done
cmake -S kernels/firmware -B "$work/firmware" -G Ninja \
  -DCMAKE_TOOLCHAIN_FILE="$root/kernels/firmware/arm-none-eabi.cmake" >/dev/null
cmake --build "$work/firmware" --target bench_cortex_m4.elf >/dev/null
cd "$work"
# A relative kernel path: semihosting hands newlib the kernel path and the arguments as
# one command line of at most 255 characters (longer ones arrive as no arguments at all).
exec qemu-system-arm -M mps2-an386 -cpu cortex-m4 -nographic -monitor none -serial none \
  -icount shift=0 -semihosting-config enable=on,target=native \
  -kernel firmware/bench_cortex_m4.elf -append "${args[*]}"
