// Optimized Conv2D. AVX2 builds take the packed-weight path (conv2d_packed.cpp) when
// the filter fits its stack budget, Arm DSP builds conv2d_dsp.cpp. Otherwise, per output pixel, the
// receptive field is widened once to int16 (input + offset, zeros for padding) and shared by four
// output channels at a time; inner products are AVX2 madd or Arm SMLAD when available. No im2col of
// the whole image.
#include "tinyfleet/kernels/ops/conv2d.h"
#include "../common/conv_shapes.h"
#include "conv2d_dsp.h"
#include "conv2d_packed.h"
#include "requant_avx2.h"

namespace tinyfleet::kernels::TINYFLEET_OPT_NS {

Status conv2d(const Conv2DParams& p, const PerChannelRequant& rq, const Dims& in,
              const int8_t* input, const Dims& f, const int8_t* filter, const int32_t* bias,
              const Dims& out, int8_t* output, void* scratch, size_t scratch_bytes) {
  if (f.c != in.c || !detail::conv_shapes_ok(p, in, f, out, f.n)) return Status::kBadShape;
  const int32_t patch_len = f.h * f.w * f.c;
  if (!scratch || scratch_bytes < conv2d_scratch_size(f)) return Status::kScratchTooSmall;
  if (conv2d_packed(p, rq, in, input, f, filter, bias, out, output)) return Status::kOk;
  if (conv2d_dsp(p, rq, in, input, f, filter, bias, out, output, scratch, scratch_bytes)) {
    return Status::kOk;
  }
  // 32-byte aligned start for the vector loads' benefit.
  auto* patch = reinterpret_cast<int16_t*>((reinterpret_cast<uintptr_t>(scratch) + 31) &
                                           ~static_cast<uintptr_t>(31));
  const int32_t row = f.w * f.c;
  for (int32_t b = 0; b < in.n; ++b) {
    for (int32_t oy = 0; oy < out.h; ++oy) {
      for (int32_t ox = 0; ox < out.w; ++ox) {
        for (int32_t ky = 0; ky < f.h; ++ky) {
          const int32_t iy = oy * p.stride_h - p.padding.top + ky * p.dilation_h;
          for (int32_t kx = 0; kx < f.w; ++kx) {
            const int32_t ix = ox * p.stride_w - p.padding.left + kx * p.dilation_w;
            int16_t* dst = patch + ky * row + kx * f.c;
            if (iy < 0 || iy >= in.h || ix < 0 || ix >= in.w) {
              for (int32_t c = 0; c < f.c; ++c) dst[c] = 0;  // padding is the zero point
            } else {
              simd::widen_with_offset(input + ((b * in.h + iy) * in.w + ix) * in.c, f.c,
                                      p.input_offset, dst);
            }
          }
        }
        int8_t* o = output + ((b * out.h + oy) * out.w + ox) * out.c;
        int32_t oc = 0;
#if defined(TINYFLEET_SIMD_AVX2)
        for (; oc + 8 <= out.c; oc += 8) {
          alignas(32) int32_t acc[8];
          for (int k = 0; k < 8; ++k) acc[k] = bias ? bias[oc + k] : 0;
          const int8_t* w = filter + oc * patch_len;
          simd::dot4_s16_s8(patch, w, w + patch_len, w + 2 * patch_len, w + 3 * patch_len,
                            patch_len, acc);
          w += 4 * patch_len;
          simd::dot4_s16_s8(patch, w, w + patch_len, w + 2 * patch_len, w + 3 * patch_len,
                            patch_len, acc + 4);
          simd::requantize8(_mm256_load_si256(reinterpret_cast<const __m256i*>(acc)),
                            rq.multiplier + oc, rq.shift + oc, p.output_offset, p.activation.min,
                            p.activation.max, o + oc);
        }
#endif
        for (; oc + 4 <= out.c; oc += 4) {
          int32_t acc[4] = {bias ? bias[oc] : 0, bias ? bias[oc + 1] : 0, bias ? bias[oc + 2] : 0,
                            bias ? bias[oc + 3] : 0};
          const int8_t* w = filter + oc * patch_len;
          simd::dot4_s16_s8(patch, w, w + patch_len, w + 2 * patch_len, w + 3 * patch_len,
                            patch_len, acc);
          for (int k = 0; k < 4; ++k) {
            o[oc + k] = detail::requantize(acc[k], rq.multiplier[oc + k], rq.shift[oc + k],
                                           p.output_offset, p.activation);
          }
        }
        for (; oc < out.c; ++oc) {
          const int32_t acc =
              (bias ? bias[oc] : 0) + simd::dot_s16_s8(patch, filter + oc * patch_len, patch_len);
          o[oc] = detail::requantize(acc, rq.multiplier[oc], rq.shift[oc], p.output_offset,
                                     p.activation);
        }
      }
    }
  }
  return Status::kOk;
}

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS
