// tinyfleet-compile model.onnx --class cortex-m4-256k --calib calib.npz [--val val.npz]
//                   [-o model.tfa] [--json] [--catalog catalog.json]
// tinyfleet-compile model.tflite --class cortex-m4-256k [-o model.tfa] [--json]
// Compiles a float ONNX model, or an int8 TFLite model (recognised by its "TFL3"
// identifier; its own quantization is kept, so no --calib), to an int8 artifact for a
// device class and prints the report (a table, or JSON). Exit 0: compiled; 1: refused
// (reason printed); 2: usage.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "tinyfleet/optimizer_service/class_compiler.h"
#include "tinyfleet/optimizer_service/npz.h"
#include "tinyfleet/optimizer_service/tflite_import.h"

using namespace tinyfleet::optimizer_service;

namespace {
int usage() {
  std::cerr
      << "usage: tinyfleet-compile model.onnx --class NAME --calib calib.npz [--val val.npz]\n"
         "                         [-o out.tfa] [--json] [--catalog catalog.json]\n"
         "       tinyfleet-compile model.tflite --class NAME [-o out.tfa] [--json]\n"
         "                         [--catalog catalog.json]   (int8 TFLite: no --calib)\n";
  return 2;
}
}  // namespace

int main(int argc, char** argv) {
  std::string model, cls, calib, val, out, catalog = TINYFLEET_DEFAULT_CATALOG;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--class")
      cls = next();
    else if (a == "--calib")
      calib = next();
    else if (a == "--val")
      val = next();
    else if (a == "-o")
      out = next();
    else if (a == "--catalog")
      catalog = next();
    else if (a == "--json")
      json = true;
    else if (!a.empty() && a[0] != '-' && model.empty())
      model = a;
    else
      return usage();
  }
  if (model.empty() || cls.empty()) return usage();
  auto refuse = [&](const std::string& why) {
    if (json) {
      std::cout << nlohmann::json{{"refused", true}, {"reason", why}}.dump(2) << "\n";
    } else {
      std::cerr << "tinyfleet-compile: refused: " << why << "\n";
    }
    return 1;
  };
  auto catalog_text = read_file(catalog);
  if (!catalog_text) return refuse(catalog_text.error().message);
  const auto entries = nlohmann::json::parse(*catalog_text, nullptr, false);
  if (entries.is_discarded() || !entries.is_object())
    return refuse(catalog + " is not a JSON object");
  if (!entries.contains(cls)) {
    std::string known;
    for (auto it = entries.begin(); it != entries.end(); ++it) {
      known += (known.empty() ? "" : ", ") + it.key();
    }
    return refuse("unknown device class '" + cls + "'; known: " + known);
  }
  auto onnx = read_file(model);
  if (!onnx) return refuse(onnx.error().message);
  if (calib.empty() && !is_tflite(*onnx)) return usage();  // an int8 TFLite needs none
  std::string calib_bytes;
  if (!calib.empty()) {
    auto c = read_file(calib);
    if (!c) return refuse(c.error().message);
    calib_bytes = std::move(*c);
  }
  std::string val_bytes;
  if (!val.empty()) {
    auto v = read_file(val);
    if (!v) return refuse(v.error().message);
    val_bytes = std::move(*v);
  }
  // The same function fleetd and the Optimizer worker run.
  auto r = compile_for_class(*onnx, calib_bytes, val_bytes, cls, entries[cls].dump());
  if (r.refused) return refuse(r.refusal_reason);
  if (!out.empty()) {
    std::ofstream f(out, std::ios::binary);
    f << r.artifact;
    if (!f) return refuse("cannot write " + out);
  }
  auto report = nlohmann::json::parse(r.report_json);
  if (json) {
    report["refused"] = false;
    std::cout << report.dump(2) << "\n";
    return 0;
  }
  auto num = [&](const char* k) { return report.value(k, 0.0); };
  std::printf("%-28s %s\n", "model", model.c_str());
  std::printf("%-28s %s\n", "device class", cls.c_str());
  std::printf("%-28s %.0f (%.0f activations fused)\n", "operators", num("operators"),
              num("fused_activations"));
  std::printf("%-28s %.0f\n", "MACs per inference", num("macs"));
  std::printf("%-28s %.0f B\n", "weights", num("weight_bytes"));
  std::printf("%-28s %.0f B\n", "artifact", num("artifact_bytes"));
  std::printf("%-28s %.0f B (greedy by size %.0f B, naive %.0f B; %.0f operators in place)\n",
              "arena", num("arena_bytes"), num("greedy_arena_bytes"), num("naive_arena_bytes"),
              num("in_place_operators"));
  std::printf("%-28s %.0f B\n", "scratch", num("scratch_bytes"));
  std::printf("%-28s %.3f ms\n", "latency (estimate)", num("latency_ms"));
  std::printf("%-28s %.4f mJ\n", "energy (estimate)", num("energy_mj"));
  if (report.contains("validation")) {
    const auto& v = report["validation"];
    std::printf("%-28s %.2f %% float, %.2f %% int8 (drop %.2f) on %d samples\n", "top-1",
                v.value("float_top1", 0.0), v.value("int8_top1", 0.0), v.value("drop", 0.0),
                v.value("samples", 0));
  }
  if (!out.empty()) std::printf("%-28s %s\n", "written", out.c_str());
  return 0;
}
