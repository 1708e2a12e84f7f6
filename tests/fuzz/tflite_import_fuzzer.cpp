// Arbitrary bytes as a .tflite model (what tinyfleet-compile takes from a user): the reader
// returns a model or an error naming what is wrong, never crashes, throws or allocates
// without bound; an accepted model is well formed (every index in range, constants as
// large as their shapes say, one scale per zero point). The int8 path then compiles it or
// refuses it, and a compiled artifact has been loaded and run by the kernels' runtime;
// the float path's graph is well formed or refused, and (when small) runs on a zero input
// without reading or writing outside its tensors (ASan) or failing silently.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "tinyfleet/optimizer_service/float_executor.h"
#include "tinyfleet/optimizer_service/tflite_import.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tinyfleet::optimizer_service;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto m = read_tflite(bytes);
  if (!m) {
    if (m.error().message.empty()) std::abort();
    return 0;
  }
  const auto n = static_cast<int32_t>(m->tensors.size());
  for (const auto& t : m->tensors) {
    if (t.shape.size() > 4 || t.scale.size() != t.zero_point.size()) std::abort();
    for (int32_t d : t.shape)
      if (d < 1) std::abort();
    if (!t.data.empty() && t.data.size() % static_cast<size_t>(t.elements()) != 0) std::abort();
  }
  for (const auto& o : m->operators) {
    if (o.outputs.empty()) std::abort();
    for (int32_t t : o.inputs)
      if (t < -1 || t >= n) std::abort();
    for (int32_t t : o.outputs)
      if (t < 0 || t >= n) std::abort();
  }
  for (int32_t t : m->inputs)
    if (t < 0 || t >= n) std::abort();
  for (int32_t t : m->outputs)
    if (t < 0 || t >= n) std::abort();
  // Bounds far below the defaults (2^30 MACs): a run stays short under ASan, and the
  // refusal of a model past them is exercised as often as the compile.
  CompileOptions options;
  options.max_work = int64_t{1} << 22;
  options.max_activation_elements = int64_t{1} << 20;
  auto compiled = compile_tflite_int8(*m, options);
  if (compiled ? compiled->self_tests.empty() : compiled.error().message.empty()) std::abort();
  // The float path's graph: every index in range, extents positive, constants complete.
  auto g = tflite_float_graph(*m);
  if (!g) {
    if (g.error().message.empty()) std::abort();
    return 0;
  }
  const auto nt = static_cast<int>(g->tensors.size());
  for (const auto& t : g->tensors) {
    if (t.dims.n < 1 || t.dims.h < 1 || t.dims.w < 1 || t.dims.c < 1) std::abort();
    if (t.constant && static_cast<int64_t>(t.data.size()) != t.dims.elements()) std::abort();
  }
  for (const auto& node : g->nodes) {
    if (node.inputs.empty() || node.outputs.size() != 1) std::abort();
    for (int t : node.inputs)
      if (t < 0 || t >= nt) std::abort();
    if (node.outputs[0] < 0 || node.outputs[0] >= nt) std::abort();
  }
  int64_t total = 0;
  for (const auto& t : g->tensors) total += t.dims.elements();
  if (g->inputs.size() != 1 || total > (int64_t{1} << 20)) return 0;
  FloatExecutor exec(*g);
  const auto& in = g->tensors[static_cast<size_t>(g->inputs[0])];
  auto r = exec.run(std::vector<float>(static_cast<size_t>(in.dims.elements()), 0.0f));
  if (!r && r.error().message.empty()) std::abort();
  return 0;
}
