#include "tinyfleet/optimizer_service/compile_outputs.h"

#include <cstring>

#include "tinyfleet/kernels/runtime/interpreter.h"

namespace tinyfleet::optimizer_service {

namespace k = tinyfleet::kernels;

Result<std::vector<SelfTestVector>> run_self_tests(const std::string& artifact) {
  // The runtime reads the FlatBuffer in place: a 16-byte aligned copy.
  std::vector<uint8_t> bytes(artifact.size() + 16);
  auto* a =
      reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(bytes.data()) + 15) & ~uintptr_t{15});
  std::memcpy(a, artifact.data(), artifact.size());
  k::Interpreter interp;
  if (auto err = interp.load(a, artifact.size()); err.status != k::LoadStatus::kOk) {
    return CompileError{std::string("does not load on the runtime: ") + err.what};
  }
  std::vector<uint8_t> arena(interp.arena_bytes());
  if (auto err = interp.bind_arena(arena.data(), arena.size()); err.status != k::LoadStatus::kOk) {
    return CompileError{std::string("does not bind its arena: ") + err.what};
  }
  if (interp.input_count() != 1 || interp.output_count() != 1) {
    return CompileError{"self-tests need one input and one output"};
  }
  const k::TensorView in = interp.input(0);
  std::vector<SelfTestVector> out;
  for (int v = 0; v < 2; ++v) {
    SelfTestVector t;
    t.input.resize(in.bytes);
    for (size_t i = 0; i < t.input.size(); ++i) {
      t.input[i] =
          static_cast<char>(v == 0 ? in.zero_point : static_cast<int>((i * 37 + 11) % 256) - 128);
    }
    std::memcpy(in.data, t.input.data(), t.input.size());
    if (auto err = interp.invoke(); err.status != k::LoadStatus::kOk) {
      return CompileError{std::string("does not run on the runtime: ") + err.what};
    }
    const k::TensorView o = interp.output(0);
    t.output.assign(static_cast<const char*>(o.data), o.bytes);
    out.push_back(std::move(t));
  }
  return out;
}

std::string check_outputs(const CompileOutputs& o) {
  if (o.self_tests.empty() || o.self_tests.size() > kMaxSelfTests) {
    return "self-tests: " + std::to_string(o.self_tests.size()) + " vectors, expected 1 to " +
           std::to_string(kMaxSelfTests);
  }
  for (const auto& t : o.self_tests) {
    if (t.input.empty() || t.output.empty() || t.input.size() > kMaxSelfTestBytes ||
        t.output.size() > kMaxSelfTestBytes) {
      return "self-tests: an input or output of " + std::to_string(t.input.size()) + " / " +
             std::to_string(t.output.size()) + " bytes, expected 1 to " +
             std::to_string(kMaxSelfTestBytes);
    }
  }
  const auto& d = o.drift_baseline;
  if (d.class_histogram.size() > kMaxBaselineValues || d.channel_mean.size() > kMaxBaselineValues ||
      d.channel_mean.size() != d.channel_std.size()) {
    return "drift baseline: " + std::to_string(d.class_histogram.size()) + " classes, " +
           std::to_string(d.channel_mean.size()) + " channel means and " +
           std::to_string(d.channel_std.size()) + " deviations";
  }
  if (o.memory_plan.buffers.size() > kMaxPlannedBuffers) {
    return "memory plan: " + std::to_string(o.memory_plan.buffers.size()) + " buffers";
  }
  for (const auto& b : o.memory_plan.buffers) {
    if (uint64_t{b.offset} + b.size > o.memory_plan.arena_bytes || b.first_step > b.last_step) {
      return "memory plan: buffer '" + b.tensor + "' at " + std::to_string(b.offset) + " (" +
             std::to_string(b.size) + " B, steps " + std::to_string(b.first_step) + " to " +
             std::to_string(b.last_step) + ") is not inside the " +
             std::to_string(o.memory_plan.arena_bytes) + " B arena or its steps are reversed";
    }
  }
  return "";
}

}  // namespace tinyfleet::optimizer_service
