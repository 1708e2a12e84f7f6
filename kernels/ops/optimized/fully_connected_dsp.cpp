// FullyConnected with the Arm DSP extension (fully_connected_dsp.h): per input row, the
// accumulators of every output (bias first, then mac1x4: 25 instructions per 16 MACs; a
// count not a multiple of 4 recomputes some with the last quad, or takes mac1x2 below
// 4 outputs), then requant_dsp's assembly
// loop. docs/kernels.md.
#include "fully_connected_dsp.h"

#include "mac_dsp.h"
#include "requant_dsp.h"

namespace tinyfleet::kernels::TINYFLEET_OPT_NS {

#if defined(TINYFLEET_SIMD_ARM_DSP)

bool fully_connected_dsp(const FullyConnectedParams& p, const PerChannelRequant& rq,
                         int32_t batches, int32_t in_features, const int8_t* input,
                         int32_t out_features, const int8_t* weights, const int32_t* bias,
                         int8_t* output) {
  constexpr int32_t kMaxOut = 256;  // accumulators on the stack (1 KB)
  const int32_t n = out_features, k = in_features;
  if (n < 2 || n > kMaxOut || p.input_offset < -128 || p.input_offset > 128) return false;
  dsp::Requant requant;
  if (!dsp::requant_setup(rq, n, p.output_offset, p.activation, &requant)) return false;
  int32_t acc[kMaxOut];
  for (int32_t b = 0; b < batches; ++b) {
    const int8_t* x = input + b * k;
    if (n >= 4) {
      for (int32_t c = 0; c < n; c += 4) {
        const int32_t c0 = c + 4 <= n ? c : n - 4;
        for (int32_t j = 0; j < 4; ++j) acc[c0 + j] = bias ? bias[c0 + j] : 0;
        dsp_mac::mac1x4(x, weights + c0 * k, k, p.input_offset, acc + c0);
      }
    } else {
      for (int32_t c = 0; c < n; c += 2) {
        const int32_t c0 = c + 2 <= n ? c : n - 2;
        acc[c0] = bias ? bias[c0] : 0;
        acc[c0 + 1] = bias ? bias[c0 + 1] : 0;
        dsp_mac::mac1x2(x, weights + c0 * k, k, p.input_offset, &acc[c0], &acc[c0 + 1]);
      }
    }
    dsp::requantize_run(requant, acc, 0, n, output + b * n);
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
