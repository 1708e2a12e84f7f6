// Reference FullyConnected.
#include "tinyfleet/kernels/ops/fully_connected.h"

#include "../common/conv_shapes.h"
#include "tinyfleet/kernels/ops/quantization.h"

namespace tinyfleet::kernels {

size_t fully_connected_scratch_size(int32_t in_features) {
  return static_cast<size_t>(in_features) * sizeof(int16_t) + 32;
}

namespace ref {

Status fully_connected(const FullyConnectedParams& p, const PerChannelRequant& rq, int32_t batches,
                       int32_t in_features, const int8_t* input, int32_t out_features,
                       const int8_t* weights, const int32_t* bias, int8_t* output, void*, size_t) {
  if (batches <= 0 || in_features <= 0 || out_features <= 0 ||
      !detail::activation_ok(p.activation)) {
    return Status::kBadShape;
  }
  for (int32_t b = 0; b < batches; ++b) {
    for (int32_t o = 0; o < out_features; ++o) {
      int32_t acc = bias ? bias[o] : 0;
      for (int32_t i = 0; i < in_features; ++i) {
        acc += (input[b * in_features + i] + p.input_offset) * weights[o * in_features + i];
      }
      acc = multiply_by_quantized_multiplier(acc, rq.multiplier[o], rq.shift[o]);
      acc += p.output_offset;
      acc = acc < p.activation.min ? p.activation.min : acc;
      acc = acc > p.activation.max ? p.activation.max : acc;
      output[b * out_features + o] = static_cast<int8_t>(acc);
    }
  }
  return Status::kOk;
}

}  // namespace ref
}  // namespace tinyfleet::kernels
