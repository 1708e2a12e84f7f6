#!/usr/bin/env bash
# Runs one command with the private stack up: PostgreSQL and Mosquitto on free
# loopback ports, their details exported (see stack.sh), torn down afterwards.
#   deploy/local/with-stack.sh ctest --preset debug
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=stack.sh
source "$here/stack.sh"
stack_start "${TINYFLEET_STACK_DIR:-$(mktemp -d /tmp/tinyfleet-stack.XXXXXX)}"
stack_run "$@"
