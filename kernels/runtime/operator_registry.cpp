// The registered Prepare/Eval pairs (operator_registry.h), indexed by kind.
#include "operator_registry.h"

#include <cstring>

namespace tinyfleet::kernels::runtime_detail {

namespace {
// In OpKind's order: entry k is kind k (the static_assert below keeps the count).
constexpr OperatorRegistration kRegistrations[] = {
    {prepare_conv, eval_conv},                        // Conv2D
    {prepare_conv, eval_conv},                        // DepthwiseConv2D
    {prepare_fully_connected, eval_fully_connected},  // FullyConnected
    {prepare_add_mul, eval_add_mul},                  // Add
    {prepare_add_mul, eval_add_mul},                  // Mul
    {prepare_pool, eval_pool},                        // AveragePool2D
    {prepare_pool, eval_pool},                        // MaxPool2D
    {prepare_mean, eval_mean},                        // Mean
    {prepare_concatenation, eval_concatenation},      // Concatenation
    {prepare_reshape, eval_reshape},                  // Reshape
    {prepare_pad, eval_pad},                          // Pad
    {prepare_softmax, eval_softmax},                  // Softmax
    {prepare_lookup, eval_lookup},                    // Logistic
    {prepare_lookup, eval_lookup},                    // Tanh
    {prepare_quantize, eval_quantize},                // Quantize
    {prepare_dequantize, eval_dequantize},            // Dequantize
    {prepare_lookup, eval_lookup},                    // Lookup
    {prepare_strided_copy, eval_strided_copy},        // Transpose
    {prepare_strided_copy, eval_strided_copy},        // StridedSlice
};
static_assert(sizeof(kRegistrations) / sizeof(kRegistrations[0]) == artifact::OpKind_MAX + 1,
              "one registration per OpKind, in its order");
}  // namespace

int64_t count(const Dims& d) { return d.elements(); }

Dims dims_of(const artifact::Tensor* t) {
  const auto* s = t->shape();
  return s ? Dims{s->n(), s->h(), s->w(), s->c()} : Dims{0, 0, 0, 0};
}

bool same_quantization(const artifact::Tensor* a, const artifact::Tensor* b) {
  return a->scale()->Get(0) == b->scale()->Get(0) &&
         a->zero_point()->Get(0) == b->zero_point()->Get(0);
}

const artifact::Tensor* PrepareContext::tensor(int32_t i) const {
  return model->tensors()->Get(static_cast<uint32_t>(i));
}

Geometry geometry_of(const artifact::Operator* op) {
  return {op->stride_h(),
          op->stride_w(),
          op->dilation_h(),
          op->dilation_w(),
          {op->pad_top(), op->pad_left(), op->pad_bottom(), op->pad_right()},
          {op->activation_min(), op->activation_max()},
          op->filter_h(),
          op->filter_w(),
          op->depth_multiplier()};
}

const OperatorRegistration* find_registration(artifact::OpKind kind) {
  return kind <= artifact::OpKind_MAX ? &kRegistrations[kind] : nullptr;
}

bool int_options(const artifact::Operator* op, artifact::OperatorOptions type, uint32_t n,
                 void* params) {
  const uint8_t* from = nullptr;
  const auto* options = static_cast<const flatbuffers::Table*>(op->options());
  if (op->options_type() == type) {
    // The table's one field, a struct of n ints (the verifier checked its extent); a
    // union type without its table, or a table without its struct, is refused.
    from = options ? options->GetAddressOf(4) : nullptr;
  } else if (op->options_type() == artifact::OperatorOptions_NONE && len(op->int_params()) == n) {
    from = reinterpret_cast<const uint8_t*>(op->int_params()->data());
  }
  if (from) std::memcpy(params, from, n * sizeof(int32_t));  // little-endian, as the FlatBuffer
  return from != nullptr;
}

}  // namespace tinyfleet::kernels::runtime_detail
