#pragma once

// Softmax, Logistic and Tanh. Logistic and Tanh look up a 256-entry table built at
// Prepare (quantization.h); Softmax uses a table of exp(-beta * scale * d) for the 256
// possible distances d from the row maximum, in Q16, and exact integer division:
// output scale 1/256, zero point -128 (TFLite's convention). Integer-only in Eval, so
// every build gives the same bytes.
#include "tinyfleet/kernels/ops/types.h"

namespace tinyfleet::kernels {

void build_softmax_table(float input_scale, float beta, uint32_t table[256]);

// TensorFlow Lite Micro's int8 Softmax, bit for bit (the TFLite importer's models): the
// table holds, per distance d from the row maximum, TFLM's fixed-point exp of the
// rescaled difference (Q0.31; 0 below its diff_min), computed from the input scale and
// beta as TFLM's Prepare does; Eval sums the Q12.19 exps, takes gemmlowp's reciprocal
// and rounds as TFLM does. Output scale 1/256, zero point -128; rows of at most 256.
void build_softmax_tflm_table(float input_scale, float beta, uint32_t table[256]);

namespace ref {
Status softmax(const uint32_t table[256], int32_t rows, int32_t depth, const int8_t* input,
               int8_t* output);
Status softmax_tflm(const uint32_t table[256], int32_t rows, int32_t depth, const int8_t* input,
                    int8_t* output);
Status lookup(const int8_t table[256], int64_t size, const int8_t* input, int8_t* output);
}  // namespace ref
namespace opt {
Status softmax(const uint32_t table[256], int32_t rows, int32_t depth, const int8_t* input,
               int8_t* output);
Status lookup(const int8_t table[256], int64_t size, const int8_t* input, int8_t* output);
}  // namespace opt
namespace ref_float {
Status softmax(float beta, int32_t rows, int32_t depth, const float* input, float* output);
Status logistic(int64_t size, const float* input, float* output);
Status tanh(int64_t size, const float* input, float* output);
Status relu(FloatRange range, int64_t size, const float* input, float* output);
}  // namespace ref_float

// float <-> int8 at the graph's edges.
Status quantize(const TensorQuant& q, int64_t size, const float* input, int8_t* output);
Status dequantize(const TensorQuant& q, int64_t size, const int8_t* input, float* output);

}  // namespace tinyfleet::kernels
