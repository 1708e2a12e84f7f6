#pragma once

// The runtime's per-operator pairs, as TensorFlow Lite Micro's Prepare/Eval: `prepare`
// runs once at load() and checks everything `eval` relies on (nullptr, or the refusal's
// static message); `eval` runs the operator at invoke() and checks nothing more.
// Every kind has one; the interpreter only loops over them. Adding an operator kind: its
// two functions in a *_operators.cpp file, its line in kRegistrations (operator_registry.cpp,
// indexed by kind), its tests (docs/kernels.md).
#include <cstddef>
#include <cstdint>

#include "tinyfleet/kernels/artifact_generated.h"
#include "tinyfleet/kernels/ops/types.h"
#include "tinyfleet/kernels/runtime/interpreter.h"

namespace tinyfleet::kernels::runtime_detail {

template <class V>
size_t len(const V* v) {
  return v ? v->size() : 0;
}
inline bool in_range(int64_t v, int64_t lo, int64_t hi) { return v >= lo && v <= hi; }
// Out of line (operator_registry.cpp): one copy each in the device's code.
int64_t count(const Dims& d);
Dims dims_of(const artifact::Tensor* t);  // {0, 0, 0, 0} without a shape
bool same_quantization(const artifact::Tensor* a, const artifact::Tensor* b);
inline bool same_dims(const Dims& a, const Dims& b) {
  return a.n == b.n && a.h == b.h && a.w == b.w && a.c == b.c;
}

// The `n` integer parameters of Add, Mul, Mean and Softmax into the first n int32 fields
// of `params` (AddParams, MulParams, MeanParams: the options table's fields in the same
// order), from that table (format 1.2, `type`) or, in older artifacts, from int_params.
// False when the operator has neither form with n values.
bool int_options(const artifact::Operator* op, artifact::OperatorOptions type, uint32_t n,
                 void* params);

// An operator's scalar fields, read once per operator (by load() for prepare, which
// checks their ranges first, and by invoke() for eval).
struct Geometry {
  int32_t stride_h, stride_w, dilation_h, dilation_w;
  Padding padding;
  ActivationRange activation;  // fused ReLU / ReLU6 in output units
  int32_t filter_h, filter_w, depth_multiplier;
};
Geometry geometry_of(const artifact::Operator* op);

// What prepare sees: the operator and its scalar fields, its first input and its output
// (already checked to be valid tensors, the output in the arena), and every tensor by index.
struct PrepareContext {  // (the fields read most first: shorter loads on a Cortex-M)
  const artifact::Model* model;
  const artifact::Operator* op;
  const artifact::Tensor* x;
  const artifact::Tensor* y;
  size_t inputs;
  bool int8_io;  // x and y both int8
  Dims xd, yd;
  Geometry g;
  const artifact::Tensor* tensor(int32_t i) const;
};

// What eval sees: the operator and its scalar fields, views of its first input and
// output, the interpreter (for other inputs' views) and the scratch area after the
// planned tensors.
struct EvalContext {
  const artifact::Operator* op;
  TensorView x, y;
  const Interpreter& interpreter;
  uint8_t* scratch;
  size_t scratch_bytes;
  Geometry g;
#if defined(TINYFLEET_RUNTIME_PACKS_WEIGHTS)
  const void* packed = nullptr;  // host builds: the weights load() packed, or nullptr
#endif
};

struct OperatorRegistration {
  const char* (*prepare)(const PrepareContext&);
  Status (*eval)(const EvalContext&);
};

// The registration of `kind`, or nullptr (a kind this runtime does not know).
const OperatorRegistration* find_registration(artifact::OpKind kind);

// The pairs, by file.
const char* prepare_conv(const PrepareContext& c);  // Conv2D, DepthwiseConv2D
Status eval_conv(const EvalContext& c);
#if defined(TINYFLEET_RUNTIME_PACKS_WEIGHTS)
// Host builds (packed_operators.cpp): the bytes a Conv2D's or DepthwiseConv2D's packed
// weights need on this core (0: none, or another kind), and packing them there.
size_t packed_conv_bytes(const Interpreter& interpreter, const artifact::Operator* op);
bool pack_conv(const Interpreter& interpreter, const artifact::Operator* op, void* at,
               size_t bytes);
#endif
const char* prepare_fully_connected(const PrepareContext& c);
Status eval_fully_connected(const EvalContext& c);
const char* prepare_pool(const PrepareContext& c);  // AveragePool2D, MaxPool2D
Status eval_pool(const EvalContext& c);
const char* prepare_add_mul(const PrepareContext& c);
Status eval_add_mul(const EvalContext& c);
const char* prepare_softmax(const PrepareContext& c);
Status eval_softmax(const EvalContext& c);
const char* prepare_concatenation(const PrepareContext& c);
Status eval_concatenation(const EvalContext& c);
const char* prepare_reshape(const PrepareContext& c);
Status eval_reshape(const EvalContext& c);
const char* prepare_pad(const PrepareContext& c);
Status eval_pad(const EvalContext& c);
const char* prepare_strided_copy(const PrepareContext& c);  // Transpose, StridedSlice
Status eval_strided_copy(const EvalContext& c);
const char* prepare_lookup(const PrepareContext& c);  // Logistic, Tanh, Lookup
Status eval_lookup(const EvalContext& c);
const char* prepare_mean(const PrepareContext& c);
Status eval_mean(const EvalContext& c);
const char* prepare_quantize(const PrepareContext& c);
Status eval_quantize(const EvalContext& c);
const char* prepare_dequantize(const PrepareContext& c);
Status eval_dequantize(const EvalContext& c);

}  // namespace tinyfleet::kernels::runtime_detail
