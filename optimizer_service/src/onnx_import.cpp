#include "tinyfleet/optimizer_service/onnx_import.h"

#include "onnx_constants.h"
#include "onnx_opsets.h"
#include "tinyfleet/kernels/ops/conv2d.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <tuple>
#include <utility>

namespace tinyfleet::optimizer_service {

namespace {

using kernels::Dims;

using onnx_import_detail::fold_constant;
using onnx_import_detail::Raw;
using onnx_import_detail::to_raw;

// Bounds on what a model may ask for, checked before anything is allocated.
constexpr int64_t kMaxExtent = int64_t{1} << 20;  // one axis of an activation
constexpr int64_t kMaxAttribute = 1 << 16;        // strides, dilations, pads, kernel sizes

bool attributes_small(const std::vector<int64_t>& v, int64_t lowest) {
  for (int64_t x : v)
    if (x < lowest || x > kMaxAttribute) return false;
  return true;
}

// NCHW (or N x K) shapes to NHWC dims.
Result<Dims> nhwc(const std::vector<int64_t>& s, const std::string& what) {
  for (int64_t d : s) {
    if (d < 1 || d > kMaxExtent) {
      return CompileError{what + " has an extent of " + std::to_string(d) + ", supported: 1 to " +
                          std::to_string(kMaxExtent)};
    }
  }
  if (s.size() == 4)
    return Dims{static_cast<int32_t>(s[0]), static_cast<int32_t>(s[2]), static_cast<int32_t>(s[3]),
                static_cast<int32_t>(s[1])};
  if (s.size() == 2) return Dims{static_cast<int32_t>(s[0]), 1, 1, static_cast<int32_t>(s[1])};
  if (s.size() == 3)
    return Dims{static_cast<int32_t>(s[0]), 1, static_cast<int32_t>(s[2]),
                static_cast<int32_t>(s[1])};
  return CompileError{what + " has rank " + std::to_string(s.size()) + ", supported: 2 to 4"};
}

// auto_pad SAME_UPPER / SAME_LOWER as explicit {before, after} padding of one axis: the
// output is ceil(in / stride); SAME_UPPER puts the odd pixel after, SAME_LOWER before.
std::pair<int32_t, int32_t> same_padding(int32_t in, int32_t kernel, int32_t stride,
                                         int32_t dilation, bool upper) {
  const int32_t out = (in + stride - 1) / stride;
  const int32_t total = std::max(0, (out - 1) * stride + (kernel - 1) * dilation + 1 - in);
  const int32_t small = total / 2;
  return upper ? std::make_pair(small, total - small) : std::make_pair(total - small, small);
}

struct Attrs {
  explicit Attrs(const onnx::NodeProto& n) {
    for (const auto& a : n.attribute()) by_name[a.name()] = &a;
  }
  int64_t i(const std::string& k, int64_t dflt) const {
    auto it = by_name.find(k);
    return it == by_name.end() ? dflt : it->second->i();
  }
  float f(const std::string& k, float dflt) const {
    auto it = by_name.find(k);
    return it == by_name.end() ? dflt : it->second->f();
  }
  std::vector<int64_t> ints(const std::string& k, std::vector<int64_t> dflt) const {
    auto it = by_name.find(k);
    if (it == by_name.end()) return dflt;
    return {it->second->ints().begin(), it->second->ints().end()};
  }
  std::string s(const std::string& k) const {
    auto it = by_name.find(k);
    return it == by_name.end() ? "" : it->second->s();
  }
  std::map<std::string, const onnx::AttributeProto*> by_name;
};

class Importer {
 public:
  Result<Graph> run(const onnx::ModelProto& model) {
    const auto& g = model.graph();
    for (const auto& init : g.initializer()) {
      auto raw = to_raw(init);
      if (!raw) return raw.error();
      constants_[init.name()] = std::move(*raw);
    }
    for (const auto& node : g.node()) {
      for (const auto& name : node.input()) ++uses_[name];
    }
    for (const auto& out : g.output()) ++uses_[out.name()];
    for (const auto& in : g.input()) {
      if (constants_.count(in.name())) continue;
      std::vector<int64_t> shape;
      for (const auto& d : in.type().tensor_type().shape().dim()) {
        // A symbolic (or absent) batch is fixed to 1; any other extent must be known.
        if (shape.empty() && (!d.has_dim_value() || d.dim_value() <= 0)) {
          shape.push_back(1);
        } else if (!d.has_dim_value() || d.dim_value() <= 0) {
          return CompileError{"graph input '" + in.name() + "' has a symbolic extent '" +
                              d.dim_param() + "' at axis " + std::to_string(shape.size()) +
                              "; supported: a symbolic batch (fixed to 1) only"};
        } else {
          shape.push_back(d.dim_value());
        }
      }
      auto dims = nhwc(shape, "graph input '" + in.name() + "'");
      if (!dims) return dims.error();
      const int t = graph_.add_tensor({in.name(), *dims, false, {}});
      bind(in.name(), t);
      nchw_[t] = shape;
      graph_.inputs.push_back(t);
    }
    int index = 0;
    for (const auto& node : g.node()) {
      const std::string label = "node " + std::to_string(index++) + " '" + node.op_type() + "'" +
                                (node.name().empty() ? "" : " (" + node.name() + ")");
      const size_t before = graph_.tensors.size();
      if (auto e = import_node(node, label)) return *e;
      for (size_t t = before; t < graph_.tensors.size(); ++t) {
        const Dims& d = graph_.tensors[t].dims;
        if (d.n < 1 || d.h < 1 || d.w < 1 || d.c < 1 ||
            d.elements() > onnx_import_detail::kMaxConstantElements) {
          return CompileError{label + ": gives tensor '" + graph_.tensors[t].name +
                              "' an empty or too large shape"};
        }
      }
    }
    for (const auto& out : g.output()) {
      auto it = names_.find(out.name());
      if (it == names_.end())
        return CompileError{"graph output '" + out.name() + "' is not produced"};
      graph_.outputs.push_back(it->second);
    }
    return std::move(graph_);
  }

 private:
  // What an operator's function gets: the node's op_type, attributes, label and a
  // refusal maker; for functions that read an activation input (OnnxOperator::reads_x),
  // that input (tensor, NHWC dims, ONNX shape) and the Node to fill.
  struct NodeContext {
    const std::string& op;
    const Attrs& a;
    const std::string& label;
    std::function<CompileError(const std::string&)> fail;
    int x = -1;
    Dims xd;
    std::vector<int64_t> xs;
    Node node;
  };
  using OperatorFunction = std::optional<CompileError> (Importer::*)(const onnx::NodeProto&,
                                                                     NodeContext&);
  struct OnnxOperator {
    const char* name;
    OperatorFunction fn;
    bool reads_x;
  };
  static const OnnxOperator kOperators[];
  static const OnnxOperator* find_operator(const std::string& op);

  std::optional<CompileError> import_node(const onnx::NodeProto& n, const std::string& label);
  std::optional<CompileError> import_constant(const onnx::NodeProto& n, NodeContext& ctx);
  std::optional<CompileError> import_shape(const onnx::NodeProto& n, NodeContext& ctx);
  std::optional<CompileError> import_identity(const onnx::NodeProto& n, NodeContext& ctx);
  std::optional<CompileError> import_qdq(const onnx::NodeProto& n, NodeContext& ctx);
  std::optional<CompileError> import_binary(const onnx::NodeProto& n, NodeContext& ctx);
  std::optional<CompileError> import_batch_norm(const onnx::NodeProto& n, NodeContext& ctx);
  std::optional<CompileError> import_conv(const onnx::NodeProto& n, NodeContext& ctx);
  std::optional<CompileError> import_gemm(const onnx::NodeProto& n, NodeContext& ctx);
  std::optional<CompileError> import_clip(const onnx::NodeProto& n, NodeContext& ctx);
  std::optional<CompileError> import_pool(const onnx::NodeProto& n, NodeContext& ctx);
  std::optional<CompileError> import_mean(const onnx::NodeProto& n, NodeContext& ctx);
  std::optional<CompileError> import_squeeze(const onnx::NodeProto& n, NodeContext& ctx);
  std::optional<CompileError> import_transpose(const onnx::NodeProto& n, NodeContext& ctx);
  std::optional<CompileError> import_flatten(const onnx::NodeProto& n, NodeContext& ctx);
  std::optional<CompileError> import_reshape(const onnx::NodeProto& n, NodeContext& ctx);
  // The layout operators' shared end: x as the ONNX shape `target`, elements in order.
  std::optional<CompileError> reshape_to(const onnx::NodeProto& n, NodeContext& ctx,
                                         const std::vector<int64_t>& target);
  std::optional<CompileError> import_concat(const onnx::NodeProto& n, NodeContext& ctx);
  std::optional<CompileError> import_pad(const onnx::NodeProto& n, NodeContext& ctx);
  std::optional<CompileError> import_softmax(const onnx::NodeProto& n, NodeContext& ctx);
  std::optional<CompileError> import_sigmoid_tanh(const onnx::NodeProto& n, NodeContext& ctx);
  // The ONNX shape a Squeeze or Unsqueeze of an activation of shape xs gives.
  Result<std::vector<int64_t>> squeezed(const onnx::NodeProto& n,
                                        const std::vector<int64_t>& xs) const;
  // y = x * k[c] + b[c] per channel c.
  std::optional<CompileError> channel_affine(const onnx::NodeProto& n, int x,
                                             const std::vector<float>& k,
                                             const std::vector<float>& b, const std::string& label);

  // An activation input by name (constants are not activations here). Each call is one
  // read of the tensor: pending_reads_ counts those still to come.
  Result<int> activation(const std::string& name, const std::string& label) {
    auto it = names_.find(name);
    if (it == names_.end()) {
      return CompileError{label + ": input '" + name + "' is not an activation produced earlier"};
    }
    --pending_reads_[it->second];
    return it->second;
  }
  // `name` (a graph input, a node output, or an alias of one) now denotes tensor t.
  void bind(const std::string& name, int t) {
    names_[name] = t;
    pending_reads_[t] += uses_[name];
  }
  const Raw* constant(const std::string& name) const {
    auto it = constants_.find(name);
    return it == constants_.end() ? nullptr : &it->second;
  }
  int output(const onnx::NodeProto& n, const Dims& d, const std::vector<int64_t>& nchw_shape) {
    const int t = graph_.add_tensor({n.output(0), d, false, {}});
    bind(n.output(0), t);
    nchw_[t] = nchw_shape;
    return t;
  }
  int add_constant(const std::string& name, Dims d, std::vector<float> v) {
    return graph_.add_tensor({name, d, true, std::move(v)});
  }

  Graph graph_;
  std::map<std::string, Raw> constants_;
  std::map<std::string, int> names_;
  std::map<std::string, int> uses_;  // how many node inputs and graph outputs read a name
  // Per tensor: reads of it by nodes not imported yet, and graph outputs it is.
  std::map<int, int> pending_reads_;
  std::map<int, std::vector<int64_t>> nchw_;            // the ONNX shape of each activation
  std::map<int, std::vector<int64_t>> flattened_from_;  // NCHW shape before a Flatten
  struct Quantized {
    int tensor;
    kernels::TensorQuant quant;
  };
  std::map<std::string, Quantized> quantized_;  // QuantizeLinear outputs of activations
};

std::optional<CompileError> Importer::import_qdq(const onnx::NodeProto& n, NodeContext& ctx) {
  const std::string& label = ctx.label;
  auto fail = [&](const std::string& why) { return CompileError{label + ": " + why}; };
  const Raw* scale = n.input_size() > 1 ? constant(n.input(1)) : nullptr;
  const Raw* zp = n.input_size() > 2 && !n.input(2).empty() ? constant(n.input(2)) : nullptr;
  if (!scale) return fail("the scale must be a constant");
  if (scale->values.size() != 1) {
    return fail("per-axis scales are supported on constant weights only, not on activations");
  }
  if (zp && zp->type != onnx::TensorProto::INT8 && zp->type != onnx::TensorProto::UINT8) {
    return fail("zero point of type " + std::to_string(zp->type) + ", supported: int8, uint8");
  }
  // uint8 (the default without a zero point) is int8 with the zero point moved by 128:
  // the same real values.
  const bool is_uint8 = !zp || zp->type == onnx::TensorProto::UINT8;
  const kernels::TensorQuant q{
      scale->values[0], static_cast<int32_t>(zp ? zp->values[0] : 0.0f) - (is_uint8 ? 128 : 0)};
  if (!(q.scale > 0.0f)) return fail("the scale must be positive");
  if (n.op_type() == "QuantizeLinear") {
    auto x = activation(n.input(0), label);
    if (!x) return x.error();
    quantized_[n.output(0)] = {*x, q};
    return std::nullopt;
  }
  auto it = quantized_.find(n.input(0));
  if (it == quantized_.end()) {
    return fail(
        "DequantizeLinear of an activation is supported only right after its "
        "QuantizeLinear (QDQ form)");
  }
  if (it->second.quant != q) {
    return fail("scale or zero point differs from its QuantizeLinear");
  }
  Tensor& t = graph_.tensors[static_cast<size_t>(it->second.tensor)];
  if (t.has_quant && t.quant != q) {
    return fail("'" + t.name + "' is given two different quantizations");
  }
  t.has_quant = true;
  t.quant = q;
  bind(n.output(0), it->second.tensor);
  return std::nullopt;
}

// Values of a constant operand per channel of an activation of ONNX shape xs: a scalar,
// or one value per channel (shape [C, 1, 1], [1, C], ... under NumPy broadcasting).
// nullopt if it varies along any other axis or would widen the activation.
std::optional<std::vector<float>> per_channel(const Raw& c, const std::vector<int64_t>& xs,
                                              int32_t channels) {
  if (c.values.empty() || c.shape.size() > xs.size() || xs.size() < 2) return std::nullopt;
  bool varies = false;
  for (size_t i = 0; i < c.shape.size(); ++i) {
    const size_t axis = xs.size() - c.shape.size() + i;
    if (c.shape[i] == 1) continue;
    if (axis != 1 || c.shape[i] != xs[1] || xs[1] != channels) return std::nullopt;
    varies = true;
  }
  if (!varies) return std::vector<float>(static_cast<size_t>(channels), c.values[0]);
  return c.values;
}

std::optional<CompileError> Importer::channel_affine(const onnx::NodeProto& n, int x,
                                                     const std::vector<float>& k,
                                                     const std::vector<float>& b,
                                                     const std::string& label) {
  const Dims xd = graph_.tensors[static_cast<size_t>(x)].dims;
  const bool fixed_quant = graph_.tensors[static_cast<size_t>(x)].has_quant;
  const int32_t channels = xd.c;
  Node* producer = nullptr;
  for (auto& node : graph_.nodes) {
    if (node.outputs[0] == x) producer = &node;
  }
  // Folded into the producing Conv, depthwise Conv or fully connected layer when nothing
  // else reads its output and no QDQ pair fixed that output's quantization.
  if (producer && pending_reads_[x] == 0 && !fixed_quant &&
      (producer->type == OpType::kConv2D || producer->type == OpType::kDepthwiseConv2D ||
       producer->type == OpType::kFullyConnected)) {
    Tensor& w = graph_.tensors[static_cast<size_t>(producer->inputs[1])];
    Tensor& bias = graph_.tensors[static_cast<size_t>(producer->inputs[2])];
    const int64_t per = static_cast<int64_t>(w.data.size()) / channels;
    for (int32_t c = 0; c < channels; ++c) {
      const auto cc = static_cast<size_t>(c);
      for (int64_t i = 0; i < per; ++i) {
        // Conv2D and fully connected weights are [oc, ...]; depthwise weights [..., oc].
        const size_t at = producer->type == OpType::kDepthwiseConv2D
                              ? static_cast<size_t>(i * channels + c)
                              : static_cast<size_t>(c * per + i);
        w.data[at] *= k[cc];
      }
      bias.data[cc] = bias.data[cc] * k[cc] + b[cc];
    }
    bind(n.output(0), x);
    return std::nullopt;
  }
  // Otherwise a per-channel multiply-add: a 1x1 depthwise convolution.
  Node node;
  node.type = OpType::kDepthwiseConv2D;
  node.name = label;
  node.inputs = {x, add_constant(n.output(0) + ".scale", {1, 1, 1, channels}, k),
                 add_constant(n.output(0) + ".shift", {1, 1, 1, channels}, b)};
  node.outputs = {output(n, xd, nchw_[x])};
  graph_.nodes.push_back(std::move(node));
  return std::nullopt;
}

std::optional<CompileError> Importer::import_binary(const onnx::NodeProto& n, NodeContext& ctx) {
  const std::string& label = ctx.label;
  const std::string& op = n.op_type();
  auto fail = [&](const std::string& why) { return CompileError{label + ": " + why}; };
  if (n.input_size() != 2) return fail("needs two inputs");
  const Raw* c0 = constant(n.input(0));
  const Raw* c1 = constant(n.input(1));
  if (!c0 && !c1) {  // two activations
    if (op != "Add" && op != "Mul") {
      return fail("of two activations is not supported; supported: Add, Mul");
    }
    auto x = activation(n.input(0), label);
    if (!x) return x.error();
    auto y = activation(n.input(1), label);
    if (!y) return y.error();
    const Dims xd = graph_.tensors[static_cast<size_t>(*x)].dims;
    if (graph_.tensors[static_cast<size_t>(*y)].dims.elements() != xd.elements())
      return fail("operands differ in shape; supported: same shape or a constant");
    Node node;
    node.type = op == "Add" ? OpType::kAdd : OpType::kMul;
    node.name = label;
    node.inputs = {*x, *y};
    node.outputs = {output(n, xd, nchw_[*x])};
    graph_.nodes.push_back(std::move(node));
    return std::nullopt;
  }
  const bool constant_first = c0 != nullptr;
  const Raw& c = constant_first ? *c0 : *c1;
  if (constant_first && op == "Div") return fail("dividing a constant by an activation");
  auto xr = activation(n.input(constant_first ? 1 : 0), label);
  if (!xr) return xr.error();
  const int x = *xr;
  const Dims xd = graph_.tensors[static_cast<size_t>(x)].dims;
  const std::vector<int64_t> xs = nchw_[x];
  auto v = per_channel(c, xs, xd.c);
  if (!v) {
    std::string shape;
    for (int64_t d : c.shape) shape += (shape.empty() ? "" : ",") + std::to_string(d);
    return fail("a constant operand of shape [" + shape +
                "] is not a scalar or one value per channel");
  }
  for (float& f : *v) {
    if (op == "Sub" && !constant_first) f = -f;
    if (op == "Div") {
      if (f == 0.0f) return fail("division by a constant zero");
      f = 1.0f / f;
    }
  }
  // A scalar stays a scalar operator (a pass folds it where it can); Sub and Div become
  // Add and Mul.
  if (c.values.size() == 1 && !(op == "Sub" && constant_first)) {
    Node node;
    node.type = op == "Add" || op == "Sub" ? OpType::kAdd : OpType::kMul;
    node.name = label;
    node.inputs = {x, add_constant(n.input(constant_first ? 0 : 1), {1, 1, 1, 1}, {(*v)[0]})};
    node.outputs = {output(n, xd, xs)};
    graph_.nodes.push_back(std::move(node));
    return std::nullopt;
  }
  const auto channels = static_cast<size_t>(xd.c);
  std::vector<float> k(channels, 1.0f), b(channels, 0.0f);
  if (op == "Add" || op == "Sub") b = *v;
  if (op == "Mul" || op == "Div") k = *v;
  if (op == "Sub" && constant_first) k.assign(channels, -1.0f);  // c - x
  return channel_affine(n, x, k, b, label);
}

std::optional<CompileError> Importer::import_batch_norm(const onnx::NodeProto& n,
                                                        NodeContext& ctx) {
  const std::string& label = ctx.label;
  auto fail = [&](const std::string& why) { return CompileError{label + ": " + why}; };
  Attrs a(n);
  if (a.i("training_mode", 0) != 0) return fail("training_mode=1 is not supported");
  if (n.input_size() != 5) return fail("needs five inputs");
  const Raw* scale = constant(n.input(1));
  const Raw* bias = constant(n.input(2));
  const Raw* mean = constant(n.input(3));
  const Raw* var = constant(n.input(4));
  if (!scale || !bias || !mean || !var) return fail("parameters must be constants");
  auto xr = activation(n.input(0), label);
  if (!xr) return xr.error();
  const auto channels = static_cast<size_t>(graph_.tensors[static_cast<size_t>(*xr)].dims.c);
  for (const Raw* p : {scale, bias, mean, var}) {
    if (p->values.size() != channels) {
      return fail("parameters must hold one value per channel (" + std::to_string(channels) + ")");
    }
  }
  const float eps = a.f("epsilon", 1e-5f);
  std::vector<float> k(channels), b(channels);
  for (size_t c = 0; c < channels; ++c) {
    if (!(var->values[c] + eps > 0.0f)) return fail("a variance plus epsilon is not positive");
    k[c] = scale->values[c] / std::sqrt(var->values[c] + eps);
    b[c] = bias->values[c] - mean->values[c] * k[c];
  }
  return channel_affine(n, *xr, k, b, label);
}

Result<std::vector<int64_t>> Importer::squeezed(const onnx::NodeProto& n,
                                                const std::vector<int64_t>& xs) const {
  // Axes: the attribute (opsets < 13) or the constant second input.
  std::vector<int64_t> axes = Attrs(n).ints("axes", {});
  if (n.input_size() > 1 && !n.input(1).empty()) {
    const Raw* c = constant(n.input(1));
    if (!c) return CompileError{"the axes must be a constant"};
    axes.clear();
    for (float v : c->values) axes.push_back(onnx_import_detail::as_int(v));
  }
  const bool unsqueeze = n.op_type() == "Unsqueeze";
  const auto rank = static_cast<int64_t>(xs.size() + (unsqueeze ? axes.size() : 0));
  for (auto& axis : axes) {
    if (axis < -rank || axis >= rank)
      return CompileError{"axis " + std::to_string(axis) + " out of range"};
    if (axis < 0) axis += rank;
  }
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) {
    return CompileError{"an axis is listed twice"};
  }
  std::vector<int64_t> out;
  if (unsqueeze) {
    if (axes.empty()) return CompileError{"no axes"};
    out = xs;
    for (int64_t axis : axes) out.insert(out.begin() + axis, 1);
    return out;
  }
  for (size_t d = 0; d < xs.size(); ++d) {
    const bool listed = std::binary_search(axes.begin(), axes.end(), static_cast<int64_t>(d));
    if (listed && xs[d] != 1) {
      return CompileError{"axis " + std::to_string(d) + " has extent " + std::to_string(xs[d]) +
                          ", not 1"};
    }
    if (!(listed || (axes.empty() && xs[d] == 1))) out.push_back(xs[d]);
  }
  return out;
}

// The operators on activations that need no function of their own.
std::optional<CompileError> Importer::import_constant(const onnx::NodeProto& n, NodeContext& ctx) {
  auto it = ctx.a.by_name.find("value");
  if (it == ctx.a.by_name.end()) return ctx.fail("supported only with a 'value' tensor");
  auto raw = to_raw(it->second->t());
  if (!raw) return ctx.fail(raw.error().message);
  constants_[n.output(0)] = std::move(*raw);
  return std::nullopt;
}

// Shape of an activation: its static shape, a constant.
std::optional<CompileError> Importer::import_shape(const onnx::NodeProto& n, NodeContext& ctx) {
  auto x = activation(n.input(0), ctx.label);
  if (!x) return x.error();
  Raw r;
  for (int64_t d : nchw_[*x]) r.values.push_back(static_cast<float>(d));
  r.shape = {static_cast<int64_t>(r.values.size())};
  r.type = onnx::TensorProto::INT64;
  constants_[n.output(0)] = std::move(r);
  return std::nullopt;
}

// Identity and Dropout of an activation (of constants: folded): an alias.
std::optional<CompileError> Importer::import_identity(const onnx::NodeProto& n, NodeContext& ctx) {
  auto x = activation(n.input(0), ctx.label);
  if (!x) return x.error();
  bind(n.output(0), *x);
  return std::nullopt;
}

// Conv: reads its activation input x (c), fills ctx.node.
std::optional<CompileError> Importer::import_conv(const onnx::NodeProto& n, NodeContext& ctx) {
  auto& [op, a, label, fail, x, xd, xs, node] = ctx;
  const std::string auto_pad = a.s("auto_pad");
  if (!auto_pad.empty() && auto_pad != "NOTSET" && auto_pad != "VALID" &&
      auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER") {
    return fail("auto_pad=" + auto_pad + ", supported: NOTSET, VALID, SAME_UPPER, SAME_LOWER");
  }
  const Raw* w = constant(n.input(1));
  // Conv1D ([N, C, L], weights [O, I, K]) runs as a Conv2D of height 1.
  const bool conv1d = w && w->shape.size() == 3 && xs.size() == 3;
  if (!w || (w->shape.size() != 4 && !conv1d)) {
    return fail("weights must be a constant 4-D tensor (or 3-D for a 1-D convolution)");
  }
  const int64_t group = a.i("group", 1);
  const int64_t oc = w->shape[0], icg = w->shape[1], kh = conv1d ? 1 : w->shape[2],
                kw = conv1d ? w->shape[2] : w->shape[3];
  auto strides = a.ints("strides", conv1d ? std::vector<int64_t>{1} : std::vector<int64_t>{1, 1});
  auto dil = a.ints("dilations", conv1d ? std::vector<int64_t>{1} : std::vector<int64_t>{1, 1});
  auto pads = a.ints("pads", conv1d ? std::vector<int64_t>{0, 0}
                                    : std::vector<int64_t>{0, 0, 0, 0});  // t, l, b, r
  if (conv1d && strides.size() == 1 && dil.size() == 1 && pads.size() == 2) {
    strides = {1, strides[0]};
    dil = {1, dil[0]};
    pads = {0, pads[0], 0, pads[1]};
  }
  if (strides.size() != 2 || dil.size() != 2 || pads.size() != 4) {
    return fail("only 1-D and 2-D convolutions are supported");
  }
  if (!attributes_small(strides, 1) || !attributes_small(dil, 1) || !attributes_small(pads, 0)) {
    return fail("strides and dilations must be in 1.." + std::to_string(kMaxAttribute) +
                ", pads in 0.." + std::to_string(kMaxAttribute));
  }
  node.stride_h = static_cast<int32_t>(strides[0]);
  node.stride_w = static_cast<int32_t>(strides[1]);
  node.dilation_h = static_cast<int32_t>(dil[0]);
  node.dilation_w = static_cast<int32_t>(dil[1]);
  node.padding = {static_cast<int32_t>(pads[0]), static_cast<int32_t>(pads[1]),
                  static_cast<int32_t>(pads[2]), static_cast<int32_t>(pads[3])};
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    const bool upper = auto_pad == "SAME_UPPER";
    std::tie(node.padding.top, node.padding.bottom) =
        same_padding(xd.h, static_cast<int32_t>(kh), node.stride_h, node.dilation_h, upper);
    std::tie(node.padding.left, node.padding.right) =
        same_padding(xd.w, static_cast<int32_t>(kw), node.stride_w, node.dilation_w, upper);
  } else if (auto_pad == "VALID") {
    node.padding = {0, 0, 0, 0};
  }
  std::vector<float> wt(w->values.size());
  Dims wd;
  if (group == 1 && icg == xd.c) {
    node.type = OpType::kConv2D;
    wd = {static_cast<int32_t>(oc), static_cast<int32_t>(kh), static_cast<int32_t>(kw),
          static_cast<int32_t>(icg)};
    for (int64_t o = 0; o < oc; ++o)
      for (int64_t i = 0; i < icg; ++i)
        for (int64_t y = 0; y < kh; ++y)
          for (int64_t z = 0; z < kw; ++z)
            wt[static_cast<size_t>(((o * kh + y) * kw + z) * icg + i)] =
                w->values[static_cast<size_t>(((o * icg + i) * kh + y) * kw + z)];
  } else if (group == xd.c && icg == 1 && oc % group == 0) {
    node.type = OpType::kDepthwiseConv2D;
    node.depth_multiplier = static_cast<int32_t>(oc / group);
    wd = {1, static_cast<int32_t>(kh), static_cast<int32_t>(kw), static_cast<int32_t>(oc)};
    for (int64_t o = 0; o < oc; ++o)
      for (int64_t y = 0; y < kh; ++y)
        for (int64_t z = 0; z < kw; ++z)
          wt[static_cast<size_t>((y * kw + z) * oc + o)] =
              w->values[static_cast<size_t>((o * kh + y) * kw + z)];
  } else {
    return fail("group=" + std::to_string(group) + ", supported: 1 or the input channels (" +
                std::to_string(xd.c) + ")");
  }
  node.inputs.push_back(add_constant(n.input(1), wd, std::move(wt)));
  std::vector<float> bias(static_cast<size_t>(oc), 0.0f);
  if (n.input_size() > 2 && !n.input(2).empty()) {
    const Raw* b = constant(n.input(2));
    if (!b || b->values.size() != static_cast<size_t>(oc))
      return fail("bias must be constant [out]");
    bias = b->values;
  }
  node.inputs.push_back(
      add_constant(n.input(0) + ".bias", {1, 1, 1, static_cast<int32_t>(oc)}, bias));
  const int32_t oh =
      kernels::conv_output_extent(xd.h, static_cast<int32_t>(kh), node.stride_h, node.dilation_h,
                                  node.padding.top, node.padding.bottom);
  const int32_t ow =
      kernels::conv_output_extent(xd.w, static_cast<int32_t>(kw), node.stride_w, node.dilation_w,
                                  node.padding.left, node.padding.right);
  node.outputs = {
      output(n, {xd.n, oh, ow, static_cast<int32_t>(oc)},
             conv1d ? std::vector<int64_t>{xd.n, oc, ow} : std::vector<int64_t>{xd.n, oc, oh, ow})};
  return std::nullopt;
}

// Gemm, MatMul: reads its activation input x (c), fills ctx.node.
std::optional<CompileError> Importer::import_gemm(const onnx::NodeProto& n, NodeContext& ctx) {
  auto& [op, a, label, fail, x, xd, xs, node] = ctx;
  const Raw* w = constant(n.input(1));
  if (!w || w->shape.size() != 2) return fail("weights must be a constant 2-D tensor");
  const bool trans_b = op == "Gemm" && a.i("transB", 0) == 1;
  if (op == "Gemm" &&
      (a.i("transA", 0) != 0 || a.f("alpha", 1.0f) != 1.0f || a.f("beta", 1.0f) != 1.0f)) {
    return fail("supported: transA=0, alpha=1, beta=1");
  }
  const int64_t out = trans_b ? w->shape[0] : w->shape[1];
  const int64_t in = trans_b ? w->shape[1] : w->shape[0];
  const int64_t features = int64_t{xd.h} * xd.w * xd.c;
  if (in != features)
    return fail("weights expect " + std::to_string(in) + " inputs, got " +
                std::to_string(features));
  // The input was flattened from NCHW: permute the weight columns to NHWC order.
  std::vector<int64_t> src_shape = xs;
  auto flat = flattened_from_.find(x);
  if (flat != flattened_from_.end()) src_shape = flat->second;
  std::vector<float> wt(static_cast<size_t>(out * in));
  const bool permute = src_shape.size() == 4 && src_shape[1] > 1 && src_shape[2] * src_shape[3] > 1;
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t i = 0; i < in; ++i) {
      int64_t col = i;  // NHWC column
      if (permute) {    // ONNX column i is (c, h, w); NHWC column is (h, w, c)
        const int64_t C = src_shape[1], H = src_shape[2], W = src_shape[3];
        const int64_t c = i / (H * W), h = (i / W) % H, ww = i % W;
        col = (h * W + ww) * C + c;
      }
      wt[static_cast<size_t>(o * in + col)] = trans_b ? w->values[static_cast<size_t>(o * in + i)]
                                                      : w->values[static_cast<size_t>(i * out + o)];
    }
  }
  node.type = OpType::kFullyConnected;
  node.inputs.push_back(add_constant(
      n.input(1), {static_cast<int32_t>(out), 1, 1, static_cast<int32_t>(in)}, std::move(wt)));
  std::vector<float> bias(static_cast<size_t>(out), 0.0f);
  if (op == "Gemm" && n.input_size() > 2 && !n.input(2).empty()) {
    const Raw* b = constant(n.input(2));
    if (!b || b->values.size() != static_cast<size_t>(out))
      return fail("bias must be constant [out]");
    bias = b->values;
  }
  node.inputs.push_back(
      add_constant(n.input(1) + ".bias", {1, 1, 1, static_cast<int32_t>(out)}, bias));
  node.outputs = {output(n, {xd.n, 1, 1, static_cast<int32_t>(out)}, {xd.n, out})};
  return std::nullopt;
}

// Relu, Clip: reads its activation input x (c), fills ctx.node.
std::optional<CompileError> Importer::import_clip(const onnx::NodeProto& n, NodeContext& ctx) {
  auto& [op, a, label, fail, x, xd, xs, node] = ctx;
  node.type = OpType::kClamp;
  node.activation.min = 0.0f;
  if (op == "Clip") {
    const Raw* lo = n.input_size() > 1 && !n.input(1).empty() ? constant(n.input(1)) : nullptr;
    const Raw* hi = n.input_size() > 2 && !n.input(2).empty() ? constant(n.input(2)) : nullptr;
    if ((lo && lo->values.size() != 1) || (hi && hi->values.size() != 1)) {
      return fail("min and max must be constant scalars");
    }
    node.activation.min = lo ? lo->values[0] : a.f("min", -3.4e38f);
    node.activation.max = hi ? hi->values[0] : a.f("max", 3.4e38f);
  }
  node.outputs = {output(n, xd, xs)};
  return std::nullopt;
}

// MaxPool, AveragePool: reads its activation input x (c), fills ctx.node.
std::optional<CompileError> Importer::import_pool(const onnx::NodeProto& n, NodeContext& ctx) {
  auto& [op, a, label, fail, x, xd, xs, node] = ctx;
  node.type = op == "MaxPool" ? OpType::kMaxPool2D : OpType::kAveragePool2D;
  const auto k = a.ints("kernel_shape", {});
  const auto strides = a.ints("strides", {1, 1});
  const auto pads = a.ints("pads", {0, 0, 0, 0});
  const bool same = a.s("auto_pad") == "SAME_UPPER" || a.s("auto_pad") == "SAME_LOWER";
  if (k.size() != 2 || strides.size() != 2 || pads.size() != 4 || a.i("ceil_mode", 0) != 0 ||
      (op == "AveragePool" && a.i("count_include_pad", 0) != 0 &&
       (same || pads[0] || pads[1] || pads[2] || pads[3]))) {
    return fail("supported: 2-D kernel, ceil_mode=0, count_include_pad=0");
  }
  if (!attributes_small(k, 1) || !attributes_small(strides, 1) || !attributes_small(pads, 0)) {
    return fail("kernel and strides must be in 1.." + std::to_string(kMaxAttribute) +
                ", pads in 0.." + std::to_string(kMaxAttribute));
  }
  node.filter_h = static_cast<int32_t>(k[0]);
  node.filter_w = static_cast<int32_t>(k[1]);
  node.stride_h = static_cast<int32_t>(strides[0]);
  node.stride_w = static_cast<int32_t>(strides[1]);
  node.padding = {static_cast<int32_t>(pads[0]), static_cast<int32_t>(pads[1]),
                  static_cast<int32_t>(pads[2]), static_cast<int32_t>(pads[3])};
  const std::string auto_pad = a.s("auto_pad");
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    const bool upper = auto_pad == "SAME_UPPER";
    std::tie(node.padding.top, node.padding.bottom) =
        same_padding(xd.h, node.filter_h, node.stride_h, 1, upper);
    std::tie(node.padding.left, node.padding.right) =
        same_padding(xd.w, node.filter_w, node.stride_w, 1, upper);
  } else if (auto_pad == "VALID") {
    node.padding = {0, 0, 0, 0};
  } else if (!auto_pad.empty() && auto_pad != "NOTSET") {
    return fail("auto_pad=" + auto_pad + ", supported: NOTSET, VALID, SAME_UPPER, SAME_LOWER");
  }
  const int32_t oh = kernels::conv_output_extent(xd.h, node.filter_h, node.stride_h, 1,
                                                 node.padding.top, node.padding.bottom);
  const int32_t ow = kernels::conv_output_extent(xd.w, node.filter_w, node.stride_w, 1,
                                                 node.padding.left, node.padding.right);
  node.outputs = {output(n, {xd.n, oh, ow, xd.c}, {xd.n, xd.c, oh, ow})};
  return std::nullopt;
}

// GlobalAveragePool, ReduceMean: reads its activation input x (c), fills ctx.node.
std::optional<CompileError> Importer::import_mean(const onnx::NodeProto& n, NodeContext& ctx) {
  auto& [op, a, label, fail, x, xd, xs, node] = ctx;
  if (op == "ReduceMean") {
    auto axes = a.ints("axes", {});
    std::sort(axes.begin(), axes.end());
    const bool spatial =
        xs.size() == 4
            ? (axes == std::vector<int64_t>{2, 3} || axes == std::vector<int64_t>{-2, -1})
            : xs.size() == 3 &&
                  (axes == std::vector<int64_t>{2} || axes == std::vector<int64_t>{-1});
    if (!spatial) return fail("axes must be the spatial ones (2, 3; or 2 of a 1-D signal)");
  }
  node.type = OpType::kMean;
  const bool keep = op == "GlobalAveragePool" || a.i("keepdims", 1) != 0;
  node.outputs = {
      output(n, {xd.n, 1, 1, xd.c},
             keep ? std::vector<int64_t>{xd.n, xd.c, 1, 1} : std::vector<int64_t>{xd.n, xd.c})};
  return std::nullopt;
}

// Squeeze, Unsqueeze: of axes of extent 1.
std::optional<CompileError> Importer::import_squeeze(const onnx::NodeProto& n, NodeContext& ctx) {
  auto t = squeezed(n, ctx.xs);
  if (!t) return ctx.fail(t.error().message);
  return reshape_to(n, ctx, *t);
}

// Transpose of an activation: only one that moves nothing but axes of extent 1 (the
// elements keep their order), which is a reshape.
std::optional<CompileError> Importer::import_transpose(const onnx::NodeProto& n, NodeContext& ctx) {
  const auto& xs = ctx.xs;
  std::vector<int64_t> perm = ctx.a.ints("perm", {});
  if (perm.empty()) {
    for (size_t d = xs.size(); d-- > 0;) perm.push_back(static_cast<int64_t>(d));
  }
  std::vector<int64_t> target, moved;
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(xs.size())) return ctx.fail("perm out of range");
    target.push_back(xs[static_cast<size_t>(p)]);
    if (xs[static_cast<size_t>(p)] != 1) moved.push_back(p);
  }
  if (perm.size() != xs.size() || !std::is_sorted(moved.begin(), moved.end())) {
    return ctx.fail(
        "this perm reorders the elements of an activation; supported: a Transpose "
        "of constants, or one that moves only axes of extent 1");
  }
  return reshape_to(n, ctx, target);
}

std::optional<CompileError> Importer::import_flatten(const onnx::NodeProto& n, NodeContext& ctx) {
  if (ctx.a.i("axis", 1) != 1) return ctx.fail("axis must be 1");
  return reshape_to(n, ctx, {ctx.xs.empty() ? 1 : ctx.xs[0], ctx.xd.elements() / ctx.xd.n});
}

// Reshape to a constant shape: -1 (once) inferred, 0 copies x's extent.
std::optional<CompileError> Importer::import_reshape(const onnx::NodeProto& n, NodeContext& ctx) {
  const auto& xs = ctx.xs;
  const Raw* s = constant(n.input(1));
  if (!s) return ctx.fail("the shape must be a constant");
  std::vector<int64_t> target;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s->values.size(); ++i) {
    const float f = s->values[i];
    if (!(f >= -1.0f && f <= static_cast<float>(kMaxExtent)) || (f == 0.0f && i >= xs.size()) ||
        (f == -1.0f && infer >= 0)) {
      return ctx.fail("shape entry " + std::to_string(f) + " is not -1 (once), 0 or 1.." +
                      std::to_string(kMaxExtent));
    }
    int64_t v = static_cast<int64_t>(f);
    if (v == 0) v = xs[i];
    if (v == -1) {
      infer = static_cast<int64_t>(i);
    } else {
      known *= v;
      if (known > onnx_import_detail::kMaxConstantElements) return ctx.fail("shape too large");
    }
    target.push_back(v);
  }
  if (infer >= 0) target[static_cast<size_t>(infer)] = known > 0 ? ctx.xd.elements() / known : 0;
  return reshape_to(n, ctx, target);
}

std::optional<CompileError> Importer::reshape_to(const onnx::NodeProto& n, NodeContext& ctx,
                                                 const std::vector<int64_t>& target) {
  auto& [op, a, label, fail, x, xd, xs, node] = ctx;
  // A reshape keeps NCHW element order; NHWC storage agrees when channels or the
  // spatial extent is 1 on both sides.
  // So does any reshape that keeps the batch and the channels (it only regroups space:
  // Squeeze/Unsqueeze of spatial axes, a Conv1D's [N, C, L] as [N, C, 1, L]).
  auto order_free = [](const std::vector<int64_t>& s) {
    return s.size() < 3 || s[1] == 1 || s[2] * (s.size() == 4 ? s[3] : 1) == 1;
  };
  const bool keeps_channels =
      xs.size() >= 3 && target.size() >= 3 && xs[0] == target[0] && xs[1] == target[1];
  const bool feeds_fc_only = target.size() == 2;
  if (!keeps_channels && !order_free(xs) && !feeds_fc_only) {
    return fail("reshapes a tensor with channels and space; supported only before Gemm/MatMul");
  }
  if (!keeps_channels && !order_free(target))
    return fail("reshapes into a tensor with channels and space; unsupported");
  auto dims = nhwc(target, label);
  if (!dims) return dims.error();
  if (dims->elements() != xd.elements()) return fail("changes the number of elements");
  node.type = OpType::kReshape;
  node.outputs = {output(n, *dims, target)};
  if (!keeps_channels && !order_free(xs)) flattened_from_[node.outputs[0]] = xs;
  return std::nullopt;
}

// Concat: reads its activation input x (c), fills ctx.node.
std::optional<CompileError> Importer::import_concat(const onnx::NodeProto& n, NodeContext& ctx) {
  auto& [op, a, label, fail, x, xd, xs, node] = ctx;
  const auto rank = static_cast<int64_t>(xs.size());
  int64_t axis = a.i("axis", 1);
  if (axis < 0) axis += rank;
  // The NCHW axis as an NHWC one (rank 2 is [N, C]; rank 3 is [N, C, W]).
  int32_t nhwc_axis = -1;
  if (rank == 4) nhwc_axis = axis == 1 ? 3 : axis == 2 ? 1 : axis == 3 ? 2 : -1;
  if (rank == 3) nhwc_axis = axis == 1 ? 3 : axis == 2 ? 2 : -1;
  if (rank == 2) nhwc_axis = axis == 1 ? 3 : -1;
  if (nhwc_axis < 0) {
    return fail("axis " + std::to_string(axis) + ", supported: channels or space (not batch)");
  }
  std::vector<int64_t> shape = xs;
  for (int i = 1; i < n.input_size(); ++i) {
    if (constant(n.input(i))) return fail("a constant input is not supported");
    auto y = activation(n.input(i), label);
    if (!y) return y.error();
    const auto& ys = nchw_[*y];
    for (int64_t d = 0; d < rank; ++d) {
      if (ys.size() != xs.size() ||
          (d != axis && ys[static_cast<size_t>(d)] != xs[static_cast<size_t>(d)])) {
        return fail("inputs differ in shape outside the axis");
      }
    }
    shape[static_cast<size_t>(axis)] += ys[static_cast<size_t>(axis)];
    node.inputs.push_back(*y);
  }
  auto dims = nhwc(shape, label);
  if (!dims) return dims.error();
  node.type = OpType::kConcatenation;
  node.axis = nhwc_axis;
  node.outputs = {output(n, *dims, shape)};
  return std::nullopt;
}

// Pad: reads its activation input x (c), fills ctx.node.
std::optional<CompileError> Importer::import_pad(const onnx::NodeProto& n, NodeContext& ctx) {
  auto& [op, a, label, fail, x, xd, xs, node] = ctx;
  if (!a.s("mode").empty() && a.s("mode") != "constant") {
    return fail("mode=" + a.s("mode") + ", supported: constant");
  }
  std::vector<int64_t> pads = a.ints("pads", {});
  if (n.input_size() > 1 && !n.input(1).empty()) {
    const Raw* p = constant(n.input(1));
    if (!p) return fail("pads must be a constant");
    pads.clear();
    for (float v : p->values) pads.push_back(onnx_import_detail::as_int(v));
  }
  if (n.input_size() > 3 && !n.input(3).empty()) return fail("the axes input is not supported");
  float value = a.f("value", 0.0f);
  if (n.input_size() > 2 && !n.input(2).empty()) {
    const Raw* v = constant(n.input(2));
    if (!v || v->values.size() != 1) return fail("the constant value must be a constant scalar");
    value = v->values[0];
  }
  if (value != 0.0f) {
    return fail("constant value " + std::to_string(value) + ", supported: 0");
  }
  const size_t rank = xs.size();
  if (pads.size() != 2 * rank) {
    return fail(std::to_string(pads.size()) + " pads for rank " + std::to_string(rank));
  }
  for (int64_t v : pads) {
    if (v < 0) return fail("negative pads (cropping) are not supported");
    if (v > kMaxAttribute) return fail("pads above " + std::to_string(kMaxAttribute));
  }
  if (pads[0] != 0 || pads[rank] != 0) return fail("padding the batch is not supported");
  std::vector<int64_t> shape = xs;
  for (size_t d = 0; d < rank; ++d) shape[d] += pads[d] + pads[rank + d];
  // NCHW amounts to NHWC ones: [n, h, w, c].
  auto at = [&](size_t d) { return static_cast<int32_t>(pads[d]); };
  if (rank == 4) {
    const int32_t before[4] = {at(0), at(2), at(3), at(1)};
    const int32_t after[4] = {at(4), at(6), at(7), at(5)};
    std::copy(before, before + 4, node.pad_before);
    std::copy(after, after + 4, node.pad_after);
  } else if (rank == 2) {
    node.pad_before[3] = at(1);
    node.pad_after[3] = at(3);
  } else {
    return fail("rank " + std::to_string(rank) + ", supported: 2 or 4");
  }
  auto dims = nhwc(shape, label);
  if (!dims) return dims.error();
  node.type = OpType::kPad;
  node.outputs = {output(n, *dims, shape)};
  return std::nullopt;
}

// Softmax: reads its activation input x (c), fills ctx.node.
std::optional<CompileError> Importer::import_softmax(const onnx::NodeProto& n, NodeContext& ctx) {
  auto& [op, a, label, fail, x, xd, xs, node] = ctx;
  const int64_t axis = a.i("axis", -1);
  if (!(axis == -1 || axis == static_cast<int64_t>(xs.size()) - 1 ||
        (xs.size() == 2 && axis == 1))) {
    return fail("axis must be the last one");
  }
  node.type = OpType::kSoftmax;
  node.outputs = {output(n, xd, xs)};
  return std::nullopt;
}

// Sigmoid, Tanh: reads its activation input x (c), fills ctx.node.
std::optional<CompileError> Importer::import_sigmoid_tanh(const onnx::NodeProto& n,
                                                          NodeContext& ctx) {
  auto& [op, a, label, fail, x, xd, xs, node] = ctx;
  node.type = op == "Sigmoid" ? OpType::kLogistic : OpType::kTanh;
  node.outputs = {output(n, xd, xs)};
  return std::nullopt;
}

// One function per ONNX operator (names may share one). reads_x: the function gets its
// first input as an activation (ctx.x, ctx.xd, ctx.xs) and a Node to fill, which import_node
// then adds; otherwise it reads its inputs itself. Adding an operator: a function here,
// a line in this table, its tests (docs/optimizer.md, "Adding an operator").
const Importer::OnnxOperator Importer::kOperators[] = {
    {"Constant", &Importer::import_constant, false},
    {"Shape", &Importer::import_shape, false},
    {"QuantizeLinear", &Importer::import_qdq, false},
    {"DequantizeLinear", &Importer::import_qdq, false},
    {"Add", &Importer::import_binary, false},
    {"Sub", &Importer::import_binary, false},
    {"Mul", &Importer::import_binary, false},
    {"Div", &Importer::import_binary, false},
    {"BatchNormalization", &Importer::import_batch_norm, false},
    {"Identity", &Importer::import_identity, false},
    {"Dropout", &Importer::import_identity, false},
    {"Conv", &Importer::import_conv, true},
    {"Gemm", &Importer::import_gemm, true},
    {"MatMul", &Importer::import_gemm, true},
    {"Relu", &Importer::import_clip, true},
    {"Clip", &Importer::import_clip, true},
    {"MaxPool", &Importer::import_pool, true},
    {"AveragePool", &Importer::import_pool, true},
    {"GlobalAveragePool", &Importer::import_mean, true},
    {"ReduceMean", &Importer::import_mean, true},
    {"Flatten", &Importer::import_flatten, true},
    {"Reshape", &Importer::import_reshape, true},
    {"Transpose", &Importer::import_transpose, true},
    {"Squeeze", &Importer::import_squeeze, true},
    {"Unsqueeze", &Importer::import_squeeze, true},
    {"Concat", &Importer::import_concat, true},
    {"Pad", &Importer::import_pad, true},
    {"Softmax", &Importer::import_softmax, true},
    {"Sigmoid", &Importer::import_sigmoid_tanh, true},
    {"Tanh", &Importer::import_sigmoid_tanh, true},
};

const Importer::OnnxOperator* Importer::find_operator(const std::string& op) {
  for (const auto& e : kOperators)
    if (op == e.name) return &e;
  return nullptr;
}

std::optional<CompileError> Importer::import_node(const onnx::NodeProto& n,
                                                  const std::string& label) {
  const std::string& op = n.op_type();
  Attrs a(n);
  NodeContext ctx{op, a, label,
                  [&label](const std::string& why) { return CompileError{label + ": " + why}; }};
  if (n.output_size() < 1) return ctx.fail("has no output");
  const OnnxOperator* e = find_operator(op);
  if (op == "Constant") return (this->*e->fn)(n, ctx);
  // Anything computed from constants alone is a constant.
  {
    std::vector<const Raw*> inputs;
    bool all_constant = n.input_size() > 0;
    for (const auto& name : n.input()) {
      const Raw* k = name.empty() ? nullptr : constant(name);
      if (!name.empty() && !k) all_constant = false;
      inputs.push_back(k);
    }
    if (all_constant) {
      if (auto folded = fold_constant(n, inputs)) {
        if (!*folded) return ctx.fail("folding constants: " + folded->error().message);
        constants_[n.output(0)] = std::move(**folded);
        return std::nullopt;
      }
    }
  }
  if (!e) {
    std::string names;
    for (const auto& k : kOperators) names += std::string(names.empty() ? "" : ", ") + k.name;
    return ctx.fail("operator '" + op + "' is not supported; supported: " + names +
                    " (Transpose: of constants, or moving only axes of extent 1), and operators "
                    "on constants alone (folded)");
  }
  if (e->reads_x) {
    auto xr = activation(n.input(0), label);
    if (!xr) return xr.error();
    ctx.x = *xr;
    ctx.xd = graph_.tensors[static_cast<size_t>(ctx.x)].dims;
    ctx.xs = nchw_[ctx.x];
    ctx.node.name = label;
    ctx.node.inputs = {ctx.x};
  }
  if (auto err = (this->*e->fn)(n, ctx)) return err;
  if (e->reads_x) graph_.nodes.push_back(std::move(ctx.node));
  return std::nullopt;
}

}  // namespace

const char* to_string(OpType t) {
  switch (t) {
    case OpType::kConv2D:
      return "Conv2D";
    case OpType::kDepthwiseConv2D:
      return "DepthwiseConv2D";
    case OpType::kFullyConnected:
      return "FullyConnected";
    case OpType::kAdd:
      return "Add";
    case OpType::kMul:
      return "Mul";
    case OpType::kAveragePool2D:
      return "AveragePool2D";
    case OpType::kMaxPool2D:
      return "MaxPool2D";
    case OpType::kMean:
      return "Mean";
    case OpType::kConcatenation:
      return "Concatenation";
    case OpType::kReshape:
      return "Reshape";
    case OpType::kPad:
      return "Pad";
    case OpType::kSoftmax:
      return "Softmax";
    case OpType::kLogistic:
      return "Logistic";
    case OpType::kTanh:
      return "Tanh";
    case OpType::kClamp:
      return "Clamp";
    case OpType::kHardSwish:
      return "HardSwish";
    case OpType::kTranspose:
      return "Transpose";
    case OpType::kStridedSlice:
      return "StridedSlice";
  }
  return "?";
}

namespace {

constexpr int kMaxTensorRank = 8;

// The dims of every stored tensor (initializers, Constant values) and every declared
// type, bounded before libonnx's checker or shape inference multiplies them: at most 8
// of them, none negative, their product at most kMaxConstantElements (no overflow).
std::optional<CompileError> check_dims(const onnx::GraphProto& g) {
  using onnx_import_detail::kMaxConstantElements;
  auto tensor = [](const onnx::TensorProto& t,
                   const std::string& what) -> std::optional<CompileError> {
    if (t.dims_size() > kMaxTensorRank) {
      return CompileError{what + " '" + t.name() + "' has " + std::to_string(t.dims_size()) +
                          " dimensions, at most " + std::to_string(kMaxTensorRank)};
    }
    int64_t n = 1;
    for (int64_t d : t.dims()) {
      if (d < 0 || (d > 0 && n > kMaxConstantElements / d)) {
        return CompileError{what + " '" + t.name() +
                            "' has dims whose product is negative or over " +
                            std::to_string(kMaxConstantElements) + " elements"};
      }
      n *= d;
    }
    return std::nullopt;
  };
  for (const auto& t : g.initializer()) {
    if (auto e = tensor(t, "initializer")) return e;
  }
  for (const auto& n : g.node()) {
    for (const auto& a : n.attribute()) {
      if (a.has_t()) {
        if (auto e = tensor(a.t(), "node '" + n.op_type() + "' tensor attribute")) return e;
      }
    }
  }
  for (const auto* list : {&g.input(), &g.output(), &g.value_info()}) {
    for (const auto& v : *list) {
      if (v.type().tensor_type().shape().dim_size() > kMaxTensorRank) {
        return CompileError{"value '" + v.name() + "' has " +
                            std::to_string(v.type().tensor_type().shape().dim_size()) +
                            " dimensions, at most " + std::to_string(kMaxTensorRank)};
      }
    }
  }
  return std::nullopt;
}

}  // namespace

Result<Graph> import_onnx(const std::string& bytes) {
  onnx::ModelProto model;
  if (bytes.empty() || !model.ParseFromString(bytes)) {
    return CompileError{"the file is not an ONNX model (protobuf parse failed; truncated?)"};
  }
  if (auto e = check_dims(model.graph())) return *e;
  if (auto e = onnx_import_detail::normalize_opset(model)) return *e;
  Importer importer;
  return importer.run(model);
}

}  // namespace tinyfleet::optimizer_service
