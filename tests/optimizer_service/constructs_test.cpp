// ONNX constructs as exporters write them, one small generated model each
// (tests/fixtures/scripts/make_onnx_constructs.py): the float execution matches the
// NumPy golden outputs within 1e-4 relative, and the int8 artifact agrees with float.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>

#include "tinyfleet/optimizer_service/compiler.h"
#include "tinyfleet/optimizer_service/float_executor.h"
#include "tinyfleet/optimizer_service/npz.h"
#include "tinyfleet/optimizer_service/onnx_import.h"
#include "tinyfleet/testing/environment.h"

using namespace tinyfleet::optimizer_service;
using tinyfleet::testing::fixture_path;

namespace {

std::string model_path(const std::string& name) {
  return fixture_path("models/constructs/" + name + ".onnx");
}

class Constructs : public ::testing::TestWithParam<std::string> {};

TEST_P(Constructs, FloatMatchesTheGoldenOutputs) {
  auto bytes = read_file(model_path(GetParam()));
  auto data = read_npz(fixture_path("models/constructs/" + GetParam() + ".npz"));
  ASSERT_TRUE(bytes && data);
  auto graph = import_onnx(*bytes);
  ASSERT_TRUE(graph) << graph.error().message;
  const NpyArray& x = data->at("x");
  const NpyArray& y = data->at("y");
  FloatExecutor exec(*graph);
  double worst = 0;
  for (int64_t i = 0; i < x.shape[0]; ++i) {
    auto r = exec.run(nhwc_sample(x, i));
    ASSERT_TRUE(r) << r.error().message;
    const auto want = nhwc_sample(y, i);
    const auto& got = exec.output();
    ASSERT_EQ(got.size(), want.size());
    float scale = 0;
    for (float w : want) scale = std::max(scale, std::fabs(w));
    for (size_t k = 0; k < got.size(); ++k) {
      worst = std::max(worst, std::fabs(double{got[k]} - want[k]) / std::max(scale, 1e-6f));
    }
  }
  EXPECT_LT(worst, 1e-4) << GetParam() << ": worst error relative to the output's largest value";
}

// The int8 artifact on the kernels' runtime against the float graph, over the model's own
// inputs (also the calibration set): the top-1 of every output row, and the output SQNR.
TEST_P(Constructs, Int8AgreesWithFloat) {
  auto bytes = read_file(model_path(GetParam()));
  auto data = read_npz(fixture_path("models/constructs/" + GetParam() + ".npz"));
  ASSERT_TRUE(bytes && data);
  const NpyArray& x = data->at("x");
  const NpyArray& y = data->at("y");
  NpyArray labels;
  labels.dtype = "<i8";
  labels.shape = {x.shape[0]};
  for (int64_t i = 0; i < x.shape[0]; ++i) {
    const auto row = nhwc_sample(y, i);
    labels.values.push_back(
        static_cast<double>(std::max_element(row.begin(), row.end()) - row.begin()));
  }
  const std::map<std::string, NpyArray> calib{{"x", x}};
  const std::map<std::string, NpyArray> val{{"x", x}, {"y", labels}};
  CompileOptions opts;
  opts.model_name = GetParam();
  auto compiled = compile_model(*bytes, calib, &val, opts);
  ASSERT_TRUE(compiled) << compiled.error().message;
  const auto& r = compiled->report;
  std::printf("%-22s operators %d  float %.1f%%  int8 %.1f%%  worst layer %s\n", GetParam().c_str(),
              r.nodes, r.float_top1, r.int8_top1, r.worst_layer.c_str());
  EXPECT_EQ(r.float_top1, 100.0);  // the labels are float's own top-1
  EXPECT_GE(r.int8_top1, 90.0) << GetParam() << ": int8 top-1 differs from float too often";
  for (const auto& l : r.layer_sqnr) {
    EXPECT_GT(l.sqnr_db, 25.0) << GetParam() << ": " << l.tensor;
  }
}

std::vector<std::string> construct_models() {
  std::vector<std::string> names = {"bn_anywhere", "squeeze_unsqueeze",     "same_padding",
                                    "matmul_add",  "per_channel_constants", "conv1d"};
  for (int opset = 7; opset <= 21; ++opset) {
    names.push_back((opset < 10 ? "opset0" : "opset") + std::to_string(opset));
  }
  return names;
}

INSTANTIATE_TEST_SUITE_P(Generated, Constructs, ::testing::ValuesIn(construct_models()),
                         [](const auto& p) { return p.param; });

int count(const Graph& g, OpType t) {
  return static_cast<int>(
      std::count_if(g.nodes.begin(), g.nodes.end(), [&](const Node& n) { return n.type == t; }));
}

Graph imported(const std::string& name) {
  auto bytes = read_file(model_path(name));
  EXPECT_TRUE(bytes);
  auto g = import_onnx(*bytes);
  EXPECT_TRUE(g) << name << ": " << g.error().message;
  return g ? std::move(*g) : Graph{};
}

TEST(ConstructShapes, AffineConstantsFoldIntoTheirProducerOrBecomeOneMultiplyAdd) {
  // MatMul + Add (twice): two fully connected layers and the Relu, nothing else.
  const Graph mm = imported("matmul_add");
  EXPECT_EQ(mm.nodes.size(), 3u);
  EXPECT_EQ(count(mm, OpType::kFullyConnected), 2);
  // BatchNormalization after a Relu (4-D) and after a Relu (2-D) are multiply-adds (1x1
  // depthwise); the one after Gemm is folded into it.
  const Graph bn = imported("bn_anywhere");
  EXPECT_EQ(count(bn, OpType::kDepthwiseConv2D), 2);
  EXPECT_EQ(count(bn, OpType::kFullyConnected), 1);
  EXPECT_EQ(bn.nodes.size(), 8u);  // conv, relu, bn, mean, reshape, gemm(+bn), relu, bn
  // Sub and Div of the input: one multiply-add (the Div folds into the Sub's); the Mul and
  // Add after the Conv fold into it; the scalar Sub stays an Add; d - x is a multiply-add.
  const Graph pc = imported("per_channel_constants");
  EXPECT_EQ(count(pc, OpType::kDepthwiseConv2D), 2);
  EXPECT_EQ(count(pc, OpType::kConv2D), 1);
  EXPECT_EQ(count(pc, OpType::kAdd), 1);
  EXPECT_EQ(count(pc, OpType::kMul), 0);
}

// A model of one node on input [1, 4, 6, 6] at `opset`.
std::string one_node_model(int64_t opset, const onnx::NodeProto& node,
                           const std::vector<onnx::TensorProto>& inits = {},
                           const std::string& batch = "") {
  onnx::ModelProto m;
  m.set_ir_version(opset >= 18 ? 8 : 7);
  auto* o = m.add_opset_import();
  o->set_domain("");
  o->set_version(opset);
  auto* g = m.mutable_graph();
  g->set_name("g");
  *g->add_node() = node;
  for (const auto& t : inits) *g->add_initializer() = t;
  auto* in = g->add_input();
  in->set_name("x");
  auto* tt = in->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  for (int64_t d : {int64_t{1}, int64_t{4}, int64_t{6}, int64_t{6}}) {
    auto* dim = tt->mutable_shape()->add_dim();
    if (!batch.empty() && d == 6 && tt->shape().dim_size() == 3) {
      dim->set_dim_param(batch);
    } else {
      dim->set_dim_value(d);
    }
  }
  auto* out = g->add_output();
  out->set_name("y");
  out->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  for (int d = 0; d < 4; ++d)
    out->mutable_type()->mutable_tensor_type()->mutable_shape()->add_dim();
  return m.SerializeAsString();
}

onnx::NodeProto make_node(const std::string& op, std::vector<std::string> inputs) {
  onnx::NodeProto n;
  n.set_op_type(op);
  n.set_name("the_" + op);
  for (const auto& i : inputs) n.add_input(i);
  n.add_output("y");
  return n;
}

onnx::TensorProto floats(const std::string& name, std::vector<int64_t> dims, std::vector<float> v) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t.add_dims(d);
  for (float f : v) t.add_float_data(f);
  return t;
}

