#pragma once

// Tensor lifetimes to offsets in one arena. Greedy-by-size as in TensorFlow Lite Micro:
// the largest buffers are placed first, each at the lowest offset that does not
// overlap a placed buffer alive at the same time. Reshape outputs share their input's
// buffer (the runtime then copies nothing).
#include <cstdint>
#include <vector>

#include "tinyfleet/optimizer_service/graph.h"

namespace tinyfleet::optimizer_service {

struct MemoryPlan {
  std::vector<uint32_t> offset;  // per tensor (constants: unused)
  uint32_t arena_bytes = 0;      // peak of the plan
  uint32_t naive_bytes = 0;      // every activation its own buffer
};

// `bytes_per_element` per tensor (1 for int8).
MemoryPlan plan_memory(const Graph& g, const std::vector<uint32_t>& bytes_per_element);

}  // namespace tinyfleet::optimizer_service
