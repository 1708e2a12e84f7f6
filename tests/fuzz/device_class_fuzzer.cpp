// Arbitrary bytes as a device-class spec (what CreateDeviceClass takes from an operator):
// the parser returns a class or an error, never crashes, never accepts a class without
// positive RAM, flash and clock, never accepts a value outside the schema's ranges.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "tinyfleet/optimizer_service/device_class.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto c = tinyfleet::optimizer_service::parse_device_class("fuzz", text);
  if (c && (c->ram_bytes == 0 || c->flash_bytes == 0 || c->clock_hz == 0)) std::abort();
  if (!c) return 0;
  (void)c->delta_budget();
  // Whatever is accepted lies inside the schema's ranges.
  if (c->clock_hz > 1000000000000ull || c->active_mw > 1e7 || c->idle_mw > 1e7) std::abort();
  if (c->cycles_per_mac.size() != 4) std::abort();
  for (const auto& [kind, v] : c->cycles_per_mac) {
    if (!(v >= 0 && v <= 1e6)) std::abort();
  }
  return 0;
}
