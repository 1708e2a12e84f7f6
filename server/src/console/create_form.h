#pragma once

// The body of the console's POST /api/v1/rollouts (docs/console.md): a JSON object with
// what `fleetctl rollouts create` takes. Bounded (kMaxFormBytes, list lengths, string
// lengths), unknown keys and wrong types refused with a message naming the field; what
// the values mean (names, phases, gates, selection) is checked by rollouts::create.
// Fuzzed by tests/fuzz/console_create_form_fuzzer.cpp.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tinyfleet/storage/error.h"

namespace tinyfleet::server::console {

inline constexpr size_t kMaxFormBytes = 16384;
inline constexpr size_t kMaxFormList = 1000;    // classes, tags, device ids
inline constexpr size_t kMaxFormPhases = 100;   //
inline constexpr size_t kMaxFormString = 2000;  // any one string (the gates expression)

struct CreateForm {
  std::string name, model, fleet, gates, on_gate_failure;
  uint32_t version = 0;
  std::vector<std::string> device_classes, tags, device_ids;
  std::vector<std::pair<uint32_t, uint32_t>> phases;  // (percent, bake seconds)
  uint32_t rate_per_minute = 0;                       // 0: the default
};

storage::Expected<CreateForm> parse_create_form(const std::string& body);

}  // namespace tinyfleet::server::console
