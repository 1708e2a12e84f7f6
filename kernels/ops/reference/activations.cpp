// Reference Softmax (table of exponentials, exact integer division) and the
// table-lookup activations.
#include "tinyfleet/kernels/ops/activations.h"

#include <cmath>

#include "tinyfleet/kernels/ops/quantization.h"

namespace tinyfleet::kernels {

void build_softmax_table(float input_scale, float beta, uint32_t table[256]) {
  for (int d = 0; d < 256; ++d) {
    table[d] = static_cast<uint32_t>(
        std::lround(std::exp(-static_cast<double>(beta) * input_scale * d) * 65536.0));
  }
}

Status quantize(const TensorQuant& q, int64_t size, const float* input, int8_t* output) {
  if (size < 0 || q.scale <= 0) return Status::kBadParams;
  for (int64_t i = 0; i < size; ++i) output[i] = quantize_value(input[i], q);
  return Status::kOk;
}

Status dequantize(const TensorQuant& q, int64_t size, const int8_t* input, float* output) {
  if (size < 0) return Status::kBadParams;
  for (int64_t i = 0; i < size; ++i) output[i] = dequantize_value(input[i], q);
  return Status::kOk;
}

namespace ref {

Status softmax(const uint32_t table[256], int32_t rows, int32_t depth, const int8_t* input,
               int8_t* output) {
  if (rows <= 0 || depth <= 0 || depth > 32768) return Status::kBadShape;
  for (int32_t r = 0; r < rows; ++r) {
    const int8_t* x = input + static_cast<int64_t>(r) * depth;
    int8_t* y = output + static_cast<int64_t>(r) * depth;
    int32_t max = -128;
    for (int32_t i = 0; i < depth; ++i) max = x[i] > max ? x[i] : max;
    uint64_t sum = 0;
    for (int32_t i = 0; i < depth; ++i) sum += table[max - x[i]];
    if (sum == 0) return Status::kBadParams;  // a table without exp(0) > 0 is not a softmax table
    for (int32_t i = 0; i < depth; ++i) {
      // round(e_i / sum * 256) - 128, in integers.
      const uint64_t q = (uint64_t{table[max - x[i]]} * 256 + sum / 2) / sum;
      const int32_t v = static_cast<int32_t>(q) - 128;
      y[i] = static_cast<int8_t>(v > 127 ? 127 : v);
    }
  }
  return Status::kOk;
}

Status lookup(const int8_t table[256], int64_t size, const int8_t* input, int8_t* output) {
  if (size < 0) return Status::kBadShape;
  for (int64_t i = 0; i < size; ++i) output[i] = table[input[i] + 128];
  return Status::kOk;
}

}  // namespace ref
}  // namespace tinyfleet::kernels
