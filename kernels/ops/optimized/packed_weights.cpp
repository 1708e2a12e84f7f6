// Weights packed once (packed_weights.h): the public face of the packed layouts of
// conv2d_packed.cpp and depthwise_packed.cpp, with the plain opt:: kernels as the
// fallback when a build or layer has no packed path. Host builds only: the Cortex-M
// firmware compiles neither this file nor the packed layouts.
#include "tinyfleet/kernels/ops/packed_weights.h"

#include "../common/conv_shapes.h"
#include "conv2d_packed.h"
#include "depthwise_packed.h"
#include "simd_dot.h"

namespace tinyfleet::kernels::TINYFLEET_OPT_NS {

// This build's plain kernels (the public headers name opt:: and opt_scalar::; the AVX2
// build of these sources is opt_avx2::, see avx2_dispatch.cpp).
Status conv2d(const Conv2DParams& p, const PerChannelRequant& rq, const Dims& in,
              const int8_t* input, const Dims& f, const int8_t* filter, const int32_t* bias,
              const Dims& out, int8_t* output, void* scratch, size_t scratch_bytes);
Status depthwise_conv2d(const DepthwiseParams& p, const PerChannelRequant& rq, const Dims& in,
                        const int8_t* input, const Dims& f, const int8_t* filter,
                        const int32_t* bias, const Dims& out, int8_t* output);

#if !defined(TINYFLEET_SIMD_AVX2)
// Nothing is packed without AVX2: sizes 0, and a packed block is never valid.
size_t conv2d_packed_bytes(const Dims&) { return 0; }
bool conv2d_pack_into(const PerChannelRequant&, const Dims&, const int8_t*, const int32_t*, void*,
                      size_t) {
  return false;
}
bool conv2d_run_packed(const Conv2DParams&, const Dims&, const int8_t*, const Dims&, const Dims&,
                       int8_t*, const void*) {
  return false;
}
size_t depthwise_packed_bytes(const DepthwiseParams&, const Dims&) { return 0; }
bool depthwise_pack_into(const DepthwiseParams&, const PerChannelRequant&, const Dims&,
                         const int8_t*, const int32_t*, void*, size_t) {
  return false;
}
bool depthwise_run_packed(const DepthwiseParams&, const Dims&, const int8_t*, const Dims&,
                          const Dims&, int8_t*, const void*) {
  return false;
}
#endif

size_t conv2d_packed_size(const Dims& f) { return conv2d_packed_bytes(f); }

Status conv2d_pack(const PerChannelRequant& rq, const Dims& f, const int8_t* filter,
                   const int32_t* bias, void* packed, size_t packed_bytes) {
  if (f.n <= 0 || f.h <= 0 || f.w <= 0 || f.c <= 0) return Status::kBadShape;
  return conv2d_pack_into(rq, f, filter, bias, packed, packed_bytes) ? Status::kOk
                                                                     : Status::kBadParams;
}

Status conv2d_prepacked(const Conv2DParams& p, const PerChannelRequant& rq, const Dims& in,
                        const int8_t* input, const Dims& f, const int8_t* filter,
                        const int32_t* bias, const Dims& out, int8_t* output, void* scratch,
                        size_t scratch_bytes, const void* packed) {
  if (!packed) {
    return conv2d(p, rq, in, input, f, filter, bias, out, output, scratch, scratch_bytes);
  }
  if (f.c != in.c || !detail::conv_shapes_ok(p, in, f, out, f.n)) return Status::kBadShape;
  return conv2d_run_packed(p, in, input, f, out, output, packed) ? Status::kOk : Status::kBadParams;
}

size_t depthwise_packed_size(const DepthwiseParams& p, const Dims& f) {
  return depthwise_packed_bytes(p, f);
}

Status depthwise_pack(const DepthwiseParams& p, const PerChannelRequant& rq, const Dims& f,
                      const int8_t* filter, const int32_t* bias, void* packed,
                      size_t packed_bytes) {
  if (f.n != 1 || f.h <= 0 || f.w <= 0 || f.c <= 0) return Status::kBadShape;
  return depthwise_pack_into(p, rq, f, filter, bias, packed, packed_bytes) ? Status::kOk
                                                                           : Status::kBadParams;
}

Status depthwise_prepacked(const DepthwiseParams& p, const PerChannelRequant& rq, const Dims& in,
                           const int8_t* input, const Dims& f, const int8_t* filter,
                           const int32_t* bias, const Dims& out, int8_t* output,
                           const void* packed) {
  if (!packed) return depthwise_conv2d(p, rq, in, input, f, filter, bias, out, output);
  const int32_t m = p.depth_multiplier;
  if (m <= 0 || f.n != 1 || f.c != in.c * m || !detail::conv_shapes_ok(p, in, f, out, f.c)) {
    return Status::kBadShape;
  }
  return depthwise_run_packed(p, in, input, f, out, output, packed) ? Status::kOk
                                                                    : Status::kBadParams;
}

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS
