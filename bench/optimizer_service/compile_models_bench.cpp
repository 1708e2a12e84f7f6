// Every shared model compiled for every device class: float and int8 top-1, arena
// (naive / greedy by size / ours, and ours over greedy), flash (artifact + runtime), MACs,
// estimated latency and energy, compile time; or the refusal. One table.
//   deploy/local/run-bench.sh bench_compile_models
#include <chrono>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "tinyfleet/optimizer_service/class_compiler.h"
#include "tinyfleet/optimizer_service/npz.h"

using namespace tinyfleet::optimizer_service;

int main() {
  const std::string fixtures = TINYFLEET_FIXTURES;
  auto catalog_text = read_file(TINYFLEET_DEVICE_CLASS_CATALOG);
  if (!catalog_text) return 1;
  const auto catalog = nlohmann::json::parse(*catalog_text);
  const struct {
    const char* model;
    const char* calib;
    const char* val;
  } models[] = {{"digits_mlp", "digits_calib", "digits_val"},
                {"digits_cnn", "digits_calib", "digits_val"},
                {"digits_dscnn", "digits_calib", "digits_val"},
                {"digits_resnet", "digits_calib", "digits_val"},
                {"digits_cnn_v2", "digits_calib", "digits_val"},
                {"variants/digits_cnn_concat", "digits_calib", "digits_val"},
                {"variants/digits_cnn_qdq", "digits_calib", "digits_val"},
                {"breast_cancer_mlp", "breast_cancer_calib", "breast_cancer_val"}};
  std::printf("%-27s %-18s %7s %7s %20s %6s %9s %8s %9s %9s %8s\n", "model", "class", "float%",
              "int8%", "arena naive/greedy/ours", "ours/g", "flash B", "MACs", "lat ms", "mJ",
              "compile");
  for (const auto& m : models) {
    auto onnx = read_file(fixtures + "/models/" + m.model + ".onnx");
    auto calib = read_file(fixtures + "/data/" + m.calib + ".npz");
    auto val = read_file(fixtures + "/data/" + m.val + ".npz");
    if (!onnx || !calib || !val) {
      std::printf("%-27s missing fixture\n", m.model);
      continue;
    }
    for (auto it = catalog.begin(); it != catalog.end(); ++it) {
      const auto t0 = std::chrono::steady_clock::now();
      auto r = compile_for_class(*onnx, *calib, *val, it.key(), it->dump());
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (r.refused) {
        std::printf("%-27s %-18s refused: %s\n", m.model, it.key().c_str(),
                    r.refusal_reason.c_str());
        continue;
      }
      const auto j = nlohmann::json::parse(r.report_json);
      const auto& v = j.at("validation");
      const double flash =
          j.at("artifact_bytes").get<double>() + it->value("runtime_flash_bytes", 0.0);
      const double greedy = j.at("greedy_arena_bytes").get<double>();
      const double ours = j.at("arena_bytes").get<double>();
      std::printf(
          "%-27s %-18s %7.2f %7.2f %6.0f/%6.0f/%6.0f %6.2f %9.0f %8.0f %9.3f %9.4f %6.0fms\n",
          m.model, it.key().c_str(), v.at("float_top1").get<double>(),
          v.at("int8_top1").get<double>(), j.at("naive_arena_bytes").get<double>(), greedy, ours,
          greedy > 0 ? ours / greedy : 0.0, flash, j.at("macs").get<double>(),
          j.at("latency_ms").get<double>(), j.at("energy_mj").get<double>(), ms);
    }
  }
  std::printf(
      "arena: naive = every activation its own buffer; greedy = greedy by size in the ONNX\n"
      "order (TensorFlow Lite Micro); ours = in-place execution + execution-order search;\n"
      "compile time includes validation on the labelled set (float and int8 runs);\n"
      "digits_autoencoder compiles too (optimizer_compile_test) but has no top-1 to report\n");
  return 0;
}
