#include "tinyfleet/optimizer_service/device_class.h"

#include <cmath>

#include <nlohmann/json.hpp>

namespace tinyfleet::optimizer_service {

namespace {

// Integers up to 2^53 (exact in a double, and far beyond any device).
constexpr double kMaxInteger = 9007199254740992.0;

CompileError bad(const std::string& name, const std::string& what) {
  return CompileError{"device class '" + name + "' " + what};
}

// A finite, non-negative number.
bool non_negative(const nlohmann::json& v) {
  return v.is_number() && std::isfinite(v.get<double>()) && v.get<double>() >= 0;
}

}  // namespace

DeltaBudget DeviceClass::delta_budget() const {
  DeltaBudget b;
  if (ram_bytes <= 512 * 1024) {
    b.max_window_log = 14;
    b.max_decoder_bytes = 64 * 1024;
  }
  return b;
}

Result<DeviceClass> parse_device_class(const std::string& name, const std::string& text) {
  if (text.size() > kMaxDeviceClassJsonBytes) {
    return bad(name, "spec is " + std::to_string(text.size()) + " bytes, at most " +
                         std::to_string(kMaxDeviceClassJsonBytes));
  }
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad(name, "is not a JSON object");
  DeviceClass c;
  c.name = name;
  // Returns false when the key is there but not an integer in range (or missing and required).
  auto integer = [&](const char* key, uint64_t& out, bool required) -> bool {
    if (!j.contains(key)) return !required;
    const auto& v = j[key];
    if (!non_negative(v) || v.get<double>() > kMaxInteger ||
        std::floor(v.get<double>()) != v.get<double>()) {
      return false;
    }
    out = static_cast<uint64_t>(v.get<double>());
    return true;
  };
  const std::pair<const char*, uint64_t*> required[] = {
      {"ram_bytes", &c.ram_bytes}, {"flash_bytes", &c.flash_bytes}, {"clock_hz", &c.clock_hz}};
  for (const auto& [key, field] : required) {
    if (!integer(key, *field, true) || *field == 0) {
      return bad(name, std::string("needs a positive integer '") + key + "'");
    }
  }
  for (const auto& [key, field] :
       {std::pair<const char*, uint64_t*>{"runtime_flash_bytes", &c.runtime_flash_bytes},
        {"runtime_ram_bytes", &c.runtime_ram_bytes}}) {
    if (!integer(key, *field, false)) {
      return bad(name, std::string("has a bad '") + key + "' (a non-negative integer)");
    }
  }
  if (j.contains("simd")) {
    const auto& simd = j["simd"];
    if (!simd.is_array() || simd.size() > kMaxDeviceClassListEntries) {
      return bad(name, "has a bad 'simd' (a list of at most " +
                           std::to_string(kMaxDeviceClassListEntries) + " names)");
    }
    for (const auto& s : simd) {
      if (!s.is_string()) return bad(name, "has a 'simd' entry that is not a name");
      c.simd.push_back(s.get<std::string>());
    }
  }
  c.cycles_per_mac = {{"conv", 1.0}, {"depthwise", 1.0}, {"fully_connected", 1.0}, {"other", 1.0}};
  if (j.contains("cycles_per_mac")) {
    const auto& m = j["cycles_per_mac"];
    if (!m.is_object() || m.size() > kMaxDeviceClassListEntries) {
      return bad(name, "has a bad 'cycles_per_mac' (an object of operator kinds)");
    }
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (!non_negative(*it)) {
        return bad(name, "has a bad 'cycles_per_mac." + it.key() + "' (a non-negative number)");
      }
      c.cycles_per_mac[it.key()] = it->get<double>();
    }
  }
  for (const auto& [key, field] :
       {std::pair<const char*, double*>{"active_mw", &c.active_mw}, {"idle_mw", &c.idle_mw}}) {
    if (!j.contains(key)) continue;
    if (!non_negative(j[key])) {
      return bad(name, std::string("has a bad '") + key + "' (a non-negative number)");
    }
    *field = j[key].get<double>();
  }
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
  Estimate e;
  e.cycles = static_cast<double>(r.conv_macs) * c.cycles_per_mac.at("conv") +
             static_cast<double>(r.depthwise_macs) * c.cycles_per_mac.at("depthwise") +
             static_cast<double>(r.fc_macs) * c.cycles_per_mac.at("fully_connected") +
             static_cast<double>(r.other_ops_elements) * c.cycles_per_mac.at("other");
  e.latency_ms = e.cycles / static_cast<double>(c.clock_hz) * 1e3;
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
