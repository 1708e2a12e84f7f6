// Arbitrary bytes as an ONNX model (what fleetd and tinyfleet-compile take from a user):
// the importer returns a graph or an error naming what is wrong, never crashes, throws or
// allocates without bound; an accepted graph is well formed (every index in range, every
// tensor's extents positive and its constants as large as its dims say).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "tinyfleet/optimizer_service/onnx_import.h"

namespace {

bool index_ok(const tinyfleet::optimizer_service::Graph& g, int t) {
  return t >= 0 && static_cast<size_t>(t) < g.tensors.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tinyfleet::optimizer_service;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto g = import_onnx(bytes);
  if (!g) {
    if (g.error().message.empty()) std::abort();
    return 0;
  }
  for (const auto& t : g->tensors) {
    if (t.dims.n < 1 || t.dims.h < 1 || t.dims.w < 1 || t.dims.c < 1) std::abort();
    if (t.constant && static_cast<int64_t>(t.data.size()) != t.dims.elements()) std::abort();
  }
  for (const auto& n : g->nodes) {
    if (n.inputs.empty() || n.outputs.size() != 1) std::abort();
    for (int t : n.inputs)
      if (!index_ok(*g, t)) std::abort();
    if (!index_ok(*g, n.outputs[0])) std::abort();
  }
  for (int t : g->inputs)
    if (!index_ok(*g, t)) std::abort();
  for (int t : g->outputs)
    if (!index_ok(*g, t)) std::abort();
  return 0;
}
