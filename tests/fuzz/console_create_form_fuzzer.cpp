// Arbitrary bytes as the body of the console's POST /api/v1/rollouts (an operator's
// create-rollout form): a form within the bounds, or an error naming what is wrong;
// never a crash.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "console/create_form.h"

namespace c = tinyfleet::server::console;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  const auto f = c::parse_create_form(body);
  if (!f) {
    if (f.error().message.empty()) std::abort();
    return 0;
  }
  if (body.size() > c::kMaxFormBytes || f->phases.size() > c::kMaxFormPhases) std::abort();
  for (const auto* l : {&f->device_classes, &f->tags, &f->device_ids}) {
    if (l->size() > c::kMaxFormList) std::abort();
    for (const auto& s : *l) {
      if (s.size() > c::kMaxFormString) std::abort();
    }
  }
  for (const auto* s : {&f->name, &f->model, &f->fleet, &f->gates, &f->on_gate_failure}) {
    if (s->size() > c::kMaxFormString) std::abort();
  }
  return 0;
}
