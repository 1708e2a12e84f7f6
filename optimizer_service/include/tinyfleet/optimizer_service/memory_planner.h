#pragma once

// Tensor lifetimes to offsets in one arena.
//
// Baseline, `plan_greedy_by_size`: what TensorFlow Lite Micro does. Buffers are placed
// largest first, each at the lowest offset that does not overlap a placed buffer alive
// at the same time, in the graph's own execution order.
//
// Ours, `plan_memory`: the same placement, plus in-place execution. When an operator's
// input dies at that operator, its output may overlap it: by the distance of
// tinyfleet/kernels/ops/in_place.h for Conv2D, DepthwiseConv2D and pooling (the output
// starts D bytes before the input), exactly for element-wise Add, Mul, Logistic and
// Tanh. Such a chain of tensors is placed as one rigid group, each tensor a rectangle
// (its lifetime x its bytes), so the holes a group leaves stay usable. Graph inputs are
// never overwritten. `best_execution_order` searches the topological orders of a
// branching graph for the one whose plan is smallest.
//
// In both, Reshape outputs share their input's buffer (the runtime copies nothing).
//
// With `patches` (MCUNetV2's patch-based execution; off by default: compiled artifacts
// do not carry the plan yet), `plan_memory` also tries running a chain of window
// operators (Conv2D, DepthwiseConv2D, pooling; each output read only by the next) in
// horizontal bands (tinyfleet/kernels/ops/patch_rows.h): the chain's input and output are
// whole and alive across the chain, each intermediate only its largest band. The bands
// overlap by their receptive fields' halos, computed twice: among the chains and band
// counts (2 to 24) whose halos cost at most 1/20 of the graph's multiply-accumulates (or
// window taps), it keeps the smallest arena (ties: the least recomputation), and today's
// plan when no chain lowers it.
#include <cstdint>
#include <vector>

#include "tinyfleet/kernels/runtime/artifact_writer.h"
#include "tinyfleet/optimizer_service/graph.h"

namespace tinyfleet::optimizer_service {

struct MemoryPlan {
  std::vector<uint32_t> offset;  // per tensor (constants: unused)
  // Per tensor: its bytes, and the steps of the execution order its buffer is alive
  // (-1: the graph input before the first node; g.nodes.size(): graph outputs after the
  // last). Constants and dead tensors: size 0.
  std::vector<uint32_t> size;
  std::vector<int32_t> first_step, last_step;
  uint32_t arena_bytes = 0;  // peak of the plan
  uint32_t naive_bytes = 0;  // every activation its own buffer
  int in_place_pairs = 0;    // operators whose output overlaps their input
  // Patch-based execution: nodes first_node .. first_node + nodes - 1 run in `bands`
  // bands of rows; their intermediate outputs' size is their largest band. nodes == 0:
  // none.
  struct Patches {
    int first_node = -1, nodes = 0, bands = 0;
  } patches;
};

// `bytes_per_element` per tensor (1 for int8). Both plan g.nodes in their given order.
MemoryPlan plan_greedy_by_size(const Graph& g, const std::vector<uint32_t>& bytes_per_element);
MemoryPlan plan_memory(const Graph& g, const std::vector<uint32_t>& bytes_per_element,
                       bool patches = false);

// The node order (indices into g.nodes) with the smallest `plan_memory` arena among the
// graph's topological orders (all of them up to `max_orders`, the given order first; ties
// keep the earlier). A chain has one order: the given one.
std::vector<int> best_execution_order(const Graph& g,
                                      const std::vector<uint32_t>& bytes_per_element,
                                      int max_orders = 5000);

// The artifact's patch plan (format 1.3) of `plan`, for an artifact whose operators are
// g.nodes one for one: the chain and its intermediates' band buffers. None without one.
kernels::PatchSpec patch_spec(const Graph& g, const MemoryPlan& plan);

// Puts g.nodes in `order` (indices into g.nodes, as best_execution_order returns).
void reorder_nodes(Graph& g, const std::vector<int>& order);

}  // namespace tinyfleet::optimizer_service
