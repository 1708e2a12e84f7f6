#include "tinyfleet/optimizer_service/class_compiler.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "tinyfleet/optimizer_service/compiler.h"
#include "tinyfleet/optimizer_service/device_class.h"
#include "tinyfleet/optimizer_service/tflite_import.h"

namespace tinyfleet::optimizer_service {

namespace {
ClassCompileOutcome refused(const std::string& why,
                            const nlohmann::json& report = nlohmann::json::object()) {
  ClassCompileOutcome o;
  o.refused = true;
  o.refusal_reason = why;
  o.report_json = report.dump();
  return o;
}
}  // namespace

ClassCompileOutcome compile_for_class(const std::string& onnx, const std::string& calibration_npz,
                                      const std::string& validation_npz,
                                      const std::string& device_class,
                                      const std::string& device_class_json,
                                      const std::string& model_format) {
  auto cls = parse_device_class(device_class, device_class_json);
  if (!cls) return refused(cls.error().message);
  const bool tflite = is_tflite(onnx);
  if (!model_format.empty() && model_format != "onnx" && model_format != "tflite") {
    return refused("model format '" + model_format + "', supported: onnx, tflite");
  }
  if (!model_format.empty() && (model_format == "tflite") != tflite) {
    return refused("the model was declared " + model_format + " but its bytes are " +
                   (tflite ? "TFLite (identifier TFL3)" : "not TFLite (no TFL3 identifier)"));
  }
  CompileOptions options;
  options.device_class = device_class;
  // A .tflite (FlatBuffer identifier "TFL3"): int8 models keep their own quantization,
  // so no calibration data is read; float ones are calibrated as ONNX models are.
  Result<TfliteModel> tfl = CompileError{"not a TFLite model"};
  if (tflite) {
    tfl = read_tflite(onnx);
    if (!tfl) return refused("TFLite model: " + tfl.error().message);
  }
  Result<CompiledModel> compiled = CompileError{"not compiled"};
  if (tflite && tflite_is_int8(*tfl)) {
    if (!validation_npz.empty()) {
      return refused("validation data is not supported for int8 TFLite models yet");
    }
    compiled = compile_tflite_int8(*tfl, options);
  } else {
    if (calibration_npz.empty()) {
      return refused("calibration data is required to quantize: upload a calibration .npz");
    }
    auto calib = parse_npz(calibration_npz);
    if (!calib) return refused("calibration data: " + calib.error().message);
    std::map<std::string, NpyArray> val;
    if (!validation_npz.empty()) {
      auto v = parse_npz(validation_npz);
      if (!v) return refused("validation data: " + v.error().message);
      val = std::move(*v);
    }
    const auto* vp = val.empty() ? nullptr : &val;
    if (tflite) {
      auto g = tflite_float_graph(*tfl);
      if (!g) return refused("TFLite model: " + g.error().message);
      compiled = compile_graph(std::move(*g), *calib, vp, options);
    } else {
      compiled = compile_model(onnx, *calib, vp, options);
    }
  }
  if (!compiled) return refused(compiled.error().message);
  const auto& r = compiled->report;
  const auto est = estimate(r, *cls);
  nlohmann::json report = {{"device_class", device_class},
                           {"model_format", tflite ? "tflite" : "onnx"},
                           {"operators", r.nodes},
                           {"fused_activations", r.fused_activations},
                           {"fused_pads", r.fused_pads},
                           {"folded_constants", r.folded_constants},
                           {"removed_no_ops", r.removed_no_ops},
                           {"qdq_scales_kept", r.qdq_scales_kept},
                           {"macs", r.macs},
                           {"weight_bytes", r.weight_bytes},
                           {"artifact_bytes", r.artifact_bytes},
                           {"arena_bytes", r.arena_bytes},
                           {"naive_arena_bytes", r.naive_arena_bytes},
                           {"greedy_arena_bytes", r.greedy_arena_bytes},
                           {"in_place_operators", r.in_place_operators},
                           {"banded_operators", r.banded_operators},
                           {"banded_first", r.banded_first},
                           {"bands", r.bands},
                           {"scratch_bytes", r.scratch_bytes},
                           {"latency_ms", est.latency_ms},
                           {"energy_mj", est.energy_mj},
                           {"cycles", est.cycles},
                           {"input_scale", r.input_scale},
                           {"input_zero_point", r.input_zero_point},
                           {"output_scale", r.output_scale},
                           {"output_zero_point", r.output_zero_point}};
  report["compile_ms"] = r.compile_ms;
  const auto& d = r.drift_baseline;
  report["drift_baseline"] = {{"class_histogram", d.class_histogram},
                              {"mean_top1_confidence", d.mean_top1_confidence},
                              {"channel_mean", d.channel_mean},
                              {"channel_std", d.channel_std},
                              {"from", r.validation_samples > 0 ? "validation" : "calibration"}};
  if (r.validation_samples > 0) {
    double worst_db = 0;
    for (const auto& l : r.layer_sqnr) {
      if (l.tensor == r.worst_layer) worst_db = l.sqnr_db;
    }
    report["validation"] = {{"samples", r.validation_samples}, {"float_top1", r.float_top1},
                            {"int8_top1", r.int8_top1},        {"drop", r.float_top1 - r.int8_top1},
                            {"worst_layer", r.worst_layer},    {"worst_layer_sqnr_db", worst_db}};
  }
  if (auto why = fit_refusal(r, *cls); !why.empty()) return refused(why, report);
  ClassCompileOutcome o;
  o.artifact = std::move(compiled->artifact);
  o.outputs.self_tests = std::move(compiled->self_tests);
  o.outputs.drift_baseline = r.drift_baseline;
  o.outputs.memory_plan = std::move(compiled->memory_plan);
  o.outputs.modelled_cycles = static_cast<uint64_t>(std::llround(est.cycles));
  if (auto why = check_outputs(o.outputs); !why.empty()) return refused(why, report);
  o.report_json = report.dump();
  return o;
}

}  // namespace tinyfleet::optimizer_service
