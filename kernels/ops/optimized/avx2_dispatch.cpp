// opt:: on x86-64 hosts: each call goes to opt_avx2:: (the optimized sources built with
// -mavx2 -mfma) when the core running it has AVX2 and FMA (and the OS saves the YMM
// registers: libgcc's cpu model checks XGETBV), else to opt_scalar:: (the same sources
// without SIMD). This file is built without AVX2 flags, so it runs on any x86-64.
// The two are bit-exact twins (tests/kernels/ops), so the choice changes speed only.

// opt_avx2::'s declarations are opt::'s under another name: the public headers read
// with the namespace name `opt` spelled opt_avx2 (first and only inclusion here).
#define opt opt_avx2
#include "tinyfleet/kernels/ops/depthwise_conv2d.h"
#include "tinyfleet/kernels/ops/elementwise.h"
#include "tinyfleet/kernels/ops/fully_connected.h"
#include "tinyfleet/kernels/ops/packed_weights.h"
#include "tinyfleet/kernels/ops/pooling.h"
#undef opt

namespace tinyfleet::kernels::opt {

namespace {
bool has_avx2() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return has;
}
}  // namespace

// The same call on the twin the core can run.
#define TINYFLEET_DISPATCH(name, ...) \
  (has_avx2() ? opt_avx2::name(__VA_ARGS__) : opt_scalar::name(__VA_ARGS__))

Status conv2d(const Conv2DParams& p, const PerChannelRequant& rq, const Dims& in,
              const int8_t* input, const Dims& f, const int8_t* filter, const int32_t* bias,
              const Dims& out, int8_t* output, void* scratch, size_t scratch_bytes) {
  return TINYFLEET_DISPATCH(conv2d, p, rq, in, input, f, filter, bias, out, output, scratch,
                            scratch_bytes);
}

Status depthwise_conv2d(const DepthwiseParams& p, const PerChannelRequant& rq, const Dims& in,
                        const int8_t* input, const Dims& f, const int8_t* filter,
                        const int32_t* bias, const Dims& out, int8_t* output) {
  return TINYFLEET_DISPATCH(depthwise_conv2d, p, rq, in, input, f, filter, bias, out, output);
}

Status add(const AddParams& p, int64_t size, const int8_t* in1, int64_t size2, const int8_t* in2,
           int8_t* out) {
  return TINYFLEET_DISPATCH(add, p, size, in1, size2, in2, out);
}

Status mul(const MulParams& p, int64_t size, const int8_t* in1, int64_t size2, const int8_t* in2,
           int8_t* out) {
  return TINYFLEET_DISPATCH(mul, p, size, in1, size2, in2, out);
}

Status fully_connected(const FullyConnectedParams& p, const PerChannelRequant& rq, int32_t batches,
                       int32_t in_features, const int8_t* input, int32_t out_features,
                       const int8_t* weights, const int32_t* bias, int8_t* output, void* scratch,
                       size_t scratch_bytes) {
  return TINYFLEET_DISPATCH(fully_connected, p, rq, batches, in_features, input, out_features,
                            weights, bias, output, scratch, scratch_bytes);
}

Status average_pool2d(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                      int8_t* output) {
  return TINYFLEET_DISPATCH(average_pool2d, p, in, input, out, output);
}

Status max_pool2d(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                  int8_t* output) {
  return TINYFLEET_DISPATCH(max_pool2d, p, in, input, out, output);
}

Status mean_hw(const MeanParams& p, const Dims& in, const int8_t* input, int8_t* output) {
  return TINYFLEET_DISPATCH(mean_hw, p, in, input, output);
}

// A block packed by one twin is read by the same twin: the core does not change.
size_t conv2d_packed_size(const Dims& f) { return TINYFLEET_DISPATCH(conv2d_packed_size, f); }

Status conv2d_pack(const PerChannelRequant& rq, const Dims& f, const int8_t* filter,
                   const int32_t* bias, void* packed, size_t packed_bytes) {
  return TINYFLEET_DISPATCH(conv2d_pack, rq, f, filter, bias, packed, packed_bytes);
}

Status conv2d_prepacked(const Conv2DParams& p, const PerChannelRequant& rq, const Dims& in,
                        const int8_t* input, const Dims& f, const int8_t* filter,
                        const int32_t* bias, const Dims& out, int8_t* output, void* scratch,
                        size_t scratch_bytes, const void* packed) {
  return TINYFLEET_DISPATCH(conv2d_prepacked, p, rq, in, input, f, filter, bias, out, output,
                            scratch, scratch_bytes, packed);
}

size_t depthwise_packed_size(const DepthwiseParams& p, const Dims& f) {
  return TINYFLEET_DISPATCH(depthwise_packed_size, p, f);
}

Status depthwise_pack(const DepthwiseParams& p, const PerChannelRequant& rq, const Dims& f,
                      const int8_t* filter, const int32_t* bias, void* packed,
                      size_t packed_bytes) {
  return TINYFLEET_DISPATCH(depthwise_pack, p, rq, f, filter, bias, packed, packed_bytes);
}

Status depthwise_prepacked(const DepthwiseParams& p, const PerChannelRequant& rq, const Dims& in,
                           const int8_t* input, const Dims& f, const int8_t* filter,
                           const int32_t* bias, const Dims& out, int8_t* output,
                           const void* packed) {
  return TINYFLEET_DISPATCH(depthwise_prepacked, p, rq, in, input, f, filter, bias, out, output,
                            packed);
}

#undef TINYFLEET_DISPATCH

}  // namespace tinyfleet::kernels::opt
