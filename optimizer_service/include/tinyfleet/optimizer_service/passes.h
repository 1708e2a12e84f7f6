#pragma once

// Graph rewrites before quantization.
#include "tinyfleet/optimizer_service/graph.h"

namespace tinyfleet::optimizer_service {

// A standalone clamp (ReLU, ReLU6, Clip) whose producer (Conv2D, DepthwiseConv2D,
// FullyConnected, Add, pooling) has no other consumer is folded into the producer's
// activation; one after a Concatenation goes into each input's producer when they all
// can carry it. Returns how many were fused.
int fuse_activations(Graph& g);

// A zero Pad of height and width only, whose one consumer is a Conv2D or
// DepthwiseConv2D, becomes that convolution's padding (zero padding is what the
// convolution pads with). Returns how many were fused.
int fuse_pads(Graph& g);

// A Mul or Add of a constant scalar right after a Conv2D, DepthwiseConv2D or
// FullyConnected with no other consumer (and no fused activation yet) is folded into its
// weights and bias. Returns how many were folded.
int fold_scalar_affine(Graph& g);

// Drops operators that do nothing (a Pad of zero amounts, a Concatenation of one input,
// a Reshape to the same shape, a clamp with no bounds), wiring their consumers to their
// input. Returns how many were removed.
int remove_no_ops(Graph& g);

// Drops nodes whose outputs reach no graph output. Returns how many were removed.
int remove_dead_nodes(Graph& g);

}  // namespace tinyfleet::optimizer_service
