// ONNX import and float execution against the golden outputs of every shared model;
// malformed files and unsupported operators are refused by name.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>

#include "tinyfleet/optimizer_service/float_executor.h"
#include "tinyfleet/optimizer_service/npz.h"
#include "tinyfleet/optimizer_service/onnx_import.h"
#include "tinyfleet/testing/environment.h"

using namespace tinyfleet::optimizer_service;
using tinyfleet::testing::fixture_path;

namespace {

class Models : public ::testing::TestWithParam<const char*> {};

// The largest difference between the float execution of `model` and the golden outputs
// stored under `golden_key`, over the validation set.
double worst_error(const std::string& model, const std::string& golden_key) {
  auto bytes = read_file(fixture_path("models/" + model + ".onnx"));
  EXPECT_TRUE(bytes) << bytes.error().message;
  auto graph = import_onnx(*bytes);
  EXPECT_TRUE(graph) << graph.error().message;
  if (!graph) return 1e9;
  auto golden = read_npz(fixture_path("models/reference_outputs.npz"));
  EXPECT_TRUE(golden) << golden.error().message;
  const bool tabular = golden_key == "breast_cancer_mlp";
  auto data =
      read_npz(fixture_path(tabular ? "data/breast_cancer_val.npz" : "data/digits_val.npz"));
  EXPECT_TRUE(data) << data.error().message;
  const NpyArray& x = data->at("x");
  const NpyArray& expected = golden->at(golden_key);
  FloatExecutor exec(*graph);
  double worst = 0;
  for (int64_t i = 0; i < x.shape[0]; ++i) {
    auto r = exec.run(nhwc_sample(x, i));
    EXPECT_TRUE(r) << r.error().message;
    if (!r) return 1e9;
    // The golden output in NHWC order too (the autoencoder's is [1, 1, 8, 8]).
    const auto want = nhwc_sample(expected, i);
    const auto& got = exec.output();
    EXPECT_EQ(got.size(), want.size());
    for (size_t k = 0; k < std::min(got.size(), want.size()); ++k)
      worst = std::max(worst, std::fabs(double{got[k]} - want[k]));
  }
  return worst;
}

TEST_P(Models, FloatExecutionMatchesTheGoldenOutputs) {
  const std::string name = GetParam();
  EXPECT_LT(worst_error(name, name), 1e-4) << name;
}

// digits_cnn written with Pad, Concat, folded constants and a foldable Transpose
// (tests/fixtures/models/variants/make_variants.py) computes what digits_cnn computes.
class Variants : public ::testing::TestWithParam<const char*> {};

TEST_P(Variants, ComputeWhatDigitsCnnComputes) {
  const std::string name = GetParam();
  EXPECT_LT(worst_error("variants/" + name, "digits_cnn"), 1e-4) << name;
}

INSTANTIATE_TEST_SUITE_P(DigitsCnn, Variants,
                         ::testing::Values("digits_cnn_padded", "digits_cnn_concat",
                                           "digits_cnn_folding"));

INSTANTIATE_TEST_SUITE_P(Shared, Models,
                         ::testing::Values("digits_mlp", "digits_cnn", "digits_dscnn",
                                           "digits_resnet", "digits_autoencoder", "digits_cnn_v2",
                                           "digits_cnn_lastlayer", "digits_cnn_badlabels",
                                           "digits_cnn_bn_unfolded", "breast_cancer_mlp"));

TEST(Import, MalformedAndTruncatedFilesAreRefused) {
  auto bytes = read_file(fixture_path("models/digits_cnn.onnx"));
  ASSERT_TRUE(bytes);
  auto truncated = import_onnx(bytes->substr(0, bytes->size() / 2));
  ASSERT_FALSE(truncated);
  EXPECT_NE(truncated.error().message.find("not an ONNX model"), std::string::npos)
      << truncated.error().message;
  EXPECT_FALSE(import_onnx("definitely not protobuf"));
  EXPECT_FALSE(import_onnx(""));
}

TEST(Import, UnsupportedOperatorsAndAttributesAreNamed) {
  auto bytes = read_file(fixture_path("models/digits_cnn.onnx"));
  ASSERT_TRUE(bytes);
  onnx::ModelProto model;
  ASSERT_TRUE(model.ParseFromString(*bytes));
  // The first Relu becomes a LeakyRelu.
  onnx::ModelProto leaky = model;
  for (auto& n : *leaky.mutable_graph()->mutable_node()) {
    if (n.op_type() == "Relu") {
      n.set_op_type("LeakyRelu");
      break;
    }
  }
  auto r = import_onnx(leaky.SerializeAsString());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("'LeakyRelu' is not supported"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("node "), std::string::npos);
  // A Conv with group=2 on an 8-channel input.
  onnx::ModelProto grouped = model;
  int convs = 0;
  for (auto& n : *grouped.mutable_graph()->mutable_node()) {
    if (n.op_type() == "Conv" && ++convs == 2) {
      auto* g = n.add_attribute();
      g->set_name("group");
      g->set_type(onnx::AttributeProto::INT);
      g->set_i(2);
    }
  }
  auto gr = import_onnx(grouped.SerializeAsString());
  ASSERT_FALSE(gr);
  EXPECT_NE(gr.error().message.find("group"), std::string::npos) << gr.error().message;
}

onnx::ModelProto load_model(const std::string& path) {
  auto bytes = read_file(fixture_path(path));
  EXPECT_TRUE(bytes);
  onnx::ModelProto model;
  EXPECT_TRUE(model.ParseFromString(*bytes));
  return model;
}

onnx::NodeProto* first_node(onnx::ModelProto& m, const std::string& op) {
  for (auto& n : *m.mutable_graph()->mutable_node()) {
    if (n.op_type() == op) return &n;
  }
  return nullptr;
}

std::string refusal(const onnx::ModelProto& m) {
  auto r = import_onnx(m.SerializeAsString());
  return r ? std::string("(imported)") : r.error().message;
}

TEST(Import, PadTransposeAndQdqRefusalsNameWhatIsWrong) {
  // A Pad with a value other than zero.
  auto padded = load_model("models/variants/digits_cnn_padded.onnx");
  for (auto& init : *padded.mutable_graph()->mutable_initializer()) {
    if (init.name() == "zero") {
      float one = 1.0f;
      init.set_raw_data(&one, sizeof one);
    }
  }
  EXPECT_NE(refusal(padded).find("constant value 1.0"), std::string::npos) << refusal(padded);
  // A reflecting Pad.
  auto reflect = load_model("models/variants/digits_cnn_padded.onnx");
  auto* mode = first_node(reflect, "Pad")->mutable_attribute(0);
  ASSERT_EQ(mode->name(), "mode");
  mode->set_s("reflect");
  EXPECT_NE(refusal(reflect).find("mode=reflect, supported: constant"), std::string::npos)
      << refusal(reflect);
  // A Transpose that really moves the pooled activations: [1,16,1,1] -> [16,1,1,1] is fine
  // (only extent-1 axes move), so give the Transpose a 4-D activation with space instead.
  auto folding = load_model("models/variants/digits_cnn_folding.onnx");
  onnx::NodeProto* t = nullptr;
  for (auto& n : *folding.mutable_graph()->mutable_node()) {
    if (n.op_type() == "Transpose" && n.input(0) == "g") t = &n;
  }
  ASSERT_NE(t, nullptr);
  t->set_input(0, "r2");  // [1,16,4,4]: perm [0,2,3,1] reorders its elements
  EXPECT_NE(refusal(folding).find("reorders the elements of an activation"), std::string::npos)
      << refusal(folding);
  // A DequantizeLinear of an activation with no QuantizeLinear before it.
  auto qdq = load_model("models/variants/digits_cnn_qdq.onnx");
  auto* q = first_node(qdq, "QuantizeLinear");
  ASSERT_NE(q, nullptr);
  q->set_op_type("DequantizeLinear");
  EXPECT_NE(refusal(qdq).find("QDQ"), std::string::npos) << refusal(qdq);
}

TEST(Npz, ReadsTheSharedFilesAndRefusesBrokenOnes) {
  auto data = read_npz(fixture_path("data/digits_val.npz"));
  ASSERT_TRUE(data) << data.error().message;
  EXPECT_EQ(data->at("x").shape, (std::vector<int64_t>{269, 1, 8, 8}));
  EXPECT_EQ(data->at("y").shape, (std::vector<int64_t>{269}));
  EXPECT_EQ(data->at("x").dtype, "<f4");
  for (double v : data->at("x").values) ASSERT_TRUE(v >= 0.0 && v <= 1.0);
  auto bytes = read_file(fixture_path("data/digits_val.npz"));
  ASSERT_TRUE(bytes);
  auto cut = parse_npz(bytes->substr(0, 5000));
  ASSERT_FALSE(cut);
  EXPECT_NE(cut.error().message.find("truncated"), std::string::npos) << cut.error().message;
  EXPECT_FALSE(parse_npz("PK nothing"));
  EXPECT_FALSE(read_npz("/nonexistent.npz"));
}

}  // namespace
