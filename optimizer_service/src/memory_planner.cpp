#include "tinyfleet/optimizer_service/memory_planner.h"

#include <algorithm>
#include <numeric>

namespace tinyfleet::optimizer_service {

MemoryPlan plan_memory(const Graph& g, const std::vector<uint32_t>& bytes_per_element) {
  const size_t n = g.tensors.size();
  // Buffers: reshape outputs join their input's buffer.
  std::vector<int> buffer(n);
  std::iota(buffer.begin(), buffer.end(), 0);
  for (const auto& node : g.nodes) {
    if (node.type == OpType::kReshape)
      buffer[static_cast<size_t>(node.outputs[0])] = buffer[static_cast<size_t>(node.inputs[0])];
  }
  const int last = static_cast<int>(g.nodes.size());
  std::vector<int> first_use(n, last + 1), last_use(n, -2);
  std::vector<uint32_t> size(n, 0);
  auto touch = [&](int t, int step) {
    const size_t b = static_cast<size_t>(buffer[static_cast<size_t>(t)]);
    first_use[b] = std::min(first_use[b], step);
    last_use[b] = std::max(last_use[b], step);
    const auto& tensor = g.tensors[static_cast<size_t>(t)];
    size[b] = std::max(size[b], static_cast<uint32_t>(tensor.dims.elements()) *
                                    bytes_per_element[static_cast<size_t>(t)]);
  };
  for (int t : g.inputs) touch(t, -1);
  for (int i = 0; i < last; ++i) {
    for (int t : g.nodes[static_cast<size_t>(i)].inputs) {
      if (!g.tensors[static_cast<size_t>(t)].constant) touch(t, i);
    }
    for (int t : g.nodes[static_cast<size_t>(i)].outputs) touch(t, i);
  }
  for (int t : g.outputs) touch(t, last);

  MemoryPlan plan;
  plan.offset.assign(n, 0);
  std::vector<size_t> order;
  for (size_t b = 0; b < n; ++b) {
    if (last_use[b] >= -1 && size[b] > 0) {
      order.push_back(b);
      plan.naive_bytes += (size[b] + 15u) & ~15u;
    }
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return size[a] > size[b]; });
  std::vector<size_t> placed;
  for (size_t b : order) {
    // Candidate offsets: 0 and the end of every placed buffer alive at the same time.
    std::vector<std::pair<uint32_t, uint32_t>> busy;
    for (size_t p : placed) {
      if (first_use[p] <= last_use[b] && first_use[b] <= last_use[p]) {
        busy.push_back({plan.offset[p], plan.offset[p] + size[p]});
      }
    }
    std::sort(busy.begin(), busy.end());
    uint32_t at = 0;
    for (const auto& [lo, hi] : busy) {
      if (at + size[b] <= lo) break;
      at = std::max(at, (hi + 15u) & ~15u);
    }
    plan.offset[b] = at;
    plan.arena_bytes = std::max(plan.arena_bytes, at + size[b]);
    placed.push_back(b);
  }
  for (size_t t = 0; t < n; ++t) plan.offset[t] = plan.offset[static_cast<size_t>(buffer[t])];
  return plan;
}

}  // namespace tinyfleet::optimizer_service
