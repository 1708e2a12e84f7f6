#include "tinyfleet/device_agent/linux/system_clock.h"

#include <time.h>

namespace tinyfleet::device_agent::linux_port {

namespace {
uint64_t read_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}
}  // namespace

uint64_t SystemClock::now_unix() { return read_ns(CLOCK_REALTIME) / 1000000000u; }

uint64_t SystemClock::active_ns() { return read_ns(CLOCK_MONOTONIC); }

}  // namespace tinyfleet::device_agent::linux_port
