// FullyConnected with the Arm DSP extension (fully_connected_dsp.h): per input row, four
// outputs at a time (bias first, then mac1x4: 25 instructions per 16 MACs; a count not a
// multiple of 4 recomputes some with the last quad; below 4 outputs mac1x2), requantized
// by requant_dsp's assembly loop 16 to 19 outputs at a time (the planner never places a
// FullyConnected output over its input, so only those accumulators are kept: 76 B of
// stack). docs/kernels.md.
#include "fully_connected_dsp.h"

#include "mac_dsp.h"
#include "requant_dsp.h"

namespace tinyfleet::kernels::TINYFLEET_OPT_NS {

#if defined(TINYFLEET_SIMD_ARM_DSP)
bool fully_connected_dsp(const FullyConnectedParams& p, const PerChannelRequant& rq,
                         int32_t batches, int32_t in_features, const int8_t* input,
                         int32_t out_features, const int8_t* weights, const int32_t* bias,
                         int8_t* output) {
  const int32_t n = out_features, k = in_features;
  if (n < 2 || p.input_offset < -128 || p.input_offset > 128) return false;
  dsp::Requant requant;
  if (!dsp::requant_setup(rq, n, p.output_offset, p.activation, &requant)) return false;
  constexpr int32_t kChunk = 16;  // outputs requantized together
  int32_t acc[kChunk + 3];
  for (int32_t b = 0; b < batches; ++b) {
    const int8_t* x = input + b * k;
    int8_t* o = output + b * n;
    for (int32_t c = 0; c < n;) {
      const int32_t m = n - c <= kChunk + 3 ? n - c : kChunk;  // a short tail joins in
      const int8_t* w = weights + c * k;
      const int32_t* bias_c = bias ? bias + c : nullptr;
      if (m >= 4) {  // quads, the last one overlapping the one before if 4 does not divide m
        for (int32_t j = 0; j < m; j += 4) {
          const int32_t j0 = j + 4 <= m ? j : m - 4;
          for (int32_t i = 0; i < 4; ++i) acc[j0 + i] = bias_c ? bias_c[j0 + i] : 0;
          dsp_mac::mac1x4(x, w + j0 * k, k, p.input_offset, acc + j0);
        }
      } else {  // 2 or 3 outputs
        for (int32_t j = 0; j < m; j += 2) {
          const int32_t j0 = j + 2 <= m ? j : m - 2;
          acc[j0] = bias_c ? bias_c[j0] : 0;
          acc[j0 + 1] = bias_c ? bias_c[j0 + 1] : 0;
          dsp_mac::mac1x2(x, w + j0 * k, k, p.input_offset, &acc[j0], &acc[j0 + 1]);
        }
      }
      dsp::requantize_run(requant, acc, c, m, o + c);
      c += m;
    }
  }
  return true;
}

#else

bool fully_connected_dsp(const FullyConnectedParams&, const PerChannelRequant&, int32_t, int32_t,
                         const int8_t*, int32_t, const int8_t*, const int32_t*, int8_t*) {
  return false;
}

#endif

}  // namespace tinyfleet::kernels::TINYFLEET_OPT_NS
