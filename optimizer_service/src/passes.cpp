#include "tinyfleet/optimizer_service/passes.h"

#include <algorithm>
#include <set>
#include <vector>

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
// The index of the node producing `tensor`, or -1.
long producer_of(const Graph& g, int tensor) {
  for (size_t j = 0; j < g.nodes.size(); ++j) {
    if (g.nodes[j].outputs[0] == tensor) return static_cast<long>(j);
  }
  return -1;
}
bool is_graph_output(const Graph& g, int tensor) {
  return std::find(g.outputs.begin(), g.outputs.end(), tensor) != g.outputs.end();
}
bool unbounded(const kernels::FloatRange& r) { return r.min <= -3e38f && r.max >= 3e38f; }
// The node producing `tensor` if it can take a clamp and feeds nothing else.
Node* clamp_carrier(Graph& g, int tensor) {
  const long p = producer_of(g, tensor);
  if (p < 0 || consumers(g, tensor) != 1) return nullptr;
  Node& n = g.nodes[static_cast<size_t>(p)];
  return can_carry_activation(n.type) ? &n : nullptr;
}
}  // namespace

int fuse_activations(Graph& g) {
  int fused = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (g.nodes[i].type != OpType::kClamp) continue;
    const Node clamp = g.nodes[i];
    // The producer takes the clamp; through a Concatenation, clamp(concat(a, b)) =
    // concat(clamp(a), clamp(b)), so every input's producer takes it.
    const long p = producer_of(g, clamp.inputs[0]);
    if (p < 0 || consumers(g, clamp.inputs[0]) != 1) continue;
    Node& producer = g.nodes[static_cast<size_t>(p)];
    std::vector<Node*> carriers;
    if (can_carry_activation(producer.type)) {
      carriers = {&producer};
    } else if (producer.type == OpType::kConcatenation) {
      for (int in : producer.inputs) {
        if (Node* c = clamp_carrier(g, in)) carriers.push_back(c);
      }
      if (carriers.size() != producer.inputs.size()) continue;
    }
    if (carriers.empty()) continue;
    for (Node* c : carriers) {
      c->activation.min = std::max(c->activation.min, clamp.activation.min);
      c->activation.max = std::min(c->activation.max, clamp.activation.max);
    }
    // The producer now writes the clamp's output; the clamp goes.
    producer.outputs[0] = clamp.outputs[0];
    g.nodes.erase(g.nodes.begin() + static_cast<long>(i));
    --i;
    ++fused;
  }
  return fused;
}

int fuse_pads(Graph& g) {
  int fused = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& pad = g.nodes[i];
    if (pad.type != OpType::kPad || pad.pad_before[0] || pad.pad_after[0] || pad.pad_before[3] ||
        pad.pad_after[3] || consumers(g, pad.outputs[0]) != 1 ||
        is_graph_output(g, pad.outputs[0])) {
      continue;
    }
    for (Node& conv : g.nodes) {
      if ((conv.type != OpType::kConv2D && conv.type != OpType::kDepthwiseConv2D) ||
          conv.inputs[0] != pad.outputs[0]) {
        continue;
      }
      conv.padding.top += pad.pad_before[1];
      conv.padding.bottom += pad.pad_after[1];
      conv.padding.left += pad.pad_before[2];
      conv.padding.right += pad.pad_after[2];
      conv.inputs[0] = pad.inputs[0];
      g.nodes.erase(g.nodes.begin() + static_cast<long>(i));
      --i;
      ++fused;
      break;
    }
  }
  return fused;
}

int fold_scalar_affine(Graph& g) {
  int folded = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& op = g.nodes[i];
    if ((op.type != OpType::kMul && op.type != OpType::kAdd) || op.inputs.size() != 2) continue;
    const Tensor& k = g.tensors[static_cast<size_t>(op.inputs[1])];
    if (!k.constant || k.data.size() != 1) continue;
    const long p = producer_of(g, op.inputs[0]);
    if (p < 0) continue;
    Node& producer = g.nodes[static_cast<size_t>(p)];
    const bool affine = producer.type == OpType::kConv2D ||
                        producer.type == OpType::kDepthwiseConv2D ||
                        producer.type == OpType::kFullyConnected;
    if (!affine || consumers(g, op.inputs[0]) != 1 || is_graph_output(g, op.inputs[0]) ||
        !unbounded(producer.activation)) {
      continue;
    }
    Tensor& w = g.tensors[static_cast<size_t>(producer.inputs[1])];
    Tensor& b = g.tensors[static_cast<size_t>(producer.inputs[2])];
    if (op.type == OpType::kMul) {
      for (float& v : w.data) v *= k.data[0];
      for (float& v : b.data) v *= k.data[0];
    } else {
      for (float& v : b.data) v += k.data[0];
    }
    producer.outputs[0] = op.outputs[0];
    g.nodes.erase(g.nodes.begin() + static_cast<long>(i));
    --i;
    ++folded;
  }
  return folded;
}

int remove_no_ops(Graph& g) {
  int removed = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    const int in = n.inputs[0], out = n.outputs[0];
    const auto& a = g.tensors[static_cast<size_t>(in)].dims;
    const auto& b = g.tensors[static_cast<size_t>(out)].dims;
    const bool same = a.n == b.n && a.h == b.h && a.w == b.w && a.c == b.c;
    bool no_op = false;
    switch (n.type) {
      case OpType::kPad:
      case OpType::kReshape:
        no_op = same;
        break;
      case OpType::kConcatenation:
        no_op = n.inputs.size() == 1;
        break;
      case OpType::kClamp:
        no_op = unbounded(n.activation);
        break;
      default:
        break;
    }
    const bool in_is_input = std::find(g.inputs.begin(), g.inputs.end(), in) != g.inputs.end();
    if (!no_op || (in_is_input && is_graph_output(g, out))) continue;
    for (auto& other : g.nodes) {
      for (int& t : other.inputs) t = t == out ? in : t;
    }
    for (int& t : g.outputs) t = t == out ? in : t;
    g.nodes.erase(g.nodes.begin() + static_cast<long>(i));
    --i;
    ++removed;
  }
  return removed;
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
