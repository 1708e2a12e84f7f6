// Arbitrary bytes as a device-class spec (what CreateDeviceClass takes from an operator):
// the parser returns a class or an error, never crashes, never accepts a class without
// positive RAM, flash and clock.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "tinyfleet/optimizer_service/device_class.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto c = tinyfleet::optimizer_service::parse_device_class("fuzz", text);
  if (c && (c->ram_bytes == 0 || c->flash_bytes == 0 || c->clock_hz == 0)) std::abort();
  if (c) (void)c->delta_budget();
  return 0;
}
