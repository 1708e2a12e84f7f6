#pragma once

// Runs the graph in float32 on the kernels' float references: the compiler's ground
// truth for calibration (every intermediate tensor) and for validation.
#include <vector>

#include "tinyfleet/optimizer_service/graph.h"
#include "tinyfleet/optimizer_service/result.h"

namespace tinyfleet::optimizer_service {

class FloatExecutor {
 public:
  explicit FloatExecutor(const Graph& graph);
  // `input` in NHWC; afterwards value(t) holds every tensor's values.
  Result<bool> run(const std::vector<float>& input);
  const std::vector<float>& value(int tensor) const { return values_[static_cast<size_t>(tensor)]; }
  const std::vector<float>& output() const { return value(graph_.outputs.at(0)); }

 private:
  const Graph& graph_;
  std::vector<std::vector<float>> values_;
};

}  // namespace tinyfleet::optimizer_service
