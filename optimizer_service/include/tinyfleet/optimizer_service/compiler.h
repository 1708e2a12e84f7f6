#pragma once

// ONNX + calibration data -> an int8 artifact the kernels' runtime runs, with a report:
// import, passes, post-training quantization (per-channel symmetric int8 weights,
// per-tensor asymmetric int8 activations from min/max calibration, int32 bias), memory
// plan, artifact, and validation of float against int8 on a labelled set.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tinyfleet/optimizer_service/calibration.h"
#include "tinyfleet/optimizer_service/compile_outputs.h"
#include "tinyfleet/optimizer_service/graph.h"
#include "tinyfleet/optimizer_service/npz.h"
#include "tinyfleet/optimizer_service/result.h"

namespace tinyfleet::optimizer_service {

struct CompileOptions {
  std::string device_class = "generic";
  std::string model_name = "model";
  CalibrationMethod calibration = CalibrationMethod::kMinMax;
  double percentile = 99.99;  // for kPercentile
  // Bounds on what the compiler runs (graph_cost.h): a model past them is refused before
  // calibration. 2^30 multiply-accumulates is seconds an inference on a 100 MHz MCU;
  // 2^24 activation elements (64 MB as floats) is far past any class's RAM.
  int64_t max_work = int64_t{1} << 30;
  int64_t max_activation_elements = int64_t{1} << 24;
  // Patch-based execution (memory_planner.h): a chain of window operators run in bands
  // of rows when that lowers the arena (artifact format 1.3).
  bool patches = true;
};

struct LayerSqnr {
  std::string tensor;
  double sqnr_db = 0;
};

struct CompileReport {
  int nodes = 0;
  int fused_activations = 0;
  int fused_pads = 0;        // Pad nodes become convolution padding
  int folded_constants = 0;  // scalar Mul/Add folded into weights
  int removed_no_ops = 0;    // zero Pads, one-input Concats, same-shape Reshapes
  int qdq_scales_kept = 0;   // activations quantized as the QDQ model says
  int64_t macs = 0;
  int64_t conv_macs = 0, depthwise_macs = 0, fc_macs = 0;
  int64_t other_ops_elements = 0;   // outputs of element-wise, pooling and table operators
  uint64_t weight_bytes = 0;        // constants in the artifact (int8 weights, int32 biases)
  uint32_t arena_bytes = 0;         // our plan (in-place execution, order search)
  uint32_t greedy_arena_bytes = 0;  // greedy by size in the ONNX order (TFLite Micro)
  uint32_t naive_arena_bytes = 0;   // every activation its own buffer
  int in_place_operators = 0;       // operators writing over their own input
  // Patch-based execution: operators banded_first .. banded_first + banded_operators - 1
  // run in `bands` bands of rows (0 operators: none).
  int banded_first = -1, banded_operators = 0, bands = 0;
  uint32_t scratch_bytes = 0;
  uint64_t artifact_bytes = 0;
  int validation_samples = 0;
  double float_top1 = 0;
  double int8_top1 = 0;
  float input_scale = 1;
  int32_t input_zero_point = 0;
  float output_scale = 1;
  int32_t output_zero_point = 0;
  DriftBaseline drift_baseline;       // over the validation set, else the calibration set
  std::vector<LayerSqnr> layer_sqnr;  // per activation, over the validation set
  std::string worst_layer;            // the lowest SQNR
  double compile_ms = 0;
};

struct CompiledModel {
  std::string artifact;
  CompileReport report;
  ArtifactMemoryPlan memory_plan;          // the artifact's arena, buffer by buffer
  std::vector<SelfTestVector> self_tests;  // run_self_tests on the written artifact
};

// `calibration` and `validation` hold "x" (NCHW or N x K float inputs) and, for
// validation, "y" (labels). The written artifact is always loaded and run on the
// kernels' runtime (the self-test vectors); if it does not load or run, the compile is
// refused.
Result<CompiledModel> compile_model(const std::string& onnx,
                                    const std::map<std::string, NpyArray>& calibration,
                                    const std::map<std::string, NpyArray>* validation,
                                    const CompileOptions& options);

// The same from an imported float graph (what compile_model does after import_onnx; the
// TFLite importer's float models come this way).
Result<CompiledModel> compile_graph(Graph g, const std::map<std::string, NpyArray>& calibration,
                                    const std::map<std::string, NpyArray>* validation,
                                    const CompileOptions& options);

}  // namespace tinyfleet::optimizer_service
