#pragma once

// The compiler's typed outputs as the artifact rows store them.
#include "tinyfleet/optimizer_service/compile_outputs.h"
#include "tinyfleet/storage/records.h"

namespace tinyfleet::server {

inline storage::ArtifactOutputs to_record(const optimizer_service::CompileOutputs& o) {
  storage::ArtifactOutputs r;
  for (const auto& t : o.self_tests) r.self_tests.push_back({t.input, t.output});
  r.class_histogram = o.drift_baseline.class_histogram;
  r.mean_top1_confidence = o.drift_baseline.mean_top1_confidence;
  r.channel_mean = o.drift_baseline.channel_mean;
  r.channel_std = o.drift_baseline.channel_std;
  r.modelled_cycles = static_cast<int64_t>(o.modelled_cycles);
  r.arena_bytes = o.memory_plan.arena_bytes;
  for (const auto& b : o.memory_plan.buffers) {
    r.buffers.push_back({b.tensor, b.offset, b.size, b.first_step, b.last_step});
  }
  return r;
}

}  // namespace tinyfleet::server
