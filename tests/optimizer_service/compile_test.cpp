// Compiling the shared models to int8 artifacts: the int8 top-1 on the validation set
// (run on the kernels' runtime) stays within 1.0 point of float, with the planned
// (in-place) arena giving the same outputs as every tensor apart.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cstring>

#include "tinyfleet/optimizer_service/compiler.h"
#include "tinyfleet/optimizer_service/device_class.h"
#include "tinyfleet/testing/environment.h"

using namespace tinyfleet::optimizer_service;
using tinyfleet::testing::fixture_path;

namespace {

struct Case {
  const char* model;
  const char* calib;
  const char* val;
};

class Compile : public ::testing::TestWithParam<Case> {};

TEST_P(Compile, Int8StaysWithinOnePointOfFloat) {
  const Case c = GetParam();
  auto onnx = read_file(fixture_path(std::string("models/") + c.model + ".onnx"));
  auto calib = read_npz(fixture_path(std::string("data/") + c.calib));
  auto val = read_npz(fixture_path(std::string("data/") + c.val));
  ASSERT_TRUE(onnx && calib && val);
  CompileOptions opts;
  opts.model_name = c.model;
  auto compiled = compile_model(*onnx, *calib, &*val, opts);
  ASSERT_TRUE(compiled) << compiled.error().message;
  const auto& r = compiled->report;
  std::printf("%-22s float %.2f%%  int8 %.2f%%  arena %u B (naive %u)  weights %lu B  MACs %ld\n",
              c.model, r.float_top1, r.int8_top1, r.arena_bytes, r.naive_arena_bytes,
              static_cast<unsigned long>(r.weight_bytes), static_cast<long>(r.macs));
  EXPECT_GT(r.float_top1, 90.0);
  EXPECT_LE(r.float_top1 - r.int8_top1, 1.0) << "int8 lost more than one point";
  EXPECT_LE(r.arena_bytes, r.naive_arena_bytes);
  EXPECT_GT(r.macs, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Shared, Compile,
    ::testing::Values(Case{"digits_cnn", "digits_calib.npz", "digits_val.npz"},
                      Case{"digits_mlp", "digits_calib.npz", "digits_val.npz"},
                      Case{"digits_dscnn", "digits_calib.npz", "digits_val.npz"},
                      Case{"digits_resnet", "digits_calib.npz", "digits_val.npz"},
                      Case{"digits_cnn_bn_unfolded", "digits_calib.npz", "digits_val.npz"}),
    [](const auto& p) { return std::string(p.param.model); });

// digits_cnn written with Pad, Concat, folded constants, a foldable Transpose, and in QDQ
// form (tests/fixtures/models/variants/make_variants.py).
CompileReport compile_variant(const std::string& name) {
  auto onnx = read_file(fixture_path("models/variants/" + name + ".onnx"));
  auto calib = read_npz(fixture_path("data/digits_calib.npz"));
  auto val = read_npz(fixture_path("data/digits_val.npz"));
  EXPECT_TRUE(onnx && calib && val);
  auto compiled = compile_model(*onnx, *calib, &*val, {});
  EXPECT_TRUE(compiled) << name << ": " << compiled.error().message;
  if (!compiled) return {};
  const auto& r = compiled->report;
  std::printf("%-20s float %.2f%%  int8 %.2f%%  operators %d  arena %u B\n", name.c_str(),
              r.float_top1, r.int8_top1, r.nodes, r.arena_bytes);
  EXPECT_GT(r.float_top1, 90.0) << name;
  EXPECT_LE(r.float_top1 - r.int8_top1, 1.0) << name << ": int8 lost more than one point";
  return r;
}

TEST(CompileVariants, PadsBecomeConvolutionPaddingOrAPadOperator) {
  const auto r = compile_variant("digits_cnn_padded");
  EXPECT_EQ(r.fused_pads, 2);      // the two before convolutions; the one before the pool stays
  EXPECT_EQ(r.removed_no_ops, 1);  // the Flatten of [1,16,1,1]: the same NHWC shape
  EXPECT_EQ(r.nodes, 6);           // conv, conv, pad, mean, mul, fc
}

TEST(CompileVariants, ConcatenationAndFoldedConstants) {
  const auto concat = compile_variant("digits_cnn_concat");
  EXPECT_EQ(concat.nodes, 6);              // conv, conv, conv, concat, mean, fc
  EXPECT_EQ(concat.fused_activations, 2);  // the second ReLU through the concatenation
  const auto folding = compile_variant("digits_cnn_folding");
  EXPECT_EQ(folding.nodes, 6);  // conv, conv, mean, reshape (transpose), reshape, fc
}

TEST(CompileVariants, AQdqModelKeepsItsScales) {
  const auto r = compile_variant("digits_cnn_qdq");
  EXPECT_EQ(r.qdq_scales_kept, 5);  // input, two activations, the pool, the logits
  auto onnx = read_file(fixture_path("models/variants/digits_cnn_qdq.onnx"));
  ASSERT_TRUE(onnx);
  onnx::ModelProto model;
  ASSERT_TRUE(model.ParseFromString(*onnx));
  float in_scale = 0, out_scale = 0;
  for (const auto& init : model.graph().initializer()) {
    if (init.name() == "in_s") std::memcpy(&in_scale, init.raw_data().data(), 4);
    if (init.name() == "out_s") std::memcpy(&out_scale, init.raw_data().data(), 4);
  }
  EXPECT_EQ(r.input_scale, in_scale);
  EXPECT_EQ(r.output_scale, out_scale);
  EXPECT_EQ(r.input_zero_point, -128);  // the input is [0, 1]: zero at the bottom
}

TEST(Compile, PercentileAndMseCalibrationSqnrAndDriftBaseline) {
  auto onnx = read_file(fixture_path("models/digits_dscnn.onnx"));
  auto calib = read_npz(fixture_path("data/digits_calib.npz"));
  auto val = read_npz(fixture_path("data/digits_val.npz"));
  ASSERT_TRUE(onnx && calib && val);
  for (auto method :
       {CalibrationMethod::kMinMax, CalibrationMethod::kPercentile, CalibrationMethod::kMse}) {
    CompileOptions opts;
    opts.calibration = method;
    auto c = compile_model(*onnx, *calib, &*val, opts);
    ASSERT_TRUE(c) << c.error().message;
    const auto& r = c->report;
    std::printf("calibration %d: float %.2f%% int8 %.2f%% worst layer %s\n",
                static_cast<int>(method), r.float_top1, r.int8_top1, r.worst_layer.c_str());
    EXPECT_LE(r.float_top1 - r.int8_top1, 1.0);
    ASSERT_FALSE(r.layer_sqnr.empty());
    ASSERT_FALSE(r.worst_layer.empty());
    for (const auto& l : r.layer_sqnr) EXPECT_GT(l.sqnr_db, 10.0) << l.tensor;
    // The baseline: a distribution over the 10 classes, a confidence, one input channel.
    const auto& d = r.drift_baseline;
    ASSERT_EQ(d.class_histogram.size(), 10u);
    double total = 0;
    for (float h : d.class_histogram) total += h;
    EXPECT_NEAR(total, 1.0, 1e-5);
    EXPECT_GT(d.mean_top1_confidence, 0.5f);
    EXPECT_LE(d.mean_top1_confidence, 1.0f);
    ASSERT_EQ(d.channel_mean.size(), 1u);
    EXPECT_NEAR(d.channel_mean[0], 0.304, 0.01);  // data/README: clean val pixel mean 0.304
    EXPECT_NEAR(d.channel_std[0], 0.376, 0.01);   // and deviation 0.376
  }
}

TEST(Compile, TheAutoencoderCompilesWithoutALabelledSet) {
  auto onnx = read_file(fixture_path("models/digits_autoencoder.onnx"));
  auto calib = read_npz(fixture_path("data/digits_calib.npz"));
  ASSERT_TRUE(onnx && calib);
  auto c = compile_model(*onnx, *calib, nullptr, {});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->report.fused_activations, 3);
  EXPECT_GT(c->report.artifact_bytes, 5000u);
}

TEST(Compile, RefusesWhatItCannotCompileByName) {
  auto calib = read_npz(fixture_path("data/digits_calib.npz"));
  ASSERT_TRUE(calib);
  auto bad = compile_model("not onnx", *calib, nullptr, {});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("not an ONNX model"), std::string::npos);
  auto onnx = read_file(fixture_path("models/digits_cnn.onnx"));
  ASSERT_TRUE(onnx);
  auto no_x = compile_model(*onnx, {}, nullptr, {});
  ASSERT_FALSE(no_x);
  EXPECT_NE(no_x.error().message.find("'x'"), std::string::npos);
}

}  // namespace

