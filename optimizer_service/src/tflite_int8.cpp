// A fully int8 TFLite model to an artifact with the model's own quantization
// (tflite_import.h). One function per TFLite operator, dispatched through a table; each
// checks what TFLM's Prepare checks and derives the integer parameters as TFLM does.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "tflite_int8_builder.h"
#include "tinyfleet/kernels/ops/activations.h"
#include "tinyfleet/kernels/ops/conv2d.h"
#include "tinyfleet/kernels/ops/elementwise.h"
#include "tinyfleet/kernels/ops/fully_connected.h"
#include "tinyfleet/kernels/ops/quantization.h"
#include "tinyfleet/kernels/runtime/artifact_writer.h"
#include "tinyfleet/optimizer_service/graph_cost.h"
#include "tinyfleet/optimizer_service/memory_planner.h"
#include "tinyfleet/optimizer_service/tflite_import.h"

namespace tinyfleet::optimizer_service {

namespace {

using namespace tflite_int8;

// TFLM's CalculateActivationRangeQuantized for int8 outputs.
Result<k::ActivationRange> activation_range(int act, const k::TensorQuant& q,
                                            const std::string& op) {
  auto quantize = [&](float f) {
    return q.zero_point + static_cast<int32_t>(std::round(f / q.scale));
  };
  k::ActivationRange r;
  switch (act) {
    case 0:
      break;
    case 1:
      r.min = std::max(-128, quantize(0.0f));
      break;
    case 2:
      r.min = std::max(-128, quantize(-1.0f));
      r.max = std::min(127, quantize(1.0f));
      break;
    case 3:
      r.min = std::max(-128, quantize(0.0f));
      r.max = std::min(127, quantize(6.0f));
      break;
    default:
      return CompileError{op + ": fused activation " + std::to_string(act) + " is not supported"};
  }
  if (r.min > r.max) return CompileError{op + ": empty fused activation range"};
  return r;
}

Status geometry(const TfliteOperator& o, const k::Dims& x, const k::Dims& y, int32_t fh, int32_t fw,
                k::OperatorSpec& op, Node& n) {
  if (!o.has_options) return CompileError{o.name + ": missing its options"};
  if (o.stride_h < 1 || o.stride_w < 1 || o.stride_h > 64 || o.stride_w > 64 || o.dilation_h < 1 ||
      o.dilation_w < 1 || o.dilation_h > 64 || o.dilation_w > 64 || fh < 1 || fw < 1 ||
      (o.padding != 0 && o.padding != 1)) {
    return CompileError{o.name + ": stride, dilation, filter or padding out of range"};
  }
  k::Padding p;
  if (!padding_for(o.padding, x.h, fh, o.stride_h, o.dilation_h, y.h, &p.top, &p.bottom) ||
      !padding_for(o.padding, x.w, fw, o.stride_w, o.dilation_w, y.w, &p.left, &p.right)) {
    return CompileError{o.name + ": output extent differs from what its padding gives"};
  }
  op.stride_h = n.stride_h = o.stride_h;
  op.stride_w = n.stride_w = o.stride_w;
  op.dilation_h = n.dilation_h = o.dilation_h;
  op.dilation_w = n.dilation_w = o.dilation_w;
  op.padding = n.padding = p;
  return true;
}

// CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED (below): int8 weights (zero point 0, one scale
// or one per output channel), an int32 bias (absent: zeros), per-channel requantization
// QuantizeMultiplier(input scale x filter scale / output scale) in double, as TFLM's
// PopulateConvolutionQuantizationParams and GetQuantizedConvolutionMultipler.
// Per output channel, QuantizeMultiplier(input scale x filter scale / output scale).
Status requantization(const TfliteOperator& o, const TfliteTensor& w, const k::TensorQuant& qx,
                      const k::TensorQuant& qy, int32_t oc, k::OperatorSpec& op) {
  for (int32_t c = 0; c < oc; ++c) {
    const double ws = w.scale[w.scale.size() == 1 ? 0 : static_cast<size_t>(c)];
    int32_t mult = 0;
    int shift = 0;
    const double effective = static_cast<double>(qx.scale) * ws / static_cast<double>(qy.scale);
    // Below 1, the requantized accumulator cannot leave int32 (TFLM's arithmetic
    // overflows above it); trained models are far below.
    if (!(effective < 1.0)) {
      return CompileError{o.name + ": requantization scale " + std::to_string(effective) +
                          " (input x filter / output scale, channel " + std::to_string(c) +
                          ") is not below 1"};
    }
    k::quantize_multiplier(effective, &mult, &shift);
    op.requant_multiplier.push_back(mult);
    op.requant_shift.push_back(shift);
  }
  return true;
}

// The filter and bias as the artifact's constants (weights as written, scales per channel)
// and as the planner's graph constants.
void weight_constants(Builder& b, const TfliteTensor& w, const k::Dims& wd, int32_t oc,
                      const std::string& bias_name, const std::vector<int32_t>& bias,
                      k::OperatorSpec& op, Node& n) {
  k::TensorSpec ws;
  ws.name = w.name;
  ws.dims = wd;
  for (int32_t c = 0; c < oc; ++c)
    ws.scale.push_back(w.scale[w.scale.size() == 1 ? 0 : static_cast<size_t>(c)]);
  ws.zero_point.assign(ws.scale.size(), 0);
  ws.data = w.data;
  k::TensorSpec bs;
  bs.name = bias_name;
  bs.type = fa::TensorType_Int32;
  bs.dims = {1, 1, 1, oc};
  bs.data.assign(reinterpret_cast<const char*>(bias.data()), bias.size() * sizeof(int32_t));
  Tensor wt, btt;  // the planner reads only their count
  wt.name = ws.name;
  wt.dims = wd;
  wt.constant = true;
  btt.name = bs.name;
  btt.dims = bs.dims;
  btt.constant = true;
  n.inputs.push_back(b.g.add_tensor(std::move(wt)));
  b.elem_bytes.push_back(1);
  n.inputs.push_back(b.g.add_tensor(std::move(btt)));
  b.elem_bytes.push_back(4);
  op.inputs.push_back(b.constant(std::move(ws)));
  op.inputs.push_back(b.constant(std::move(bs)));
}

// The operator kind with its shape checks, scratch and MACs.
Status weighted_kind(Builder& b, const TfliteOperator& o, const k::Dims& xd, const k::Dims& yd,
                     const k::Dims& wd, int32_t oc, k::OperatorSpec& op, Node& n) {
  if (o.code == kFullyConnected) {
    if (o.weights_format != 0) return CompileError{o.name + ": shuffled weights are not supported"};
    const int32_t in = wd.c;
    if (xd.elements() % in != 0 || yd.elements() != (xd.elements() / in) * oc ||
        xd.n * static_cast<int64_t>(in) != xd.elements()) {
      return CompileError{o.name + ": input, weights and output shapes disagree"};
    }
    op.kind = fa::OpKind_FullyConnected;
    n.type = OpType::kFullyConnected;
    b.scratch =
        std::max<uint32_t>(b.scratch, static_cast<uint32_t>(k::fully_connected_scratch_size(in)));
    b.rep.macs += int64_t{xd.n} * in * oc;
    b.rep.fc_macs += int64_t{xd.n} * in * oc;
    return true;
  }
  auto geo = geometry(o, xd, yd, wd.h, wd.w, op, n);
  if (!geo) return geo.error();
  if (o.code == kDepthwiseConv2D) {
    if (wd.n != 1 || xd.c < 1 || oc % xd.c != 0 || yd.c != oc) {
      return CompileError{o.name + ": filter channels are not a multiple of the input's"};
    }
    op.kind = fa::OpKind_DepthwiseConv2D;
    n.type = OpType::kDepthwiseConv2D;
    op.depth_multiplier = n.depth_multiplier = oc / xd.c;
    b.rep.depthwise_macs += yd.elements() * wd.h * wd.w;
    b.rep.macs += yd.elements() * wd.h * wd.w;
  } else {
    if (wd.c != xd.c || yd.c != oc) return CompileError{o.name + ": filter and input channels"};
    op.kind = fa::OpKind_Conv2D;
    n.type = OpType::kConv2D;
    b.scratch = std::max<uint32_t>(b.scratch, static_cast<uint32_t>(k::conv2d_scratch_size(wd)));
    b.rep.conv_macs += yd.elements() * wd.h * wd.w * wd.c;
    b.rep.macs += yd.elements() * wd.h * wd.w * wd.c;
  }
  n.filter_h = wd.h;
  n.filter_w = wd.w;
  return true;
}

Status weighted(Builder& b, const TfliteOperator& o, k::OperatorSpec& op, Node& n) {
  if (o.inputs.size() < 2 || o.inputs.size() > 3 || o.inputs[0] < 0 || o.inputs[1] < 0) {
    return CompileError{o.name + ": needs input, filter and an optional bias"};
  }
  const int32_t xi = o.inputs[0], wi = o.inputs[1], yi = o.outputs[0];
  const int32_t bi = o.inputs.size() == 3 ? o.inputs[2] : -1;
  const TfliteTensor& w = b.tensor(wi);
  auto qx = b.quant(xi, o.name);
  if (!qx) return qx.error();
  auto qy = b.quant(yi, o.name);
  if (!qy) return qy.error();
  if (w.type != kTfliteInt8 || w.data.empty()) {
    return CompileError{o.name + ": filter '" + w.name + "' must be a constant int8 tensor"};
  }
  const k::Dims xd = dims_of(b.tensor(xi).shape), yd = dims_of(b.tensor(yi).shape);
  const bool dw = o.code == kDepthwiseConv2D, fc = o.code == kFullyConnected;
  if ((fc && w.shape.size() != 2) || (!fc && (w.shape.size() != 4 || xd.n != yd.n))) {
    return CompileError{o.name + ": filter or input rank"};
  }
  const k::Dims wd = dims_of(w.shape);
  const int32_t oc = dw ? wd.c : wd.n;
  const int32_t qdim = dw ? 3 : 0;
  if (w.scale.empty() || (w.scale.size() != 1 && (static_cast<int32_t>(w.scale.size()) != oc ||
                                                  w.quantized_dimension != qdim))) {
    return CompileError{o.name + ": filter '" + w.name +
                        "' needs one scale or one per output channel"};
  }
  for (int64_t z : w.zero_point) {
    if (z != 0) return CompileError{o.name + ": filter zero points must be 0 (symmetric)"};
  }
  std::vector<int32_t> bias(static_cast<size_t>(oc), 0);
  if (bi >= 0) {
    const TfliteTensor& bt = b.tensor(bi);
    if (bt.type != kTfliteInt32 || bt.data.empty() || bt.elements() != oc) {
      return CompileError{o.name + ": bias '" + bt.name + "' must be constant int32, one per " +
                          "output channel"};
    }
    bias = values_of<int32_t>(bt.data);
  }
  auto act = activation_range(o.activation, *qy, o.name);
  if (!act) return act.error();
  op.activation_min = act->min;
  op.activation_max = act->max;
  if (auto r = requantization(o, w, *qx, *qy, oc, op); !r) return r;
  weight_constants(b, w, wd, oc, bi >= 0 ? b.tensor(bi).name : w.name + "/zero_bias", bias, op, n);
  return weighted_kind(b, o, xd, yd, wd, oc, op, n);
}

Status pool(Builder& b, const TfliteOperator& o, k::OperatorSpec& op, Node& n) {
  if (auto s = same_quantization(b, o); !s) return s;
  const k::Dims xd = dims_of(b.tensor(o.inputs[0]).shape);
  const k::Dims yd = dims_of(b.tensor(o.outputs[0]).shape);
  if (xd.n != yd.n || xd.c != yd.c) return CompileError{o.name + ": batch or channels differ"};
  auto geo = geometry(o, xd, yd, o.filter_h, o.filter_w, op, n);
  if (!geo) return geo.error();
  auto act = activation_range(o.activation, *b.quant(o.outputs[0], o.name), o.name);
  if (!act) return act.error();
  op.activation_min = act->min;
  op.activation_max = act->max;
  op.filter_h = n.filter_h = o.filter_h;
  op.filter_w = n.filter_w = o.filter_w;
  const bool avg = o.code == kAveragePool2D;
  op.kind = avg ? fa::OpKind_AveragePool2D : fa::OpKind_MaxPool2D;
  n.type = avg ? OpType::kAveragePool2D : OpType::kMaxPool2D;
  return true;
}

// RESHAPE's second input (the new shape) is read from the output tensor's shape.
Status reshape(Builder& b, const TfliteOperator& o, k::OperatorSpec& op, Node& n) {
  if (b.tensor(o.inputs[0]).elements() != b.tensor(o.outputs[0]).elements()) {
    return CompileError{o.name + ": changes the element count"};
  }
  if (b.tensor(o.inputs[0]).type == kTfliteInt8) {
    if (auto s = same_quantization(b, o); !s) return s;
  }
  op.kind = fa::OpKind_Reshape;
  n.type = OpType::kReshape;
  return true;
}

Status softmax(Builder& b, const TfliteOperator& o, k::OperatorSpec& op, Node& n) {
  auto qx = b.quant(o.inputs[0], o.name);
  if (!qx) return qx.error();
  auto qy = b.quant(o.outputs[0], o.name);
  if (!qy) return qy.error();
  if (qy->scale != 1.0f / 256 || qy->zero_point != -128) {
    return CompileError{o.name + ": output quantization must be 1/256, -128 (TFLite's)"};
  }
  if (!o.has_options || !(o.beta > 0) || !std::isfinite(o.beta)) {
    return CompileError{o.name + ": beta must be positive"};
  }
  if (b.tensor(o.inputs[0]).shape.empty() || b.tensor(o.inputs[0]).shape.back() > 256) {
    return CompileError{o.name + ": rows of more than 256 values are not supported"};
  }
  // TFLM's fixed-point softmax, not the runtime's default one (docs/optimizer.md).
  uint32_t table[256];
  k::build_softmax_tflm_table(qx->scale, o.beta, table);
  op.lut_u32.assign(table, table + 256);
  op.softmax_mode = fa::SoftmaxMode_Tflm;
  op.kind = fa::OpKind_Softmax;
  n.type = OpType::kSoftmax;
  n.beta = o.beta;
  return true;
}

// QUANTIZE float -> int8 at the input, DEQUANTIZE int8 -> float at the output.
Status edge(Builder& b, const TfliteOperator& o, k::OperatorSpec& op, Node& n) {
  const bool q = o.code == kQuantize;
  const int from = q ? kTfliteFloat32 : kTfliteInt8, to = q ? kTfliteInt8 : kTfliteFloat32;
  if (b.tensor(o.inputs[0]).type != from || b.tensor(o.outputs[0]).type != to) {
    return CompileError{o.name +
                        (q ? ": supported: float32 to int8" : ": supported: int8 to float32")};
  }
  op.kind = q ? fa::OpKind_Quantize : fa::OpKind_Dequantize;
  n.type = OpType::kPad;  // to the planner: an output buffer of its own (never in place)
  return true;
}

// ADD and MUL of two int8 tensors of one shape (or a one-value second operand, an
// activation or a constant), TFLM's parameters. ADD: left shift 20, inputs rescaled by
// scale / (2 x the larger input scale), the sum by that / (2^20 x output scale). MUL: the
// product of the offset inputs by input1 x input2 / output scale, refused from 2^14 up
// (the shifted product would leave int32, in TFLM's arithmetic too).
Status add(Builder& b, const TfliteOperator& o, k::OperatorSpec& op, Node& n) {
  if (o.inputs.size() != 2 || o.inputs[1] < 0) return CompileError{o.name + ": needs two inputs"};
  const int32_t x2 = o.inputs[1];
  const TfliteTensor& t2 = b.tensor(x2);
  const int64_t ny = b.tensor(o.outputs[0]).elements();
  if (b.tensor(o.inputs[0]).elements() != ny || (t2.elements() != ny && t2.elements() != 1)) {
    return CompileError{o.name +
                        ": supported: operands of the output's shape, or a second "
                        "operand of one value"};
  }
  auto q1 = b.quant(o.inputs[0], o.name);
  if (!q1) return q1.error();
  auto q2 = b.quant(x2, o.name);
  if (!q2) return q2.error();
  auto qy = b.quant(o.outputs[0], o.name);
  if (!qy) return qy.error();
  if (t2.type != kTfliteInt8) return CompileError{o.name + ": the second operand must be int8"};
  if (!t2.data.empty()) {
    k::TensorSpec cs;
    cs.name = t2.name;
    cs.dims = dims_of(t2.shape);
    cs.scale = {q2->scale};
    cs.zero_point = {q2->zero_point};
    cs.data = t2.data;
    op.inputs.push_back(b.constant(std::move(cs)));
    Tensor ct;
    ct.name = t2.name;
    ct.dims = dims_of(t2.shape);
    ct.constant = true;
    n.inputs.push_back(b.g.add_tensor(std::move(ct)));
    b.elem_bytes.push_back(1);
  } else {
    auto a2 = b.activation(x2, o.name);
    if (!a2) return a2.error();
    op.inputs.push_back(*a2);
    n.inputs.push_back(b.graph_tensor(x2));
  }
  if (!o.has_options) return CompileError{o.name + ": missing its options"};
  auto act = activation_range(o.activation, *qy, o.name);
  if (!act) return act.error();
  op.activation_min = act->min;
  op.activation_max = act->max;
  if (o.code == kMul) {
    const double effective = static_cast<double>(q1->scale) * q2->scale / qy->scale;
    if (!(effective < 16384.0)) {
      return CompileError{o.name + ": requantization scale " + std::to_string(effective) +
                          " (input1 x input2 / output scale) is not below 2^14"};
    }
    op.mul = k::make_mul_params(*q1, *q2, *qy, *act);
    op.kind = fa::OpKind_Mul;
    n.type = OpType::kMul;
    return true;
  }
  op.add = k::make_add_params(*q1, *q2, *qy, *act);
  op.kind = fa::OpKind_Add;
  n.type = OpType::kAdd;
  return true;
}

// Folded by fold_tflite_layout before mapping; here only if folding did not run.
Status folded(Builder&, const TfliteOperator& o, k::OperatorSpec&, Node&) {
  return CompileError{o.name + ": should have been folded (fold_tflite_layout)"};
}

using OpFunction = Status (*)(Builder&, const TfliteOperator&, k::OperatorSpec&, Node&);
struct OpEntry {
  int32_t code;
  int inputs;  // required inputs (at least)
  OpFunction fn;
};
constexpr OpEntry kOperators[] = {
    {kConv2D, 2, weighted},
    {kDepthwiseConv2D, 2, weighted},
    {kFullyConnected, 2, weighted},
    {kAveragePool2D, 1, pool},
    {kMaxPool2D, 1, pool},
    {kReshape, 1, reshape},
    {kSoftmax, 1, softmax},
    {kQuantize, 1, edge},
    {kDequantize, 1, edge},
    {kAdd, 2, add},
    {kMul, 2, add},
    {kLogistic, 1, lookup},
    {kTanh, 1, lookup},
    {kRelu, 1, lookup},
    {kRelu6, 1, lookup},
    {kHardSwish, 1, lookup},
    {kMean, 2, mean},
    {kPad, 2, pad},
    {kPadV2, 2, pad},
    {kConcatenation, 1, concatenation},
    {kSqueeze, 1, folded},
    {kTranspose, 1, strided_copy},  // what fold_tflite_layout left: element moves
    {kStridedSlice, 1, strided_copy},
};

const OpEntry* find_operator(int32_t code) {
  for (const auto& e : kOperators)
    if (e.code == code) return &e;
  return nullptr;
}

std::string unsupported(const TfliteOperator& o) {
  return "operator '" + std::string(tflite_operator_name(o.code)) + "' (builtin code " +
         std::to_string(o.code) + ") is not supported";
}

}  // namespace

std::vector<std::string> tflite_operator_coverage(const TfliteModel& m) {
  std::vector<std::string> out;
  for (const auto& o : m.operators) {
    out.push_back(o.name + (find_operator(o.code) ? ": mapped" : ": " + unsupported(o)));
  }
  return out;
}

bool tflite_is_int8(const TfliteModel& m) {
  for (const auto& o : m.operators) {
    if (o.code == kQuantize || o.code == kDequantize || o.inputs.empty() || o.inputs[0] < 0) {
      continue;
    }
    if (m.tensors[static_cast<size_t>(o.inputs[0])].type == kTfliteFloat32) return false;
  }
  return true;
}

namespace {

// Every operator through its function, in the model's order: the artifact's operators and
// the planner's graph.
Status map_operators(Builder& b) {
  const TfliteModel& m = b.m;
  for (const auto& o : m.operators) {
    if (o.code == kQuantize || o.code == kDequantize) continue;
    for (int32_t t : o.inputs) {
      if (t >= 0 && m.tensors[static_cast<size_t>(t)].type == kTfliteFloat32) {
        return CompileError{
            o.name + ": tensor '" + m.tensors[static_cast<size_t>(t)].name +
            "' is float32: float TFLite models are not compiled yet (only fully int8 ones)"};
      }
    }
  }
  for (const auto& o : m.operators) {
    const OpEntry* e = find_operator(o.code);
    if (!e) return CompileError{o.name + ": " + unsupported(o)};
    if (o.outputs.size() != 1 || static_cast<int>(o.inputs.size()) < e->inputs || o.inputs[0] < 0) {
      return CompileError{o.name + ": input or output count"};
    }
    k::OperatorSpec op;
    Node n;
    n.name = o.name;
    auto x = b.activation(o.inputs[0], o.name);
    if (!x) return x.error();
    auto y = b.activation(o.outputs[0], o.name);
    if (!y) return y.error();
    op.inputs = {*x};
    op.outputs = {*y};
    n.inputs = {b.graph_tensor(o.inputs[0])};
    n.outputs = {b.graph_tensor(o.outputs[0])};
    auto r = e->fn(b, o, op, n);
    if (!r) return r.error();
    if (n.type != OpType::kConv2D && n.type != OpType::kDepthwiseConv2D &&
        n.type != OpType::kFullyConnected) {
      b.rep.other_ops_elements += dims_of(b.tensor(o.outputs[0]).shape).elements();
    }
    b.g.nodes.push_back(std::move(n));
    b.spec.operators.push_back(std::move(op));
  }
  return true;
}

// The memory plan in the model's own operator order, copied to the artifact's tensors;
// the artifact written.
void plan_and_write(Builder& b, CompiledModel& out) {
  CompileReport& rep = out.report;
  const MemoryPlan plan = plan_memory(b.g, b.elem_bytes);
  rep.greedy_arena_bytes = plan_greedy_by_size(b.g, b.elem_bytes).arena_bytes;
  for (size_t t = 0; t < b.m.tensors.size(); ++t) {
    if (b.spec_index[t] < 0) continue;
    b.spec.tensors[static_cast<size_t>(b.spec_index[t])].arena_offset =
        plan.offset[static_cast<size_t>(b.graph_index[t])];
    rep.qdq_scales_kept += b.m.tensors[t].type == kTfliteInt8;
  }
  b.spec.tensor_arena_bytes = plan.arena_bytes;
  b.spec.scratch_bytes = b.scratch;
  rep.nodes = static_cast<int>(b.g.nodes.size());
  rep.arena_bytes = plan.arena_bytes;
  rep.naive_arena_bytes = plan.naive_bytes;
  rep.in_place_operators = plan.in_place_pairs;
  rep.scratch_bytes = b.scratch;
  out.artifact = k::write_artifact(b.spec);
  rep.artifact_bytes = out.artifact.size();
  out.memory_plan.arena_bytes = plan.arena_bytes;
  for (size_t t = 0; t < b.g.tensors.size(); ++t) {
    if (plan.size[t] == 0) continue;
    out.memory_plan.buffers.push_back(
        {b.g.tensors[t].name, plan.offset[t], plan.size[t], plan.first_step[t], plan.last_step[t]});
  }
}

}  // namespace

Result<CompiledModel> compile_tflite_int8(const TfliteModel& model, const CompileOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  auto folded_model = fold_tflite_layout(model);
  if (!folded_model) return folded_model.error();
  const TfliteModel& m = *folded_model;
  CompiledModel out;
  CompileReport& rep = out.report;
  Builder b(m, rep);
  b.spec.device_class = options.device_class;
  b.spec.model_name = options.model_name;
  if (m.inputs.size() != 1 || m.outputs.size() != 1) {
    return CompileError{"supported: one input and one output"};
  }
  if (auto r = map_operators(b); !r) return r.error();
  if (auto too_big = check_cost(b.g, options)) return *too_big;
  const int32_t in = m.inputs[0], outp = m.outputs[0];
  if (b.spec_index[static_cast<size_t>(in)] < 0 || b.spec_index[static_cast<size_t>(outp)] < 0) {
    return CompileError{"the graph input or output is not used by any operator"};
  }
  b.g.inputs = {b.graph_index[static_cast<size_t>(in)]};
  b.g.outputs = {b.graph_index[static_cast<size_t>(outp)]};
  b.spec.inputs = {b.spec_index[static_cast<size_t>(in)]};
  b.spec.outputs = {b.spec_index[static_cast<size_t>(outp)]};
  plan_and_write(b, out);
  // The artifact as written, loaded and run: a refusal if the runtime does not take it.
  auto self_tests = run_self_tests(out.artifact);
  if (!self_tests) return CompileError{"the written artifact: " + self_tests.error().message};
  out.self_tests = std::move(*self_tests);
  const auto& ti = m.tensors[static_cast<size_t>(in)];
  const auto& to = m.tensors[static_cast<size_t>(outp)];
  if (!ti.scale.empty()) {
    rep.input_scale = ti.scale[0];
    rep.input_zero_point = static_cast<int32_t>(ti.zero_point[0]);
  }
  if (!to.scale.empty()) {
    rep.output_scale = to.scale[0];
    rep.output_zero_point = static_cast<int32_t>(to.zero_point[0]);
  }
  rep.compile_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  return out;
}

}  // namespace tinyfleet::optimizer_service
