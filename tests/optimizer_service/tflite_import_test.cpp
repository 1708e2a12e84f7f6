// TFLite import: the reader's bounds (on the published fixtures and on models built here
// with the generated FlatBuffers builder), and int8 models compiled with their own
// quantization, run on the kernels' runtime and compared bit for bit with an independent
// int64 reference of TFLM's reference kernels (tflm_reference.h) on seeded inputs.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <tuple>

#include <nlohmann/json.hpp>

#include "loaded_artifact.h"
#include "tflm_reference.h"
#include "tinyfleet/kernels/ops/activations.h"
#include "tinyfleet/kernels/ops/quantization.h"
#include "tinyfleet/kernels/runtime/interpreter.h"
#include "tinyfleet/optimizer_service/class_compiler.h"
#include "tinyfleet/optimizer_service/float_executor.h"
#include "tinyfleet/optimizer_service/npz.h"
#include "tinyfleet/optimizer_service/tflite_generated.h"
#include "tinyfleet/optimizer_service/tflite_import.h"
#include "tinyfleet/testing/environment.h"

using namespace tinyfleet::optimizer_service;
using tinyfleet::testing::fixture_path;
namespace k = tinyfleet::kernels;

namespace {

const char* const kInt8Fixtures[] = {
    "models/thirdparty/tflite_micro/hello_world_int8.tflite",
    "models/thirdparty/tflite_micro/micro_speech_quantized.tflite",
    "models/thirdparty/mlperf_tiny/kws_ref_model.tflite",
};
const char* const kFloatFixtures[] = {
    "models/thirdparty/tflite_micro/hello_world_float.tflite",
    "models/thirdparty/mlperf_tiny/kws_ref_model_float32.tflite",
};

TfliteModel read_fixture(const std::string& path) {
  auto bytes = read_file(fixture_path(path));
  EXPECT_TRUE(bytes) << path;
  if (!bytes) return {};
  EXPECT_TRUE(is_tflite(*bytes)) << path;
  auto m = read_tflite(*bytes);
  EXPECT_TRUE(m) << path << ": " << (m ? "" : m.error().message);
  return m ? *m : TfliteModel{};
}

using Loaded = tinyfleet::testing::LoadedArtifact;

std::vector<int8_t> random_input(std::mt19937& rng, int64_t n) {
  std::uniform_int_distribution<int> d(-128, 127);
  std::vector<int8_t> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<int8_t>(d(rng));
  return v;
}

TEST(TfliteRead, EveryFixtureReadsWithItsQuantization) {
  for (const char* f : kInt8Fixtures) read_fixture(f);
  for (const char* f : kFloatFixtures) read_fixture(f);
  const TfliteModel kws = read_fixture("models/thirdparty/mlperf_tiny/kws_ref_model.tflite");
  ASSERT_EQ(kws.operators.size(), 13u);
  EXPECT_STREQ(tflite_operator_name(kws.operators[0].code), "CONV_2D");
  const TfliteTensor& filter = kws.tensors[static_cast<size_t>(kws.operators[0].inputs[1])];
  EXPECT_EQ(filter.shape, (std::vector<int32_t>{64, 10, 4, 1}));
  EXPECT_EQ(filter.scale.size(), 64u);  // per channel, dimension 0
  EXPECT_EQ(filter.data.size(), 64u * 10 * 4);
  const TfliteTensor& dw = kws.tensors[static_cast<size_t>(kws.operators[1].inputs[1])];
  EXPECT_EQ(dw.scale.size(), 64u);
  EXPECT_EQ(dw.quantized_dimension, 3);
  const TfliteTensor& in = kws.tensors[static_cast<size_t>(kws.inputs[0])];
  EXPECT_EQ(in.zero_point, (std::vector<int64_t>{83}));
  EXPECT_NEAR(in.scale[0], 0.5847, 1e-4);
}

TEST(TfliteRead, RefusesWhatIsNotAWholeModel) {
  EXPECT_FALSE(is_tflite("ONNX...."));
  auto r = read_tflite(std::string(64, '\0'));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("TFL3"), std::string::npos) << r.error().message;
  auto bytes = read_file(fixture_path(kInt8Fixtures[2]));
  ASSERT_TRUE(bytes);
  for (size_t keep : {size_t{8}, bytes->size() / 2, bytes->size() - 1}) {
    auto t = read_tflite(bytes->substr(0, keep));
    ASSERT_FALSE(t) << keep;
    EXPECT_NE(t.error().message.find("does not verify"), std::string::npos) << t.error().message;
  }
}

// A one-FULLY_CONNECTED model written with the generated builder, broken one way at a time.
struct FcModel {
  int weight_bytes = 16 * 1;
  int32_t weight_buffer = 2;
  uint32_t opcode_index = 0;
  int32_t input_index = 0;
  std::vector<float> weight_scales = {0.01f};
  float input_scale = 0.02f;
  int32_t opcode = tflite::BuiltinOperator_FULLY_CONNECTED;
  std::string bytes() const {
    flatbuffers::FlatBufferBuilder fb;
    using namespace tflite;
    auto q = [&](std::vector<float> s, int64_t zp, int dim) {
      return CreateQuantizationParameters(fb, 0, 0, fb.CreateVector(s),
                                          fb.CreateVector(std::vector<int64_t>(s.size(), zp)),
                                          QuantizationDetails_NONE, 0, dim);
    };
    std::vector<flatbuffers::Offset<tflite::Tensor>> tensors = {
        CreateTensor(fb, fb.CreateVector(std::vector<int32_t>{1, 1}), TensorType_INT8, 0,
                     fb.CreateString("x"), q({input_scale}, -128, 0)),
        CreateTensor(fb, fb.CreateVector(std::vector<int32_t>{16, 1}), TensorType_INT8,
                     static_cast<uint32_t>(weight_buffer), fb.CreateString("w"),
                     q(weight_scales, 0, 0)),
        CreateTensor(fb, fb.CreateVector(std::vector<int32_t>{1, 16}), TensorType_INT8, 0,
                     fb.CreateString("y"), q({0.05f}, -5, 0)),
    };
    const std::vector<int32_t> ins = {input_index, 1, -1}, outs = {2};
    auto op = CreateOperator(fb, opcode_index, fb.CreateVector(ins), fb.CreateVector(outs),
                             BuiltinOptions_FullyConnectedOptions,
                             CreateFullyConnectedOptions(fb, ActivationFunctionType_RELU).Union());
    auto sg = CreateSubGraph(fb, fb.CreateVector(tensors), fb.CreateVector(std::vector<int32_t>{0}),
                             fb.CreateVector(std::vector<int32_t>{2}), fb.CreateVector(&op, 1));
    std::vector<int8_t> w(static_cast<size_t>(weight_bytes));
    for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<int8_t>(i * 7 - 50);
    std::vector<flatbuffers::Offset<tflite::Buffer>> buffers = {
        CreateBuffer(fb), CreateBuffer(fb),
        CreateBuffer(fb, fb.CreateVector(reinterpret_cast<const uint8_t*>(w.data()), w.size()))};
    auto code = CreateOperatorCode(fb, static_cast<int8_t>(std::min(opcode, 127)), 0, 1,
                                   static_cast<BuiltinOperator>(opcode));
    auto model = CreateModel(fb, 3, fb.CreateVector(&code, 1), fb.CreateVector(&sg, 1), 0,
                             fb.CreateVector(buffers));
    FinishModelBuffer(fb, model);
    return {reinterpret_cast<const char*>(fb.GetBufferPointer()), fb.GetSize()};
  }
};

std::string refusal(const FcModel& f) {
  auto m = read_tflite(f.bytes());
  if (!m) return m.error().message;
  auto c = compile_tflite_int8(*m, {});
  return c ? "" : c.error().message;
}

TEST(TfliteRead, ChecksIndicesSizesAndScales) {
  EXPECT_EQ(refusal(FcModel{}), "");  // the unbroken model compiles
  FcModel f;
  f.weight_bytes = 15;
  EXPECT_NE(refusal(f).find("buffer holds 15 bytes, its shape needs 16"), std::string::npos)
      << refusal(f);
  f = {};
  f.weight_buffer = 7;
  EXPECT_NE(refusal(f).find("buffer index 7 of 3"), std::string::npos) << refusal(f);
  f = {};
  f.opcode_index = 4;
  EXPECT_NE(refusal(f).find("operator code index 4 of 1"), std::string::npos) << refusal(f);
  f = {};
  f.input_index = 9;
  EXPECT_NE(refusal(f).find("input tensor index 9"), std::string::npos) << refusal(f);
  f = {};
  f.weight_scales = {0.01f, 0.02f, 0.03f};
  EXPECT_NE(refusal(f).find("3 scales do not match quantized_dimension 0"), std::string::npos)
      << refusal(f);
  f = {};
  f.input_index = 2;  // the operator reads its own output
  EXPECT_NE(refusal(f).find("reads tensor 2 before anything writes it"), std::string::npos)
      << refusal(f);
  f = {};
  f.input_scale = 0.0f;
  EXPECT_NE(refusal(f).find("scale 0.000000 (must be finite and > 0)"), std::string::npos)
      << refusal(f);
}

TEST(TfliteInt8, RefusesOtherOperatorsByName) {
  FcModel f;
  f.opcode = tflite::BuiltinOperator_SQUARED_DIFFERENCE;
  EXPECT_NE(refusal(f).find("operator 'SQUARED_DIFFERENCE' (builtin code 99) is not supported"),
            std::string::npos)
      << refusal(f);
  f.opcode = tflite::BuiltinOperator_BATCH_MATMUL;  // above the deprecated byte's range
  EXPECT_NE(refusal(f).find("operator 'BATCH_MATMUL' (builtin code 126) is not supported"),
            std::string::npos)
      << refusal(f);
}

// ADD or MUL (x, c) with a constant of its own scale, or (x, x), built with the generated
// builder; scales and zero points drawn at random.
std::string add_model(std::mt19937& rng, bool constant_second, int activation,
                      tflite::BuiltinOperator code = tflite::BuiltinOperator_ADD) {
  std::uniform_real_distribution<float> scale(0.002f, 0.2f);
  std::uniform_int_distribution<int> zp(-128, 127), value(-128, 127);
  flatbuffers::FlatBufferBuilder fb;
  using namespace tflite;
  auto q = [&](float s, int64_t z) {
    return CreateQuantizationParameters(fb, 0, 0, fb.CreateVector(std::vector<float>{s}),
                                        fb.CreateVector(std::vector<int64_t>{z}));
  };
  const auto shape = std::vector<int32_t>{1, 2, 2, 8};
  std::vector<flatbuffers::Offset<tflite::Tensor>> tensors = {
      CreateTensor(fb, fb.CreateVector(shape), TensorType_INT8, 0, fb.CreateString("x"),
                   q(scale(rng), zp(rng))),
      CreateTensor(fb, fb.CreateVector(shape), TensorType_INT8, 1, fb.CreateString("c"),
                   q(scale(rng), zp(rng))),
      CreateTensor(fb, fb.CreateVector(shape), TensorType_INT8, 0, fb.CreateString("y"),
                   q(scale(rng) * 2, zp(rng))),
  };
  const std::vector<int32_t> ins = {0, constant_second ? 1 : 0}, outs = {2};
  const auto act = static_cast<ActivationFunctionType>(activation);
  auto op = code == BuiltinOperator_MUL
                ? CreateOperator(fb, 0, fb.CreateVector(ins), fb.CreateVector(outs),
                                 BuiltinOptions_MulOptions, CreateMulOptions(fb, act).Union())
                : CreateOperator(fb, 0, fb.CreateVector(ins), fb.CreateVector(outs),
                                 BuiltinOptions_AddOptions, CreateAddOptions(fb, act).Union());
  auto sg = CreateSubGraph(fb, fb.CreateVector(tensors), fb.CreateVector(std::vector<int32_t>{0}),
                           fb.CreateVector(std::vector<int32_t>{2}), fb.CreateVector(&op, 1));
  std::vector<uint8_t> c(32);
  for (auto& v : c) v = static_cast<uint8_t>(value(rng));
  std::vector<flatbuffers::Offset<tflite::Buffer>> buffers = {CreateBuffer(fb),
                                                              CreateBuffer(fb, fb.CreateVector(c))};
  auto opcode = CreateOperatorCode(fb, static_cast<int8_t>(code), 0, 1, code);
  auto model = CreateModel(fb, 3, fb.CreateVector(&opcode, 1), fb.CreateVector(&sg, 1), 0,
                           fb.CreateVector(buffers));
  FinishModelBuffer(fb, model);
  return {reinterpret_cast<const char*>(fb.GetBufferPointer()), fb.GetSize()};
}

TEST(TfliteInt8, AddAndMulMatchTflmReferenceBitForBit) {
  std::mt19937 rng(31);
  for (int trial = 0; trial < 80; ++trial) {
    const bool constant_second = trial % 2 == 0;
    const int activation = trial % 4 < 2 ? 0 : (trial % 8 < 4 ? 1 : 3);
    const auto code = trial < 40 ? tflite::BuiltinOperator_ADD : tflite::BuiltinOperator_MUL;
    auto m = read_tflite(add_model(rng, constant_second, activation, code));
    ASSERT_TRUE(m) << m.error().message;
    auto compiled = compile_tflite_int8(*m, {});
    ASSERT_TRUE(compiled) << compiled.error().message;
    Loaded rt(compiled->artifact);
    const tflm_reference::Runner ref(*m);
    for (int s = 0; s < 50; ++s) {
      const auto input = random_input(rng, 32);
      ASSERT_EQ(rt.run(input), ref.run(input).at(2)) << "trial " << trial << " sample " << s;
    }
  }
}

TEST(TfliteInt8, EveryOperatorOfTheInt8FixturesIsMapped) {
  for (const char* f : kInt8Fixtures) {
    for (const auto& line : tflite_operator_coverage(read_fixture(f))) {
      EXPECT_NE(line.find(": mapped"), std::string::npos) << f << ": " << line;
    }
  }
}

// Each int8 fixture keeps its scales and gives TFLM's bytes: at the output, and (for the
// models ending in SOFTMAX) at the softmax's input, from the model without its softmax.
TEST(TfliteInt8, FixturesMatchTflmReferenceBitForBit) {
  std::mt19937 rng(17);
  for (const char* f : kInt8Fixtures) {
    const TfliteModel m = read_fixture(f);
    auto compiled = compile_tflite_int8(m, {});
    ASSERT_TRUE(compiled) << f << ": " << compiled.error().message;
    EXPECT_GT(compiled->report.qdq_scales_kept, 0);
    TfliteModel body = m;
    if (m.operators.back().code == tflite::BuiltinOperator_SOFTMAX) {
      body.operators.pop_back();
      body.outputs = {m.operators.back().inputs[0]};
    }
    auto body_compiled = compile_tflite_int8(body, {});
    ASSERT_TRUE(body_compiled) << body_compiled.error().message;
    Loaded full(compiled->artifact), trunk(body_compiled->artifact);
    const tflm_reference::Runner ref(m);
    const int64_t n_in = m.tensors[static_cast<size_t>(m.inputs[0])].elements();
    for (int s = 0; s < 200; ++s) {
      const auto input = random_input(rng, n_in);
      const auto want = ref.run(input);
      ASSERT_EQ(trunk.run(input), want.at(body.outputs[0])) << f << " sample " << s;
      ASSERT_EQ(full.run(input), want.at(m.outputs[0])) << f << " sample " << s;
    }
  }
}

// Softmax on random rows, at the fixtures' input scales and others: the TFLite path's
// kernel is TFLM's bit for bit; the runtime's default softmax (exp table in Q16, exact
// division; what ONNX imports use) differs from it by at most 1 in a few outputs.
TEST(TfliteInt8, SoftmaxAgainstTflmOnRandomRows) {
  std::mt19937 rng(5);
  int differ = 0, total = 0, max_diff = 0;
  for (float scale : {0.01f, 0.05f, 0.0917319f, 0.144693f, 0.3f, 1.0f, 4.0f}) {
    for (float beta : {1.0f, 0.5f}) {
      uint32_t table[256], tflm_table[256];
      k::build_softmax_table(scale, beta, table);
      k::build_softmax_tflm_table(scale, beta, tflm_table);
      for (int depth : {1, 2, 4, 10, 12, 100, 256}) {
        for (int r = 0; r < 100; ++r) {
          const auto x = random_input(rng, depth);
          const auto n = static_cast<size_t>(depth);
          std::vector<int8_t> ours(n), exact(n), tflm(n);
          ASSERT_EQ(k::ref::softmax(table, 1, depth, x.data(), ours.data()), k::Status::kOk);
          ASSERT_EQ(k::ref::softmax_tflm(tflm_table, 1, depth, x.data(), exact.data()),
                    k::Status::kOk);
          tflm_reference::softmax(scale, beta, depth, x.data(), tflm.data());
          ASSERT_EQ(exact, tflm) << "scale " << scale << " beta " << beta << " depth " << depth;
          for (size_t i = 0; i < n; ++i, ++total) {
            const int d = std::abs(int{ours[i]} - int{tflm[i]});
            differ += d != 0;
            max_diff = std::max(max_diff, d);
          }
        }
      }
    }
  }
  std::printf("default softmax: %d of %d outputs differ from TFLM's (max %d)\n", differ, total,
              max_diff);
  EXPECT_LE(max_diff, 1);
}

TEST(TfliteInt8, FloatModelsAreNotTakenByTheInt8Path) {
  for (const char* f : kFloatFixtures) {
    const TfliteModel m = read_fixture(f);
    EXPECT_FALSE(tflite_is_int8(m)) << f;
    auto c = compile_tflite_int8(m, {});
    ASSERT_FALSE(c) << f;
    EXPECT_NE(c.error().message.find("float"), std::string::npos) << c.error().message;
  }
}

// Float models through the compiler's calibration and quantization, against the float
// graph, and the published int8 twin (TFLite's own quantization) against the same float
// graph: the second is the check that the float import is right. Generated inputs
// (seeded): hello_world x uniform in [0, 2 pi] (its training domain); KWS uniform in the
// int8 twin's input range [-123.4, 25.7] per element, and in [-11.7, 11.7] (20 of the
// twin's input steps around its zero point); no MFCC data is in the repo, so these are
// noise, not speech. Calibration on 100 such samples, evaluation on 300 others.
struct FloatCase {
  const char* float_model;
  const char* int8_twin;
  float lo, hi;
  std::vector<int64_t> calib_shape;  // per sample, as the compiler reads it (NCHW / N x K)
};

TEST(TfliteFloat, CalibratedInt8AgreesWithFloatAndWithTheInt8Twin) {
  const FloatCase cases[] = {
      {kFloatFixtures[0], kInt8Fixtures[0], 0.0f, 6.2831853f, {1}},
      {kFloatFixtures[1], kInt8Fixtures[2], -123.4f, 25.7f, {1, 49, 10}},
      {kFloatFixtures[1], kInt8Fixtures[2], -11.7f, 11.7f, {1, 49, 10}},
  };
  std::printf("%-28s %15s %8s %14s %14s %14s %14s\n", "model", "inputs", "samples", "ours top1 agr",
              "ours max|err|", "twin top1 agr", "twin max|err|");
  for (const auto& fc : cases) {
    const TfliteModel fm = read_fixture(fc.float_model);
    auto graph = tflite_float_graph(fm);
    ASSERT_TRUE(graph) << graph.error().message;
    std::mt19937 rng(23);
    std::uniform_real_distribution<float> u(fc.lo, fc.hi);
    int64_t per = 1;
    for (int64_t d : fc.calib_shape) per *= d;
    auto make = [&](int64_t n) {
      NpyArray a;
      a.dtype = "<f4";
      a.shape = {n};
      a.shape.insert(a.shape.end(), fc.calib_shape.begin(), fc.calib_shape.end());
      for (int64_t i = 0; i < n * per; ++i) a.values.push_back(u(rng));
      return a;
    };
    const std::map<std::string, NpyArray> calib = {{"x", make(100)}};
    auto ours = compile_graph(*graph, calib, nullptr, {});
    ASSERT_TRUE(ours) << ours.error().message;
    const TfliteModel twin_model = read_fixture(fc.int8_twin);
    auto twin = compile_tflite_int8(twin_model, {});
    ASSERT_TRUE(twin) << twin.error().message;
    Loaded ours_rt(ours->artifact), twin_rt(twin->artifact);
    const auto& tin = twin_model.tensors[static_cast<size_t>(twin_model.inputs[0])];
    const auto& tout = twin_model.tensors[static_cast<size_t>(twin_model.outputs[0])];
    const k::TensorQuant twin_in{tin.scale[0], static_cast<int32_t>(tin.zero_point[0])};
    const k::TensorQuant twin_out{tout.scale[0], static_cast<int32_t>(tout.zero_point[0])};
    const k::TensorQuant ours_in{ours->report.input_scale, ours->report.input_zero_point};
    const k::TensorQuant ours_out{ours->report.output_scale, ours->report.output_zero_point};
    FloatExecutor exec(*graph);
    const NpyArray eval = make(300);
    int ours_agree = 0, twin_agree = 0;
    double ours_err = 0, twin_err = 0;
    auto argmax = [](const std::vector<float>& v) {
      return std::max_element(v.begin(), v.end()) - v.begin();
    };
    for (int64_t i = 0; i < eval.shape[0]; ++i) {
      const auto x = nhwc_sample(eval, i);
      ASSERT_TRUE(exec.run(x));
      const auto& want = exec.output();
      for (auto [rt, qi, qo, agree, err] :
           {std::tuple{&ours_rt, ours_in, ours_out, &ours_agree, &ours_err},
            std::tuple{&twin_rt, twin_in, twin_out, &twin_agree, &twin_err}}) {
        std::vector<int8_t> in8(x.size());
        for (size_t j = 0; j < x.size(); ++j) in8[j] = k::quantize_value(x[j], qi);
        const auto out8 = rt->run(in8);
        ASSERT_EQ(out8.size(), want.size());
        std::vector<float> got(out8.size());
        for (size_t j = 0; j < got.size(); ++j) {
          got[j] = k::dequantize_value(out8[j], qo);
          *err = std::max(*err, static_cast<double>(std::fabs(got[j] - want[j])));
        }
        *agree += argmax(got) == argmax(want);
      }
    }
    const double n = static_cast<double>(eval.shape[0]);
    EXPECT_GE(ours_agree, 0.9 * n) << fc.float_model;  // our quantization keeps the float top-1
    const std::string range =
        "[" + std::to_string(fc.lo).substr(0, 6) + ", " + std::to_string(fc.hi).substr(0, 5) + "]";
    std::printf("%-28s %15s %8lld %13.1f%% %14.4f %13.1f%% %14.4f\n",
                fc.float_model + std::string(fc.float_model).rfind('/') + 1, range.c_str(),
                static_cast<long long>(eval.shape[0]), 100.0 * ours_agree / n, ours_err,
                100.0 * twin_agree / n, twin_err);
  }
}

// The function fleetd, the worker and tinyfleet-compile run, and the tool itself: a .tflite
// is recognised by its identifier and compiled without calibration data.
TEST(TfliteCompileTool, CompilesTheKwsModelForAClassWithoutCalibration) {
  auto bytes = read_file(fixture_path(kInt8Fixtures[2]));
  ASSERT_TRUE(bytes);
  auto catalog = read_file(TINYFLEET_DEVICE_CLASS_CATALOG);
  ASSERT_TRUE(catalog);
  const auto entries = nlohmann::json::parse(*catalog);
  auto r = compile_for_class(*bytes, "", "", "cortex-m4-256k", entries["cortex-m4-256k"].dump());
  ASSERT_FALSE(r.refused) << r.refusal_reason;
  const auto report = nlohmann::json::parse(r.report_json);
  EXPECT_EQ(report["model_format"], "tflite");
  EXPECT_EQ(report["input_zero_point"], 83);  // the model's own
  EXPECT_EQ(r.outputs.self_tests.size(), 2u);
  EXPECT_GT(report["arena_bytes"].get<int>(), 0);
  auto with_val =
      compile_for_class(*bytes, "", "x", "cortex-m4-256k", entries["cortex-m4-256k"].dump());
  EXPECT_TRUE(with_val.refused);
  EXPECT_NE(with_val.refusal_reason.find("not supported for int8 TFLite"), std::string::npos);
  // A float TFLite model goes through calibration, so it needs calibration data.
  auto float_bytes = read_file(fixture_path(kFloatFixtures[1]));
  ASSERT_TRUE(float_bytes);
  auto no_calib =
      compile_for_class(*float_bytes, "", "", "cortex-m4-256k", entries["cortex-m4-256k"].dump());
  EXPECT_TRUE(no_calib.refused);
  EXPECT_NE(no_calib.refusal_reason.find("calibration data is required"), std::string::npos);

  const std::string out = ::testing::TempDir() + "/kws.tfa";
  const std::string cmd = std::string(TINYFLEET_COMPILE_TOOL) + " " +
                          fixture_path(kInt8Fixtures[2]) + " --class cortex-m4-256k -o " + out +
                          " --json > " + out + ".json";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto written = read_file(out);
  ASSERT_TRUE(written);
  EXPECT_EQ(*written, r.artifact);
  const std::string without_calib = std::string(TINYFLEET_COMPILE_TOOL) + " " +
                                    fixture_path("models/digits_mlp.onnx") +
                                    " --class cortex-m4-256k > /dev/null 2>&1";
  EXPECT_EQ(WEXITSTATUS(std::system(without_calib.c_str())), 2);  // ONNX still needs --calib
}

