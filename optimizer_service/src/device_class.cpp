#include "tinyfleet/optimizer_service/device_class.h"

#include <nlohmann/json.hpp>

namespace tinyfleet::optimizer_service {

Result<DeviceClass> parse_device_class(const std::string& name, const std::string& text) {
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return CompileError{"device class '" + name + "' is not a JSON object"};
  DeviceClass c;
  c.name = name;
  auto number = [&](const char* key, uint64_t& out, bool required) -> bool {
    if (!j.contains(key)) return !required;
    if (!j[key].is_number() || j[key].get<double>() < 0) return false;
    out = j[key].get<uint64_t>();
    return true;
  };
  for (const char* key : {"ram_bytes", "flash_bytes", "clock_hz"}) {
    uint64_t* field = std::string(key) == "ram_bytes"     ? &c.ram_bytes
                      : std::string(key) == "flash_bytes" ? &c.flash_bytes
                                                          : &c.clock_hz;
    if (!number(key, *field, true) || *field == 0) {
      return CompileError{"device class '" + name + "' needs a positive number '" + key + "'"};
    }
  }
  if (!number("runtime_flash_bytes", c.runtime_flash_bytes, false) ||
      !number("runtime_ram_bytes", c.runtime_ram_bytes, false)) {
    return CompileError{"device class '" + name + "' has a bad runtime size"};
  }
  if (j.contains("simd") && j["simd"].is_array())
    c.simd = j["simd"].get<std::vector<std::string>>();
  c.cycles_per_mac = {{"conv", 1.0}, {"depthwise", 1.0}, {"fully_connected", 1.0}, {"other", 1.0}};
  if (j.contains("cycles_per_mac") && j["cycles_per_mac"].is_object()) {
    for (auto it = j["cycles_per_mac"].begin(); it != j["cycles_per_mac"].end(); ++it) {
      if (it->is_number()) c.cycles_per_mac[it.key()] = it->get<double>();
    }
  }
  c.active_mw = j.value("active_mw", 0.0);
  c.idle_mw = j.value("idle_mw", 0.0);
  return c;
}

Result<std::vector<DeviceClass>> parse_catalog(const std::string& text) {
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return CompileError{"the device-class catalog is not a JSON object"};
  std::vector<DeviceClass> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    auto c = parse_device_class(it.key(), it->dump());
    if (!c) return c.error();
    out.push_back(std::move(*c));
  }
  return out;
}

Estimate estimate(const CompileReport& r, const DeviceClass& c) {
  const double cycles = static_cast<double>(r.conv_macs) * c.cycles_per_mac.at("conv") +
                        static_cast<double>(r.depthwise_macs) * c.cycles_per_mac.at("depthwise") +
                        static_cast<double>(r.fc_macs) * c.cycles_per_mac.at("fully_connected") +
                        static_cast<double>(r.other_ops_elements) * c.cycles_per_mac.at("other");
  Estimate e;
  e.latency_ms = cycles / static_cast<double>(c.clock_hz) * 1e3;
  e.energy_mj = c.active_mw * e.latency_ms / 1e3;  // mW x s = mJ
  return e;
}

std::string fit_refusal(const CompileReport& r, const DeviceClass& c) {
  const uint64_t ram = uint64_t{r.arena_bytes} + r.scratch_bytes + c.runtime_ram_bytes;
  if (ram > c.ram_bytes) {
    return "does not fit " + c.name + ": arena " + std::to_string(r.arena_bytes) + " B + scratch " +
           std::to_string(r.scratch_bytes) + " B + runtime " + std::to_string(c.runtime_ram_bytes) +
           " B = " + std::to_string(ram) + " B exceeds RAM " + std::to_string(c.ram_bytes) + " B";
  }
  const uint64_t flash = r.artifact_bytes + c.runtime_flash_bytes;
  if (flash > c.flash_bytes) {
    return "does not fit " + c.name + ": artifact " + std::to_string(r.artifact_bytes) +
           " B + runtime " + std::to_string(c.runtime_flash_bytes) +
           " B = " + std::to_string(flash) + " B exceeds flash " + std::to_string(c.flash_bytes) +
           " B";
  }
  return "";
}

}  // namespace tinyfleet::optimizer_service
