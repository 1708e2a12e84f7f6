#!/usr/bin/env bash
# Builds the release preset and runs the benchmarks (all, or those named) with the
# private stack up. Each prints a table naming what it compared.
#   deploy/local/run-bench.sh                  # every bench_* binary
#   deploy/local/run-bench.sh bench_telemetry_insert
#   deploy/local/run-bench.sh bench_cortex_m4        # Cortex-M4 instruction counts (QEMU)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
# bench_cortex_m4 runs on QEMU (docs/kernels.md): no release build, no stack.
if [ "$#" -eq 1 ] && [ "$1" = bench_cortex_m4 ]; then
  exec bench/cortex_m4/run.sh
fi
deploy/local/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
# shellcheck source=stack.sh
source deploy/local/stack.sh
stack_start "$root/build/release/stack"
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  mapfile -t names < <(find build/release/bench -maxdepth 3 -type f -name 'bench_*' -perm -u+x -printf '%f\n' | sort)
fi
for n in "${names[@]}"; do
  exe=$(find build/release/bench -type f -name "$n" | head -1)
  echo "=== $n"
  stack_run "$exe"
done
