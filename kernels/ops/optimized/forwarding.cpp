// Operators whose optimized twin is the reference kernel: table look-ups (Logistic,
// Tanh) and Softmax (a table and one exact division per row). A byte-indexed gather has
// no AVX2 or DSP form faster than the scalar loop at these sizes (a 256-entry table
// takes 8 shuffles and blends per 32 bytes). The names exist so the runtime always
// calls opt::.
#include "tinyfleet/kernels/ops/activations.h"

namespace tinyfleet::kernels::opt {

Status softmax(const uint32_t table[256], int32_t rows, int32_t depth, const int8_t* input,
               int8_t* output) {
  return ref::softmax(table, rows, depth, input, output);
}
Status lookup(const int8_t table[256], int64_t size, const int8_t* input, int8_t* output) {
  return ref::lookup(table, size, input, output);
}

}  // namespace tinyfleet::kernels::opt