std::string refusal(const std::string& model) {
  auto r = import_onnx(model);
  EXPECT_FALSE(r);
  return r ? std::string() : r.error().message;
}

TEST(ConstructRefusals, NameTheNodeTheOperatorAndWhy) {
  // Opsets outside 7..21.
  EXPECT_NE(
      refusal(one_node_model(6, make_node("Relu", {"x"}))).find("opset 6, supported: 7 to 21"),
      std::string::npos);
  EXPECT_NE(refusal(one_node_model(22, make_node("Relu", {"x"}))).find("opset 22"),
            std::string::npos);
  // An operator we do not support at opset 19 names node, operator and opset.
  const std::string resize = refusal(one_node_model(19, make_node("Resize", {"x"})));
  EXPECT_NE(resize.find("node 0 'Resize' (the_Resize): opset 19"), std::string::npos) << resize;
  // Pad's axes input (opset 18).
  const std::string pad =
      refusal(one_node_model(18, make_node("Pad", {"x", "pads", "", "axes"}),
                             {floats("pads", {4}, {1, 1, 1, 1}), floats("axes", {2}, {2, 3})}));
  EXPECT_NE(pad.find("the axes input"), std::string::npos) << pad;
  // A symbolic extent other than the batch.
  const std::string sym = refusal(one_node_model(13, make_node("Relu", {"x"}), {}, "height"));
  EXPECT_NE(sym.find("symbolic extent 'height' at axis 2"), std::string::npos) << sym;
  // A constant that varies along space is not per channel.
  const std::string add = refusal(one_node_model(13, make_node("Add", {"x", "c"}),
                                                 {floats("c", {1, 1, 6, 1}, {1, 2, 3, 4, 5, 6})}));
  EXPECT_NE(add.find("node 0 'Add' (the_Add): a constant operand of shape [1,1,6,1]"),
            std::string::npos)
      << add;
  // Squeeze of an axis of extent 4.
  const std::string sq = refusal(one_node_model(13, make_node("Squeeze", {"x", "axes"}), {[] {
                                                  onnx::TensorProto t;
                                                  t.set_name("axes");
                                                  t.set_data_type(onnx::TensorProto::INT64);
                                                  t.add_dims(1);
                                                  t.add_int64_data(1);
                                                  return t;
                                                }()}));
  EXPECT_NE(sq.find("axis 1 has extent 4, not 1"), std::string::npos) << sq;
}

}  // namespace
