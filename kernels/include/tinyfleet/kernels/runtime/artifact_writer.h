#pragma once

// Host side: builds artifacts (the compiler and the tests use it) and lists their
// tensors' byte ranges (the delta encoder matches tensors by name). Not for devices.
#include <cstdint>
#include <string>
#include <vector>

#include "tinyfleet/kernels/artifact_generated.h"
#include "tinyfleet/kernels/ops/elementwise.h"
#include "tinyfleet/kernels/ops/pooling.h"
#include "tinyfleet/kernels/ops/types.h"

namespace tinyfleet::kernels {

struct TensorSpec {
  std::string name;
  artifact::TensorType type = artifact::TensorType_Int8;
  Dims dims;
  std::vector<float> scale;
  std::vector<int32_t> zero_point;
  std::string data;  // constant bytes; empty: lives in the arena at arena_offset
  uint32_t arena_offset = 0;
};

struct OperatorSpec {
  artifact::OpKind kind = artifact::OpKind_Conv2D;
  std::vector<int32_t> inputs, outputs;
  int32_t stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  Padding padding;
  int32_t filter_h = 1, filter_w = 1, depth_multiplier = 1, axis = 0;
  int32_t activation_min = -128, activation_max = 127;
  std::vector<int32_t> requant_multiplier, requant_shift, pad_before, pad_after;
  // Format 1.1's positional parameters of Add, Mul, Mean and Softmax; when set, written
  // instead of their typed options (tests write old artifacts with it).
  std::vector<int32_t> int_params;
  std::vector<int8_t> lut_i8;
  std::vector<uint32_t> lut_u32;
  // Typed options (format 1.1). Transpose, StridedSlice: StridedCopyOptions, 4 counts
  // and steps. Pad with has_pad_value: PadOptions (PADV2's int8 constant).
  int32_t copy_offset = 0;
  std::vector<int32_t> copy_count, copy_step;
  bool has_pad_value = false;
  int8_t pad_value = 0;
  // Format 1.2 (without int_params): Add: AddOptions from `add`, Mul: MulOptions from
  // `mul`, Mean: MeanOptions from `mean` (their activation fields are not written: the
  // operator's activation_min/max are), Softmax: SoftmaxOptions (mode Tflm also writes
  // int_params [1], which runtimes before 1.2 read; this one reads the options).
  AddParams add;
  MulParams mul;
  MeanParams mean;
  artifact::SoftmaxMode softmax_mode = artifact::SoftmaxMode_Table;
};

// Format 1.3: a chain run in bands (artifact.fbs, PatchPlan); operators == 0: none.
// The writer sets the chain's intermediate tensors' arena_offset to tensor_arena_bytes
// (their buffers are at buffer_offsets) and writes format_minor 3; without a chain it
// writes 2, so such artifacts are byte for byte what the 1.2 writer gave.
struct PatchSpec {
  int32_t first_operator = -1, operators = 0, bands = 0;
  std::vector<uint32_t> buffer_offsets;  // one per intermediate (operators - 1)
};

struct ModelSpec {
  std::string device_class;
  std::string model_name;
  std::vector<TensorSpec> tensors;
  std::vector<OperatorSpec> operators;
  std::vector<int32_t> inputs, outputs;
  uint32_t tensor_arena_bytes = 0;
  uint32_t scratch_bytes = 0;
  uint16_t format_major = 1;  // tests write other values to check refusal
  PatchSpec patches;
};

// The artifact bytes, content_sha256 filled in (sha256 of the bytes with that field
// zeroed). The hash field is the last 32 bytes of the artifact, so a delta decoder can
// recompute it from what it has written instead of receiving it.
std::string write_artifact(const ModelSpec& spec);

// What a segment's elements are: the delta encoder codes each kind its own way.
enum class SegmentKind : uint8_t {
  kInt8,        // weights
  kInt32,       // biases, shifts, integer parameters
  kMultiplier,  // requantization multipliers: Q31, normalized to [2^30, 2^31)
  kFloat32,     // scales
};

struct TensorSegment {
  std::string name;
  uint64_t offset = 0;
  uint64_t size = 0;
  SegmentKind kind = SegmentKind::kInt8;
  // The float segment whose element-wise changes this one follows: a layer's
  // requantization multipliers move with its weight scales, its biases inversely.
  std::string follows;
  bool follows_inverse = false;
};
// The named data ranges of an artifact, for deltas that match them by name: constant
// tensors' data ("<tensor>"), their scales ("<tensor>/scale") and the operators'
// requantization vectors ("<output tensor>/requant_multiplier", ".../requant_shift"),
// their integer parameters (".../options": the ints of Add/Mul/Mean/SoftmaxOptions;
// ".../int_params" in older artifacts) and a patch plan's chain and buffer offsets
// ("<first operator's output>/patch", ".../patch_offsets"). Empty when the bytes are not a valid
// artifact.
std::vector<TensorSegment> tensor_segments(const std::string& artifact);

// Checks content_sha256 against the bytes.
bool content_hash_matches(const std::string& artifact);
// Where content_sha256's 32 bytes are, or -1 when the bytes are not a valid artifact.
int64_t content_hash_offset(const std::string& artifact);

}  // namespace tinyfleet::kernels
