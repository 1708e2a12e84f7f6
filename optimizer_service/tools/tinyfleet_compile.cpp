// tinyfleet-compile model.onnx --class cortex-m4-256k --calib calib.npz [--val val.npz]
//                   [-o model.tfa] [--json] [--catalog catalog.json]
// Compiles a float ONNX model to an int8 artifact for a device class and prints the
// report (a table, or JSON). Exit 0: compiled; 1: refused (reason printed); 2: usage.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "tinyfleet/optimizer_service/compiler.h"
#include "tinyfleet/optimizer_service/device_class.h"

using namespace tinyfleet::optimizer_service;

namespace {
int usage() {
  std::cerr
      << "usage: tinyfleet-compile model.onnx --class NAME --calib calib.npz [--val val.npz]\n"
         "                         [-o out.tfa] [--json] [--catalog catalog.json]\n";
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
  if (model.empty() || cls.empty() || calib.empty()) return usage();
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
  auto classes = parse_catalog(*catalog_text);
  if (!classes) return refuse(classes.error().message);
  const DeviceClass* target = nullptr;
  std::string known;
  for (const auto& c : *classes) {
    known += (known.empty() ? "" : ", ") + c.name;
    if (c.name == cls) target = &c;
  }
  if (!target) return refuse("unknown device class '" + cls + "'; known: " + known);
  auto onnx = read_file(model);
  if (!onnx) return refuse(onnx.error().message);
  auto calib_data = read_npz(calib);
  if (!calib_data) return refuse(calib_data.error().message);
  std::map<std::string, NpyArray> val_data;
  if (!val.empty()) {
    auto v = read_npz(val);
    if (!v) return refuse(v.error().message);
    val_data = std::move(*v);
  }
  CompileOptions opts;
  opts.device_class = cls;
  opts.model_name = model;
  auto compiled = compile_model(*onnx, *calib_data, val.empty() ? nullptr : &val_data, opts);
  if (!compiled) return refuse(compiled.error().message);
  const auto& r = compiled->report;
  if (auto why = fit_refusal(r, *target); !why.empty()) return refuse(why);
  const auto est = estimate(r, *target);
  if (!out.empty()) {
    std::ofstream f(out, std::ios::binary);
    f << compiled->artifact;
    if (!f) return refuse("cannot write " + out);
  }
  if (json) {
    nlohmann::json j = {{"refused", false},
                        {"device_class", cls},
                        {"nodes", r.nodes},
                        {"fused_activations", r.fused_activations},
                        {"macs", r.macs},
                        {"weight_bytes", r.weight_bytes},
                        {"artifact_bytes", r.artifact_bytes},
                        {"arena_bytes", r.arena_bytes},
                        {"naive_arena_bytes", r.naive_arena_bytes},
                        {"scratch_bytes", r.scratch_bytes},
                        {"latency_ms", est.latency_ms},
                        {"energy_mj", est.energy_mj}};
    if (r.validation_samples) {
      j["validation"] = {{"samples", r.validation_samples},
                         {"float_top1", r.float_top1},
                         {"int8_top1", r.int8_top1},
                         {"drop", r.float_top1 - r.int8_top1}};
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("%-28s %s\n", "model", model.c_str());
  std::printf("%-28s %s\n", "device class", cls.c_str());
  std::printf("%-28s %d (%d activations fused)\n", "operators", r.nodes, r.fused_activations);
  std::printf("%-28s %lld\n", "MACs per inference", static_cast<long long>(r.macs));
  std::printf("%-28s %llu B\n", "weights", static_cast<unsigned long long>(r.weight_bytes));
  std::printf("%-28s %llu B\n", "artifact", static_cast<unsigned long long>(r.artifact_bytes));
  std::printf("%-28s %u B (naive %u B)\n", "arena (greedy by size)", r.arena_bytes,
              r.naive_arena_bytes);
  std::printf("%-28s %u B\n", "scratch", r.scratch_bytes);
  std::printf("%-28s %.3f ms\n", "latency (estimate)", est.latency_ms);
  std::printf("%-28s %.4f mJ\n", "energy (estimate)", est.energy_mj);
  if (r.validation_samples) {
    std::printf("%-28s %.2f %% float, %.2f %% int8 (drop %.2f) on %d samples\n", "top-1",
                r.float_top1, r.int8_top1, r.float_top1 - r.int8_top1, r.validation_samples);
  }
  if (!out.empty()) std::printf("%-28s %s\n", "written", out.c_str());
  return 0;
}
