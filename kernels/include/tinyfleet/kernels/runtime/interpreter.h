#pragma once

// The static-arena runtime: runs a verified artifact over one caller-provided arena.
// No heap, no exceptions, no RTTI, no OS. Prepare/Eval split as in TFLite Micro:
// load() checks everything once; invoke() only loops.
#include <cstddef>
#include <cstdint>
#if defined(TINYFLEET_RUNTIME_PACKS_WEIGHTS)
#include <memory>
#endif

#include "tinyfleet/kernels/artifact_generated.h"
#include "tinyfleet/kernels/ops/types.h"

namespace tinyfleet::kernels {

enum class LoadStatus : uint8_t {
  kOk = 0,
  kNotVerified,       // the FlatBuffers verifier refused the bytes (truncated, corrupt)
  kWrongIdentifier,   // not a tinyfleet artifact
  kUnsupportedMajor,  // a format version this runtime does not read
  kMisaligned,        // the artifact or a weight buffer is not 16-byte aligned
  kBadTensor,         // a tensor's shape, type, buffer or arena range is invalid
  kBadOperator,       // an operator's kind, arity, types, shapes or parameters are invalid
  kBadGraph,          // graph inputs/outputs invalid, or too many tensors/operators
  kArenaTooSmall,     // the caller's arena is smaller than arena_bytes()
  kNotLoaded,
  kKernelFailed,  // a kernel refused its arguments (cannot happen after load)
};

const char* to_string(LoadStatus status);

// Where a load or run failed: the status, the operator or tensor index, and a static
// message naming the check.
struct RuntimeError {
  LoadStatus status = LoadStatus::kOk;
  int32_t index = -1;
  const char* what = "";
};

struct TensorView {
  void* data = nullptr;
  artifact::TensorType type = artifact::TensorType_Int8;
  Dims dims;
  float scale = 1.0f;
  int32_t zero_point = 0;
  size_t bytes = 0;
};

// Per-operator profiling: the port supplies a cycle (or microsecond) counter; the
// hook gets each operator's elapsed count.
struct Profiler {
  uint32_t (*now)(void* ctx) = nullptr;
  void (*record)(void* ctx, int32_t op_index, artifact::OpKind kind, uint32_t elapsed) = nullptr;
  void* ctx = nullptr;
};

class Interpreter {
 public:
  static constexpr int32_t kMaxTensors = 256;
  static constexpr int32_t kMaxOperators = 256;

  // Verifies the artifact (FlatBuffers verifier plus the runtime's own checks).
  RuntimeError load(const uint8_t* artifact, size_t size);
  // What the arena must hold: the planned tensors plus the largest scratch.
  size_t arena_bytes() const;
  // Binds the arena (16-byte aligned recommended); fails if it is too small.
  RuntimeError bind_arena(uint8_t* arena, size_t size);
  RuntimeError invoke();

  int32_t input_count() const;
  int32_t output_count() const;
  TensorView input(int32_t i) const;
  TensorView output(int32_t i) const;
  const artifact::Model* model() const { return model_; }
  // A view of any tensor of the loaded artifact (registered operators read their other
  // inputs through it); the index must be valid (load() checked the operators' ones).
  TensorView tensor(int32_t index) const { return view(index); }
  void set_profiler(const Profiler& p) { profiler_ = p; }

#if defined(TINYFLEET_RUNTIME_PACKS_WEIGHTS)
  // Host builds (not the Cortex-M library): load() packs the weights of every Conv2D and
  // DepthwiseConv2D that has a packed path on this core (ops/packed_weights.h) once, into
  // one block the interpreter owns (sized before it is filled, freed by the next load()
  // or with the interpreter), and invoke() runs those operators from it
  // (packed_operators.cpp). set_pack_weights(false) before load() runs them as stored.
  void set_pack_weights(bool on) { pack_weights_ = on; }
  int32_t packed_operators() const;
  size_t packed_bytes() const { return packed_bytes_; }
  // Operator `op`'s packed weights and their size, or nullptr and 0.
  const void* packed_weights(int32_t op) const;
  size_t packed_weights_bytes(int32_t op) const;
#endif

 private:
  TensorView view(int32_t tensor) const;
  RuntimeError run(int32_t op_index, const artifact::Operator* op);
  // Patch-based execution (the end of interpreter.cpp): the load-time checks of a format 1.3
  // patch plan, the chain operator whose output `tensor` is when it lives in a band
  // buffer (else -1), and the banded run of the chain.
  static const char* check_patches(const artifact::Model* m);
  static int32_t band_producer(const artifact::Model* m, int32_t tensor);
  RuntimeError run_bands(const artifact::PatchChain* chain);

  const uint8_t* base_ = nullptr;
  const artifact::Model* model_ = nullptr;
  uint8_t* arena_ = nullptr;
  size_t arena_size_ = 0;
  Profiler profiler_;
#if defined(TINYFLEET_RUNTIME_PACKS_WEIGHTS)
  void pack_weights();  // after load()'s checks passed
  bool pack_weights_ = true;
  std::unique_ptr<unsigned char[]> packed_;
  size_t packed_bytes_ = 0;
  uint32_t packed_at_[kMaxOperators] = {};    // operator k's block in packed_,
  uint32_t packed_size_[kMaxOperators] = {};  // and its bytes (0: runs as stored)
#endif
};

}  // namespace tinyfleet::kernels
