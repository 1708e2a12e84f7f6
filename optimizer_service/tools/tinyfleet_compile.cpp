// tinyfleet-compile: compiles a model (ONNX, or TFLite recognised by its "TFL3"
// identifier) to an int8 artifact for a device class and prints the report; `run`
// prints or saves a model's outputs (float graph or int8 artifact) for .npy/.npz inputs.
// `tinyfleet-compile --help` and `tinyfleet-compile run --help` document every flag.
// Exit 0: compiled (ran); 1: refused (reason printed); 2: usage.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "model_runner.h"
#include "tinyfleet/optimizer_service/class_compiler.h"
#include "tinyfleet/optimizer_service/npz.h"
#include "tinyfleet/optimizer_service/tflite_import.h"

using namespace tinyfleet::optimizer_service;

namespace {

struct CompileArgs {
  std::string model, cls, calib, val, out, format = "auto", catalog = TINYFLEET_DEFAULT_CATALOG;
  bool json = false;
};

void print_report(const CompileArgs& a, const nlohmann::json& report) {
  auto num = [&](const char* k) { return report.value(k, 0.0); };
  std::printf("%-28s %s (%s)\n", "model", a.model.c_str(),
              report.value("model_format", std::string("onnx")).c_str());
  std::printf("%-28s %s\n", "device class", a.cls.c_str());
  std::printf("%-28s %.0f (%.0f activations fused)\n", "operators", num("operators"),
              num("fused_activations"));
  std::printf("%-28s %.0f\n", "MACs per inference", num("macs"));
  std::printf("%-28s %.0f B\n", "weights", num("weight_bytes"));
  std::printf("%-28s %.0f B\n", "artifact", num("artifact_bytes"));
  std::printf("%-28s %.0f B (greedy by size %.0f B, naive %.0f B; %.0f operators in place)\n",
              "arena", num("arena_bytes"), num("greedy_arena_bytes"), num("naive_arena_bytes"),
              num("in_place_operators"));
  if (num("banded_operators") > 0) {
    std::printf("%-28s operators %.0f-%.0f in %.0f bands of rows\n", "patch-based execution",
                num("banded_first"), num("banded_first") + num("banded_operators") - 1,
                num("bands"));
  }
  std::printf("%-28s %.0f B\n", "scratch", num("scratch_bytes"));
  std::printf("%-28s %.3f ms\n", "latency (estimate)", num("latency_ms"));
  std::printf("%-28s %.4f mJ\n", "energy (estimate)", num("energy_mj"));
  if (report.contains("validation")) {
    const auto& v = report["validation"];
    std::printf("%-28s %.2f %% float, %.2f %% int8 (drop %.2f) on %d samples\n", "top-1",
                v.value("float_top1", 0.0), v.value("int8_top1", 0.0), v.value("drop", 0.0),
                v.value("samples", 0));
  }
  if (!a.out.empty()) std::printf("%-28s %s\n", "written", a.out.c_str());
}

int compile(const CompileArgs& a) {
  auto refuse = [&](const std::string& why) {
    if (a.json) {
      std::cout << nlohmann::json{{"refused", true}, {"reason", why}}.dump(2) << "\n";
    } else {
      std::cerr << "tinyfleet-compile: refused: " << why << "\n";
    }
    return 1;
  };
  auto catalog_text = read_file(a.catalog);
  if (!catalog_text) return refuse(catalog_text.error().message);
  const auto entries = nlohmann::json::parse(*catalog_text, nullptr, false);
  if (entries.is_discarded() || !entries.is_object())
    return refuse(a.catalog + " is not a JSON object");
  if (!entries.contains(a.cls)) {
    std::string known;
    for (auto it = entries.begin(); it != entries.end(); ++it) {
      known += (known.empty() ? "" : ", ") + it.key();
    }
    return refuse("unknown device class '" + a.cls + "'; known: " + known);
  }
  auto model = read_file(a.model);
  if (!model) return refuse(model.error().message);
  if (a.calib.empty() && !is_tflite(*model)) {
    std::cerr << "tinyfleet-compile: an ONNX model needs --calib (see --help)\n";
    return 2;  // an int8 TFLite needs none
  }
  std::string calib_bytes, val_bytes;
  for (auto [path, bytes] : {std::pair{&a.calib, &calib_bytes}, std::pair{&a.val, &val_bytes}}) {
    if (path->empty()) continue;
    auto c = read_file(*path);
    if (!c) return refuse(c.error().message);
    *bytes = std::move(*c);
  }
  // The same function fleetd and the Optimizer worker run.
  auto r = compile_for_class(*model, calib_bytes, val_bytes, a.cls, entries[a.cls].dump(),
                             a.format == "auto" ? "" : a.format);
  if (r.refused) return refuse(r.refusal_reason);
  if (!a.out.empty()) {
    std::ofstream f(a.out, std::ios::binary);
    f << r.artifact;
    if (!f) return refuse("cannot write " + a.out);
  }
  auto report = nlohmann::json::parse(r.report_json);
  if (a.json) {
    report["refused"] = false;
    std::cout << report.dump(2) << "\n";
  } else {
    print_report(a, report);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Compiles a model to an int8 artifact for a device class and prints the report.\n"
      "ONNX models are calibrated on --calib and quantized; a .tflite (FlatBuffer identifier\n"
      "TFL3) that is fully int8 keeps its own quantization (no --calib); a float .tflite is\n"
      "calibrated as ONNX is. Every artifact written was loaded and run on the kernels'\n"
      "runtime first. Exit 0: compiled; 1: refused (the reason is printed); 2: usage.\n"
      "`tinyfleet-compile run --help`: run a model on .npy/.npz inputs.",
      "tinyfleet-compile"};
  app.require_subcommand(0, 1);
  CompileArgs c;
  app.add_option("model", c.model, "the model file: .onnx or .tflite");
  app.add_option("--class", c.cls, "the device class to compile for (a key of the catalog)");
  app.add_option("--calib", c.calib,
                 ".npz of calibration inputs (array \"x\", [N, ...] as the model takes them); "
                 "required for ONNX and float TFLite models");
  app.add_option("--val", c.val,
                 ".npz of validation inputs \"x\" and labels \"y\": top-1 of float and int8 in "
                 "the report");
  app.add_option("-o,--output", c.out, "write the artifact (.tfa) here");
  app.add_option("--format", c.format,
                 "auto (default: TFLite if the file has the TFL3 identifier, else ONNX), onnx "
                 "or tflite; a file not in the declared format is refused")
      ->check(CLI::IsMember({"auto", "onnx", "tflite"}));
  app.add_option("--catalog", c.catalog, "the device-class catalog (JSON)")
      ->default_str(TINYFLEET_DEFAULT_CATALOG);
  app.add_flag("--json", c.json, "print the report (or the refusal) as JSON");

  tools::RunOptions r;
  auto* run = app.add_subcommand(
      "run",
      "Prints (or saves as .npy) a model's outputs for inputs from .npy/.npz: the float graph "
      "(default; what calibration and validation compare against) or, with --int8, the int8 "
      "artifact on the kernels' runtime (inputs quantized and outputs dequantized with the "
      "artifact's scales). ONNX inputs are [N, C, H, W] (or [N, ...]), TFLite ones as the "
      "model takes them; outputs likewise. Exit 0: ran; 1: failed or refused; 2: usage.");
  run->add_option("model", r.model, "the model file: .onnx or .tflite")->required();
  run->add_option("-i,--input", r.input,
                  ".npy, or .npz (array --key, else \"x\", else its only array), "
                  "[N, ...]: N samples")
      ->required();
  run->add_option("--key", r.key, "the .npz array to read (default \"x\")");
  run->add_flag("--int8", r.int8,
                "run the int8 artifact: compiled here (--calib for ONNX and float TFLite) "
                "or given with --artifact");
  run->add_option("--calib", r.calibration, ".npz or .npy of calibration inputs (with --int8)");
  run->add_option("--artifact", r.artifact, "a compiled .tfa to run (implies --int8)");
  run->add_option("-o,--output", r.output,
                  "write the outputs as a float32 .npy [N, ...] instead of printing them");
  run->add_option("--format", r.format, "auto (default), onnx or tflite")
      ->check(CLI::IsMember({"auto", "onnx", "tflite"}));
  run->add_option("--limit", r.limit, "at most this many samples");
  run->add_flag("--json", r.json, "print the outputs as JSON (one object per sample)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (run->parsed()) {
    if (r.format == "auto") r.format.clear();
    return tools::run_model(r);
  }
  if (c.model.empty() || c.cls.empty()) {
    std::cerr << "tinyfleet-compile: a model and --class are required\n" << app.help();
    return 2;
  }
  return compile(c);
}
