#include <nlohmann/json.hpp>

#include "tinyfleet/optimizer_service/compiler.h"
#include "tinyfleet/optimizer_service/device_class.h"
#include "tinyfleet/server/model_compiler.h"

namespace tinyfleet::server {

namespace {

namespace opt = tinyfleet::optimizer_service;

CompileOutcome refused(const std::string& why, nlohmann::json report = nlohmann::json::object()) {
  CompileOutcome o;
  o.refused = true;
  o.refusal_reason = why;
  o.report_json = report.dump();
  return o;
}

// The compiler library in fleetd's own process.
class InProcessCompiler : public ModelCompiler {
 public:
  storage::Expected<CompileOutcome> compile(const CompileInput& in) override {
    auto cls = opt::parse_device_class(in.device_class, in.device_class_json);
    if (!cls) return refused(cls.error().message);
    if (in.calibration_npz.empty()) {
      return refused("calibration data is required to quantize: upload a calibration .npz");
    }
    auto calib = opt::parse_npz(in.calibration_npz);
    if (!calib) return refused("calibration data: " + calib.error().message);
    std::map<std::string, opt::NpyArray> val;
    if (!in.validation_npz.empty()) {
      auto v = opt::parse_npz(in.validation_npz);
      if (!v) return refused("validation data: " + v.error().message);
      val = std::move(*v);
    }
    opt::CompileOptions options;
    options.device_class = in.device_class;
    auto compiled = opt::compile_model(in.onnx, *calib, val.empty() ? nullptr : &val, options);
    if (!compiled) return refused(compiled.error().message);
    const auto& r = compiled->report;
    const auto est = opt::estimate(r, *cls);
    nlohmann::json report = {{"device_class", in.device_class},
                             {"operators", r.nodes},
                             {"fused_activations", r.fused_activations},
                             {"macs", r.macs},
                             {"weight_bytes", r.weight_bytes},
                             {"artifact_bytes", r.artifact_bytes},
                             {"arena_bytes", r.arena_bytes},
                             {"naive_arena_bytes", r.naive_arena_bytes},
                             {"scratch_bytes", r.scratch_bytes},
                             {"latency_ms", est.latency_ms},
                             {"energy_mj", est.energy_mj},
                             {"input_scale", r.input_scale},
                             {"input_zero_point", r.input_zero_point},
                             {"output_scale", r.output_scale},
                             {"output_zero_point", r.output_zero_point}};
    if (r.validation_samples > 0) {
      report["validation"] = {{"samples", r.validation_samples},
                              {"float_top1", r.float_top1},
                              {"int8_top1", r.int8_top1},
                              {"drop", r.float_top1 - r.int8_top1}};
    }
    if (auto why = opt::fit_refusal(r, *cls); !why.empty()) return refused(why, report);
    CompileOutcome o;
    o.artifact = std::move(compiled->artifact);
    o.report_json = report.dump();
    return o;
  }
};

}  // namespace

std::unique_ptr<ModelCompiler> make_in_process_compiler() {
  return std::make_unique<InProcessCompiler>();
}

}  // namespace tinyfleet::server