// Format 1.1 artifacts (positional int_params for Add, Mul, Mean and Softmax's TFLM mode,
// written by the compiler before typed options; tests/fixtures/models/artifacts_1_1) still
// load, and run exactly like the same models compiled now, whose parameters are typed
// options (format 1.2) instead.
TEST(TfliteCompileTool, Format11ArtifactsRunLikeTheirTypedRecompiles) {
  struct Case {
    const char *stored, *model, *calib;
  };
  const Case cases[] = {
      {"float_ops", "models/tflite_ops/float_ops.tflite", "models/tflite_ops/float_ops.npz"},
      {"micro_speech", kInt8Fixtures[1], nullptr}};
  std::mt19937 rng(11);
  for (const auto& c : cases) {
    auto stored = read_file(fixture_path(std::string("models/artifacts_1_1/") + c.stored + ".tfa"));
    ASSERT_TRUE(stored) << c.stored;
    const std::string out = ::testing::TempDir() + "/" + c.stored + "_1_2.tfa";
    std::string cmd = std::string(TINYFLEET_COMPILE_TOOL) + " " + fixture_path(c.model) +
                      " --class cortex-m4-256k -o " + out + " > /dev/null";
    if (c.calib) cmd += std::string(" --calib ") + fixture_path(c.calib);
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    auto typed = read_file(out);
    ASSERT_TRUE(typed);
    // The stored form has int_params and no options on those kinds; the new one the reverse.
    const auto* old_model = tinyfleet::artifact::GetModel(stored->data());
    const auto* new_model = tinyfleet::artifact::GetModel(typed->data());
    EXPECT_EQ(old_model->format_minor(), 1);
    EXPECT_EQ(new_model->format_minor(), 2);
    ASSERT_EQ(old_model->operators()->size(), new_model->operators()->size());
    int parameterised = 0;
    for (uint32_t i = 0; i < old_model->operators()->size(); ++i) {
      const auto* o = old_model->operators()->Get(i);
      const auto* n = new_model->operators()->Get(i);
      ASSERT_EQ(o->kind(), n->kind());
      const bool has = o->kind() == tinyfleet::artifact::OpKind_Add ||
                       o->kind() == tinyfleet::artifact::OpKind_Mul ||
                       o->kind() == tinyfleet::artifact::OpKind_Mean ||
                       o->kind() == tinyfleet::artifact::OpKind_Softmax;
      if (!has) continue;
      ++parameterised;
      EXPECT_TRUE(o->int_params() && o->int_params()->size() > 0) << c.stored << " op " << i;
      EXPECT_EQ(o->options_type(), tinyfleet::artifact::OperatorOptions_NONE);
      // A Tflm Softmax keeps int_params [1] beside its options, for runtimes before 1.2.
      const bool tflm = n->kind() == tinyfleet::artifact::OpKind_Softmax;
      EXPECT_EQ(n->int_params() != nullptr, tflm) << c.stored << " op " << i;
      EXPECT_NE(n->options_type(), tinyfleet::artifact::OperatorOptions_NONE);
    }
    EXPECT_GT(parameterised, 0) << c.stored;
    Loaded old_run(*stored), new_run(*typed);
    ASSERT_EQ(old_run.interp.input(0).type, tinyfleet::artifact::TensorType_Int8);
    for (int sample = 0; sample < 20; ++sample) {
      const auto input = random_input(rng, old_run.interp.input(0).dims.elements());
      EXPECT_EQ(old_run.run(input), new_run.run(input)) << c.stored << " sample " << sample;
    }
  }
}

}  // namespace

