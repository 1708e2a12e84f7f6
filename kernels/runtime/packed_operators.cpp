// Host builds only (TINYFLEET_RUNTIME_PACKS_WEIGHTS; not in the Cortex-M library, which
// reads its weights as stored): load() packs the weights of every Conv2D and
// DepthwiseConv2D once (ops/packed_weights.h), so invoke() does not interleave them,
// fold the input offset into the biases and prepare the requantization constants on
// every call. One block the interpreter owns, sized by a first pass over the operators
// before the second fills it; freed by the next load() or with the interpreter. Packing
// fails only for want of memory: then every operator runs from its stored weights.
#include <new>

#include "operator_registry.h"
#include "tinyfleet/kernels/ops/packed_weights.h"

namespace tinyfleet::kernels {

namespace runtime_detail {

namespace {

// What packing reads of a weighted operator load() accepted: its kernel parameters (the
// input offset and depth multiplier are what a packed depthwise layer is bound to), its
// filter, bias and requantization.
struct Weights {
  DepthwiseParams p;
  Dims filter_dims;
  const int8_t* filter;
  const int32_t* bias;
  PerChannelRequant rq;
};

bool weights_of(const Interpreter& in, const artifact::Operator* op, Weights* w) {
  const auto kind = op->kind();
  if (kind != artifact::OpKind_Conv2D && kind != artifact::OpKind_DepthwiseConv2D) return false;
  const TensorView filter = in.tensor(op->inputs()->Get(1));
  const int32_t bias = op->inputs()->Get(2);
  w->p.input_offset = -in.tensor(op->inputs()->Get(0)).zero_point;
  w->p.depth_multiplier = kind == artifact::OpKind_DepthwiseConv2D ? op->depth_multiplier() : 1;
  w->filter_dims = filter.dims;
  w->filter = static_cast<const int8_t*>(filter.data);
  w->bias = bias >= 0 ? static_cast<const int32_t*>(in.tensor(bias).data) : nullptr;
  w->rq = {op->requant_multiplier()->data(), op->requant_shift()->data()};
  return true;
}

bool depthwise(const artifact::Operator* op) {
  return op->kind() == artifact::OpKind_DepthwiseConv2D;
}

}  // namespace

size_t packed_conv_bytes(const Interpreter& interpreter, const artifact::Operator* op) {
  Weights w;
  if (!weights_of(interpreter, op, &w)) return 0;
  return depthwise(op) ? opt::depthwise_packed_size(w.p, w.filter_dims)
                       : opt::conv2d_packed_size(w.filter_dims);
}

bool pack_conv(const Interpreter& interpreter, const artifact::Operator* op, void* at,
               size_t bytes) {
  Weights w;
  if (!weights_of(interpreter, op, &w)) return false;
  const Status s = depthwise(op)
                       ? opt::depthwise_pack(w.p, w.rq, w.filter_dims, w.filter, w.bias, at, bytes)
                       : opt::conv2d_pack(w.rq, w.filter_dims, w.filter, w.bias, at, bytes);
  return s == Status::kOk;
}

}  // namespace runtime_detail

void Interpreter::pack_weights() {
  packed_.reset();
  packed_bytes_ = 0;
  const auto* ops = model_->operators();
  const auto n = static_cast<int32_t>(ops->size());
  for (int32_t k = 0; k < n; ++k) packed_at_[k] = packed_size_[k] = 0;
  if (!pack_weights_) return;
  // First pass: where each operator's block goes (at 32-byte multiples, so every block is
  // as aligned as the first) and the total; a model past 1 GiB of them packs the first.
  size_t total = 0;
  for (int32_t k = 0; k < n; ++k) {
    const size_t bytes =
        runtime_detail::packed_conv_bytes(*this, ops->Get(static_cast<uint32_t>(k)));
    if (bytes == 0 || total + bytes > (size_t{1} << 30)) continue;
    packed_at_[k] = static_cast<uint32_t>(total);
    packed_size_[k] = static_cast<uint32_t>(bytes);
    total += (bytes + 31) & ~size_t{31};
  }
  if (total > 0) packed_.reset(new (std::nothrow) unsigned char[total]);
  for (int32_t k = 0; k < n; ++k) {  // without the memory, every operator runs as stored
    if (!packed_ || (packed_size_[k] > 0 &&
                     !runtime_detail::pack_conv(*this, ops->Get(static_cast<uint32_t>(k)),
                                                packed_.get() + packed_at_[k], packed_size_[k]))) {
      packed_size_[k] = 0;
    }
  }
  packed_bytes_ = packed_ ? total : 0;
}

int32_t Interpreter::packed_operators() const {
  int32_t count = 0;
  for (int32_t k = 0; model_ && k < static_cast<int32_t>(model_->operators()->size()); ++k) {
    count += packed_weights(k) != nullptr;
  }
  return count;
}

const void* Interpreter::packed_weights(int32_t op) const {
  return packed_weights_bytes(op) > 0 ? packed_.get() + packed_at_[op] : nullptr;
}

size_t Interpreter::packed_weights_bytes(int32_t op) const {
  if (!model_ || !packed_ || op < 0 || op >= static_cast<int32_t>(model_->operators()->size())) {
    return 0;
  }
  return packed_size_[op];
}

}  // namespace tinyfleet::kernels
