// The TFLite operators beyond the published fixtures (MEAN, PAD, PADV2, CONCATENATION,
// LOGISTIC, TANH, RELU, RELU6, HARD_SWISH, SQUEEZE, STRIDED_SLICE, TRANSPOSE): the generated models
// of tests/fixtures/models/tflite_ops (tests/fixtures/scripts/make_tflite_ops.py)
// compiled with their own quantization, run on the kernels' runtime and compared bit for
// bit with the independent reference of TFLM's kernels (tflm_reference.h); the
// element-wise tables and MEAN again at many other quantizations; refusals by name; the
// float path (every operator in one float model, a dynamic-range model) against float
// goldens computed by the generator script, then through calibration to int8.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "loaded_artifact.h"
#include "tflm_reference.h"
#include "tinyfleet/kernels/ops/quantization.h"
#include "tinyfleet/kernels/runtime/interpreter.h"
#include "tinyfleet/optimizer_service/float_executor.h"
#include "tinyfleet/optimizer_service/npz.h"
#include "tinyfleet/optimizer_service/tflite_import.h"
#include "tinyfleet/testing/environment.h"

using namespace tinyfleet::optimizer_service;
using tinyfleet::testing::fixture_path;
namespace k = tinyfleet::kernels;

namespace {

TfliteModel read_op_fixture(const std::string& name) {
  auto bytes = read_file(fixture_path("models/tflite_ops/" + name + ".tflite"));
  EXPECT_TRUE(bytes) << name;
  if (!bytes) return {};
  auto m = read_tflite(*bytes);
  EXPECT_TRUE(m) << name << ": " << (m ? "" : m.error().message);
  return m ? *m : TfliteModel{};
}

using Loaded = tinyfleet::testing::LoadedArtifact;

// Every int8 value in order first (the [1, 256] models see each once), then random ones.
std::vector<int8_t> input_for(std::mt19937& rng, int64_t n, int sample) {
  std::vector<int8_t> v(static_cast<size_t>(n));
  std::uniform_int_distribution<int> d(-128, 127);
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = static_cast<int8_t>(sample == 0 ? static_cast<int>(i % 256) - 128 : d(rng));
  }
  return v;
}

// Compiles `m`, runs `samples` inputs on the runtime and on the reference; the number of
// samples whose output bytes differ (0 expected).
int mismatches(const TfliteModel& m, const std::string& what, int samples, std::mt19937& rng) {
  auto compiled = compile_tflite_int8(m, {});
  EXPECT_TRUE(compiled) << what << ": " << (compiled ? "" : compiled.error().message);
  if (!compiled) return samples;
  Loaded loaded(compiled->artifact);
  const tflm_reference::Runner ref(m);
  const int64_t n = m.tensors[static_cast<size_t>(m.inputs[0])].elements();
  int bad = 0;
  for (int s = 0; s < samples; ++s) {
    const auto input = input_for(rng, n, s);
    const auto want = ref.run(input).at(m.outputs[0]);
    const auto got = loaded.run(input);
    if (got != want) {
      ++bad;
      for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
        if (got[i] != want[i]) {
          ADD_FAILURE() << what << " sample " << s << " element " << i << " input "
                        << int{input[i % input.size()]} << ": got " << int{got[i]} << ", TFLM "
                        << int{want[i]};
          break;
        }
      }
    }
  }
  return bad;
}

const char* const kOpFixtures[] = {
    "logistic",      "tanh",   "relu",           "relu6",     "hard_swish",    "mean", "pad",
    "concatenation", "layout", "fold_constants", "transpose", "strided_slice", "padv2"};

TEST(TfliteOps, EveryOperatorFixtureMatchesTflmBitForBit) {
  std::mt19937 rng(17);
  for (const char* f : kOpFixtures) {
    const TfliteModel m = read_op_fixture(f);
    ASSERT_FALSE(m.operators.empty()) << f;
    for (const auto& line : tflite_operator_coverage(m)) {
      EXPECT_NE(line.find(": mapped"), std::string::npos) << f << ": " << line;
    }
    EXPECT_EQ(mismatches(m, f, 50, rng), 0) << f;
  }
}

// The element-wise tables at many input and output quantizations (the output's kept at
// TFLite's fixed one for LOGISTIC and TANH, at the input's for RELU6), every input value.
TEST(TfliteOps, ActivationTablesMatchTflmAtManyQuantizations) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> log_scale(-7.0f, 1.0f);
  std::uniform_int_distribution<int> zp(-128, 127);
  for (const char* f : {"logistic", "tanh", "relu", "relu6", "hard_swish"}) {
    TfliteModel m = read_op_fixture(f);
    ASSERT_EQ(m.operators.size(), 1u);
    auto& x = m.tensors[static_cast<size_t>(m.inputs[0])];
    auto& y = m.tensors[static_cast<size_t>(m.outputs[0])];
    const std::string name = f;
    for (int trial = 0; trial < 40; ++trial) {
      x.scale = {std::exp2(log_scale(rng))};
      x.zero_point = {zp(rng)};
      if (name == "relu6") {
        y.scale = x.scale;
        y.zero_point = x.zero_point;
      } else if (name == "relu" || name == "hard_swish") {
        y.scale = {x.scale[0] * std::exp2(std::uniform_real_distribution<float>(-2, 2)(rng))};
        y.zero_point = {zp(rng)};
      }
      const std::string what =
          name + " scale " + std::to_string(x.scale[0]) + " zp " + std::to_string(x.zero_point[0]);
      auto compiled = compile_tflite_int8(m, {});
      if (!compiled) {  // only what TFLM's Prepare refuses too
        EXPECT_EQ(name, "hard_swish") << what << ": " << compiled.error().message;
        continue;
      }
      EXPECT_EQ(mismatches(m, what, 1, rng), 0) << what;
    }
  }
}

// MEAN at other shapes and quantizations (counts that are and are not powers of two).
TEST(TfliteOps, MeanMatchesTflmAtManyShapesAndScales) {
  std::mt19937 rng(11);
  const TfliteModel base = read_op_fixture("mean");
  std::uniform_real_distribution<float> log_ratio(-3.0f, 3.0f);
  std::uniform_int_distribution<int> zp(-128, 127);
  for (auto hw : {std::pair{1, 1}, std::pair{2, 2}, std::pair{3, 7}, std::pair{8, 8},
                  std::pair{25, 5}, std::pair{49, 10}}) {
    for (int trial = 0; trial < 6; ++trial) {
      TfliteModel m = base;
      auto& x = m.tensors[static_cast<size_t>(m.inputs[0])];
      auto& y = m.tensors[static_cast<size_t>(m.outputs[0])];
      x.shape = {1, hw.first, hw.second, 8};
      x.scale = {0.05f};
      x.zero_point = {zp(rng)};
      y.scale = {0.05f * std::exp2(log_ratio(rng))};
      y.zero_point = {zp(rng)};
      EXPECT_EQ(mismatches(m, "mean " + std::to_string(hw.first) + "x" + std::to_string(hw.second),
                           20, rng),
                0);
    }
  }
}

TEST(TfliteOps, LayoutOperatorsFoldToReshapesAndConstants) {
  auto layout = fold_tflite_layout(read_op_fixture("layout"));
  ASSERT_TRUE(layout) << layout.error().message;
  ASSERT_EQ(layout->operators.size(), 4u);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_STREQ(tflite_operator_name(layout->operators[i].code), "RESHAPE");
  EXPECT_NE(layout->operators[1].name.find("SQUEEZE"), std::string::npos);
  auto folded = fold_tflite_layout(read_op_fixture("fold_constants"));
  ASSERT_TRUE(folded) << folded.error().message;
  ASSERT_EQ(folded->operators.size(), 2u);  // the TRANSPOSE and STRIDED_SLICE are gone
  const TfliteTensor& w1 = folded->tensors[static_cast<size_t>(folded->operators[0].inputs[1])];
  const TfliteTensor& wt = folded->tensors[0 + 1];  // w_in_out [8, 6]
  ASSERT_EQ(w1.shape, (std::vector<int32_t>{6, 8}));
  ASSERT_EQ(w1.data.size(), 48u);
  for (int o = 0; o < 6; ++o)
    for (int i = 0; i < 8; ++i) EXPECT_EQ(w1.data[o * 8 + i], wt.data[i * 6 + o]);
  EXPECT_EQ(w1.scale, wt.scale);  // per channel, now along dimension 0
  EXPECT_EQ(w1.quantized_dimension, 0);
}

