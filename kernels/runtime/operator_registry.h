#pragma once

// The runtime's per-operator pairs, as TensorFlow Lite Micro's Prepare/Eval: `prepare`
// runs once at load() and checks everything `eval` relies on (nullptr, or the refusal's
// static message); `eval` runs the operator at invoke() and checks nothing more.
// Adding an operator kind: its two functions in a *_operators.cpp file, one line in
// kRegistrations (operator_registry.cpp), its tests (docs/kernels.md).
// Kinds without a registration (Conv2D, DepthwiseConv2D, FullyConnected, Add, Mul, the
// pools, Softmax) are still checked and run by the interpreter's own switch.
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
inline Dims dims_of(const artifact::Tensor* t) {
  const auto* s = t->shape();
  return s ? Dims{s->n(), s->h(), s->w(), s->c()} : Dims{0, 0, 0, 0};
}
inline bool same_quantization(const artifact::Tensor* a, const artifact::Tensor* b) {
  return a->scale()->Get(0) == b->scale()->Get(0) &&
         a->zero_point()->Get(0) == b->zero_point()->Get(0);
}

// What prepare sees: the operator, its first input and its output (already checked to
// be valid tensors, the output in the arena), and every tensor by index.
struct PrepareContext {
  const artifact::Model* model;
  const artifact::Operator* op;
  const artifact::Tensor* x;
  const artifact::Tensor* y;
  Dims xd, yd;
  size_t inputs;
  bool int8_io;  // x and y both int8
  const artifact::Tensor* tensor(int32_t i) const {
    return model->tensors()->Get(static_cast<uint32_t>(i));
  }
};

// What eval sees: the operator, views of its first input and output, the interpreter
// (for other inputs' views).
struct EvalContext {
  const artifact::Operator* op;
  TensorView x, y;
  const Interpreter& interpreter;
};

struct OperatorRegistration {
  artifact::OpKind kind;
  const char* (*prepare)(const PrepareContext&);
  Status (*eval)(const EvalContext&);
};

// The registration of `kind`, or nullptr (a kind the interpreter's switch handles).
const OperatorRegistration* find_registration(artifact::OpKind kind);

// The pairs, by file.
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
