// Models other people published, imported as shipped: the ONNX Model Zoo's mnist-8 (opset
// 8, a CNTK export with auto_pad SAME_UPPER, broadcast bias Adds and MatMul+Add) against
// the expected outputs of its three test sets (tests/fixtures/models/thirdparty/).
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tinyfleet/optimizer_service/compiler.h"
#include "tinyfleet/optimizer_service/float_executor.h"
#include "tinyfleet/optimizer_service/npz.h"
#include "tinyfleet/optimizer_service/onnx_import.h"
#include "tinyfleet/testing/environment.h"

using namespace tinyfleet::optimizer_service;
using tinyfleet::testing::fixture_path;

namespace {

const std::string kMnist = "models/thirdparty/onnx_model_zoo_mnist8/";

// A TensorProto file (the ONNX test-set format) as float values and its shape.
NpyArray read_tensor_pb(const std::string& path) {
  auto bytes = read_file(fixture_path(path));
  EXPECT_TRUE(bytes) << path;
  onnx::TensorProto t;
  EXPECT_TRUE(bytes && t.ParseFromString(*bytes)) << path;
  NpyArray a;
  a.dtype = "<f4";
  a.shape.assign(t.dims().begin(), t.dims().end());
  EXPECT_EQ(t.data_type(), onnx::TensorProto::FLOAT) << path;
  if (!t.raw_data().empty()) {
    std::vector<float> v(t.raw_data().size() / sizeof(float));
    std::memcpy(v.data(), t.raw_data().data(), v.size() * sizeof(float));
    a.values.assign(v.begin(), v.end());
  } else {
    a.values.assign(t.float_data().begin(), t.float_data().end());
  }
  EXPECT_EQ(static_cast<int64_t>(a.values.size()), a.size()) << path;
  return a;
}

int argmax(const std::vector<double>& v) {
  return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin());
}

TEST(Mnist8, FloatOutputsMatchTheThreeTestSets) {
  auto bytes = read_file(fixture_path(kMnist + "mnist-8.onnx"));
  ASSERT_TRUE(bytes);
  auto graph = import_onnx(*bytes);
  ASSERT_TRUE(graph) << graph.error().message;
  FloatExecutor exec(*graph);
  for (int set = 0; set < 3; ++set) {
    const std::string dir = kMnist + "test_data_set_" + std::to_string(set) + "/";
    const NpyArray in = read_tensor_pb(dir + "input_0.pb");
    const NpyArray want = read_tensor_pb(dir + "output_0.pb");
    auto r = exec.run(nhwc_sample(in, 0));
    ASSERT_TRUE(r) << r.error().message;
    const auto& got = exec.output();
    ASSERT_EQ(got.size(), want.values.size());
    double scale = 0;
    for (double w : want.values) scale = std::max(scale, std::fabs(w));
    for (size_t k = 0; k < got.size(); ++k) {
      // 1e-4 relative to the largest logit (logits reach ~6.5e3; single ones can be ~0).
      EXPECT_NEAR(got[k], want.values[k], 1e-4 * scale) << "set " << set << " logit " << k;
    }
  }
}

TEST(Mnist8, Int8ArgmaxMatchesFloatOnTheThreeTestSets) {
  auto bytes = read_file(fixture_path(kMnist + "mnist-8.onnx"));
  ASSERT_TRUE(bytes);
  // Calibration: the three test inputs and their mirror images (no MNIST data in the repo).
  NpyArray calib, val, labels;
  calib.dtype = val.dtype = "<f4";
  labels.dtype = "<i8";
  calib.shape = {6, 1, 28, 28};
  val.shape = {3, 1, 28, 28};
  labels.shape = {3};
  for (int set = 0; set < 3; ++set) {
    const std::string dir = kMnist + "test_data_set_" + std::to_string(set) + "/";
    const NpyArray in = read_tensor_pb(dir + "input_0.pb");
    ASSERT_EQ(in.size(), 28 * 28);
    val.values.insert(val.values.end(), in.values.begin(), in.values.end());
    calib.values.insert(calib.values.end(), in.values.begin(), in.values.end());
    labels.values.push_back(argmax(read_tensor_pb(dir + "output_0.pb").values));
  }
  for (int set = 0; set < 3; ++set) {
    for (int y = 0; y < 28; ++y)
      for (int x = 0; x < 28; ++x)
        calib.values.push_back(val.values[static_cast<size_t>(set * 784 + y * 28 + 27 - x)]);
  }
  EXPECT_EQ(labels.values, (std::vector<double>{2, 0, 9}));
  const std::map<std::string, NpyArray> c{{"x", calib}};
  const std::map<std::string, NpyArray> v{{"x", val}, {"y", labels}};
  CompileOptions opts;
  opts.model_name = "mnist-8";
  auto compiled = compile_model(*bytes, c, &v, opts);
  ASSERT_TRUE(compiled) << compiled.error().message;
  EXPECT_EQ(compiled->report.validation_samples, 3);
  EXPECT_EQ(compiled->report.float_top1, 100.0);
  EXPECT_EQ(compiled->report.int8_top1, 100.0) << "int8 argmax differs from float";
}

}  // namespace