// TRANSPOSE and STRIDED_SLICE that move an activation's elements stay as gathers over
// the input: counts and element steps, size-1 extents dropped, right-aligned.
TEST(TfliteOps, ElementMovesStayAsGathers) {
  auto t = fold_tflite_layout(read_op_fixture("transpose"));
  ASSERT_TRUE(t) << t.error().message;
  ASSERT_EQ(t->operators.size(), 3u);
  EXPECT_STREQ(tflite_operator_name(t->operators[0].code), "TRANSPOSE");
  EXPECT_EQ(t->operators[0].inputs.size(), 1u);  // perm folded into the gather
  const auto& c = t->operators[0].copy;          // [1, 2, 4, 8] perm [0, 3, 1, 2]
  EXPECT_EQ((std::vector<int32_t>(c.count, c.count + 4)), (std::vector<int32_t>{1, 8, 2, 4}));
  EXPECT_EQ((std::vector<int32_t>(c.step, c.step + 4)), (std::vector<int32_t>{0, 1, 32, 8}));
  EXPECT_EQ(c.offset, 0);
  auto s = fold_tflite_layout(read_op_fixture("strided_slice"));
  ASSERT_TRUE(s) << s.error().message;
  const auto& r = s->operators[1].copy;  // [1, 3, 3, 3], W reversed, batch shrunk
  EXPECT_EQ((std::vector<int32_t>(r.count, r.count + 4)), (std::vector<int32_t>{1, 3, 3, 3}));
  EXPECT_EQ((std::vector<int32_t>(r.step, r.step + 4)), (std::vector<int32_t>{0, 9, -3, 1}));
  EXPECT_EQ(r.offset, 6);
}

TEST(TfliteOps, RefusesByNameWithTheReason) {
  auto exp = compile_tflite_int8(read_op_fixture("refused_exp"), {});
  ASSERT_FALSE(exp);
  EXPECT_NE(exp.error().message.find("operator 'EXP' (builtin code 47) is not supported"),
            std::string::npos)
      << exp.error().message;
  // A slice with an ellipsis, a PADV2 whose constant has another quantization, and a
  // MEAN over channels.
  TfliteModel layout = read_op_fixture("layout");
  layout.operators[2].ellipsis_mask = 1;
  auto slice = compile_tflite_int8(layout, {});
  ASSERT_FALSE(slice);
  EXPECT_NE(slice.error().message.find("'STRIDED_SLICE': ellipsis and new-axis masks"),
            std::string::npos)
      << slice.error().message;
  TfliteModel padv2 = read_op_fixture("padv2");
  padv2.tensors[static_cast<size_t>(padv2.operators[0].inputs[2])].zero_point = {0};
  auto pad_value = compile_tflite_int8(padv2, {});
  ASSERT_FALSE(pad_value);
  EXPECT_NE(pad_value.error().message.find("'PADV2': constant_values must be one constant int8"),
            std::string::npos)
      << pad_value.error().message;
  TfliteModel mean = read_op_fixture("mean");
  auto& axes = mean.tensors[static_cast<size_t>(mean.operators[0].inputs[1])];
  const int32_t channels[2] = {1, 3};
  std::memcpy(axes.data.data(), channels, 8);
  auto over_c = compile_tflite_int8(mean, {});
  ASSERT_FALSE(over_c);
  EXPECT_NE(over_c.error().message.find("'MEAN': supported: the mean over height and width"),
            std::string::npos)
      << over_c.error().message;
}

// The float path: the float graph against the generator's float goldens (computed in
// double by tests/fixtures/scripts/make_tflite_ops.py), then compiled through calibration
// (on the first half of the samples) and run as int8 on the rest.
struct FloatRun {
  double max_rel_error = 0;  // float graph vs golden, relative to the golden's max |y|
  double int8_max_error = 0, output_range = 0;
  int agree = 0, samples = 0;
};

