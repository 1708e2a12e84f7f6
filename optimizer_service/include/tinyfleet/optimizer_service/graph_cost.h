#pragma once

#include <optional>

#include "tinyfleet/optimizer_service/compiler.h"
#include "tinyfleet/optimizer_service/graph.h"

namespace tinyfleet::optimizer_service {

// What one inference of a graph costs, counted from its shapes before anything runs:
// `work` is multiply-accumulates for Conv2D, DepthwiseConv2D and FullyConnected and one per
// output element for every other operator; `activation_elements` is the sum over every
// non-constant tensor (what the float executor holds during calibration). Doubles: the
// shapes come from a user's file and their products may pass int64.
struct GraphCost {
  double work = 0;
  double activation_elements = 0;
};
GraphCost graph_cost(const Graph& g);

// A refusal naming the figure and the limit when the graph costs more than
// `options.max_work` or `options.max_activation_elements`: the compiler calibrates,
// self-tests and validates a model by running it, and a file of a few hundred bytes can
// declare shapes that would take the compile worker hours or gigabytes.
std::optional<CompileError> check_cost(const Graph& g, const CompileOptions& options);

}  // namespace tinyfleet::optimizer_service
