#include "tinyfleet/optimizer_service/passes.h"

#include <set>

namespace tinyfleet::optimizer_service {

namespace {
int consumers(const Graph& g, int tensor) {
  int n = 0;
  for (const auto& node : g.nodes) {
    for (int in : node.inputs) n += in == tensor;
  }
  for (int out : g.outputs) n += out == tensor;
  return n;
}
bool can_carry_activation(OpType t) {
  return t == OpType::kConv2D || t == OpType::kDepthwiseConv2D || t == OpType::kFullyConnected ||
         t == OpType::kAdd || t == OpType::kAveragePool2D || t == OpType::kMaxPool2D;
}
}  // namespace

int fuse_activations(Graph& g) {
  int fused = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& clamp = g.nodes[i];
    if (clamp.type != OpType::kClamp) continue;
    const int x = clamp.inputs[0];
    for (size_t j = 0; j < i; ++j) {
      Node& producer = g.nodes[j];
      if (producer.outputs[0] != x || !can_carry_activation(producer.type) ||
          consumers(g, x) != 1) {
        continue;
      }
      producer.activation.min = std::max(producer.activation.min, clamp.activation.min);
      producer.activation.max = std::min(producer.activation.max, clamp.activation.max);
      // The producer now writes the clamp's output; the clamp goes.
      producer.outputs[0] = clamp.outputs[0];
      g.nodes.erase(g.nodes.begin() + static_cast<long>(i));
      --i;
      ++fused;
      break;
    }
  }
  return fused;
}

int remove_dead_nodes(Graph& g) {
  std::set<int> live(g.outputs.begin(), g.outputs.end());
  int removed = 0;
  for (size_t i = g.nodes.size(); i-- > 0;) {
    bool used = false;
    for (int out : g.nodes[i].outputs) used = used || live.count(out);
    if (!used) {
      g.nodes.erase(g.nodes.begin() + static_cast<long>(i));
      ++removed;
      continue;
    }
    live.insert(g.nodes[i].inputs.begin(), g.nodes[i].inputs.end());
  }
  return removed;
}

}  // namespace tinyfleet::optimizer_service
