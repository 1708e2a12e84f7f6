// Peak activation memory of every model in tests/fixtures/models (and any .onnx/.tflite
// in directories named on the command line): our plan (in-place execution, order
// search) against greedy by size in the given order (TFLite Micro's planner) and the
// naive sum (every activation its own buffer), int8, one byte per element. ONNX and
// float TFLite graphs go through the compiler's graph passes and planner as
// compile_graph runs them; int8 TFLite models through compile_tflite_int8's report. No
// calibration is needed: the plan depends on shapes only. Deterministic (no timing).
// "ours" is the compiler's plan, with patch-based execution where it lowers the peak
// (the column "no bands" is the plan without it; "bands": operators first..last of the
// execution order in N bands). int8 TFLite models are planned without bands.
//   deploy/local/run-bench.sh bench_arena_plans
//   build/debug/bench/optimizer_service/bench_arena_plans [DIR...]
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "tinyfleet/optimizer_service/compiler.h"
#include "tinyfleet/optimizer_service/memory_planner.h"
#include "tinyfleet/optimizer_service/npz.h"
#include "tinyfleet/optimizer_service/onnx_import.h"
#include "tinyfleet/optimizer_service/passes.h"
#include "tinyfleet/optimizer_service/tflite_import.h"

using namespace tinyfleet::optimizer_service;
namespace fs = std::filesystem;

namespace {

struct Figures {
  uint32_t ours = 0, greedy = 0, naive = 0, unbanded = 0;
  MemoryPlan::Patches bands;
};

// The planner's figures for a float graph, after compile_graph's passes.
Figures plan_graph(Graph g) {
  fold_scalar_affine(g);
  fuse_pads(g);
  fuse_activations(g);
  remove_no_ops(g);
  remove_dead_nodes(g);
  const std::vector<uint32_t> bytes(g.tensors.size(), 1);
  Figures f;
  f.greedy = plan_greedy_by_size(g, bytes).arena_bytes;
  reorder_nodes(g, best_execution_order(g, bytes));
  const MemoryPlan plan = plan_memory(g, bytes, true);
  f.ours = plan.arena_bytes;
  f.naive = plan.naive_bytes;
  f.bands = plan.patches;
  f.unbanded = plan_memory(g, bytes).arena_bytes;
  return f;
}

// Figures for one model file, or the reason it has none.
Result<Figures> figures(const std::string& path) {
  auto bytes = read_file(path);
  if (!bytes) return CompileError{"unreadable"};
  if (is_tflite(*bytes)) {
    auto m = read_tflite(*bytes);
    if (!m) return m.error();
    if (tflite_is_int8(*m)) {
      auto c = compile_tflite_int8(*m, CompileOptions{});
      if (!c) return c.error();
      return Figures{c->report.arena_bytes,
                     c->report.greedy_arena_bytes,
                     c->report.naive_arena_bytes,
                     c->report.arena_bytes,
                     {}};
    }
    auto g = tflite_float_graph(*m);
    if (!g) return g.error();
    return plan_graph(std::move(*g));
  }
  auto g = import_onnx(*bytes);
  if (!g) return g.error();
  return plan_graph(std::move(*g));
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> dirs{std::string(TINYFLEET_FIXTURES) + "/models"};
  for (int i = 1; i < argc; ++i) dirs.emplace_back(argv[i]);
  std::vector<std::string> files;
  for (const auto& d : dirs) {
    for (const auto& e : fs::recursive_directory_iterator(d)) {
      const auto ext = e.path().extension();
      if (e.is_regular_file() && (ext == ".onnx" || ext == ".tflite")) files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  std::printf("%-58s %9s %9s %9s %8s %8s %10s  %s\n", "model (int8 activations)", "naive B",
              "greedy B", "ours B", "ours/g", "ours/n", "no bands B", "bands");
  int above = 0;
  for (const auto& path : files) {
    std::string name = path;
    for (const auto& d : dirs) {
      if (name.rfind(d + "/", 0) == 0) name = name.substr(d.size() + 1);
    }
    auto f = figures(path);
    if (!f) {
      std::printf("%-58s refused: %.60s\n", name.c_str(), f.error().message.c_str());
      continue;
    }
    above += f->ours > f->greedy;
    char bands[48] = "-";
    if (f->bands.nodes > 0) {
      std::snprintf(bands, sizeof bands, "ops %d-%d x%d", f->bands.first_node,
                    f->bands.first_node + f->bands.nodes - 1, f->bands.bands);
    }
    std::printf("%-58s %9u %9u %9u %7.2fx %7.2fx %10u  %s%s\n", name.c_str(), f->naive, f->greedy,
                f->ours, f->greedy ? static_cast<double>(f->ours) / f->greedy : 0.0,
                f->naive ? static_cast<double>(f->ours) / f->naive : 0.0, f->unbanded, bands,
                f->ours > f->greedy ? "  ABOVE GREEDY" : "");
  }
  std::printf("\n%d model(s) above greedy by size\n", above);
  return above == 0 ? 0 : 1;
}
