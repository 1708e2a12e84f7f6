// Pruned channels as real exports have them (weights ~1e-30, subnormal, all zero;
// tests/fixtures/models/constructs/degenerate_*.onnx): the compile succeeds with and
// without validation data, the artifact loads on the kernels' runtime (so every bias
// and requantization is in range), and the int8 outputs agree with the float model; a
// single-layer channel whose float output is a constant (relu(bias)) gives exactly that
// constant, quantized; behind further quantized layers (degenerate_chain), within three
// output steps like every other value.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "tinyfleet/kernels/ops/quantization.h"
#include "tinyfleet/kernels/runtime/interpreter.h"
#include "tinyfleet/optimizer_service/compiler.h"
#include "tinyfleet/optimizer_service/float_executor.h"
#include "tinyfleet/optimizer_service/npz.h"
#include "tinyfleet/optimizer_service/onnx_import.h"
#include "tinyfleet/testing/environment.h"

using namespace tinyfleet::optimizer_service;
namespace k = tinyfleet::kernels;
using tinyfleet::testing::fixture_path;

namespace {

class Degenerate : public ::testing::TestWithParam<std::string> {};

TEST_P(Degenerate, Int8GivesWhatTheFloatModelGives) {
  const std::string name = GetParam();
  auto onnx = read_file(fixture_path("models/constructs/" + name + ".onnx"));
  auto data = read_npz(fixture_path("models/constructs/" + name + ".npz"));
  ASSERT_TRUE(onnx && data);
  const NpyArray& x = data->at("x");
  const NpyArray& y = data->at("y");
  const std::map<std::string, NpyArray> calib{{"x", x}};

  // Without validation data: still loaded and run (self-tests) before success.
  auto bare = compile_model(*onnx, calib, nullptr, {});
  ASSERT_TRUE(bare) << bare.error().message;
  EXPECT_FALSE(bare->self_tests.empty());

  // The artifact on the runtime, sample by sample, against the float golden.
  std::vector<uint8_t> bytes(bare->artifact.size() + 16);
  auto* a =
      reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(bytes.data()) + 15) & ~uintptr_t{15});
  std::memcpy(a, bare->artifact.data(), bare->artifact.size());
  k::Interpreter interp;
  const auto loaded = interp.load(a, bare->artifact.size());
  ASSERT_EQ(loaded.status, k::LoadStatus::kOk) << loaded.what;
  std::vector<uint8_t> arena(interp.arena_bytes());
  ASSERT_EQ(interp.bind_arena(arena.data(), arena.size()).status, k::LoadStatus::kOk);
  const auto in = interp.input(0);
  const k::TensorQuant qin{in.scale, in.zero_point};
  const auto out = interp.output(0);
  const k::TensorQuant qout{out.scale, out.zero_point};
  const int64_t samples = x.shape[0];
  const size_t per = static_cast<size_t>(y.size() / samples);
  std::vector<std::vector<float>> want(static_cast<size_t>(samples)), got(want.size());
  for (int64_t i = 0; i < samples; ++i) {
    const auto input = nhwc_sample(x, i);
    ASSERT_EQ(input.size(), in.bytes);
    for (size_t j = 0; j < input.size(); ++j)
      static_cast<int8_t*>(in.data)[j] = k::quantize_value(input[j], qin);
    ASSERT_EQ(interp.invoke().status, k::LoadStatus::kOk);
    ASSERT_EQ(out.bytes, per);
    want[static_cast<size_t>(i)] = nhwc_sample(y, i);
    for (size_t j = 0; j < per; ++j) {
      got[static_cast<size_t>(i)].push_back(
          k::dequantize_value(static_cast<const int8_t*>(out.data)[j], qout));
    }
  }
  int constant_elements = 0;
  for (size_t j = 0; j < per; ++j) {
    bool constant = true;  // the same float value for every input
    for (const auto& w : want) constant = constant && w[j] == want[0][j];
    constant_elements += constant;
    for (size_t i = 0; i < want.size(); ++i) {
      // relu(bias) of one layer: exactly its quantized value. Otherwise three output steps.
      const bool exact = constant && name != "degenerate_chain";
      const float tolerance = exact ? 0.5f * qout.scale + 1e-6f : 3.0f * qout.scale;
      EXPECT_LE(std::fabs(got[i][j] - want[i][j]), tolerance)
          << name << " sample " << i << " element " << j << (constant ? " (constant)" : "");
    }
  }
  EXPECT_GT(constant_elements, 0) << name << ": the model has no pruned channel";

  // With validation data too.
  NpyArray labels;
  labels.dtype = "<i8";
  labels.shape = {samples};
  labels.values.assign(static_cast<size_t>(samples), 0.0);
  const std::map<std::string, NpyArray> val{{"x", x}, {"y", labels}};
  auto validated = compile_model(*onnx, calib, &val, {});
  ASSERT_TRUE(validated) << validated.error().message;
}

INSTANTIATE_TEST_SUITE_P(Pruned, Degenerate,
                         ::testing::Values("degenerate_conv", "degenerate_fc", "degenerate_chain"),
                         [](const auto& p) { return p.param; });

}  // namespace
