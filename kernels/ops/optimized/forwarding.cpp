// Operators whose optimized twin is the reference kernel for now. Their cost is linear
// in the tensor size (no multiply-accumulate loops), under 5% of the cycles of the
// MLPerf Tiny models; the time went into Conv2D, DepthwiseConv2D and FullyConnected.
// The names exist so the runtime always calls opt::, and a faster version can replace
// one of these without touching the runtime.
#include "tinyfleet/kernels/ops/activations.h"
#include "tinyfleet/kernels/ops/elementwise.h"
#include "tinyfleet/kernels/ops/pooling.h"

namespace tinyfleet::kernels::opt {

Status add(const AddParams& p, int64_t size, const int8_t* in1, int64_t size2, const int8_t* in2,
           int8_t* out) {
  return ref::add(p, size, in1, size2, in2, out);
}
Status mul(const MulParams& p, int64_t size, const int8_t* in1, int64_t size2, const int8_t* in2,
           int8_t* out) {
  return ref::mul(p, size, in1, size2, in2, out);
}
Status average_pool2d(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                      int8_t* output) {
  return ref::average_pool2d(p, in, input, out, output);
}
Status max_pool2d(const PoolParams& p, const Dims& in, const int8_t* input, const Dims& out,
                  int8_t* output) {
  return ref::max_pool2d(p, in, input, out, output);
}
Status mean_hw(const MeanParams& p, const Dims& in, const int8_t* input, int8_t* output) {
  return ref::mean_hw(p, in, input, output);
}
Status softmax(const uint32_t table[256], int32_t rows, int32_t depth, const int8_t* input,
               int8_t* output) {
  return ref::softmax(table, rows, depth, input, output);
}
Status lookup(const int8_t table[256], int64_t size, const int8_t* input, int8_t* output) {
  return ref::lookup(table, size, input, output);
}

}  // namespace tinyfleet::kernels::opt
