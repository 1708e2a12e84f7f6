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

TEST_P(Models, FloatExecutionMatchesTheGoldenOutputs) {
  const std::string name = GetParam();
  auto bytes = read_file(fixture_path("models/" + name + ".onnx"));
  ASSERT_TRUE(bytes) << bytes.error().message;
  auto graph = import_onnx(*bytes);
  ASSERT_TRUE(graph) << graph.error().message;
  auto golden = read_npz(fixture_path("models/reference_outputs.npz"));
  ASSERT_TRUE(golden) << golden.error().message;
  const bool tabular = name == "breast_cancer_mlp";
  auto data =
      read_npz(fixture_path(tabular ? "data/breast_cancer_val.npz" : "data/digits_val.npz"));
  ASSERT_TRUE(data) << data.error().message;
  const NpyArray& x = data->at("x");
  const NpyArray& expected = golden->at(name);
  FloatExecutor exec(*graph);
  double worst = 0;
  for (int64_t i = 0; i < x.shape[0]; ++i) {
    auto r = exec.run(nhwc_sample(x, i));
    ASSERT_TRUE(r) << r.error().message;
    // The golden output in NHWC order too (the autoencoder's is [1, 1, 8, 8]).
    const auto want = nhwc_sample(expected, i);
    const auto& got = exec.output();
    ASSERT_EQ(got.size(), want.size());
    for (size_t k = 0; k < got.size(); ++k)
      worst = std::max(worst, std::fabs(double{got[k]} - want[k]));
  }
  EXPECT_LT(worst, 1e-4) << name;
}

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
