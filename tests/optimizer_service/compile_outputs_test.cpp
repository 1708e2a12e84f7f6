// The compiler's typed outputs: self-test vectors equal to running the written artifact on
// the kernels' runtime, a drift baseline from the calibration set (or the validation set),
// a memory plan consistent with the arena, modelled cycles; their wire form; the class
// parser's bounds and the delta budget.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tinyfleet/kernels/runtime/interpreter.h"
#include "tinyfleet/optimizer_service/class_compiler.h"
#include "tinyfleet/optimizer_service/compile_outputs_proto.h"
#include "tinyfleet/optimizer_service/device_class.h"
#include "tinyfleet/testing/environment.h"

using namespace tinyfleet::optimizer_service;
using tinyfleet::testing::fixture_path;

namespace {

const char* kM4 =
    R"({"ram_bytes":262144,"flash_bytes":1048576,"clock_hz":80000000,"runtime_ram_bytes":4096,
        "runtime_flash_bytes":24576,"cycles_per_mac":{"conv":1.2,"depthwise":2.0,
        "fully_connected":1.1,"other":4.0}})";

ClassCompileOutcome compile(const std::string& model, bool with_validation) {
  auto onnx = read_file(fixture_path("models/" + model + ".onnx"));
  auto calib = read_file(fixture_path("data/digits_calib.npz"));
  auto val = read_file(fixture_path("data/digits_val.npz"));
  EXPECT_TRUE(onnx && calib && val);
  return compile_for_class(*onnx, *calib, with_validation ? *val : "", "cortex-m4-256k", kM4);
}

// The artifact run here, apart from the compiler: the input bytes in, the output out.
std::string run_artifact(const std::string& artifact, const std::string& input) {
  std::vector<uint8_t> bytes(artifact.size() + 16);
  auto* a =
      reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(bytes.data()) + 15) & ~uintptr_t{15});
  std::memcpy(a, artifact.data(), artifact.size());
  tinyfleet::kernels::Interpreter interp;
  EXPECT_EQ(interp.load(a, artifact.size()).status, tinyfleet::kernels::LoadStatus::kOk);
  std::vector<uint8_t> arena(interp.arena_bytes());
  interp.bind_arena(arena.data(), arena.size());
  EXPECT_EQ(interp.input(0).bytes, input.size());
  std::memcpy(interp.input(0).data, input.data(), input.size());
  EXPECT_EQ(interp.invoke().status, tinyfleet::kernels::LoadStatus::kOk);
  return std::string(static_cast<const char*>(interp.output(0).data), interp.output(0).bytes);
}

TEST(CompileOutputs, SelfTestsAreTheArtifactsOwnOutputs) {
  for (const char* model : {"digits_cnn", "digits_resnet", "digits_mlp"}) {
    const auto o = compile(model, false);
    ASSERT_FALSE(o.refused) << o.refusal_reason;
    ASSERT_EQ(o.outputs.self_tests.size(), 2u) << model;
    const auto& zero = o.outputs.self_tests[0];
    const auto& ramp = o.outputs.self_tests[1];
    ASSERT_FALSE(zero.input.empty());
    // First input: the input zero point everywhere; second: (i*37+11)%256-128.
    tinyfleet::kernels::Interpreter probe;
    std::vector<uint8_t> copy(o.artifact.size() + 16);
    auto* a = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(copy.data()) + 15) &
                                         ~uintptr_t{15});
    std::memcpy(a, o.artifact.data(), o.artifact.size());
    ASSERT_EQ(probe.load(a, o.artifact.size()).status, tinyfleet::kernels::LoadStatus::kOk);
    for (char c : zero.input) EXPECT_EQ(c, static_cast<char>(probe.input(0).zero_point));
    for (size_t i = 0; i < ramp.input.size(); ++i) {
      ASSERT_EQ(static_cast<int8_t>(ramp.input[i]), static_cast<int>((i * 37 + 11) % 256) - 128);
    }
    for (const auto& t : o.outputs.self_tests) {
      EXPECT_EQ(t.output, run_artifact(o.artifact, t.input)) << model;
    }
    EXPECT_NE(zero.output, ramp.output) << model << ": two inputs, one answer";
  }
}

