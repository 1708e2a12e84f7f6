// A float TFLite model to the compiler's float graph IR (tflite_import.h): TFLite is
// already NHWC with the kernels' weight layouts, so tensors and weights pass through;
// int8 weights of dynamic-range ("hybrid") models are dequantized first. One function per
// operator, dispatched through kFloatOperators.
#include <cmath>
#include <cstring>

#include "tflite_common.h"
#include "tflite_operands.h"
#include "tinyfleet/optimizer_service/tflite_import.h"

namespace tinyfleet::optimizer_service {

namespace {

using namespace tflite_common;
namespace k = tinyfleet::kernels;

// A constant as float: float32 as is, int8 dequantized per channel of its
// quantized_dimension, int32 (a float model's bias never is) refused.
Result<std::vector<float>> constant_values(const TfliteTensor& t, const std::string& op) {
  const auto n = static_cast<size_t>(t.elements());
  std::vector<float> v(n);
  if (t.type == kTfliteFloat32) {
    std::memcpy(v.data(), t.data.data(), n * sizeof(float));
    for (float x : v) {
      if (!std::isfinite(x))
        return CompileError{op + ": '" + t.name + "' holds a non-finite value"};
    }
    return v;
  }
  if (t.type != kTfliteInt8 || t.scale.empty()) {
    return CompileError{op + ": constant '" + t.name + "' is neither float32 nor quantized int8"};
  }
  // Elements per step of the quantized dimension, and its extent.
  size_t inner = 1;
  for (size_t d = static_cast<size_t>(t.quantized_dimension) + 1; d < t.shape.size(); ++d)
    inner *= static_cast<size_t>(t.shape[d]);
  const size_t channels = t.scale.size();
  for (size_t i = 0; i < n; ++i) {
    const size_t c = channels == 1 ? 0 : (i / inner) % channels;
    const auto q = static_cast<int8_t>(t.data[i]);
    v[i] = t.scale[c] * static_cast<float>(int64_t{q} - t.zero_point[c]);
  }
  return v;
}

Result<k::FloatRange> float_activation(int act, const std::string& op) {
  k::FloatRange r;
  if (act == 0) return r;
  if (act == 1) return k::FloatRange{0.0f, r.max};
  if (act == 2) return k::FloatRange{-1.0f, 1.0f};
  if (act == 3) return k::FloatRange{0.0f, 6.0f};
  return CompileError{op + ": fused activation " + std::to_string(act) + " is not supported"};
}

struct FloatBuilder {
  const TfliteModel& m;
  Graph g;
  std::vector<int> index;
  explicit FloatBuilder(const TfliteModel& model) : m(model), index(model.tensors.size(), -1) {}

