#pragma once

// A device class (optimizer_service/device_classes/catalog.json): memory, clock, SIMD,
// a cycles-per-MAC model per operator kind and a power model. The fit check refuses a
// model with the numbers; the estimate gives latency and energy per inference.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tinyfleet/optimizer_service/compiler.h"
#include "tinyfleet/optimizer_service/result.h"

namespace tinyfleet::optimizer_service {

struct DeviceClass {
  std::string name;
  uint64_t ram_bytes = 0, flash_bytes = 0, clock_hz = 0;
  uint64_t runtime_flash_bytes = 0, runtime_ram_bytes = 0;
  std::vector<std::string> simd;
  std::map<std::string, double> cycles_per_mac;  // conv, depthwise, fully_connected, other
  double active_mw = 0, idle_mw = 0;
};

Result<DeviceClass> parse_device_class(const std::string& name, const std::string& json);
// Every class of a catalog file's JSON object.
Result<std::vector<DeviceClass>> parse_catalog(const std::string& json);

struct Estimate {
  double latency_ms = 0;
  double energy_mj = 0;
};
Estimate estimate(const CompileReport& report, const DeviceClass& cls);

// Empty when the model fits; otherwise the reason with the numbers, e.g.
// "arena 300000 B + runtime 4096 B exceeds RAM 262144 B".
std::string fit_refusal(const CompileReport& report, const DeviceClass& cls);

}  // namespace tinyfleet::optimizer_service