TEST(CompileOutputs, DriftBaselineFromCalibrationOrValidation) {
  const auto calib_only = compile("digits_cnn", false);
  const auto with_val = compile("digits_cnn", true);
  ASSERT_FALSE(calib_only.refused || with_val.refused);
  for (const auto* o : {&calib_only, &with_val}) {
    const auto& d = o->outputs.drift_baseline;
    ASSERT_EQ(d.class_histogram.size(), 10u);
    double total = 0;
    for (float h : d.class_histogram) total += h;
    EXPECT_NEAR(total, 1.0, 1e-5);
    EXPECT_GT(d.mean_top1_confidence, 0.5f);
    ASSERT_EQ(d.channel_mean.size(), 1u);
    ASSERT_EQ(d.channel_std.size(), 1u);
    EXPECT_GT(d.channel_std[0], 0.1f);
  }
  // With a validation set the baseline describes it (data/README: mean 0.304).
  EXPECT_NEAR(with_val.outputs.drift_baseline.channel_mean[0], 0.304, 0.01);
  // The calibration set is another sample of the same digits, not the same numbers.
  EXPECT_NE(calib_only.outputs.drift_baseline.channel_mean[0],
            with_val.outputs.drift_baseline.channel_mean[0]);
  EXPECT_NEAR(calib_only.outputs.drift_baseline.channel_mean[0], 0.304, 0.05);
}

TEST(CompileOutputs, MemoryPlanIsConsistentWithTheArena) {
  for (const char* model : {"digits_cnn", "digits_resnet", "digits_dscnn"}) {
    const auto o = compile(model, false);
    ASSERT_FALSE(o.refused) << o.refusal_reason;
    const auto& plan = o.outputs.memory_plan;
    EXPECT_EQ(check_outputs(o.outputs), "");
    ASSERT_GE(plan.buffers.size(), 2u);
    uint32_t top = 0;
    for (const auto& b : plan.buffers) {
      EXPECT_FALSE(b.tensor.empty());
      EXPECT_GT(b.size, 0u);
      EXPECT_LE(b.first_step, b.last_step);
      top = std::max(top, b.offset + b.size);
    }
    EXPECT_EQ(top, plan.arena_bytes) << model << ": the arena is the plan's peak";
    EXPECT_NE(o.report_json.find("\"arena_bytes\":" + std::to_string(plan.arena_bytes)),
              std::string::npos);
    // Two buffers overlapping in bytes and alive together: a Reshape's alias (same place,
    // same life) or an in-place pair (the input dies at the step its output is born).
    for (size_t i = 0; i < plan.buffers.size(); ++i) {
      for (size_t j = i + 1; j < plan.buffers.size(); ++j) {
        const auto& x = plan.buffers[i];
        const auto& y = plan.buffers[j];
        const bool bytes = x.offset < y.offset + y.size && y.offset < x.offset + x.size;
        const bool time = x.first_step <= y.last_step && y.first_step <= x.last_step;
        if (!bytes || !time) continue;
        const bool alias =
            x.offset == y.offset && x.first_step == y.first_step && x.last_step == y.last_step;
        const bool in_place = x.last_step == y.first_step || y.last_step == x.first_step;
        EXPECT_TRUE(alias || in_place) << model << ": " << x.tensor << " and " << y.tensor;
      }
    }
    // The graph input is there from step -1.
    EXPECT_TRUE(std::any_of(plan.buffers.begin(), plan.buffers.end(),
                            [](const PlannedBuffer& b) { return b.first_step == -1; }));
  }
}

TEST(CompileOutputs, ModelledCyclesFollowTheClass) {
  const auto o = compile("digits_cnn", false);
  ASSERT_FALSE(o.refused);
  // digits_cnn: 23,200 MACs, all convolution and FC, at 1.1-1.2 cycles, plus the others.
  EXPECT_GT(o.outputs.modelled_cycles, 23200u);
  EXPECT_LT(o.outputs.modelled_cycles, 23200u * 4);
  const auto report = o.report_json;
  EXPECT_NE(report.find("\"cycles\":"), std::string::npos);
}

