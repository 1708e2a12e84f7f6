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

// What applying an update may take on a device of the class besides the slot it writes:
// the largest decoder window (log2 bytes) and the decoder's working memory (0: no bound).
struct DeltaBudget {
  uint32_t max_window_log = 17;
  uint64_t max_decoder_bytes = 0;
  std::vector<std::string> codecs;  // the codecs its devices decode (DeviceClass::delta_codecs)
};

// The delta codecs a class may name (update/schema/update.fbs, DeltaCodec).
const std::vector<std::string>& delta_codec_names();

struct DeviceClass {
  std::string name;
  uint64_t ram_bytes = 0, flash_bytes = 0, clock_hz = 0;
  uint64_t runtime_flash_bytes = 0, runtime_ram_bytes = 0;
  std::vector<std::string> simd;
  std::map<std::string, double> cycles_per_mac;  // conv, depthwise, fully_connected, other
  double active_mw = 0, idle_mw = 0;
  // The codecs its devices' firmware decodes (e.g. the Cortex-M4 build: TensorRange only);
  // empty: every codec.
  std::vector<std::string> delta_codecs;

  // The delta-workspace budget, derived from RAM: a class with at most 512 KB of RAM
  // (a microcontroller) gets a 16 KB window and 64 KB of decoder memory, so only the
  // tensor codecs (range, LZMA) or a small-window zstd fit; a larger one any codec
  // within a 128 KB window.
  DeltaBudget delta_budget() const;
};

// Bounds of a class spec: the JSON text, the SIMD list, the cycles-per-MAC entries.
constexpr size_t kMaxDeviceClassJsonBytes = 64 * 1024;
constexpr size_t kMaxDeviceClassListEntries = 64;

// One field of a class spec: its JSON type, whether it is required, its range (for a list
// or text: the largest length) and what it means. docs/optimizer.md has the same table.
struct DeviceClassField {
  enum class Kind { kInteger, kNumber, kNameList, kCyclesPerMac, kText };
  const char* key;
  Kind kind;
  bool required;
  double min, max;
  const char* doc;
};
const std::vector<DeviceClassField>& device_class_schema();

// A class spec as the catalog and CreateDeviceClass hold it: a JSON object of the schema's
// fields, each of its type and in its range; an unknown field is refused. An error names
// the field that is wrong.
Result<DeviceClass> parse_device_class(const std::string& name, const std::string& json);
// Every class of a catalog file's JSON object.
Result<std::vector<DeviceClass>> parse_catalog(const std::string& json);

struct Estimate {
  double cycles = 0;  // per inference
  double latency_ms = 0;
  double energy_mj = 0;
};
Estimate estimate(const CompileReport& report, const DeviceClass& cls);

// Empty when the model fits; otherwise the reason with the numbers, e.g.
// "arena 300000 B + runtime 4096 B exceeds RAM 262144 B".
std::string fit_refusal(const CompileReport& report, const DeviceClass& cls);

}  // namespace tinyfleet::optimizer_service
