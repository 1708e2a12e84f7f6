// The registered Prepare/Eval pairs (operator_registry.h), by kind.
#include "operator_registry.h"

namespace tinyfleet::kernels::runtime_detail {

namespace {
constexpr OperatorRegistration kRegistrations[] = {
    {artifact::OpKind_Mean, prepare_mean, eval_mean},
    {artifact::OpKind_Concatenation, prepare_concatenation, eval_concatenation},
    {artifact::OpKind_Reshape, prepare_reshape, eval_reshape},
    {artifact::OpKind_Pad, prepare_pad, eval_pad},
    {artifact::OpKind_Logistic, prepare_lookup, eval_lookup},
    {artifact::OpKind_Tanh, prepare_lookup, eval_lookup},
    {artifact::OpKind_Lookup, prepare_lookup, eval_lookup},
    {artifact::OpKind_Quantize, prepare_quantize, eval_quantize},
    {artifact::OpKind_Dequantize, prepare_dequantize, eval_dequantize},
    {artifact::OpKind_Transpose, prepare_strided_copy, eval_strided_copy},
    {artifact::OpKind_StridedSlice, prepare_strided_copy, eval_strided_copy},
};
}  // namespace

const OperatorRegistration* find_registration(artifact::OpKind kind) {
  for (const auto& r : kRegistrations)
    if (r.kind == kind) return &r;
  return nullptr;
}

}  // namespace tinyfleet::kernels::runtime_detail