  Result<int> tensor(int32_t t, const std::string& op) {
    if (t < 0) return CompileError{op + ": a required input is omitted"};
    auto& i = index[static_cast<size_t>(t)];
    if (i >= 0) return i;
    const TfliteTensor& x = m.tensors[static_cast<size_t>(t)];
    Tensor y;
    y.name = x.name;
    y.dims = dims_of(x.shape);
    if (!x.data.empty()) {
      auto v = constant_values(x, op);
      if (!v) return v.error();
      y.constant = true;
      y.data = std::move(*v);
    } else if (x.type != kTfliteFloat32) {
      return CompileError{op + ": activation '" + x.name + "' is not float32"};
    }
    i = g.add_tensor(std::move(y));
    return i;
  }
};

using Status = Result<bool>;

Status geometry(const TfliteOperator& o, const Graph& g, Node& n, int32_t fh, int32_t fw) {
  const k::Dims& x = g.tensors[static_cast<size_t>(n.inputs[0])].dims;
  const k::Dims& y = g.tensors[static_cast<size_t>(n.outputs[0])].dims;
  if (!o.has_options || o.stride_h < 1 || o.stride_w < 1 || o.stride_h > 64 || o.stride_w > 64 ||
      o.dilation_h < 1 || o.dilation_w < 1 || o.dilation_h > 64 || o.dilation_w > 64 || fh < 1 ||
      fw < 1 || (o.padding != 0 && o.padding != 1) ||
      !padding_for(o.padding, x.h, fh, o.stride_h, o.dilation_h, y.h, &n.padding.top,
                   &n.padding.bottom) ||
      !padding_for(o.padding, x.w, fw, o.stride_w, o.dilation_w, y.w, &n.padding.left,
                   &n.padding.right)) {
    return CompileError{o.name + ": options, or an output extent its padding does not give"};
  }
  n.stride_h = o.stride_h;
  n.stride_w = o.stride_w;
  n.dilation_h = o.dilation_h;
  n.dilation_w = o.dilation_w;
  n.filter_h = fh;
  n.filter_w = fw;
  return true;
}

Status weighted(FloatBuilder& b, const TfliteOperator& o, Node& n) {
  if (o.inputs.size() < 2) return CompileError{o.name + ": needs input and filter"};
  auto w = b.tensor(o.inputs[1], o.name);
  if (!w) return w.error();
  const Tensor& wt = b.g.tensors[static_cast<size_t>(*w)];
  if (!wt.constant) return CompileError{o.name + ": the filter must be constant"};
  const bool dw = o.code == kDepthwiseConv2D, fc = o.code == kFullyConnected;
  const k::Dims xd = b.g.tensors[static_cast<size_t>(n.inputs[0])].dims;
  const k::Dims yd = b.g.tensors[static_cast<size_t>(n.outputs[0])].dims;
  const int32_t oc = dw ? wt.dims.c : wt.dims.n;
  int bias = -1;
  if (o.inputs.size() > 2 && o.inputs[2] >= 0) {
    auto bt = b.tensor(o.inputs[2], o.name);
    if (!bt) return bt.error();
    bias = *bt;
    const Tensor& t = b.g.tensors[static_cast<size_t>(bias)];
    if (!t.constant || t.dims.elements() != oc) {
      return CompileError{o.name + ": the bias must be constant, one per output channel"};
    }
  } else {
    Tensor z;
    z.name = wt.name + "/zero_bias";
    z.dims = {1, 1, 1, oc};
    z.constant = true;
    z.data.assign(static_cast<size_t>(oc), 0.0f);
    bias = b.g.add_tensor(std::move(z));
  }
  n.inputs.push_back(*w);
  n.inputs.push_back(bias);
  auto act = float_activation(o.activation, o.name);
  if (!act) return act.error();
  n.activation = *act;
  const k::Dims wd = b.g.tensors[static_cast<size_t>(*w)].dims;
  if (fc) {
    if (o.weights_format != 0 || xd.elements() != int64_t{xd.n} * wd.c ||
        yd.elements() != int64_t{xd.n} * wd.n) {
      return CompileError{o.name + ": input, weights and output shapes disagree"};
    }
    n.type = OpType::kFullyConnected;
    return true;
  }
  if (xd.n != yd.n || yd.c != oc || (dw && (wd.n != 1 || oc % xd.c != 0)) ||
      (!dw && wd.c != xd.c)) {
    return CompileError{o.name + ": filter, input and output channels disagree"};
  }
  n.type = dw ? OpType::kDepthwiseConv2D : OpType::kConv2D;
  n.depth_multiplier = dw ? oc / xd.c : 1;
  return geometry(o, b.g, n, wd.h, wd.w);
}

Status pool(FloatBuilder& b, const TfliteOperator& o, Node& n) {
  n.type = o.code == kAveragePool2D ? OpType::kAveragePool2D : OpType::kMaxPool2D;
  auto act = float_activation(o.activation, o.name);
  if (!act) return act.error();
  n.activation = *act;
  return geometry(o, b.g, n, o.filter_h, o.filter_w);
}

Status reshape(FloatBuilder& b, const TfliteOperator& o, Node& n) {
  if (b.g.tensors[static_cast<size_t>(n.inputs[0])].dims.elements() !=
      b.g.tensors[static_cast<size_t>(n.outputs[0])].dims.elements()) {
    return CompileError{o.name + ": changes the element count"};
  }
  n.type = OpType::kReshape;
  return true;
}

Status softmax(FloatBuilder&, const TfliteOperator& o, Node& n) {
  if (!o.has_options || !(o.beta > 0) || !std::isfinite(o.beta)) {
    return CompileError{o.name + ": beta must be positive"};
  }
  n.type = OpType::kSoftmax;
  n.beta = o.beta;
  return true;
}

Status same_elements(FloatBuilder& b, const TfliteOperator& o, Node& n) {
  if (b.g.tensors[static_cast<size_t>(n.inputs[0])].dims.elements() !=
      b.g.tensors[static_cast<size_t>(n.outputs[0])].dims.elements()) {
    return CompileError{o.name + ": input and output shapes differ"};
  }
  return true;
}

// LOGISTIC, TANH, HARD_SWISH: element-wise functions of their own.
template <OpType kType>
Status elementwise(FloatBuilder& b, const TfliteOperator& o, Node& n) {
  n.type = kType;
  return same_elements(b, o, n);
}

// RELU and RELU6 (TFLite's fused activation codes 1 and 3) as a clamp, fused into its
// producer by a pass where it can be, else a table of its own.
template <int32_t kFusedActivation>
Status clamp(FloatBuilder& b, const TfliteOperator& o, Node& n) {
  n.type = OpType::kClamp;
  n.activation = *float_activation(kFusedActivation, o.name);
  return same_elements(b, o, n);
}

// ADD and MUL: a second activation of the output's shape, or a constant of one value.
Status binary(FloatBuilder& b, const TfliteOperator& o, Node& n) {
  if (!o.has_options) return CompileError{o.name + ": missing its options"};
  auto x2 = b.tensor(o.inputs[1], o.name);
  if (!x2) return x2.error();
  const Tensor& t2 = b.g.tensors[static_cast<size_t>(*x2)];
  const int64_t ny = b.g.tensors[static_cast<size_t>(n.outputs[0])].dims.elements();
  if (b.g.tensors[static_cast<size_t>(n.inputs[0])].dims.elements() != ny ||
      (t2.constant ? t2.dims.elements() != 1 : t2.dims.elements() != ny)) {
    return CompileError{o.name +
                        ": supported: operands of the output's shape, or a constant second "
                        "operand of one value"};
  }
  n.inputs.push_back(*x2);
  auto act = float_activation(o.activation, o.name);
  if (!act) return act.error();
  n.activation = *act;
  n.type = o.code == kAdd ? OpType::kAdd : OpType::kMul;
  return true;
}

Status mean(FloatBuilder& b, const TfliteOperator& o, Node& n) {
  if (auto r = tflite_operands::check_mean_over_hw(b.m, o); !r) return r;
  n.type = OpType::kMean;
  return true;
}

// PAD with 0, PADV2 with its constant_values (one float value).
Status pad(FloatBuilder& b, const TfliteOperator& o, Node& n) {
  if (auto r = tflite_operands::paddings_nhwc(b.m, o, n.pad_before, n.pad_after); !r) return r;
  if (o.code == kPadV2 && o.inputs.size() > 2 && o.inputs[2] >= 0) {
    const TfliteTensor& v = b.m.tensors[static_cast<size_t>(o.inputs[2])];
    auto value = constant_values(v, o.name);
    if (v.data.empty() || !value || value->size() != 1) {
      return CompileError{o.name + ": constant_values must be one constant value"};
    }
    n.pad_value = (*value)[0];
  }
  n.type = OpType::kPad;
  return true;
}

Status concatenation(FloatBuilder& b, const TfliteOperator& o, Node& n) {
  auto axis = tflite_operands::concatenation_axis(b.m, o);
  if (!axis) return axis.error();
  for (size_t i = 1; i < o.inputs.size(); ++i) {
    auto t = b.tensor(o.inputs[i], o.name);
    if (!t) return t.error();
    if (b.g.tensors[static_cast<size_t>(*t)].constant) {
      return CompileError{o.name + ": a constant input is not supported"};
    }
    n.inputs.push_back(*t);
  }
  n.axis = *axis;
  n.type = OpType::kConcatenation;
  return true;
}

// TRANSPOSE and STRIDED_SLICE left by fold_tflite_layout: element moves as o.copy.
Status strided_copy(FloatBuilder&, const TfliteOperator& o, Node& n) {
  n.type = o.code == kTranspose ? OpType::kTranspose : OpType::kStridedSlice;
  n.copy = o.copy;
  return true;
}

// One function per TFLite operator (inputs: at least that many).
struct FloatOp {
  int32_t code;
  size_t inputs;
  Status (*fn)(FloatBuilder&, const TfliteOperator&, Node&);
};
constexpr FloatOp kFloatOperators[] = {
    {kConv2D, 2, weighted},
    {kDepthwiseConv2D, 2, weighted},
    {kFullyConnected, 2, weighted},
    {kAveragePool2D, 1, pool},
    {kMaxPool2D, 1, pool},
    {kReshape, 1, reshape},
    {kSoftmax, 1, softmax},
    {kAdd, 2, binary},
    {kMul, 2, binary},
    {kLogistic, 1, elementwise<OpType::kLogistic>},
    {kTanh, 1, elementwise<OpType::kTanh>},
    {kRelu, 1, clamp<1>},
    {kRelu6, 1, clamp<3>},
    {kHardSwish, 1, elementwise<OpType::kHardSwish>},
    {kMean, 2, mean},
    {kPad, 2, pad},
    {kPadV2, 2, pad},
    {kConcatenation, 1, concatenation},
    {kTranspose, 1, strided_copy},
    {kStridedSlice, 1, strided_copy},
};

}  // namespace

Result<Graph> tflite_float_graph(const TfliteModel& model) {
  auto folded = fold_tflite_layout(model);  // SQUEEZE, TRANSPOSE, STRIDED_SLICE
  if (!folded) return folded.error();
  const TfliteModel& m = *folded;
  FloatBuilder b(m);
  for (const auto& o : m.operators) {
    const FloatOp* e = nullptr;
    for (const auto& f : kFloatOperators)
      if (f.code == o.code) e = &f;
    if (!e) {
      return CompileError{o.name + ": operator '" + tflite_operator_name(o.code) +
                          "' (builtin code " + std::to_string(o.code) + ") is not supported"};
    }
    if (o.inputs.size() < e->inputs || o.outputs.size() != 1) {
      return CompileError{o.name + ": input or output count"};
    }
    Node n;
    n.name = o.name;
    auto x = b.tensor(o.inputs[0], o.name);
    if (!x) return x.error();
    auto y = b.tensor(o.outputs[0], o.name);
    if (!y) return y.error();
    if (b.g.tensors[static_cast<size_t>(*x)].constant ||
        b.g.tensors[static_cast<size_t>(*y)].constant) {
      return CompileError{o.name + ": its input and output must be activations"};
    }
    n.inputs = {*x};
    n.outputs = {*y};
    auto r = e->fn(b, o, n);
    if (!r) return r.error();
    b.g.nodes.push_back(std::move(n));
  }
  for (int32_t t : m.inputs) {
    if (b.index[static_cast<size_t>(t)] < 0) return CompileError{"a graph input no operator reads"};
    b.g.inputs.push_back(b.index[static_cast<size_t>(t)]);
  }
  for (int32_t t : m.outputs) {
    if (b.index[static_cast<size_t>(t)] < 0)
      return CompileError{"a graph output no operator writes"};
    b.g.outputs.push_back(b.index[static_cast<size_t>(t)]);
  }
  return std::move(b.g);
}

}  // namespace tinyfleet::optimizer_service
