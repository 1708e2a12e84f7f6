#pragma once

// Graph rewrites before quantization.
#include "tinyfleet/optimizer_service/graph.h"

namespace tinyfleet::optimizer_service {

// A standalone clamp (ReLU, ReLU6, Clip) whose producer (Conv2D, DepthwiseConv2D,
// FullyConnected, Add, pooling) has no other consumer is folded into the producer's
// activation. Returns how many were fused.
int fuse_activations(Graph& g);

// Drops nodes whose outputs reach no graph output. Returns how many were removed.
int remove_dead_nodes(Graph& g);

}  // namespace tinyfleet::optimizer_service