TEST(CompileOutputs, WireFormRoundTripsAndIsChecked) {
  const auto o = compile("digits_cnn", true);
  ASSERT_FALSE(o.refused);
  tinyfleet::v1::CompileResponse r;
  to_proto(o.outputs, &r);
  std::string wire;
  ASSERT_TRUE(r.SerializeToString(&wire));
  tinyfleet::v1::CompileResponse back;
  ASSERT_TRUE(back.ParseFromString(wire));
  auto got = from_proto(back);
  ASSERT_TRUE(got) << got.error().message;
  ASSERT_EQ(got->self_tests.size(), 2u);
  EXPECT_EQ(got->self_tests[1].output, o.outputs.self_tests[1].output);
  EXPECT_EQ(got->drift_baseline.class_histogram, o.outputs.drift_baseline.class_histogram);
  EXPECT_EQ(got->memory_plan.buffers.size(), o.outputs.memory_plan.buffers.size());
  EXPECT_EQ(got->memory_plan.buffers.back().last_step,
            o.outputs.memory_plan.buffers.back().last_step);
  EXPECT_EQ(got->modelled_cycles, o.outputs.modelled_cycles);

  auto outside = back;
  outside.mutable_memory_plan()->mutable_buffers(0)->set_offset(o.outputs.memory_plan.arena_bytes);
  auto e1 = from_proto(outside);
  ASSERT_FALSE(e1);
  EXPECT_NE(e1.error().message.find("arena"), std::string::npos) << e1.error().message;
  auto many = back;
  for (int i = 0; i < 10; ++i) *many.add_self_tests() = back.self_tests(0);
  auto e2 = from_proto(many);
  ASSERT_FALSE(e2);
  EXPECT_NE(e2.error().message.find("self-tests"), std::string::npos);
  auto none = back;
  none.clear_self_tests();
  EXPECT_FALSE(from_proto(none));
}

TEST(DeviceClassSpec, RefusesBadFieldsByName) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"ram_bytes":1024.5,"flash_bytes":1,"clock_hz":1})", "ram_bytes"},
      {R"({"ram_bytes":1e30,"flash_bytes":1,"clock_hz":1})", "ram_bytes"},
      {R"({"ram_bytes":1,"flash_bytes":-1,"clock_hz":1})", "flash_bytes"},
      {R"({"ram_bytes":1,"flash_bytes":1,"clock_hz":"fast"})", "clock_hz"},
      {R"({"ram_bytes":1,"flash_bytes":1,"clock_hz":1,"simd":[1]})", "simd"},
      {R"({"ram_bytes":1,"flash_bytes":1,"clock_hz":1,"simd":"dsp"})", "simd"},
      {R"({"ram_bytes":1,"flash_bytes":1,"clock_hz":1,"cycles_per_mac":{"conv":-1}})",
       "cycles_per_mac.conv"},
      {R"({"ram_bytes":1,"flash_bytes":1,"clock_hz":1,"active_mw":"lots"})", "active_mw"},
      {R"({"ram_bytes":1,"flash_bytes":1,"clock_hz":1,"runtime_ram_bytes":[]})",
       "runtime_ram_bytes"},
      {R"({"ram_bytes":1,"flash_bytes":1,"clock_hz":1,"delta_codecs":["Bsdiff"]})",
       "delta_codecs' entry 'Bsdiff'"},
      {R"({"ram_bytes":1,"flash_bytes":1,"clock_hz":1,"delta_codecs":["Full","Full","Full",)"
       R"("Full","Full","Full"]})",
       "delta_codecs"},
  };
  for (const auto& [json, field] : cases) {
    auto c = parse_device_class("x", json);
    ASSERT_FALSE(c) << json;
    EXPECT_NE(c.error().message.find(field), std::string::npos) << c.error().message;
  }
  const std::string huge = R"({"ram_bytes":1,"flash_bytes":1,"clock_hz":1,"description":")" +
                           std::string(kMaxDeviceClassJsonBytes, 'a') + "\"}";
  auto big = parse_device_class("x", huge);
  ASSERT_FALSE(big);
  EXPECT_NE(big.error().message.find("bytes, at most"), std::string::npos);
  auto ok = parse_device_class("x", kM4);
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->cycles_per_mac.at("depthwise"), 2.0);
}

TEST(DeviceClassSpec, DeltaBudgetComesFromRam) {
  DeviceClass mcu;
  mcu.ram_bytes = 512 * 1024;
  EXPECT_EQ(mcu.delta_budget().max_window_log, 14u);
  EXPECT_EQ(mcu.delta_budget().max_decoder_bytes, 64u * 1024);
  DeviceClass linux_board;
  linux_board.ram_bytes = 512 * 1024 + 1;
  EXPECT_EQ(linux_board.delta_budget().max_window_log, 17u);
  EXPECT_EQ(linux_board.delta_budget().max_decoder_bytes, 0u);
  EXPECT_TRUE(linux_board.delta_budget().codecs.empty());  // every codec
  // The Cortex-M4 firmware decodes TensorRange only, and its class says so.
  auto m4 = parse_device_class(
      "m4", R"({"ram_bytes":262144,"flash_bytes":1,"clock_hz":1,"delta_codecs":["TensorRange"]})");
  ASSERT_TRUE(m4) << m4.error().message;
  EXPECT_EQ(m4->delta_budget().codecs, std::vector<std::string>{"TensorRange"});
}

}  // namespace