namespace {
// The float import layer by layer against the int8 twin run by the TFLM reference: where
// the twin's value is inside its range (not clamped at -128 or 127), the two agree within
// a few of the twin's quantization steps.
TEST(TfliteFloat, EveryLayerAgreesWithTheInt8TwinWhereTheTwinDoesNotSaturate) {
  // The published hello_world float and int8 files are separate trainings (their hidden
  // units differ; the functions agree), so only its output is compared.
  const char* pairs[][2] = {{kFloatFixtures[0], kInt8Fixtures[0]},
                            {kFloatFixtures[1], kInt8Fixtures[2]}};
  const bool per_layer[] = {false, true};
  int pair = -1;
  std::mt19937 rng(29);
  for (const auto& p : pairs) {
    ++pair;
    const TfliteModel fm = read_fixture(p[0]), tm = read_fixture(p[1]);
    ASSERT_EQ(fm.operators.size(), tm.operators.size());
    auto graph = tflite_float_graph(fm);
    ASSERT_TRUE(graph) << graph.error().message;
    FloatExecutor exec(*graph);
    const tflm_reference::Runner ref(tm);
    const auto& tin = tm.tensors[static_cast<size_t>(tm.inputs[0])];
    std::vector<int> outside(tm.operators.size(), 0), inside(tm.operators.size(), 0);
    for (int s = 0; s < 20; ++s) {
      // An int8 input of the twin, and the same values in float.
      // Within 20 steps of the zero point: small enough that no layer of the twin clamps
      // often (clamped values change every layer after them).
      std::uniform_int_distribution<int> d(std::max<int>(-128, tin.zero_point[0] - 20),
                                           std::min<int>(127, tin.zero_point[0] + 20));
      std::vector<int8_t> q(static_cast<size_t>(tin.elements()));
      for (auto& v : q) v = static_cast<int8_t>(d(rng));
      std::vector<float> x(q.size());
      for (size_t j = 0; j < q.size(); ++j)
        x[j] = tin.scale[0] * static_cast<float>(q[j] - tin.zero_point[0]);
      ASSERT_TRUE(exec.run(x));
      const auto values = ref.run(q);
      for (size_t k = 0; k < tm.operators.size(); ++k) {
        const auto& t = tm.tensors[static_cast<size_t>(tm.operators[k].outputs[0])];
        const auto& tq = values.at(tm.operators[k].outputs[0]);
        const auto& f = exec.value(graph->nodes[k].outputs[0]);
        ASSERT_EQ(f.size(), tq.size());
        for (size_t j = 0; j < f.size(); ++j) {
          if (tq[j] == -128 || tq[j] == 127) continue;
          const float deq = t.scale[0] * static_cast<float>(tq[j] - t.zero_point[0]);
          ++inside[k];
          outside[k] += std::fabs(deq - f[j]) > 4 * t.scale[0] + 0.1f * std::fabs(f[j]);
        }
      }
    }
    for (size_t k = 0; k < tm.operators.size(); ++k) {
      std::printf("%s %s: %d of %d unclamped values off by more than 4 steps + 10%%\n", p[0],
                  tm.operators[k].name.c_str(), outside[k], inside[k]);
      const bool softmax = tm.operators[k].code == tflite::BuiltinOperator_SOFTMAX;
      if ((per_layer[pair] || k + 1 == tm.operators.size()) && !softmax) {
        EXPECT_GT(inside[k], 0);
        EXPECT_LE(outside[k], inside[k] / 10) << p[0] << " " << tm.operators[k].name;
      }
    }
  }
}
}  // namespace
