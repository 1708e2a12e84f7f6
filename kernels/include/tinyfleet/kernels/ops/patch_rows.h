#pragma once

// Patch-based execution of a chain of window operators (MCUNetV2): the chain's output is
// computed in horizontal bands of rows ("patches"), each through every operator of the
// chain from the rows of its input that band needs (the receptive field with its halo),
// so only a band of each intermediate tensor is alive. The compiler's planner sizes the
// intermediates' buffers with these functions and the runtime runs the bands with them:
// one definition of the rows on both sides.
//
// A band is full width, so the chain input's and output's rows are contiguous slices of
// their tensors (no copies); intermediates live in buffers of their largest band.
#include <cstdint>

namespace tinyfleet::kernels {

struct RowRange {
  int32_t begin = 0, end = 0;  // [begin, end)
};

// One window operator's vertical geometry (Conv2D, DepthwiseConv2D, pooling).
struct WindowRows {
  int32_t in_h = 1, stride = 1, dilation = 1, filter = 1, pad_top = 0;
};

// The rows of its input that output rows `out` read, clipped to the input.
inline RowRange input_rows(const WindowRows& op, RowRange out) {
  int32_t b = out.begin * op.stride - op.pad_top;
  int32_t e = (out.end - 1) * op.stride - op.pad_top + (op.filter - 1) * op.dilation + 1;
#ifdef TINYFLEET_PATCH_HALO_MUTANT  // a deliberately wrong halo: tests must fail with it
  e -= 1;
#endif
  return {b < 0 ? 0 : b, e > op.in_h ? op.in_h : e};
}

// Band p of n of an output of `out_h` rows.
inline RowRange band(int32_t out_h, int32_t n, int32_t p) {
  return {static_cast<int32_t>(int64_t{out_h} * p / n),
          static_cast<int32_t>(int64_t{out_h} * (p + 1) / n)};
}

// The rows of every tensor of a chain of m operators that band p of n needs: rows[m] the
// band of the output (`out_h` rows), rows[i - 1] what ops[i - 1] reads for rows[i].
inline void band_rows(const WindowRows* ops, int32_t m, int32_t out_h, int32_t n, int32_t p,
                      RowRange* rows) {
  rows[m] = band(out_h, n, p);
  for (int32_t i = m; i > 0; --i) rows[i - 1] = input_rows(ops[i - 1], rows[i]);
}

// The padding an operator takes on a band: `out` rows of its output computed from `in`
// rows of its input (what input_rows gave), so that the kernel, given only those rows,
// reads exactly the taps it reads on the whole tensor. Bottom: rows past the input's end.
inline void band_padding(const WindowRows& op, RowRange in, RowRange out, int32_t* top,
                         int32_t* bottom) {
  *top = in.begin + op.pad_top - out.begin * op.stride;
  const int32_t last = (out.end - 1) * op.stride - op.pad_top + (op.filter - 1) * op.dilation;
  *bottom = last >= in.end ? last - in.end + 1 : 0;
}

}  // namespace tinyfleet::kernels
