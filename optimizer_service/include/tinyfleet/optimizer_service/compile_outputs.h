#pragma once

// What the compiler hands on with each artifact, typed (stored with the artifact and put
// into every offer, so nothing downstream loads the artifact or parses the report):
// self-test vectors, the drift baseline, the memory plan and, per device class, the
// modelled cycles per inference.
#include <cstdint>
#include <string>
#include <vector>

#include "tinyfleet/optimizer_service/result.h"

namespace tinyfleet::optimizer_service {

// An int8 input and the exact int8 output the artifact gives on the kernels' runtime.
struct SelfTestVector {
  std::string input;
  std::string output;
};

// What the calibration or validation set looked like to the float model, shipped to
// devices so they can measure drift: output-class histogram, mean top-1 confidence
// (softmax), and per input channel mean and deviation.
struct DriftBaseline {
  std::vector<float> class_histogram;
  float mean_top1_confidence = 0;
  std::vector<float> channel_mean, channel_std;
};

// One activation buffer of the artifact's arena: bytes [offset, offset + size) hold
// `tensor` from step first_step to last_step of the execution order (step -1: the graph
// input before the first operator; the step after the last operator: the graph output
// read by the caller). Tensors sharing a buffer (a Reshape's output) each have a row.
struct PlannedBuffer {
  std::string tensor;
  uint32_t offset = 0;
  uint32_t size = 0;
  int32_t first_step = 0;
  int32_t last_step = 0;
};

struct ArtifactMemoryPlan {
  uint32_t arena_bytes = 0;  // the artifact's tensor arena
  std::vector<PlannedBuffer> buffers;
};

struct CompileOutputs {
  std::vector<SelfTestVector> self_tests;
  DriftBaseline drift_baseline;
  ArtifactMemoryPlan memory_plan;
  uint64_t modelled_cycles = 0;  // per inference on the class the artifact is for
};

// Loads `artifact` on tinyfleet::kernels_runtime and runs the two self-test inputs every
// offer carries: every byte the input zero point, then byte i = (i * 37 + 11) % 256 - 128.
// An artifact that does not load or run is an error naming why.
Result<std::vector<SelfTestVector>> run_self_tests(const std::string& artifact);

// Limits a reader of compile outputs holds them to (the remote worker's answer).
constexpr size_t kMaxSelfTests = 8;
constexpr size_t kMaxSelfTestBytes = 1u << 20;
constexpr size_t kMaxPlannedBuffers = 1u << 16;
constexpr size_t kMaxBaselineValues = 1u << 16;

// Empty when `outputs` is consistent (bounds above, every buffer inside the arena,
// first_step <= last_step, self-test inputs and outputs non-empty, channel mean and
// deviation of one length); otherwise what is wrong.
std::string check_outputs(const CompileOutputs& outputs);

}  // namespace tinyfleet::optimizer_service
