#include "tinyfleet/optimizer_service/device_class.h"

#include <algorithm>
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

const std::vector<std::string>& delta_codec_names() {
  static const std::vector<std::string> names = {"Full", "ZstdPrefix", "TensorZstd", "TensorLzma",
                                                 "TensorRange"};
  return names;
}

DeltaBudget DeviceClass::delta_budget() const {
  DeltaBudget b;
  b.codecs = delta_codecs;
  if (ram_bytes <= 512 * 1024) {
    b.max_window_log = 14;
    b.max_decoder_bytes = 64 * 1024;
  }
  return b;
}

const std::vector<DeviceClassField>& device_class_schema() {
  using K = DeviceClassField::Kind;
  static const std::vector<DeviceClassField> fields = {
      {"ram_bytes", K::kInteger, true, 1, kMaxInteger, "RAM, bytes"},
      {"flash_bytes", K::kInteger, true, 1, kMaxInteger, "flash, bytes"},
      {"clock_hz", K::kInteger, true, 1, 1e12, "core clock, Hz"},
      {"runtime_flash_bytes", K::kInteger, false, 0, kMaxInteger, "flash the runtime takes"},
      {"runtime_ram_bytes", K::kInteger, false, 0, kMaxInteger, "RAM the runtime takes"},
      {"simd", K::kNameList, false, 0, kMaxDeviceClassListEntries,
       "SIMD extensions: names of 1 to 32 characters"},
      {"delta_codecs", K::kNameList, false, 0, 5,
       "update codecs its devices decode (Full, ZstdPrefix, TensorZstd, TensorLzma, "
       "TensorRange); default all"},
      {"cycles_per_mac", K::kCyclesPerMac, false, 0, 1e6,
       "cycles per MAC for conv, depthwise, fully_connected, other (default 1)"},
      {"active_mw", K::kNumber, false, 0, 1e7, "power while running, mW"},
      {"idle_mw", K::kNumber, false, 0, 1e7, "power while idle, mW"},
      {"description", K::kText, false, 0, 1024, "free text, up to 1024 bytes"},
  };
  return fields;
}

namespace {

// The range of a field as text: "1..9007199254740992".
std::string range(const DeviceClassField& f) {
  auto num = [](double v) {
    std::string s = std::to_string(v);
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  };
  return num(f.min) + ".." + num(f.max);
}

bool in_range(const nlohmann::json& v, const DeviceClassField& f) {
  return non_negative(v) && v.get<double>() >= f.min && v.get<double>() <= f.max;
}

// Checks one present field and stores it in `c`; an error names the field.
std::string apply(const DeviceClassField& f, const nlohmann::json& v, DeviceClass& c) {
  using K = DeviceClassField::Kind;
  const std::string key = f.key;
  switch (f.kind) {
    case K::kInteger: {
      if (!in_range(v, f) || std::floor(v.get<double>()) != v.get<double>()) {
        return "has a bad '" + key + "' (an integer in " + range(f) + ")";
      }
      const auto n = static_cast<uint64_t>(v.get<double>());
      if (key == "ram_bytes") c.ram_bytes = n;
      if (key == "flash_bytes") c.flash_bytes = n;
      if (key == "clock_hz") c.clock_hz = n;
      if (key == "runtime_flash_bytes") c.runtime_flash_bytes = n;
      if (key == "runtime_ram_bytes") c.runtime_ram_bytes = n;
      return "";
    }
    case K::kNumber:
      if (!in_range(v, f)) return "has a bad '" + key + "' (a number in " + range(f) + ")";
      (key == "active_mw" ? c.active_mw : c.idle_mw) = v.get<double>();
      return "";
    case K::kNameList:
      if (!v.is_array() || v.size() > f.max) {
        return "has a bad '" + key + "' (a list of at most " + range(f).substr(3) + " names)";
      }
      for (const auto& s : v) {
        if (!s.is_string() || s.get<std::string>().empty() || s.get<std::string>().size() > 32) {
          return "has a '" + key + "' entry that is not a name of 1 to 32 characters";
        }
        const auto& names = delta_codec_names();
        if (key == "delta_codecs" &&
            std::find(names.begin(), names.end(), s.get<std::string>()) == names.end()) {
          return "has an unknown '" + key + "' entry '" + s.get<std::string>() +
                 "' (known: Full, ZstdPrefix, TensorZstd, TensorLzma, TensorRange)";
        }
        (key == "delta_codecs" ? c.delta_codecs : c.simd).push_back(s.get<std::string>());
      }
      return "";
    case K::kCyclesPerMac:
      if (!v.is_object()) return "has a bad '" + key + "' (an object of operator kinds)";
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!c.cycles_per_mac.count(it.key())) {
          return "has an unknown '" + key + "." + it.key().substr(0, 64) +
                 "' (known: conv, depthwise, fully_connected, other)";
        }
        if (!in_range(*it, f)) {
          return "has a bad '" + key + "." + it.key() + "' (a number in " + range(f) + ")";
        }
        c.cycles_per_mac[it.key()] = it->get<double>();
      }
      return "";
    case K::kText:
      if (!v.is_string() || v.get<std::string>().size() > f.max) {
        return "has a bad '" + key + "' (text of at most " + range(f).substr(3) + " bytes)";
      }
      return "";
  }
  return "";
}

}  // namespace

Result<DeviceClass> parse_device_class(const std::string& name, const std::string& text) {
  if (text.size() > kMaxDeviceClassJsonBytes) {
    return bad(name, "spec is " + std::to_string(text.size()) + " bytes, at most " +
                         std::to_string(kMaxDeviceClassJsonBytes));
  }
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad(name, "is not a JSON object");
  const auto& schema = device_class_schema();
  for (auto it = j.begin(); it != j.end(); ++it) {
    const bool known = std::any_of(schema.begin(), schema.end(),
                                   [&](const DeviceClassField& f) { return it.key() == f.key; });
    if (!known) {
      return bad(name, "has an unknown field '" + it.key().substr(0, 64) +
                           "' (see docs/optimizer.md, \"Device classes\")");
    }
  }
  DeviceClass c;
  c.name = name;
  c.cycles_per_mac = {{"conv", 1.0}, {"depthwise", 1.0}, {"fully_connected", 1.0}, {"other", 1.0}};
  for (const auto& f : schema) {
    const auto v = j.find(f.key);
    if (v == j.end()) {
      if (f.required) {
        return bad(name, std::string("needs a positive integer '") + f.key + "' (" + f.doc + ")");
      }
      continue;
    }
    if (auto why = apply(f, *v, c); !why.empty()) return bad(name, why);
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
