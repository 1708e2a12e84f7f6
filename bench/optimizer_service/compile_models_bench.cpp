// Every shared model compiled for every device class: float and int8 top-1, arena
// (naive / greedy by size / ours, and ours over greedy), flash (artifact + runtime), MACs,
// estimated latency and energy, compile time; or the refusal. One table; then every
// TFLite fixture (published and generated per operator): int8 ones compiled with their
// own quantization for every class, float ones through our quantizer on generated
// calibration inputs, or the refusal.
//   deploy/local/run-bench.sh bench_compile_models
#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "tinyfleet/optimizer_service/class_compiler.h"
#include "tinyfleet/optimizer_service/npz.h"
#include "tinyfleet/optimizer_service/tflite_import.h"

using namespace tinyfleet::optimizer_service;

namespace {

// The TFLite fixtures: int8 ones per class; float ones (which need calibration data the
// repo does not hold) on seeded uniform inputs in `lo`..`hi`, for the generic class.
void tflite_rows(const std::string& fixtures, const nlohmann::json& catalog) {
  const struct {
    const char* path;
    float lo, hi;
  } models[] = {{"thirdparty/tflite_micro/hello_world_int8", 0, 0},
                {"thirdparty/tflite_micro/micro_speech_quantized", 0, 0},
                {"thirdparty/mlperf_tiny/kws_ref_model", 0, 0},
                {"thirdparty/tflite_micro/hello_world_float", 0.0f, 6.2832f},
                {"thirdparty/mlperf_tiny/kws_ref_model_float32", -11.7f, 11.7f},
                {"tflite_ops/logistic", 0, 0},
                {"tflite_ops/tanh", 0, 0},
                {"tflite_ops/relu", 0, 0},
                {"tflite_ops/relu6", 0, 0},
                {"tflite_ops/hard_swish", 0, 0},
                {"tflite_ops/mean", 0, 0},
                {"tflite_ops/pad", 0, 0},
                {"tflite_ops/concatenation", 0, 0},
                {"tflite_ops/layout", 0, 0},
                {"tflite_ops/fold_constants", 0, 0},
                {"tflite_ops/transpose", 0, 0},
                {"tflite_ops/strided_slice", 0, 0},
                {"tflite_ops/padv2", 0, 0},
                {"tflite_ops/float_ops", -4.0f, 4.0f},
                {"tflite_ops/hybrid_fc", -3.0f, 3.0f},
                {"tflite_ops/refused_exp", 0, 0}};
  std::printf("\n%-46s %-18s %6s %15s %6s %9s %8s %8s\n", "TFLite model", "class", "path",
              "arena greedy/ours", "ours/g", "flash B", "MACs", "compile");
  for (const auto& m : models) {
    auto bytes = read_file(fixtures + "/models/" + m.path + ".tflite");
    if (!bytes) {
      std::printf("%-46s missing fixture\n", m.path);
      continue;
    }
    auto model = read_tflite(*bytes);
    if (!model) {
      std::printf("%-46s refused: %s\n", m.path, model.error().message.c_str());
      continue;
    }
    if (!tflite_is_int8(*model)) {
      const auto t0 = std::chrono::steady_clock::now();
      auto g = tflite_float_graph(*model);
      if (!g) {
        std::printf("%-46s refused: %s\n", m.path, g.error().message.c_str());
        continue;
      }
      const auto& in = g->tensors[static_cast<size_t>(g->inputs.at(0))].dims;
      NpyArray x;
      x.dtype = "<f4";
      x.shape = {100, in.elements()};
      std::mt19937 rng(7);
      std::uniform_real_distribution<double> d(m.lo, m.hi);
      for (int64_t i = 0; i < x.size(); ++i) x.values.push_back(d(rng));
      auto c = compile_graph(std::move(*g), {{"x", x}}, nullptr, {});
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (!c) {
        std::printf("%-46s %-18s refused: %s\n", m.path, "generic", c.error().message.c_str());
        continue;
      }
      const auto& r = c->report;
      std::printf("%-46s %-18s %6s %7u/%7u %6.2f %9zu %8lld %6.0fms\n", m.path, "generic", "float",
                  static_cast<unsigned>(r.greedy_arena_bytes), static_cast<unsigned>(r.arena_bytes),
                  r.greedy_arena_bytes ? double(r.arena_bytes) / r.greedy_arena_bytes : 0.0,
                  c->artifact.size(), static_cast<long long>(r.macs), ms);
      continue;
    }
    for (auto it = catalog.begin(); it != catalog.end(); ++it) {
      const auto t0 = std::chrono::steady_clock::now();
      auto r = compile_for_class(*bytes, "", "", it.key(), it->dump());
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (r.refused) {
        std::printf("%-46s %-18s refused: %s\n", m.path, it.key().c_str(),
                    r.refusal_reason.c_str());
        if (r.refusal_reason.find("not supported") != std::string::npos ||
            r.refusal_reason.find("reorders") != std::string::npos) {
          break;  // the same for every class
        }
        continue;
      }
      const auto j = nlohmann::json::parse(r.report_json);
      const double greedy = j.at("greedy_arena_bytes").get<double>();
      const double ours = j.at("arena_bytes").get<double>();
      std::printf("%-46s %-18s %6s %7.0f/%7.0f %6.2f %9.0f %8.0f %6.0fms\n", m.path,
                  it.key().c_str(), "int8", greedy, ours, greedy > 0 ? ours / greedy : 0.0,
                  j.at("artifact_bytes").get<double>() + it->value("runtime_flash_bytes", 0.0),
                  j.at("macs").get<double>(), ms);
    }
  }
  std::printf(
      "TFLite int8: the model's own quantization, bit-exact with TFLM's reference kernels\n"
      "(tflite_import_test, tflite_ops_test); float: our quantizer, calibrated on 100 seeded\n"
      "uniform inputs (hello_world x in [0, 2 pi], KWS in [-11.7, 11.7], float_ops in [-4, 4],\n"
      "hybrid_fc in [-3, 3]); flash B here is\n"
      "the artifact alone for float rows (no class), artifact + runtime for int8 rows\n");
}

}  // namespace

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
  tflite_rows(fixtures, catalog);
  return 0;
}
