#pragma once

#include <cstdint>

#include "tinyfleet/device_agent/ports.h"

namespace tinyfleet::device_agent::linux_port {

// The Linux clock port: the wall clock for expiry, CLOCK_MONOTONIC for timeouts and
// latency, and CLOCK_MONOTONIC in ns as the measured active time around each inference.
class SystemClock final : public Clock {
 public:
  uint64_t now_unix() override;
  uint64_t monotonic_ms() override { return active_ns() / 1000000; }
  uint64_t monotonic_us() override { return active_ns() / 1000; }
  uint64_t active_ns() override;
};

}  // namespace tinyfleet::device_agent::linux_port
