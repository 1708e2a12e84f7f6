// Optimized FullyConnected: on Arm DSP cores fully_connected_dsp.cpp; otherwise the
// input row is widened to int16 once and shared by four output neurons at a time.
#include "tinyfleet/kernels/ops/fully_connected.h"
#include "../common/conv_shapes.h"
#include "fully_connected_dsp.h"
#include "requant_avx2.h"

namespace tinyfleet::kernels::TINYFLEET_OPT_NS {

Status fully_connected(const FullyConnectedParams& p, const PerChannelRequant& rq, int32_t batches,
                       int32_t in_features, const int8_t* input, int32_t out_features,
                       const int8_t* weights, const int32_t* bias, int8_t* output, void* scratch,
                       size_t scratch_bytes) {
  if (batches <= 0 || in_features <= 0 || out_features <= 0 ||
      !detail::activation_ok(p.activation)) {
    return Status::kBadShape;
  }
  if (!scratch || scratch_bytes < fully_connected_scratch_size(in_features)) {
    return Status::kScratchTooSmall;
  }
  if (fully_connected_dsp(p, rq, batches, in_features, input, out_features, weights, bias,
                          output)) {
    return Status::kOk;
  }
  auto* x = reinterpret_cast<int16_t*>((reinterpret_cast<uintptr_t>(scratch) + 31) &
                                       ~static_cast<uintptr_t>(31));
  for (int32_t b = 0; b < batches; ++b) {
    simd::widen_with_offset(input + b * in_features, in_features, p.input_offset, x);
    int8_t* o = output + b * out_features;
    int32_t n = 0;
#if defined(TINYFLEET_SIMD_AVX2)
    for (; n + 8 <= out_features; n += 8) {
      alignas(32) int32_t acc[8];
      for (int k = 0; k < 8; ++k) acc[k] = bias ? bias[n + k] : 0;
      const int8_t* w = weights + n * in_features;
      simd::dot4_s16_s8(x, w, w + in_features, w + 2 * in_features, w + 3 * in_features,
                        in_features, acc);
      w += 4 * in_features;
      simd::dot4_s16_s8(x, w, w + in_features, w + 2 * in_features, w + 3 * in_features,
                        in_features, acc + 4);
      simd::requantize8(_mm256_load_si256(reinterpret_cast<const __m256i*>(acc)), rq.multiplier + n,
                        rq.shift + n, p.output_offset, p.activation.min, p.activation.max, o + n);
    }
#endif
    for (; n + 4 <= out_features; n += 4) {
      int32_t acc[4] = {bias ? bias[n] : 0, bias ? bias[n + 1] : 0, bias ? bias[n + 2] : 0,
                        bias ? bias[n + 3] : 0};
      const int8_t* w = weights + n * in_features;
      simd::dot4_s16_s8(x, w, w + in_features, w + 2 * in_features, w + 3 * in_features,
                        in_features, acc);
      for (int k = 0; k < 4; ++k) {
        o[n + k] = detail::requantize(acc[k], rq.multiplier[n + k], rq.shift[n + k],
                                      p.output_offset, p.activation);
      }
    }
    for (; n < out_features; ++n) {
      const int32_t acc =
          (bias ? bias[n] : 0) + simd::dot_s16_s8(x, weights + n * in_features, in_features);
      o[n] = detail::requantize(acc, rq.multiplier[n], rq.shift[n], p.output_offset, p.activation);
    }
  }
  return Status::kOk;
}

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS
