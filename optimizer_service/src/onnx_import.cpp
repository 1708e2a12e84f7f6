#include "tinyfleet/optimizer_service/onnx_import.h"

#include "onnx_constants.h"
#include "tinyfleet/kernels/ops/conv2d.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>

namespace tinyfleet::optimizer_service {

namespace {

using kernels::Dims;

using onnx_import_detail::fold_constant;
using onnx_import_detail::Raw;
using onnx_import_detail::to_raw;

// NCHW (or N x K) shapes to NHWC dims.
Result<Dims> nhwc(const std::vector<int64_t>& s, const std::string& what) {
  if (s.size() == 4)
    return Dims{static_cast<int32_t>(s[0]), static_cast<int32_t>(s[2]), static_cast<int32_t>(s[3]),
                static_cast<int32_t>(s[1])};
  if (s.size() == 2) return Dims{static_cast<int32_t>(s[0]), 1, 1, static_cast<int32_t>(s[1])};
  if (s.size() == 3)
    return Dims{static_cast<int32_t>(s[0]), 1, static_cast<int32_t>(s[2]),
                static_cast<int32_t>(s[1])};
  return CompileError{what + " has rank " + std::to_string(s.size()) + ", supported: 2 to 4"};
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
    for (const auto& in : g.input()) {
      if (constants_.count(in.name())) continue;
      std::vector<int64_t> shape;
      for (const auto& d : in.type().tensor_type().shape().dim()) {
        shape.push_back(d.has_dim_value() ? d.dim_value() : 1);  // dynamic batch -> 1
      }
      auto dims = nhwc(shape, "graph input '" + in.name() + "'");
      if (!dims) return dims.error();
      const int t = graph_.add_tensor({in.name(), *dims, false, {}});
      names_[in.name()] = t;
      nchw_[t] = shape;
      graph_.inputs.push_back(t);
    }
    int index = 0;
    for (const auto& node : g.node()) {
      const std::string label = "node " + std::to_string(index++) + " '" + node.op_type() + "'" +
                                (node.name().empty() ? "" : " (" + node.name() + ")");
      if (auto e = import_node(node, label)) return *e;
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
  std::optional<CompileError> import_node(const onnx::NodeProto& n, const std::string& label);
  std::optional<CompileError> import_qdq(const onnx::NodeProto& n, const std::string& label);

  // An activation input by name (constants are not activations here).
  Result<int> activation(const std::string& name, const std::string& label) {
    auto it = names_.find(name);
    if (it == names_.end()) {
      return CompileError{label + ": input '" + name + "' is not an activation produced earlier"};
    }
    return it->second;
  }
  const Raw* constant(const std::string& name) const {
    auto it = constants_.find(name);
    return it == constants_.end() ? nullptr : &it->second;
  }
  int output(const onnx::NodeProto& n, const Dims& d, const std::vector<int64_t>& nchw_shape) {
    const int t = graph_.add_tensor({n.output(0), d, false, {}});
    names_[n.output(0)] = t;
    nchw_[t] = nchw_shape;
    return t;
  }
  int add_constant(const std::string& name, Dims d, std::vector<float> v) {
    return graph_.add_tensor({name, d, true, std::move(v)});
  }

  Graph graph_;
  std::map<std::string, Raw> constants_;
  std::map<std::string, int> names_;
  std::map<int, std::vector<int64_t>> nchw_;            // the ONNX shape of each activation
  std::map<int, std::vector<int64_t>> flattened_from_;  // NCHW shape before a Flatten
  struct Quantized {
    int tensor;
    kernels::TensorQuant quant;
  };
  std::map<std::string, Quantized> quantized_;  // QuantizeLinear outputs of activations
};

std::optional<CompileError> Importer::import_qdq(const onnx::NodeProto& n,
                                                 const std::string& label) {
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
  names_[n.output(0)] = it->second.tensor;
  return std::nullopt;
}

std::optional<CompileError> Importer::import_node(const onnx::NodeProto& n,
                                                  const std::string& label) {
  const std::string& op = n.op_type();
  Attrs a(n);
  auto fail = [&](const std::string& why) { return CompileError{label + ": " + why}; };
  if (n.output_size() < 1) return fail("has no output");

  if (op == "Constant") {
    auto it = a.by_name.find("value");
    if (it == a.by_name.end()) return fail("supported only with a 'value' tensor");
    auto raw = to_raw(it->second->t());
    if (!raw) return fail(raw.error().message);
    constants_[n.output(0)] = std::move(*raw);
    return std::nullopt;
  }
  // Anything computed from constants alone is a constant.
  {
    std::vector<const Raw*> inputs;
    bool all_constant = n.input_size() > 0;
    for (const auto& name : n.input()) {
      const Raw* c = name.empty() ? nullptr : constant(name);
      if (!name.empty() && !c) all_constant = false;
      inputs.push_back(c);
    }
    if (all_constant) {
      if (auto folded = fold_constant(n, inputs)) {
        if (!*folded) return fail("folding constants: " + folded->error().message);
        constants_[n.output(0)] = std::move(**folded);
        return std::nullopt;
      }
    }
  }
  if (op == "Shape") {  // of an activation: its static shape
    auto x = activation(n.input(0), label);
    if (!x) return x.error();
    Raw r;
    for (int64_t d : nchw_[*x]) r.values.push_back(static_cast<float>(d));
    r.shape = {static_cast<int64_t>(r.values.size())};
    r.type = onnx::TensorProto::INT64;
    constants_[n.output(0)] = std::move(r);
    return std::nullopt;
  }
  if (op == "QuantizeLinear" || op == "DequantizeLinear") return import_qdq(n, label);
  if (op == "Identity" || op == "Dropout") {  // of an activation (of constants: folded)
    auto x = activation(n.input(0), label);
    if (!x) return x.error();
    names_[n.output(0)] = *x;
    return std::nullopt;
  }

  auto xr = activation(n.input(0), label);
  if (!xr) return xr.error();
  const int x = *xr;
  const Dims xd = graph_.tensors[static_cast<size_t>(x)].dims;
  const std::vector<int64_t> xs = nchw_[x];
  Node node;
  node.name = label;
  node.inputs = {x};

  if (op == "Conv") {
    if (!a.s("auto_pad").empty() && a.s("auto_pad") != "NOTSET" && a.s("auto_pad") != "VALID") {
      return fail("auto_pad=" + a.s("auto_pad") + ", supported: NOTSET, VALID (explicit pads)");
    }
    const Raw* w = constant(n.input(1));
    if (!w || w->shape.size() != 4) return fail("weights must be a constant 4-D tensor");
    const int64_t group = a.i("group", 1);
    const int64_t oc = w->shape[0], icg = w->shape[1], kh = w->shape[2], kw = w->shape[3];
    const auto strides = a.ints("strides", {1, 1});
    const auto dil = a.ints("dilations", {1, 1});
    const auto pads = a.ints("pads", {0, 0, 0, 0});  // top, left, bottom, right
    if (strides.size() != 2 || dil.size() != 2 || pads.size() != 4) {
      return fail("only 2-D convolutions are supported");
    }
    node.stride_h = static_cast<int32_t>(strides[0]);
    node.stride_w = static_cast<int32_t>(strides[1]);
    node.dilation_h = static_cast<int32_t>(dil[0]);
    node.dilation_w = static_cast<int32_t>(dil[1]);
    node.padding = {static_cast<int32_t>(pads[0]), static_cast<int32_t>(pads[1]),
                    static_cast<int32_t>(pads[2]), static_cast<int32_t>(pads[3])};
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
    node.outputs = {output(n, {xd.n, oh, ow, static_cast<int32_t>(oc)}, {xd.n, oc, oh, ow})};
  } else if (op == "Gemm" || op == "MatMul") {
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
    const bool permute =
        src_shape.size() == 4 && src_shape[1] > 1 && src_shape[2] * src_shape[3] > 1;
    for (int64_t o = 0; o < out; ++o) {
      for (int64_t i = 0; i < in; ++i) {
        int64_t col = i;  // NHWC column
        if (permute) {    // ONNX column i is (c, h, w); NHWC column is (h, w, c)
          const int64_t C = src_shape[1], H = src_shape[2], W = src_shape[3];
          const int64_t c = i / (H * W), h = (i / W) % H, ww = i % W;
          col = (h * W + ww) * C + c;
        }
        wt[static_cast<size_t>(o * in + col)] = trans_b
                                                    ? w->values[static_cast<size_t>(o * in + i)]
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
  } else if (op == "Relu" || op == "Clip") {
    node.type = OpType::kClamp;
    node.activation.min = 0.0f;
    if (op == "Clip") {
      const Raw* lo = n.input_size() > 1 && !n.input(1).empty() ? constant(n.input(1)) : nullptr;
      const Raw* hi = n.input_size() > 2 && !n.input(2).empty() ? constant(n.input(2)) : nullptr;
      node.activation.min = lo ? lo->values.at(0) : a.f("min", -3.4e38f);
      node.activation.max = hi ? hi->values.at(0) : a.f("max", 3.4e38f);
    }
    node.outputs = {output(n, xd, xs)};
  } else if (op == "Add" || op == "Mul") {
    node.type = op == "Add" ? OpType::kAdd : OpType::kMul;
    if (const Raw* c = constant(n.input(1))) {
      if (c->values.size() != 1) return fail("a constant operand must be a scalar");
      node.inputs.push_back(add_constant(n.input(1), {1, 1, 1, 1}, c->values));
    } else {
      auto y = activation(n.input(1), label);
      if (!y) return y.error();
      const Dims yd = graph_.tensors[static_cast<size_t>(*y)].dims;
      if (yd.elements() != xd.elements())
        return fail("operands differ in shape; supported: same shape or a scalar");
      node.inputs.push_back(*y);
    }
    node.outputs = {output(n, xd, xs)};
  } else if (op == "MaxPool" || op == "AveragePool") {
    node.type = op == "MaxPool" ? OpType::kMaxPool2D : OpType::kAveragePool2D;
    const auto k = a.ints("kernel_shape", {});
    const auto strides = a.ints("strides", {1, 1});
    const auto pads = a.ints("pads", {0, 0, 0, 0});
    if (k.size() != 2 || a.i("ceil_mode", 0) != 0 ||
        (op == "AveragePool" && a.i("count_include_pad", 0) != 0 &&
         (pads[0] || pads[1] || pads[2] || pads[3]))) {
      return fail("supported: 2-D kernel, ceil_mode=0, count_include_pad=0");
    }
    node.filter_h = static_cast<int32_t>(k[0]);
    node.filter_w = static_cast<int32_t>(k[1]);
    node.stride_h = static_cast<int32_t>(strides[0]);
    node.stride_w = static_cast<int32_t>(strides[1]);
    node.padding = {static_cast<int32_t>(pads[0]), static_cast<int32_t>(pads[1]),
                    static_cast<int32_t>(pads[2]), static_cast<int32_t>(pads[3])};
    const int32_t oh = kernels::conv_output_extent(xd.h, node.filter_h, node.stride_h, 1,
                                                   node.padding.top, node.padding.bottom);
    const int32_t ow = kernels::conv_output_extent(xd.w, node.filter_w, node.stride_w, 1,
                                                   node.padding.left, node.padding.right);
    node.outputs = {output(n, {xd.n, oh, ow, xd.c}, {xd.n, xd.c, oh, ow})};
  } else if (op == "GlobalAveragePool" || op == "ReduceMean") {
    if (op == "ReduceMean") {
      const auto axes = a.ints("axes", {});
      if (axes != std::vector<int64_t>{2, 3} && axes != std::vector<int64_t>{-2, -1}) {
        return fail("axes must be the spatial ones (2, 3)");
      }
    }
    node.type = OpType::kMean;
    node.outputs = {output(n, {xd.n, 1, 1, xd.c}, {xd.n, xd.c, 1, 1})};
  } else if (op == "Flatten" || op == "Reshape" || op == "Transpose") {
    std::vector<int64_t> target;
    if (op == "Transpose") {
      // Of an activation: only a transpose that moves nothing but axes of extent 1 (the
      // elements keep their order), which is a reshape.
      std::vector<int64_t> perm = a.ints("perm", {});
      if (perm.empty()) {
        for (size_t d = xs.size(); d-- > 0;) perm.push_back(static_cast<int64_t>(d));
      }
      std::vector<int64_t> moved;
      for (int64_t p : perm) {
        if (p < 0 || p >= static_cast<int64_t>(xs.size())) return fail("perm out of range");
        target.push_back(xs[static_cast<size_t>(p)]);
        if (xs[static_cast<size_t>(p)] != 1) moved.push_back(p);
      }
      if (perm.size() != xs.size() || !std::is_sorted(moved.begin(), moved.end())) {
        return fail(
            "this perm reorders the elements of an activation; supported: a Transpose "
            "of constants, or one that moves only axes of extent 1");
      }
    } else if (op == "Flatten") {
      if (a.i("axis", 1) != 1) return fail("axis must be 1");
      target = {xs.empty() ? 1 : xs[0], xd.elements() / xd.n};
    } else {
      const Raw* s = constant(n.input(1));
      if (!s) return fail("the shape must be a constant");
      int64_t known = 1, infer = -1;
      for (size_t i = 0; i < s->values.size(); ++i) {
        int64_t v = static_cast<int64_t>(s->values[i]);
        if (v == 0 && i < xs.size()) v = xs[i];
        if (v == -1)
          infer = static_cast<int64_t>(i);
        else
          known *= v;
        target.push_back(v);
      }
      if (infer >= 0) target[static_cast<size_t>(infer)] = xd.elements() / known;
    }
    // A reshape keeps NCHW element order; NHWC storage agrees when channels or the
    // spatial extent is 1 on both sides.
    auto order_free = [](const std::vector<int64_t>& s) {
      return s.size() != 4 || s[1] == 1 || s[2] * s[3] == 1;
    };
    const bool feeds_fc_only = target.size() == 2;
    if (!order_free(xs) && !feeds_fc_only) {
      return fail("reshapes a tensor with channels and space; supported only before Gemm/MatMul");
    }
    if (!order_free(target))
      return fail("reshapes into a tensor with channels and space; unsupported");
    auto dims = nhwc(target, label);
    if (!dims) return dims.error();
    if (dims->elements() != xd.elements()) return fail("changes the number of elements");
    node.type = OpType::kReshape;
    node.outputs = {output(n, *dims, target)};
    if (!order_free(xs)) flattened_from_[node.outputs[0]] = xs;
  } else if (op == "Concat") {
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
  } else if (op == "Pad") {
    if (!a.s("mode").empty() && a.s("mode") != "constant") {
      return fail("mode=" + a.s("mode") + ", supported: constant");
    }
    std::vector<int64_t> pads = a.ints("pads", {});
    if (n.input_size() > 1 && !n.input(1).empty()) {
      const Raw* p = constant(n.input(1));
      if (!p) return fail("pads must be a constant");
      pads.clear();
      for (float v : p->values) pads.push_back(static_cast<int64_t>(v));
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
  } else if (op == "Softmax") {
    const int64_t axis = a.i("axis", -1);
    if (!(axis == -1 || axis == static_cast<int64_t>(xs.size()) - 1 ||
          (xs.size() == 2 && axis == 1))) {
      return fail("axis must be the last one");
    }
    node.type = OpType::kSoftmax;
    node.outputs = {output(n, xd, xs)};
  } else if (op == "Sigmoid" || op == "Tanh") {
    node.type = op == "Sigmoid" ? OpType::kLogistic : OpType::kTanh;
    node.outputs = {output(n, xd, xs)};
  } else if (op == "BatchNormalization") {
    const Raw* scale = constant(n.input(1));
    const Raw* bias = constant(n.input(2));
    const Raw* mean = constant(n.input(3));
    const Raw* var = constant(n.input(4));
    if (!scale || !bias || !mean || !var) return fail("parameters must be constants");
    // Folded into the producing convolution when it has no other consumer (a pass
    // would do the same; here it is done at import).
    if (graph_.nodes.empty() || graph_.nodes.back().outputs[0] != x ||
        (graph_.nodes.back().type != OpType::kConv2D &&
         graph_.nodes.back().type != OpType::kDepthwiseConv2D)) {
      return fail("supported only right after a Conv (folded into it)");
    }
    Node& conv = graph_.nodes.back();
    Tensor& w = graph_.tensors[static_cast<size_t>(conv.inputs[1])];
    Tensor& b = graph_.tensors[static_cast<size_t>(conv.inputs[2])];
    const float eps = a.f("epsilon", 1e-5f);
    const int32_t oc = b.dims.c;
    for (int32_t c = 0; c < oc; ++c) {
      const float k = scale->values[static_cast<size_t>(c)] /
                      std::sqrt(var->values[static_cast<size_t>(c)] + eps);
      b.data[static_cast<size_t>(c)] =
          (b.data[static_cast<size_t>(c)] - mean->values[static_cast<size_t>(c)]) * k +
          bias->values[static_cast<size_t>(c)];
      const int64_t per = static_cast<int64_t>(w.data.size()) / oc;
      for (int64_t i = 0; i < per; ++i) {
        // Conv2D weights are [oc, ...]; depthwise weights are [..., oc].
        const size_t at = conv.type == OpType::kConv2D ? static_cast<size_t>(c * per + i)
                                                       : static_cast<size_t>(i * oc + c);
        w.data[at] *= k;
      }
    }
    names_[n.output(0)] = x;
    return std::nullopt;
  } else {
    return fail(
        "operator '" + op +
        "' is not supported; supported: Conv, Gemm, MatMul, Relu, Clip, "
        "BatchNormalization, Add, Mul, AveragePool, MaxPool, GlobalAveragePool, ReduceMean, "
        "Flatten, Reshape, Concat, Pad, Softmax, Sigmoid, Tanh, Identity, Dropout, Constant, "
        "foldable Transpose, QuantizeLinear/DequantizeLinear (QDQ), and operators on "
        "constants alone (folded)");
  }
  graph_.nodes.push_back(std::move(node));
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
  }
  return "?";
}

Result<Graph> import_onnx(const std::string& bytes) {
  onnx::ModelProto model;
  if (bytes.empty() || !model.ParseFromString(bytes)) {
    return CompileError{"the file is not an ONNX model (protobuf parse failed; truncated?)"};
  }
  try {
    onnx::checker::check_model(model);
    onnx::shape_inference::InferShapes(model);
  } catch (const std::exception& e) {
    return CompileError{std::string("the ONNX checker refused the model: ") + e.what()};
  }
  int64_t opset = 0;
  for (const auto& o : model.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") opset = o.version();
  }
  if (opset < 11 || opset > 17) {
    return CompileError{"opset " + std::to_string(opset) + ", supported: 11 to 17"};
  }
  Importer importer;
  return importer.run(model);
}

}  // namespace tinyfleet::optimizer_service