FloatRun run_float_fixture(const std::string& name) {
  FloatRun out;
  const TfliteModel m = read_op_fixture(name);
  EXPECT_FALSE(tflite_is_int8(m)) << name;
  auto graph = tflite_float_graph(m);
  EXPECT_TRUE(graph) << name << ": " << (graph ? "" : graph.error().message);
  auto data = read_npz(fixture_path("models/tflite_ops/" + name + ".npz"));
  EXPECT_TRUE(data) << name;
  if (!graph || !data) return out;
  const NpyArray& x = data->at("x");
  const NpyArray& y = data->at("y");
  const int64_t n = x.shape[0], classes = y.shape[1];
  double ymax = 0;
  for (double v : y.values) ymax = std::max(ymax, std::fabs(v));
  FloatExecutor exec(*graph);
  auto compiled = compile_graph(*graph, {{"x", x}}, nullptr, {});
  EXPECT_TRUE(compiled) << name << ": " << (compiled ? "" : compiled.error().message);
  if (!compiled) return out;
  Loaded loaded(compiled->artifact);
  const k::TensorQuant qin{compiled->report.input_scale, compiled->report.input_zero_point};
  const k::TensorQuant qout{compiled->report.output_scale, compiled->report.output_zero_point};
  for (int64_t i = 0; i < n; ++i) {
    const auto sample = nhwc_sample(x, i);
    EXPECT_TRUE(exec.run(sample));
    const auto& got = exec.output();
    EXPECT_EQ(static_cast<int64_t>(got.size()), classes);
    for (int64_t j = 0; j < classes; ++j) {
      const double want = y.values[static_cast<size_t>(i * classes + j)];
      out.max_rel_error =
          std::max(out.max_rel_error, std::fabs(got[static_cast<size_t>(j)] - want) / ymax);
    }
    std::vector<int8_t> in8(sample.size());
    for (size_t j = 0; j < sample.size(); ++j) in8[j] = k::quantize_value(sample[j], qin);
    const auto out8 = loaded.run(in8);
    std::vector<float> deq(out8.size());
    for (size_t j = 0; j < out8.size(); ++j) {
      deq[j] = k::dequantize_value(out8[j], qout);
      out.int8_max_error = std::max(out.int8_max_error, std::fabs(double{deq[j]} - got[j]));
    }
    out.agree += std::max_element(deq.begin(), deq.end()) - deq.begin() ==
                 std::max_element(got.begin(), got.end()) - got.begin();
    ++out.samples;
  }
  out.output_range = ymax;
  return out;
}

TEST(TfliteFloatOps, EveryFloatOperatorMatchesTheGoldensAndQuantizes) {
  std::printf("%-10s %22s %9s %14s %16s\n", "model", "float max rel. error", "samples",
              "int8 top1 agr", "int8 max |err|");
  for (const char* name : {"float_ops", "hybrid_fc"}) {
    const FloatRun r = run_float_fixture(name);
    std::printf("%-10s %22.2e %9d %13.1f%% %9.4f of %.2f\n", name, r.max_rel_error, r.samples,
                r.samples ? 100.0 * r.agree / r.samples : 0.0, r.int8_max_error, r.output_range);
    EXPECT_LT(r.max_rel_error, 1e-5) << name;
    EXPECT_GE(r.agree, r.samples * 8 / 10) << name;
    EXPECT_LT(r.int8_max_error, 0.1 * r.output_range) << name;
  }
}

// Dynamic-range ("hybrid") weights are dequantized (scale x (q - zero point), per channel
// of the quantized dimension) before anything else sees them.
TEST(TfliteFloatOps, HybridWeightsAreDequantizedFirst) {
  const TfliteModel m = read_op_fixture("hybrid_fc");
  const TfliteTensor& w = m.tensors[static_cast<size_t>(m.operators[0].inputs[1])];
  ASSERT_EQ(w.type, kTfliteInt8);
  ASSERT_EQ(w.scale.size(), 4u);
  auto graph = tflite_float_graph(m);
  ASSERT_TRUE(graph) << graph.error().message;
  const Tensor& gw = graph->tensors[static_cast<size_t>(graph->nodes[0].inputs[1])];
  ASSERT_TRUE(gw.constant);
  ASSERT_EQ(gw.data.size(), 64u);
  for (size_t i = 0; i < 64; ++i) {
    EXPECT_EQ(gw.data[i], w.scale[i / 16] * static_cast<float>(static_cast<int8_t>(w.data[i])))
        << i;
  }
  EXPECT_FALSE(compile_tflite_int8(m, {}));  // not an int8 model
}

}  // namespace
