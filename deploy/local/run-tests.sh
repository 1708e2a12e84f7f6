#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this):
# install what is missing, build with ASan+UBSan, start a private PostgreSQL and
# Mosquitto on free loopback ports, run ctest, stop and remove both.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
preset=${TINYFLEET_TEST_PRESET:-asan}
jobs=${TINYFLEET_JOBS:-$(nproc)}

deploy/local/install-deps.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$jobs"

# shellcheck source=stack.sh
source deploy/local/stack.sh
stack_start "$root/build/$preset/stack"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}

ctest --preset "$preset" -j "$jobs" --timeout 600 "$@"
