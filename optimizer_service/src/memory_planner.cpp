#include "tinyfleet/optimizer_service/memory_planner.h"

#include <algorithm>
#include <functional>
#include <numeric>

#include "tinyfleet/kernels/ops/in_place.h"
#include "tinyfleet/kernels/ops/patch_rows.h"

namespace tinyfleet::optimizer_service {

namespace {

uint32_t align16(uint64_t v) { return static_cast<uint32_t>((v + 15u) & ~uint64_t{15u}); }

// Activation buffers (a Reshape joins its input's buffer) and their lifetimes in steps of
// `order` (the graph input is born at step -1, graph outputs live to the end).
struct Buffers {
  std::vector<size_t> of;  // tensor -> buffer (the index of its first tensor)
  std::vector<int> first, last;
  std::vector<uint32_t> size;
  bool live(size_t b) const { return last[b] >= -1 && size[b] > 0; }
};

Buffers lifetimes(const Graph& g, const std::vector<uint32_t>& bpe, const std::vector<int>& order) {
  const size_t n = g.tensors.size();
  Buffers b;
  b.of.resize(n);
  std::iota(b.of.begin(), b.of.end(), size_t{0});
  for (int i : order) {
    const Node& node = g.nodes[static_cast<size_t>(i)];
    if (node.type == OpType::kReshape)
      b.of[static_cast<size_t>(node.outputs[0])] = b.of[static_cast<size_t>(node.inputs[0])];
  }
  const int steps = static_cast<int>(order.size());
  b.first.assign(n, steps + 1);
  b.last.assign(n, -2);
  b.size.assign(n, 0);
  auto touch = [&](int t, int step) {
    const size_t k = b.of[static_cast<size_t>(t)];
    b.first[k] = std::min(b.first[k], step);
    b.last[k] = std::max(b.last[k], step);
    b.size[k] = std::max(b.size[k],
                         static_cast<uint32_t>(g.tensors[static_cast<size_t>(t)].dims.elements()) *
                             bpe[static_cast<size_t>(t)]);
  };
  for (int t : g.inputs) touch(t, -1);
  for (int s = 0; s < steps; ++s) {
    const Node& node = g.nodes[static_cast<size_t>(order[static_cast<size_t>(s)])];
    for (int t : node.inputs) {
      if (!g.tensors[static_cast<size_t>(t)].constant) touch(t, s);
    }
    for (int t : node.outputs) touch(t, s);
  }
  for (int t : g.outputs) touch(t, steps);
  return b;
}

struct Member {
  size_t buffer;
  uint32_t rel;  // offset inside the group
};
using Group = std::vector<Member>;

// Bytes the output of `node` must start before input `input` to overlap it, or -1.
int64_t in_place_distance(const Graph& g, const Node& node, int input,
                          const std::vector<uint32_t>& bpe) {
  const auto& x = g.tensors[static_cast<size_t>(input)];
  const auto& y = g.tensors[static_cast<size_t>(node.outputs[0])];
  const uint32_t xb = bpe[static_cast<size_t>(input)];
  const uint32_t yb = bpe[static_cast<size_t>(node.outputs[0])];
  switch (node.type) {
    case OpType::kConv2D:
    case OpType::kDepthwiseConv2D:
    case OpType::kAveragePool2D:
    case OpType::kMaxPool2D:
      if (input != node.inputs[0] || xb != yb) return -1;
      return kernels::overlap_distance(
          x.dims, y.dims, {node.stride_h, node.stride_w, node.padding.top, node.padding.left}, xb);
    case OpType::kAdd:
    case OpType::kMul:
    case OpType::kLogistic:
    case OpType::kTanh:
      return x.dims.elements() == y.dims.elements() && xb == yb ? 0 : -1;
    default:
      return -1;
  }
}

// Chains of in-place pairs, as groups with offsets; every other buffer a group alone.
// With `loose`, pairs whose output overlaps less than half its input are left out: such
// a pair (a pointwise output wider than its input) gains little and shifts the rest of
// its chain by its whole distance.
std::vector<Group> in_place_groups(const Graph& g, const std::vector<uint32_t>& bpe,
                                   const std::vector<int>& order, const Buffers& b, bool loose,
                                   int* pairs) {
  const size_t n = g.tensors.size();
  std::vector<long> next(n, -1);
  std::vector<uint32_t> distance(n, 0);
  std::vector<bool> has_prev(n, false), is_input(n, false);
  for (int t : g.inputs) is_input[b.of[static_cast<size_t>(t)]] = true;
  *pairs = 0;
  for (size_t s = 0; s < order.size(); ++s) {
    const Node& node = g.nodes[static_cast<size_t>(order[s])];
    const size_t out = b.of[static_cast<size_t>(node.outputs[0])];
    if (has_prev[out] || b.first[out] != static_cast<int>(s)) continue;
    for (int x : node.inputs) {
      const size_t in = b.of[static_cast<size_t>(x)];
      if (g.tensors[static_cast<size_t>(x)].constant || in == out || is_input[in] ||
          next[in] >= 0 || b.last[in] != static_cast<int>(s)) {
        continue;
      }
      const int64_t d = in_place_distance(g, node, x, bpe);
      if (d < 0 || d >= b.size[out]) continue;  // not legal, or no overlap to gain
      if (loose && 2 * (b.size[out] - d) < b.size[in]) continue;
      next[in] = static_cast<long>(out);
      distance[in] = align16(static_cast<uint64_t>(d));
      has_prev[out] = true;
      ++*pairs;
      break;
    }
  }
  std::vector<Group> groups;
  for (size_t h = 0; h < n; ++h) {
    if (!b.live(h) || b.of[h] != h || has_prev[h]) continue;
    // Walk the chain: each output sits `distance` below its input.
    std::vector<std::pair<size_t, int64_t>> chain{{h, 0}};
    for (long k = next[h]; k >= 0; k = next[static_cast<size_t>(k)]) {
      const auto [prev, at] = chain.back();  // a copy: push_back may reallocate
      chain.push_back({static_cast<size_t>(k), at - distance[prev]});
    }
    int64_t lowest = 0;
    for (const auto& [buf, at] : chain) lowest = std::min(lowest, at);
    Group grp;
    for (const auto& [buf, at] : chain) grp.push_back({buf, static_cast<uint32_t>(at - lowest)});
    groups.push_back(std::move(grp));
  }
  return groups;
}

// Which group is placed first. Greedy by size is TFLite Micro's; the others help when
// a rigid group leaves a hole only an earlier-born buffer fits.
enum class Priority { kLargestExtent, kEarliestBirth, kLargestArea };

// Groups in priority order, each at the lowest offset where none of its rectangles
// meets a placed rectangle alive at the same time.
MemoryPlan place(const Graph& g, const Buffers& b, const std::vector<uint32_t>& bpe,
                 std::vector<Group> groups, Priority priority) {
  const size_t n = g.tensors.size();
  MemoryPlan plan;
  plan.offset.assign(n, 0);
  for (size_t k = 0; k < n; ++k) {
    if (b.live(k) && b.of[k] == k) plan.naive_bytes += align16(b.size[k]);
  }
  auto extent = [&](const Group& grp) {
    uint32_t e = 0;
    for (const auto& m : grp) e = std::max(e, m.rel + b.size[m.buffer]);
    return e;
  };
  auto birth = [&](const Group& grp) {
    int first = b.first[grp.front().buffer];
    for (const auto& m : grp) first = std::min(first, b.first[m.buffer]);
    return first;
  };
  auto area = [&](const Group& grp) {
    int64_t a = 0;
    for (const auto& m : grp)
      a += int64_t{b.size[m.buffer]} * (b.last[m.buffer] - b.first[m.buffer] + 1);
    return a;
  };
  std::stable_sort(groups.begin(), groups.end(), [&](const Group& x, const Group& y) {
    switch (priority) {
      case Priority::kEarliestBirth:
        return birth(x) != birth(y) ? birth(x) < birth(y) : extent(x) > extent(y);
      case Priority::kLargestArea:
        return area(x) > area(y);
      case Priority::kLargestExtent:
        break;
    }
    return extent(x) > extent(y);
  });
  struct Placed {
    uint32_t lo, hi;
    int first, last;
  };
  std::vector<Placed> placed;
  auto together = [&](const Placed& p, size_t buf) {
    return p.first <= b.last[buf] && b.first[buf] <= p.last;
  };
  for (const Group& grp : groups) {
    std::vector<uint32_t> candidates{0};
    for (const Placed& p : placed) {
      for (const Member& m : grp) {
        const uint32_t at = align16(p.hi);
        if (together(p, m.buffer) && at >= m.rel) candidates.push_back(at - m.rel);
      }
    }
    std::sort(candidates.begin(), candidates.end());
    uint32_t chosen = 0;
    for (uint32_t at : candidates) {
      bool clear = true;
      for (const Member& m : grp) {
        const uint32_t lo = at + m.rel, hi = lo + b.size[m.buffer];
        for (const Placed& p : placed) {
          if (together(p, m.buffer) && lo < p.hi && p.lo < hi) {
            clear = false;
            break;
          }
        }
        if (!clear) break;
      }
      if (clear) {
        chosen = at;
        break;
      }
    }
    for (const Member& m : grp) {
      const uint32_t lo = chosen + m.rel;
      plan.offset[m.buffer] = lo;
      placed.push_back({lo, lo + b.size[m.buffer], b.first[m.buffer], b.last[m.buffer]});
      plan.arena_bytes = std::max(plan.arena_bytes, lo + b.size[m.buffer]);
    }
  }
  plan.size.assign(n, 0);
  plan.first_step.assign(n, 0);
  plan.last_step.assign(n, 0);
  for (size_t t = 0; t < n; ++t) {
    const size_t k = b.of[t];
    plan.offset[t] = plan.offset[k];
    if (!b.live(k) || g.tensors[t].constant) continue;
    plan.size[t] = static_cast<uint32_t>(g.tensors[t].dims.elements()) * bpe[t];
    plan.first_step[t] = b.first[k];
    plan.last_step[t] = b.last[k];
  }
  return plan;
}

std::vector<int> given_order(const Graph& g) {
  std::vector<int> order(g.nodes.size());
  std::iota(order.begin(), order.end(), 0);
  return order;
}

MemoryPlan plan_buffers(const Graph& g, const std::vector<uint32_t>& bpe,
                        const std::vector<int>& order, const Buffers& b, bool in_place) {
  if (!in_place) {
    std::vector<Group> groups;
    for (size_t k = 0; k < g.tensors.size(); ++k) {
      if (b.live(k) && b.of[k] == k) groups.push_back({{k, 0}});
    }
    return place(g, b, bpe, groups, Priority::kLargestExtent);
  }
  MemoryPlan plan;
  for (bool loose : {false, true}) {
    int pairs = 0;
    const std::vector<Group> groups = in_place_groups(g, bpe, order, b, loose, &pairs);
    for (Priority p :
         {Priority::kLargestExtent, Priority::kEarliestBirth, Priority::kLargestArea}) {
      MemoryPlan other = place(g, b, bpe, groups, p);
      if (plan.offset.empty() || other.arena_bytes < plan.arena_bytes) {
        plan = std::move(other);
        plan.in_place_pairs = pairs;
      }
    }
  }
  return plan;
}

MemoryPlan plan_in_order(const Graph& g, const std::vector<uint32_t>& bpe,
                         const std::vector<int>& order, bool in_place) {
  return plan_buffers(g, bpe, order, lifetimes(g, bpe, order), in_place);
}

bool window_op(const Node& n) {
  return n.type == OpType::kConv2D || n.type == OpType::kDepthwiseConv2D ||
         n.type == OpType::kAveragePool2D || n.type == OpType::kMaxPool2D;
}

kernels::WindowRows window_rows(const Graph& g, const Node& n) {
  const bool weighted = n.type == OpType::kConv2D || n.type == OpType::kDepthwiseConv2D;
  const int32_t filter = weighted && n.inputs.size() > 1
                             ? g.tensors[static_cast<size_t>(n.inputs[1])].dims.h
                             : n.filter_h;
  return {g.tensors[static_cast<size_t>(n.inputs[0])].dims.h, n.stride_h, n.dilation_h, filter,
          n.padding.top};
}

// Multiply-accumulates (or window taps) per output element, what recomputing one costs.
uint64_t taps(const Graph& g, const Node& n) {
  const kernels::Dims& x = g.tensors[static_cast<size_t>(n.inputs[0])].dims;
  const kernels::Dims* w =
      n.inputs.size() > 1 ? &g.tensors[static_cast<size_t>(n.inputs[1])].dims : nullptr;
  switch (n.type) {
    case OpType::kConv2D:
      return w ? uint64_t(w->h) * w->w * w->c : uint64_t(n.filter_h) * n.filter_w * x.c;
    case OpType::kDepthwiseConv2D:
      return w ? uint64_t(w->h) * w->w : uint64_t(n.filter_h) * n.filter_w;
    case OpType::kAveragePool2D:
    case OpType::kMaxPool2D:
      return uint64_t(n.filter_h) * n.filter_w;
    case OpType::kFullyConnected:
      return w ? uint64_t(w->c) : 1;
    default:
      return 1;
  }
}

// The whole graph's work: output elements times taps.
uint64_t graph_work(const Graph& g) {
  uint64_t work = 0;
  for (const Node& n : g.nodes) {
    work += static_cast<uint64_t>(g.tensors[static_cast<size_t>(n.outputs[0])].dims.elements()) *
            taps(g, n);
  }
  return work;
}

// Whether nodes [first, first + count) (execution order = given order) can run in bands:
// window operators on int8 images of one batch, each output read only by the next
// operator, neither a graph output nor shared with a Reshape.
bool patchable(const Graph& g, const std::vector<uint32_t>& bpe, const Buffers& b, int first,
               int count, const std::vector<int>& readers) {
  for (int k = first; k < first + count; ++k) {
    const Node& n = g.nodes[static_cast<size_t>(k)];
    if (!window_op(n) || n.outputs.size() != 1) return false;
    const auto x = static_cast<size_t>(n.inputs[0]);
    const auto y = static_cast<size_t>(n.outputs[0]);
    if (bpe[x] != 1 || bpe[y] != 1 || g.tensors[x].dims.n != 1 || g.tensors[y].dims.n != 1)
      return false;
    if (k == first) continue;
    // x is the previous node's output: read here only, its own buffer.
    if (g.nodes[static_cast<size_t>(k - 1)].outputs[0] != n.inputs[0] || readers[x] != 1 ||
        b.of[x] != x)
      return false;
    if (std::find(g.outputs.begin(), g.outputs.end(), n.inputs[0]) != g.outputs.end()) return false;
    for (size_t t = 0; t < b.of.size(); ++t) {
      if (t != x && b.of[t] == x) return false;
    }
  }
  return true;
}

// The lifetimes with nodes [first, first + count) run in `bands` bands; `*extra` gets the
// work (graph_work's measure) the bands' halos compute twice.
Buffers banded(const Graph& g, Buffers b, int first, int count, int bands, uint64_t* extra) {
  std::vector<kernels::WindowRows> ops;
  for (int k = first; k < first + count; ++k)
    ops.push_back(window_rows(g, g.nodes[static_cast<size_t>(k)]));
  const auto& out =
      g.tensors[static_cast<size_t>(g.nodes[static_cast<size_t>(first + count - 1)].outputs[0])];
  std::vector<uint32_t> band_bytes(static_cast<size_t>(count), 0);
  std::vector<kernels::RowRange> r(static_cast<size_t>(count) + 1);
  uint64_t computed = 0, whole = 0;
  for (int i = 1; i <= count; ++i) {
    const Node& node = g.nodes[static_cast<size_t>(first + i - 1)];
    whole +=
        static_cast<uint64_t>(g.tensors[static_cast<size_t>(node.outputs[0])].dims.elements()) *
        taps(g, node);
  }
  for (int p = 0; p < bands; ++p) {
    kernels::band_rows(ops.data(), count, out.dims.h, bands, p, r.data());
    for (int i = 1; i <= count; ++i) {
      const auto& t =
          g.tensors[static_cast<size_t>(g.nodes[static_cast<size_t>(first + i - 1)].outputs[0])];
      const auto bytes =
          static_cast<uint32_t>(r[static_cast<size_t>(i)].end - r[static_cast<size_t>(i)].begin) *
          static_cast<uint32_t>(t.dims.w * t.dims.c);
      computed += uint64_t{bytes} * taps(g, g.nodes[static_cast<size_t>(first + i - 1)]);
      if (i < count)
        band_bytes[static_cast<size_t>(i)] = std::max(band_bytes[static_cast<size_t>(i)], bytes);
    }
  }
  *extra = computed - whole;
  const int last = first + count - 1;
  const size_t x = b.of[static_cast<size_t>(g.nodes[static_cast<size_t>(first)].inputs[0])];
  b.last[x] = std::max(b.last[x], last);
  const size_t y = b.of[static_cast<size_t>(g.nodes[static_cast<size_t>(last)].outputs[0])];
  b.first[y] = first;
  for (int i = 1; i < count; ++i) {
    const auto t = static_cast<size_t>(g.nodes[static_cast<size_t>(first + i - 1)].outputs[0]);
    b.first[t] = first;
    b.last[t] = last;
    b.size[t] = band_bytes[static_cast<size_t>(i)];
  }
  return b;
}

// The smallest plan running one chain in bands, if it is smaller than `best`, among those
// whose halos recompute at most 1/20 of the graph's work (ties: the least recomputed).
void try_patches(const Graph& g, const std::vector<uint32_t>& bpe, MemoryPlan* best) {
  const uint64_t budget = graph_work(g) / 20;
  const std::vector<int> order = given_order(g);
  const Buffers b = lifetimes(g, bpe, order);
  std::vector<int> readers(g.tensors.size(), 0);
  for (const Node& n : g.nodes) {
    for (int t : n.inputs) ++readers[static_cast<size_t>(t)];
  }
  constexpr int kMaxChain = 6;
  uint64_t best_extra = ~uint64_t{0};
  const int n = static_cast<int>(g.nodes.size());
  for (int first = 0; first < n; ++first) {
    for (int count = 2; count <= kMaxChain && first + count <= n; ++count) {
      if (!patchable(g, bpe, b, first, count, readers)) break;
      const int32_t out_h =
          g.tensors[static_cast<size_t>(g.nodes[static_cast<size_t>(first + count - 1)].outputs[0])]
              .dims.h;
      for (int bands : {2, 3, 4, 6, 8, 12, 16, 24}) {
        if (bands > out_h) break;
        uint64_t extra = 0;
        const Buffers banded_b = banded(g, b, first, count, bands, &extra);
        if (extra > budget) continue;
        MemoryPlan plan = plan_buffers(g, bpe, order, banded_b, true);
        if (plan.arena_bytes > best->arena_bytes ||
            (plan.arena_bytes == best->arena_bytes &&
             (best->patches.nodes == 0 || extra >= best_extra)))
          continue;
        for (int i = 1; i < count; ++i) {
          const auto t =
              static_cast<size_t>(g.nodes[static_cast<size_t>(first + i - 1)].outputs[0]);
          plan.size[t] = banded_b.size[t];
        }
        plan.patches = {first, count, bands};
        plan.naive_bytes = best->naive_bytes;  // every activation whole, as without bands
        best_extra = extra;
        *best = std::move(plan);
      }
    }
  }
}

}  // namespace

MemoryPlan plan_greedy_by_size(const Graph& g, const std::vector<uint32_t>& bytes_per_element) {
  return plan_in_order(g, bytes_per_element, given_order(g), false);
}

MemoryPlan plan_memory(const Graph& g, const std::vector<uint32_t>& bytes_per_element,
                       bool patches) {
  MemoryPlan in_place = plan_in_order(g, bytes_per_element, given_order(g), true);
  MemoryPlan greedy = plan_greedy_by_size(g, bytes_per_element);
  // Rigid groups can, rarely, place worse than plain greedy: keep the smaller.
  MemoryPlan plan = in_place.arena_bytes <= greedy.arena_bytes ? in_place : greedy;
  // A banded chain replaces it only when strictly smaller.
  if (patches) try_patches(g, bytes_per_element, &plan);
  return plan;
}

std::vector<int> best_execution_order(const Graph& g,
                                      const std::vector<uint32_t>& bytes_per_element,
                                      int max_orders) {
  const size_t n = g.nodes.size();
  std::vector<int> producer(g.tensors.size(), -1);
  for (size_t i = 0; i < n; ++i) {
    for (int t : g.nodes[i].outputs) producer[static_cast<size_t>(t)] = static_cast<int>(i);
  }
  std::vector<std::vector<int>> users(n);
  std::vector<int> waiting(n, 0);
  for (size_t i = 0; i < n; ++i) {
    for (int t : g.nodes[i].inputs) {
      const int p = producer[static_cast<size_t>(t)];
      if (p >= 0) {
        users[static_cast<size_t>(p)].push_back(static_cast<int>(i));
        ++waiting[i];
      }
    }
  }
  std::vector<int> best = given_order(g), order;
  uint32_t best_bytes = plan_memory(g, bytes_per_element).arena_bytes;
  int seen = 0;
  std::vector<bool> done(n, false);
  // Depth first over ready nodes, lowest index first: the given order comes first.
  std::function<void()> visit = [&]() {
    if (seen >= max_orders) return;
    if (order.size() == n) {
      // The first complete order is the given one (lowest index first), planned above.
      if (seen++ == 0) return;
      MemoryPlan p = plan_in_order(g, bytes_per_element, order, true);
      if (p.arena_bytes < best_bytes) {
        best_bytes = p.arena_bytes;
        best = order;
      }
      return;
    }
    for (size_t i = 0; i < n && seen < max_orders; ++i) {
      if (done[i] || waiting[i] > 0) continue;
      done[i] = true;
      order.push_back(static_cast<int>(i));
      for (int u : users[i]) --waiting[static_cast<size_t>(u)];
      visit();
      for (int u : users[i]) ++waiting[static_cast<size_t>(u)];
      order.pop_back();
      done[i] = false;
    }
  };
  visit();
  return best;
}

kernels::PatchSpec patch_spec(const Graph& g, const MemoryPlan& plan) {
  kernels::PatchSpec spec;
  const auto& p = plan.patches;
  if (p.nodes == 0) return spec;
  spec.first_operator = p.first_node;
  spec.operators = p.nodes;
  spec.bands = p.bands;
  for (int i = 0; i + 1 < p.nodes; ++i) {
    const auto t = static_cast<size_t>(g.nodes[static_cast<size_t>(p.first_node + i)].outputs[0]);
    spec.buffer_offsets.push_back(plan.offset[t]);
  }
  return spec;
}

void reorder_nodes(Graph& g, const std::vector<int>& order) {
  std::vector<Node> nodes;
  nodes.reserve(order.size());
  for (int i : order) nodes.push_back(std::move(g.nodes[static_cast<size_t>(i)]));
  g.nodes = std::move(nodes);
}

}  // namespace tinyfleet::optimizer_service
