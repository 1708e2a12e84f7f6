#include "onnx_opsets.h"

#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>
#include <onnx/version_converter/convert.h>

#include <algorithm>
#include <set>
#include <string>

#include "onnx_constants.h"

namespace tinyfleet::optimizer_service::onnx_import_detail {

namespace {

constexpr int64_t kOldest = 7, kConvertTo = 11, kNewestRead = 17, kNewest = 21;

bool default_domain(const std::string& d) { return d.empty() || d == "ai.onnx"; }

// Operators the importer supports whose opset 18-21 versions mean, for the float and
// int8 tensors it reads, what their opset-17 versions mean (after lower_node).
const std::set<std::string>& same_since_17() {
  static const std::set<std::string> ops = {"Add",
                                            "AveragePool",
                                            "BatchNormalization",
                                            "Cast",
                                            "Clip",
                                            "Concat",
                                            "Constant",
                                            "Conv",
                                            "DequantizeLinear",
                                            "Div",
                                            "Dropout",
                                            "Flatten",
                                            "Gemm",
                                            "GlobalAveragePool",
                                            "Identity",
                                            "MatMul",
                                            "MaxPool",
                                            "Mul",
                                            "Pad",
                                            "QuantizeLinear",
                                            "ReduceMean",
                                            "Relu",
                                            "Reshape",
                                            "Shape",
                                            "Sigmoid",
                                            "Softmax",
                                            "Squeeze",
                                            "Sub",
                                            "Tanh",
                                            "Transpose",
                                            "Unsqueeze"};
  return ops;
}

const onnx::AttributeProto* find_attr(const onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

void drop_attr(onnx::NodeProto& n, const std::string& name) {
  auto* attrs = n.mutable_attribute();
  for (int i = 0; i < attrs->size(); ++i) {
    if (attrs->Get(i).name() == name) {
      attrs->DeleteSubrange(i, 1);
      return;
    }
  }
}

// A constant tensor by name: an initializer or the value of a Constant node.
const onnx::TensorProto* constant_tensor(const onnx::GraphProto& g, const std::string& name) {
  for (const auto& t : g.initializer())
    if (t.name() == name) return &t;
  for (const auto& n : g.node()) {
    if (n.op_type() != "Constant" || n.output_size() < 1 || n.output(0) != name) continue;
    if (const auto* v = find_attr(n, "value")) return &v->t();
  }
  return nullptr;
}

// One node of opset 18-21 in its opset-17 form, or why it cannot be.
std::optional<std::string> lower_node(const onnx::GraphProto& g, onnx::NodeProto& n) {
  const std::string& op = n.op_type();
  if (!same_since_17().count(op)) return std::string("is not supported at this opset");
  if (op == "ReduceMean") {  // 18: axes moved from an attribute to an optional input
    const auto* noop = find_attr(n, "noop_with_empty_axes");
    const bool has_axes = n.input_size() > 1 && !n.input(1).empty();
    if (noop && noop->i() != 0 && !has_axes) return std::string("noop_with_empty_axes=1");
    drop_attr(n, "noop_with_empty_axes");
    if (has_axes) {
      const onnx::TensorProto* t = constant_tensor(g, n.input(1));
      if (!t) return std::string("the axes input must be a constant");
      auto raw = to_raw(*t);
      if (!raw) return raw.error().message;
      auto* a = n.add_attribute();
      a->set_name("axes");
      a->set_type(onnx::AttributeProto::INTS);
      for (float v : raw->values) a->add_ints(as_int(v));
      n.mutable_input()->DeleteSubrange(1, n.input_size() - 1);
    }
  } else if (op == "Pad") {  // 18: an axes input; 19: mode wrap
    if (n.input_size() > 3 && !n.input(3).empty()) {
      return std::string("the axes input is not supported");
    }
    if (n.input_size() > 3) n.mutable_input()->DeleteSubrange(3, n.input_size() - 3);
    const auto* mode = find_attr(n, "mode");
    if (mode && mode->s() == "wrap") return std::string("mode=wrap is not supported");
  } else if (op == "AveragePool") {  // 19: dilations
    if (const auto* d = find_attr(n, "dilations")) {
      for (int64_t v : d->ints())
        if (v != 1) return std::string("dilations other than 1 are not supported");
      drop_attr(n, "dilations");
    }
  } else if (op == "QuantizeLinear" || op == "DequantizeLinear") {  // 19: saturate; 21: blocks
    if (const auto* b = find_attr(n, "block_size"); b && b->i() != 0) {
      return std::string("blocked quantization (block_size) is not supported");
    }
    if (const auto* t = find_attr(n, "output_dtype"); t && t->i() != 0) {
      return std::string("output_dtype is not supported; give a zero point of the type");
    }
    drop_attr(n, "block_size");
    drop_attr(n, "output_dtype");
    drop_attr(n, "saturate");
  } else if (op == "Cast") {  // 19: saturate (float8 only)
    drop_attr(n, "saturate");
  }
  return std::nullopt;
}

std::optional<CompileError> lower_to_17(onnx::ModelProto& model, int64_t opset) {
  onnx::GraphProto* g = model.mutable_graph();
  if (model.functions_size() > 0) {
    return CompileError{"opset " + std::to_string(opset) +
                        ": model-local functions are not supported"};
  }
  for (int i = 0; i < g->node_size(); ++i) {
    onnx::NodeProto& n = *g->mutable_node(i);
    if (!default_domain(n.domain())) continue;  // the checker judges other domains
    if (auto why = lower_node(*g, n)) {
      return CompileError{"node " + std::to_string(i) + " '" + n.op_type() + "'" +
                          (n.name().empty() ? "" : " (" + n.name() + ")") + ": opset " +
                          std::to_string(opset) + ": " + *why};
    }
  }
  for (auto& o : *model.mutable_opset_import()) {
    if (default_domain(o.domain())) o.set_version(kNewestRead);
  }
  // IR 9 and 10 add float8 and 4-bit types, which the importer refuses where it meets them.
  model.set_ir_version(std::min<int64_t>(model.ir_version(), onnx::IR_VERSION));
  return std::nullopt;
}

// libonnx 1.12's Pad 10->11 adapter reads Pad's optional `value` attribute as required:
// write its default (0) where the model leaves it out.
void spell_out_converter_defaults(onnx::ModelProto& model) {
  for (auto& n : *model.mutable_graph()->mutable_node()) {
    if (!default_domain(n.domain()) || n.op_type() != "Pad" || find_attr(n, "value")) continue;
    auto* a = n.add_attribute();
    a->set_name("value");
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(0.0f);
  }
}

// What libonnx's version converter and importer assume without checking (they crash
// otherwise): every name read is produced before (graph input, initializer or an earlier
// node), produced once, every graph output is produced, and no node holds a subgraph.
std::optional<CompileError> check_structure(const onnx::GraphProto& g) {
  std::set<std::string> known;
  for (const auto& t : g.initializer()) known.insert(t.name());
  for (const auto& in : g.input()) known.insert(in.name());
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& n = g.node(i);
    const std::string label = "node " + std::to_string(i) + " '" + n.op_type() + "'";
    for (const auto& a : n.attribute()) {
      if (a.has_g() || a.graphs_size() > 0 || a.type() == onnx::AttributeProto::GRAPH ||
          a.type() == onnx::AttributeProto::GRAPHS) {
        return CompileError{label + ": subgraphs (control flow) are not supported"};
      }
    }
    // libonnx's shape inference divides by these.
    for (const auto& a : n.attribute()) {
      if (a.name() != "strides" && a.name() != "dilations" && a.name() != "kernel_shape") continue;
      for (int64_t v : a.ints()) {
        if (v < 1) return CompileError{label + ": " + a.name() + " must be positive"};
      }
    }
    for (const auto& name : n.input()) {
      if (!name.empty() && !known.count(name)) {
        return CompileError{label + ": input '" + name + "' is not produced before it"};
      }
    }
    for (const auto& name : n.output()) {
      if (name.empty()) continue;
      if (!known.insert(name).second) {
        return CompileError{label + ": output '" + name + "' is produced twice"};
      }
    }
  }
  for (const auto& out : g.output()) {
    if (!known.count(out.name())) {
      return CompileError{"graph output '" + out.name() + "' is not produced"};
    }
  }
  return std::nullopt;
}

}  // namespace

int64_t model_opset(const onnx::ModelProto& model) {
  int64_t opset = 0;
  for (const auto& o : model.opset_import()) {
    if (default_domain(o.domain())) opset = o.version();
  }
  return opset;
}

std::optional<CompileError> normalize_opset(onnx::ModelProto& model) {
  const int64_t opset = model_opset(model);
  if (opset < kOldest || opset > kNewest) {
    return CompileError{"opset " + std::to_string(opset) + ", supported: 7 to 21"};
  }
  if (auto e = check_structure(model.graph())) return e;
  if (opset > kNewestRead) {
    if (auto e = lower_to_17(model, opset)) return e;
  }
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    return CompileError{std::string("the ONNX checker refused the model: ") + e.what()};
  }
  if (opset < kConvertTo) {
    spell_out_converter_defaults(model);
    try {
      model = onnx::version_conversion::ConvertVersion(model, static_cast<int>(kConvertTo));
    } catch (const std::exception& e) {
      return CompileError{"opset " + std::to_string(opset) + ": the ONNX version converter (to " +
                          std::to_string(kConvertTo) + ") failed: " + e.what()};
    }
    if (model_opset(model) != kConvertTo) {
      return CompileError{"opset " + std::to_string(opset) +
                          ": the ONNX version converter did not reach opset " +
                          std::to_string(kConvertTo)};
    }
  }
  try {
    onnx::shape_inference::InferShapes(model);
  } catch (const std::exception& e) {
    return CompileError{std::string("ONNX shape inference refused the model: ") + e.what()};
  }
  return std::nullopt;
}

}  // namespace tinyfleet::optimizer_service::onnx_import_detail