namespace {

TEST(DeviceClasses, CatalogFitAndEstimates) {
  auto text = read_file(TINYFLEET_DEVICE_CLASS_CATALOG);
  ASSERT_TRUE(text);
  auto classes = parse_catalog(*text);
  ASSERT_TRUE(classes) << classes.error().message;
  std::map<std::string, DeviceClass> by_name;
  for (auto& c : *classes) by_name[c.name] = c;
  for (const char* name :
       {"cortex-m0plus-32k", "cortex-m4-256k", "cortex-m7-512k", "esp32s3-512k", "linux-arm64"}) {
    ASSERT_TRUE(by_name.count(name)) << name;
  }
  CompileReport r;
  r.arena_bytes = 3072;
  r.scratch_bytes = 608;
  r.artifact_bytes = 26144;
  r.conv_macs = 500000;
  r.fc_macs = 320;
  EXPECT_EQ(fit_refusal(r, by_name["cortex-m4-256k"]), "");
  // Faster classes estimate less time per inference.
  EXPECT_GT(estimate(r, by_name["cortex-m4-256k"]).latency_ms,
            estimate(r, by_name["cortex-m7-512k"]).latency_ms);
  // 500k conv MACs x 1.2 cycles at 80 MHz = 7.5 ms; x 12 mW = 0.09 mJ.
  EXPECT_NEAR(estimate(r, by_name["cortex-m4-256k"]).latency_ms, 7.5, 0.01);
  EXPECT_NEAR(estimate(r, by_name["cortex-m4-256k"]).energy_mj, 0.09, 0.001);
  // Too big: the refusal carries the numbers.
  r.arena_bytes = 30000;
  const auto why = fit_refusal(r, by_name["cortex-m0plus-32k"]);
  EXPECT_EQ(why,
            "does not fit cortex-m0plus-32k: arena 30000 B + scratch 608 B + runtime 4096 B = "
            "34704 B exceeds RAM 32768 B");
  auto bad = parse_device_class("x", R"({"ram_bytes": 1024})");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("flash_bytes"), std::string::npos);
}

}  // namespace
