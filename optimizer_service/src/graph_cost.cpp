#include "tinyfleet/optimizer_service/graph_cost.h"

#include <cstdio>
#include <string>

namespace tinyfleet::optimizer_service {

namespace {

double elements(const kernels::Dims& d) { return static_cast<double>(d.n) * d.h * d.w * d.c; }

// Multiply-accumulates (or element operations) of one node.
double node_work(const Graph& g, const Node& node) {
  if (node.outputs.empty()) return 0;
  const auto& out = g.tensors[static_cast<size_t>(node.outputs[0])].dims;
  const kernels::Dims* in = node.inputs.empty() || node.inputs[0] < 0
                                ? nullptr
                                : &g.tensors[static_cast<size_t>(node.inputs[0])].dims;
  switch (node.type) {
    case OpType::kConv2D:
      return elements(out) * node.filter_h * node.filter_w * (in ? in->c : 1);
    case OpType::kDepthwiseConv2D:
      return elements(out) * node.filter_h * node.filter_w;
    case OpType::kFullyConnected:
      return elements(out) * (in && in->n > 0 ? elements(*in) / in->n : 1);
    case OpType::kAveragePool2D:
    case OpType::kMaxPool2D:
      return elements(out) * node.filter_h * node.filter_w;
    default:
      return elements(out);
  }
}

std::string figure(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

}  // namespace

GraphCost graph_cost(const Graph& g) {
  GraphCost c;
  for (const auto& node : g.nodes) c.work += node_work(g, node);
  for (const auto& t : g.tensors) {
    if (!t.constant) c.activation_elements += elements(t.dims);
  }
  return c;
}

std::optional<CompileError> check_cost(const Graph& g, const CompileOptions& options) {
  const GraphCost c = graph_cost(g);
  if (c.work > static_cast<double>(options.max_work)) {
    return CompileError{"the model needs " + figure(c.work) +
                        " multiply-accumulates per inference; the compiler takes at most " +
                        figure(static_cast<double>(options.max_work)) +
                        " (CompileOptions::max_work)"};
  }
  if (c.activation_elements > static_cast<double>(options.max_activation_elements)) {
    return CompileError{"the model's activations hold " + figure(c.activation_elements) +
                        " elements; the compiler takes at most " +
                        figure(static_cast<double>(options.max_activation_elements)) +
                        " (CompileOptions::max_activation_elements)"};
  }
  return std::nullopt;
}

}  // namespace tinyfleet::optimizer_service
