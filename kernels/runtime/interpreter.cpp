#include "tinyfleet/kernels/runtime/interpreter.h"

#include <cstring>

#include "operator_registry.h"

#include "tinyfleet/kernels/ops/activations.h"
#include "tinyfleet/kernels/ops/conv2d.h"
#include "tinyfleet/kernels/ops/data_movement.h"
#include "tinyfleet/kernels/ops/depthwise_conv2d.h"
#include "tinyfleet/kernels/ops/elementwise.h"
#include "tinyfleet/kernels/ops/fully_connected.h"
#include "tinyfleet/kernels/ops/pooling.h"

namespace tinyfleet::kernels {

namespace {

using namespace runtime_detail;
using artifact::OpKind;
using artifact::TensorType;

RuntimeError fail(LoadStatus s, int32_t index, const char* what) { return {s, index, what}; }

size_t type_size(TensorType t) { return t == artifact::TensorType_Int8 ? 1 : 4; }

size_t bytes_of(const artifact::Tensor* t) {
  return static_cast<size_t>(dims_of(t).elements()) * type_size(t->type());
}

// Requantization parameters a kernel can apply without overflow: multipliers from
// quantize_multiplier are >= 0 and shifts lie in [-31, 30].
bool requant_ok(const flatbuffers::Vector<int32_t>* m, const flatbuffers::Vector<int32_t>* s) {
  for (uint32_t i = 0; i < m->size(); ++i) {
    if (m->Get(i) < 0 || !in_range(s->Get(i), -31, 30)) return false;
  }
  return true;
}

// Geometry small enough that no index or accumulator can overflow.
bool geometry_ok(const artifact::Operator* op) {
  return in_range(op->stride_h(), 1, 64) && in_range(op->stride_w(), 1, 64) &&
         in_range(op->dilation_h(), 1, 64) && in_range(op->dilation_w(), 1, 64) &&
         in_range(op->pad_top(), 0, 255) && in_range(op->pad_left(), 0, 255) &&
         in_range(op->pad_bottom(), 0, 255) && in_range(op->pad_right(), 0, 255) &&
         in_range(op->filter_h(), 1, 255) && in_range(op->filter_w(), 1, 255) &&
         in_range(op->depth_multiplier(), 1, 64) && in_range(op->activation_min(), -128, 127) &&
         in_range(op->activation_max(), op->activation_min(), 127);
}

// Biases within +-2^30, so bias plus at most 2^14 products of 8-bit values stays in int32.
bool bias_ok(const artifact::Model* m, const artifact::Tensor* t) {
  const auto* data = m->buffers()->Get(static_cast<uint32_t>(t->buffer()))->data();
  for (size_t i = 0; i + 4 <= data->size(); i += 4) {
    int32_t v = 0;
    std::memcpy(&v, data->data() + i, 4);
    if (!in_range(v, -(int64_t{1} << 30), int64_t{1} << 30)) return false;
  }
  return true;
}

bool same_dims(const Dims& a, const Dims& b) {
  return a.n == b.n && a.h == b.h && a.w == b.w && a.c == b.c;
}

}  // namespace

const char* to_string(LoadStatus s) {
  switch (s) {
    case LoadStatus::kOk:
      return "ok";
    case LoadStatus::kNotVerified:
      return "artifact failed verification";
    case LoadStatus::kWrongIdentifier:
      return "not a tinyfleet artifact";
    case LoadStatus::kUnsupportedMajor:
      return "unsupported artifact format version";
    case LoadStatus::kMisaligned:
      return "artifact or weights not 16-byte aligned";
    case LoadStatus::kBadTensor:
      return "invalid tensor";
    case LoadStatus::kBadOperator:
      return "invalid operator";
    case LoadStatus::kBadGraph:
      return "invalid graph";
    case LoadStatus::kArenaTooSmall:
      return "arena too small";
    case LoadStatus::kNotLoaded:
      return "no artifact loaded";
    case LoadStatus::kKernelFailed:
      return "kernel failed";
  }
  return "unknown";
}

RuntimeError Interpreter::load(const uint8_t* data, size_t size) {
  model_ = nullptr;
  arena_ = nullptr;
  if (!data || size < 8) return fail(LoadStatus::kNotVerified, -1, "artifact too short");
  if (reinterpret_cast<uintptr_t>(data) % 16 != 0) {
    return fail(LoadStatus::kMisaligned, -1, "artifact start is not 16-byte aligned");
  }
  if (!artifact::ModelBufferHasIdentifier(data)) {
    return fail(LoadStatus::kWrongIdentifier, -1, "file identifier is not TFA1");
  }
  flatbuffers::Verifier verifier(data, size, 64, 1u << 20);
  if (!artifact::VerifyModelBuffer(verifier)) {
    return fail(LoadStatus::kNotVerified, -1, "FlatBuffers verifier refused the artifact");
  }
  const auto* m = artifact::GetModel(data);
  if (m->format_major() != 1) {
    return fail(LoadStatus::kUnsupportedMajor, -1, "format_major is not 1");
  }
  const auto* tensors = m->tensors();
  const auto* ops = m->operators();
  if (!tensors || !ops || tensors->size() == 0 || ops->size() == 0 ||
      tensors->size() > kMaxTensors || ops->size() > kMaxOperators) {
    return fail(LoadStatus::kBadGraph, -1, "tensor or operator count out of range");
  }
  if (m->tensor_arena_bytes() > (1u << 30) || m->scratch_bytes() > (1u << 30)) {
    return fail(LoadStatus::kBadGraph, -1, "arena or scratch size beyond 1 GiB");
  }
  const int32_t tensor_count = static_cast<int32_t>(tensors->size());
  const size_t buffer_count = len(m->buffers());

  // Tensors: shapes, types, where their bytes are.
  for (int32_t i = 0; i < tensor_count; ++i) {
    const auto* t = tensors->Get(static_cast<uint32_t>(i));
    const Dims d = dims_of(t);
    // Checked dimension by dimension so the product cannot overflow.
    int64_t elements = 1;
    bool shape_ok = t->shape() != nullptr;
    for (const int32_t extent : {d.n, d.h, d.w, d.c}) {
      shape_ok = shape_ok && extent > 0 && extent <= (1 << 28) &&
                 (elements *= extent) <= (int64_t{1} << 28);
    }
    if (!shape_ok) {
      return fail(LoadStatus::kBadTensor, i, "shape missing or not positive");
    }
    if (t->type() < artifact::TensorType_MIN || t->type() > artifact::TensorType_MAX) {
      return fail(LoadStatus::kBadTensor, i, "unknown tensor type");
    }
    if (t->type() == artifact::TensorType_Int8 &&
        (len(t->scale()) == 0 || len(t->zero_point()) == 0)) {
      return fail(LoadStatus::kBadTensor, i, "int8 tensor without quantization");
    }
    if (len(t->scale()) != len(t->zero_point())) {
      return fail(LoadStatus::kBadTensor, i, "scale and zero_point lengths differ");
    }
    for (uint32_t q = 0; q < len(t->scale()); ++q) {
      const float sc = t->scale()->Get(q);
      if (!(sc > 0.0f && sc < 3.0e38f) || (t->type() == artifact::TensorType_Int8 &&
                                           !in_range(t->zero_point()->Get(q), -128, 127))) {
        return fail(LoadStatus::kBadTensor, i, "scale not positive or zero point outside int8");
      }
    }
    if (t->buffer() >= 0) {
      if (static_cast<size_t>(t->buffer()) >= buffer_count) {
        return fail(LoadStatus::kBadTensor, i, "buffer index out of range");
      }
      const auto* b = m->buffers()->Get(static_cast<uint32_t>(t->buffer()));
      if (!b->data() || b->data()->size() != bytes_of(t)) {
        return fail(LoadStatus::kBadTensor, i, "buffer size differs from the tensor's");
      }
      if ((b->data()->data() - data) % 16 != 0) {
        return fail(LoadStatus::kMisaligned, i, "weights not 16-byte aligned");
      }
    } else {
      if (uint64_t{t->arena_offset()} + bytes_of(t) > m->tensor_arena_bytes()) {
        return fail(LoadStatus::kBadTensor, i, "tensor outside the planned arena");
      }
      if (t->type() != artifact::TensorType_Int8 && t->arena_offset() % 4 != 0) {
        return fail(LoadStatus::kBadTensor, i, "32-bit tensor at an unaligned arena offset");
      }
    }
  }
  auto tensor = [&](int32_t idx) { return tensors->Get(static_cast<uint32_t>(idx)); };
  auto valid = [&](int32_t idx) { return idx >= 0 && idx < tensor_count; };
  for (const auto* list : {m->inputs(), m->outputs()}) {
    if (!list || list->size() == 0) return fail(LoadStatus::kBadGraph, -1, "no inputs or outputs");
    for (int32_t idx : *list) {
      if (!valid(idx) || tensor(idx)->buffer() >= 0) {
        return fail(LoadStatus::kBadGraph, idx, "graph input/output is not an arena tensor");
      }
    }
  }

  // Operators: arity, types, shapes, parameters.
  for (int32_t k = 0; k < static_cast<int32_t>(ops->size()); ++k) {
    const auto* op = ops->Get(static_cast<uint32_t>(k));
    const size_t nin = len(op->inputs()), nout = len(op->outputs());
    if (nout != 1 || nin == 0) return fail(LoadStatus::kBadOperator, k, "operator arity");
    const bool has_bias = op->kind() == artifact::OpKind_Conv2D ||
                          op->kind() == artifact::OpKind_DepthwiseConv2D ||
                          op->kind() == artifact::OpKind_FullyConnected;
    for (uint32_t i = 0; i < nin; ++i) {
      const int32_t idx = op->inputs()->Get(i);
      if (!valid(idx) && !(has_bias && i == 2 && idx == -1)) {  // -1: no bias
        return fail(LoadStatus::kBadOperator, k, "input tensor index");
      }
    }
    const int32_t out_idx = op->outputs()->Get(0);
    if (!valid(out_idx) || tensor(out_idx)->buffer() >= 0) {
      return fail(LoadStatus::kBadOperator, k, "output must be an arena tensor");
    }
    const auto* x = tensor(op->inputs()->Get(0));
    const auto* y = tensor(out_idx);
    const Dims xd = dims_of(x), yd = dims_of(y);
    const bool int8_io =
        x->type() == artifact::TensorType_Int8 && y->type() == artifact::TensorType_Int8;
    if (!geometry_ok(op)) {
      return fail(LoadStatus::kBadOperator, k, "stride, dilation, padding or clamp out of range");
    }
    if (const auto* r = find_registration(op->kind())) {  // the registered Prepare
      const char* refused = r->prepare({m, op, x, y, xd, yd, nin, int8_io});
      if (refused) return fail(LoadStatus::kBadOperator, k, refused);
      continue;
    }
    switch (op->kind()) {
      case artifact::OpKind_Conv2D:
      case artifact::OpKind_DepthwiseConv2D: {
        const bool dw = op->kind() == artifact::OpKind_DepthwiseConv2D;
        if (nin != 3 || !int8_io) return fail(LoadStatus::kBadOperator, k, "conv arity or types");
        const auto* w = tensor(op->inputs()->Get(1));
        const int32_t bias_idx = op->inputs()->Get(2);
        const Dims wd = dims_of(w);
        if (w->buffer() < 0 || w->type() != artifact::TensorType_Int8) {
          return fail(LoadStatus::kBadOperator, k, "conv filter must be constant int8");
        }
        if (bias_idx >= 0 && (tensor(bias_idx)->type() != artifact::TensorType_Int32 ||
                              dims_of(tensor(bias_idx)).elements() != yd.c)) {
          return fail(LoadStatus::kBadOperator, k, "conv bias must be int32, one per channel");
        }
        const int32_t oc = dw ? wd.c : wd.n;
        if ((dw && (wd.n != 1 || wd.c != xd.c * op->depth_multiplier())) || (!dw && wd.c != xd.c) ||
            yd.c != oc || yd.n != xd.n ||
            yd.h != conv_output_extent(xd.h, wd.h, op->stride_h(), op->dilation_h(), op->pad_top(),
                                       op->pad_bottom()) ||
            yd.w != conv_output_extent(xd.w, wd.w, op->stride_w(), op->dilation_w(), op->pad_left(),
                                       op->pad_right())) {
          return fail(LoadStatus::kBadOperator, k, "conv shapes inconsistent");
        }
        if (len(op->requant_multiplier()) != static_cast<size_t>(oc) ||
            len(op->requant_shift()) != static_cast<size_t>(oc)) {
          return fail(LoadStatus::kBadOperator, k, "requantization length differs from channels");
        }
        if (!requant_ok(op->requant_multiplier(), op->requant_shift()) ||
            (bias_idx >= 0 && (tensor(bias_idx)->buffer() < 0 || !bias_ok(m, tensor(bias_idx)))) ||
            int64_t{wd.h} * wd.w * (dw ? 1 : wd.c) > 16384) {
          return fail(LoadStatus::kBadOperator, k, "requantization, bias or filter out of range");
        }
        if (!dw && conv2d_scratch_size(wd) > m->scratch_bytes()) {
          return fail(LoadStatus::kBadOperator, k, "scratch_bytes below the conv's need");
        }
        break;
      }
      case artifact::OpKind_FullyConnected: {
        if (nin != 3 || !int8_io) return fail(LoadStatus::kBadOperator, k, "fc arity or types");
        const auto* w = tensor(op->inputs()->Get(1));
        const Dims wd = dims_of(w);
        const int32_t in_features = xd.h * xd.w * xd.c;
        if (w->buffer() < 0 || wd.c != in_features || wd.h != 1 || wd.w != 1 ||
            yd.elements() != int64_t{xd.n} * wd.n) {
          return fail(LoadStatus::kBadOperator, k, "fc shapes inconsistent");
        }
        const int32_t bias_idx = op->inputs()->Get(2);
        if (bias_idx >= 0 && dims_of(tensor(bias_idx)).elements() != wd.n) {
          return fail(LoadStatus::kBadOperator, k, "fc bias length");
        }
        if (len(op->requant_multiplier()) != static_cast<size_t>(wd.n) ||
            len(op->requant_shift()) != static_cast<size_t>(wd.n)) {
          return fail(LoadStatus::kBadOperator, k, "requantization length differs from outputs");
        }
        if (!requant_ok(op->requant_multiplier(), op->requant_shift()) || in_features > 16384 ||
            (bias_idx >= 0 && (tensor(bias_idx)->buffer() < 0 || !bias_ok(m, tensor(bias_idx))))) {
          return fail(LoadStatus::kBadOperator, k, "requantization, bias or size out of range");
        }
        if (fully_connected_scratch_size(in_features) > m->scratch_bytes()) {
          return fail(LoadStatus::kBadOperator, k, "scratch_bytes below the fc's need");
        }
        break;
      }
      case artifact::OpKind_Add:
      case artifact::OpKind_Mul: {
        const size_t params = op->kind() == artifact::OpKind_Add ? 10 : 5;
        if (nin != 2 || !int8_io || len(op->int_params()) != params) {
          return fail(LoadStatus::kBadOperator, k, "add/mul arity, types or parameters");
        }
        const auto* q = op->int_params();
        bool params_ok = in_range(q->Get(0), -255, 255) && in_range(q->Get(1), -255, 255) &&
                         in_range(q->Get(2), -128, 127);
        if (op->kind() == artifact::OpKind_Add) {
          params_ok = params_ok && in_range(q->Get(3), 0, 20);
          for (uint32_t j = 4; j < 10; j += 2) {
            params_ok = params_ok && q->Get(j) >= 0 && in_range(q->Get(j + 1), -31, 30);
          }
        } else {
          params_ok = params_ok && q->Get(3) >= 0 && in_range(q->Get(4), -31, 30);
        }
        if (!params_ok) return fail(LoadStatus::kBadOperator, k, "add/mul parameters out of range");
        const auto* x2 = tensor(op->inputs()->Get(1));
        const int64_t n2 = dims_of(x2).elements();
        if (xd.elements() != yd.elements() || (n2 != yd.elements() && n2 != 1) ||
            x2->type() != artifact::TensorType_Int8) {
          return fail(LoadStatus::kBadOperator, k, "add/mul shapes");
        }
        break;
      }
      case artifact::OpKind_AveragePool2D:
      case artifact::OpKind_MaxPool2D:
        if (nin != 1 || !int8_io || xd.c != yd.c || xd.n != yd.n ||
            yd.h != conv_output_extent(xd.h, op->filter_h(), op->stride_h(), 1, op->pad_top(),
                                       op->pad_bottom()) ||
            yd.w != conv_output_extent(xd.w, op->filter_w(), op->stride_w(), 1, op->pad_left(),
                                       op->pad_right()) ||
            x->scale()->Get(0) != y->scale()->Get(0) ||
            x->zero_point()->Get(0) != y->zero_point()->Get(0)) {
          return fail(LoadStatus::kBadOperator, k, "pool shapes or quantization");
        }
        break;
      case artifact::OpKind_Softmax:
        if (nin != 1 || !int8_io || len(op->lut_u32()) != 256 || !same_dims(xd, yd) ||
            op->lut_u32()->Get(0) == 0) {
          return fail(LoadStatus::kBadOperator, k, "softmax table or shapes");
        }
        // int_params [1]: TFLM's fixed-point softmax (TFLite imports), its exp(0) Q0.31 one.
        if (len(op->int_params()) != 0 &&
            (len(op->int_params()) != 1 || op->int_params()->Get(0) != 1 ||
             op->lut_u32()->Get(0) != 0x7fffffffu || yd.c > 256)) {
          return fail(LoadStatus::kBadOperator, k, "softmax mode, table or depth");
        }
        break;
      default:
        return fail(LoadStatus::kBadOperator, k, "unknown operator kind");
    }
  }
  base_ = data;
  model_ = m;
  return {};
}

size_t Interpreter::arena_bytes() const {
  if (!model_) return 0;
  const size_t tensors = (size_t{model_->tensor_arena_bytes()} + 15) & ~size_t{15};
  return tensors + model_->scratch_bytes();
}

RuntimeError Interpreter::bind_arena(uint8_t* arena, size_t size) {
  if (!model_) return fail(LoadStatus::kNotLoaded, -1, "load() first");
  if (!arena || size < arena_bytes()) {
    return fail(LoadStatus::kArenaTooSmall, -1, "arena smaller than arena_bytes()");
  }
  arena_ = arena;
  arena_size_ = size;
  return {};
}

TensorView Interpreter::view(int32_t idx) const {
  TensorView v;
  const auto* t = model_->tensors()->Get(static_cast<uint32_t>(idx));
  v.type = t->type();
  v.dims = dims_of(t);
  v.bytes = bytes_of(t);
  if (len(t->scale()) > 0) v.scale = t->scale()->Get(0);
  if (len(t->zero_point()) > 0) v.zero_point = t->zero_point()->Get(0);
  if (t->buffer() >= 0) {
    v.data = const_cast<uint8_t*>(
        model_->buffers()->Get(static_cast<uint32_t>(t->buffer()))->data()->data());
  } else if (arena_) {
    v.data = arena_ + t->arena_offset();
  }
  return v;
}

int32_t Interpreter::input_count() const {
  return model_ ? static_cast<int32_t>(model_->inputs()->size()) : 0;
}
int32_t Interpreter::output_count() const {
  return model_ ? static_cast<int32_t>(model_->outputs()->size()) : 0;
}
TensorView Interpreter::input(int32_t i) const {
  return view(model_->inputs()->Get(static_cast<uint32_t>(i)));
}
TensorView Interpreter::output(int32_t i) const {
  return view(model_->outputs()->Get(static_cast<uint32_t>(i)));
}

RuntimeError Interpreter::invoke() {
  if (!model_ || !arena_) return fail(LoadStatus::kNotLoaded, -1, "load() and bind_arena() first");
  const auto* ops = model_->operators();
  for (int32_t k = 0; k < static_cast<int32_t>(ops->size()); ++k) {
    const auto* op = ops->Get(static_cast<uint32_t>(k));
    const uint32_t t0 = profiler_.now ? profiler_.now(profiler_.ctx) : 0;
    const auto err = run(k, op);
    if (err.status != LoadStatus::kOk) return err;
    if (profiler_.now && profiler_.record) {
      profiler_.record(profiler_.ctx, k, op->kind(), profiler_.now(profiler_.ctx) - t0);
    }
  }
  return {};
}

RuntimeError Interpreter::run(int32_t k, const artifact::Operator* op) {
  const TensorView x = view(op->inputs()->Get(0));
  const TensorView y = view(op->outputs()->Get(0));
  const auto* in8 = static_cast<const int8_t*>(x.data);
  auto* out8 = static_cast<int8_t*>(y.data);
  uint8_t* scratch = arena_ + ((size_t{model_->tensor_arena_bytes()} + 15) & ~size_t{15});
  const size_t scratch_bytes = model_->scratch_bytes();
  const ActivationRange act{op->activation_min(), op->activation_max()};
  Status s = Status::kOk;
  if (const auto* r = find_registration(op->kind())) {  // the registered Eval
    s = r->eval({op, x, y, *this});
    if (s != Status::kOk) return fail(LoadStatus::kKernelFailed, k, to_string(s));
    return {};
  }
  switch (op->kind()) {
    case artifact::OpKind_Conv2D:
    case artifact::OpKind_DepthwiseConv2D: {
      const TensorView w = view(op->inputs()->Get(1));
      const int32_t bias_idx = op->inputs()->Get(2);
      const auto* bias = bias_idx >= 0 ? static_cast<const int32_t*>(view(bias_idx).data) : nullptr;
      const PerChannelRequant rq{op->requant_multiplier()->data(), op->requant_shift()->data()};
      Conv2DParams p;
      p.input_offset = -x.zero_point;
      p.output_offset = y.zero_point;
      p.stride_h = op->stride_h();
      p.stride_w = op->stride_w();
      p.dilation_h = op->dilation_h();
      p.dilation_w = op->dilation_w();
      p.padding = {op->pad_top(), op->pad_left(), op->pad_bottom(), op->pad_right()};
      p.activation = act;
      if (op->kind() == artifact::OpKind_Conv2D) {
        s = opt::conv2d(p, rq, x.dims, in8, w.dims, static_cast<const int8_t*>(w.data), bias,
                        y.dims, out8, scratch, scratch_bytes);
      } else {
        DepthwiseParams dp;
        static_cast<Conv2DParams&>(dp) = p;
        dp.depth_multiplier = op->depth_multiplier();
        s = opt::depthwise_conv2d(dp, rq, x.dims, in8, w.dims, static_cast<const int8_t*>(w.data),
                                  bias, y.dims, out8);
      }
      break;
    }
    case artifact::OpKind_FullyConnected: {
      const TensorView w = view(op->inputs()->Get(1));
      const int32_t bias_idx = op->inputs()->Get(2);
      const auto* bias = bias_idx >= 0 ? static_cast<const int32_t*>(view(bias_idx).data) : nullptr;
      FullyConnectedParams p;
      p.input_offset = -x.zero_point;
      p.output_offset = y.zero_point;
      p.activation = act;
      s = opt::fully_connected(p, {op->requant_multiplier()->data(), op->requant_shift()->data()},
                               x.dims.n, x.dims.h * x.dims.w * x.dims.c, in8, w.dims.n,
                               static_cast<const int8_t*>(w.data), bias, out8, scratch,
                               scratch_bytes);
      break;
    }
    case artifact::OpKind_Add: {
      const TensorView x2 = view(op->inputs()->Get(1));
      const auto* q = op->int_params()->data();
      AddParams p;
      p.input1_offset = q[0];
      p.input2_offset = q[1];
      p.output_offset = q[2];
      p.left_shift = q[3];
      p.input1_multiplier = q[4];
      p.input1_shift = q[5];
      p.input2_multiplier = q[6];
      p.input2_shift = q[7];
      p.output_multiplier = q[8];
      p.output_shift = q[9];
      p.activation = act;
      s = opt::add(p, y.dims.elements(), in8, x2.dims.elements(),
                   static_cast<const int8_t*>(x2.data), out8);
      break;
    }
    case artifact::OpKind_Mul: {
      const TensorView x2 = view(op->inputs()->Get(1));
      const auto* q = op->int_params()->data();
      MulParams p;
      p.input1_offset = q[0];
      p.input2_offset = q[1];
      p.output_offset = q[2];
      p.output_multiplier = q[3];
      p.output_shift = q[4];
      p.activation = act;
      s = opt::mul(p, y.dims.elements(), in8, x2.dims.elements(),
                   static_cast<const int8_t*>(x2.data), out8);
      break;
    }
    case artifact::OpKind_AveragePool2D:
    case artifact::OpKind_MaxPool2D: {
      PoolParams p;
      p.filter_h = op->filter_h();
      p.filter_w = op->filter_w();
      p.stride_h = op->stride_h();
      p.stride_w = op->stride_w();
      p.padding = {op->pad_top(), op->pad_left(), op->pad_bottom(), op->pad_right()};
      p.activation = act;
      s = op->kind() == artifact::OpKind_MaxPool2D
              ? opt::max_pool2d(p, x.dims, in8, y.dims, out8)
              : opt::average_pool2d(p, x.dims, in8, y.dims, out8);
      break;
    }
    case artifact::OpKind_Softmax:
      s = len(op->int_params()) == 1
              ? ref::softmax_tflm(op->lut_u32()->data(),
                                  static_cast<int32_t>(x.dims.elements() / x.dims.c), x.dims.c, in8,
                                  out8)
              : opt::softmax(op->lut_u32()->data(),
                             static_cast<int32_t>(x.dims.elements() / x.dims.c), x.dims.c, in8,
                             out8);
      break;
    default:
      return fail(LoadStatus::kBadOperator, k, "unknown operator kind");
  }
  if (s != Status::kOk) return fail(LoadStatus::kKernelFailed, k, to_string(s));
  return {};
}

}  // namespace tinyfleet::kernels
