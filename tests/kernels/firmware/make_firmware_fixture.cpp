// Writes a small artifact (Conv2D -> DepthwiseConv2D -> Add -> MaxPool2D ->
// FullyConnected -> Softmax), an input, and the host runtime's output as hex, for the
// QEMU test to compare against:  make_firmware_fixture DIR
// With an artifact (make_firmware_fixture DIR ARTIFACT) it writes that one instead, a
// seeded input of its input's size and its host output, and prints its patch plan's band
// count ("bands: N", 0 without one). Without, it also writes banded.tfa (a fuzz seed).
#include <cstdio>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "tinyfleet/kernels/ops/activations.h"
#include "tinyfleet/kernels/ops/conv2d.h"
#include "tinyfleet/kernels/ops/elementwise.h"
#include "tinyfleet/kernels/ops/fully_connected.h"
#include "tinyfleet/kernels/ops/quantization.h"
#include "tinyfleet/kernels/runtime/artifact_writer.h"
#include "tinyfleet/kernels/runtime/interpreter.h"

using namespace tinyfleet::kernels;
namespace artifact = tinyfleet::artifact;

namespace {
std::mt19937 rng(2026);
std::string random_bytes(size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(static_cast<int>(rng() % 255) - 127);
  return s;
}
std::string int32_bytes(const std::vector<int32_t>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}
TensorSpec activation(const char* name, Dims d, float scale, int32_t zp, uint32_t offset) {
  TensorSpec t;
  t.name = name;
  t.dims = d;
  t.scale = {scale};
  t.zero_point = {zp};
  t.arena_offset = offset;
  return t;
}
TensorSpec constant(const char* name, artifact::TensorType type, Dims d, std::string data) {
  TensorSpec t;
  t.name = name;
  t.type = type;
  t.dims = d;
  t.data = std::move(data);
  if (type == artifact::TensorType_Int8) {
    t.scale.assign(static_cast<size_t>(d.n == 1 ? d.c : d.n), 0.01f);
    t.zero_point.assign(t.scale.size(), 0);
  }
  return t;
}
void requant(OperatorSpec& op, int channels, double real) {
  for (int i = 0; i < channels; ++i) {
    int32_t m = 0;
    int s = 0;
    quantize_multiplier(real * (1.0 + 0.05 * i), &m, &s);
    op.requant_multiplier.push_back(m);
    op.requant_shift.push_back(s);
  }
}
}  // namespace

namespace {
std::string six_operator_artifact() {
  ModelSpec m;
  m.device_class = "cortex-m4-256k";
  m.model_name = "firmware-fixture";
  // Arena: in 0..64, conv 64..576, dw 576..1088, add 1088..1600, pool 0..128, fc 128..138,
  // softmax 144..154.
  m.tensors = {activation("input", {1, 8, 8, 1}, 0.02f, -3, 0),
               activation("conv", {1, 8, 8, 8}, 0.05f, -128, 64),
               activation("dw", {1, 8, 8, 8}, 0.05f, -10, 576),
               activation("sum", {1, 8, 8, 8}, 0.08f, -60, 1088),
               activation("pool", {1, 4, 4, 8}, 0.08f, -60, 0),
               activation("logits", {1, 1, 1, 10}, 0.1f, 5, 128),
               activation("probs", {1, 1, 1, 10}, 1 / 256.f, -128, 144),
               constant("conv.w", artifact::TensorType_Int8, {8, 3, 3, 1}, random_bytes(72)),
               constant("conv.b", artifact::TensorType_Int32, {1, 1, 1, 8},
                        int32_bytes({10, -20, 30, 0, 5, 6, -7, 8})),
               constant("dw.w", artifact::TensorType_Int8, {1, 3, 3, 8}, random_bytes(72)),
               constant("dw.b", artifact::TensorType_Int32, {1, 1, 1, 8},
                        int32_bytes({1, 2, 3, 4, 5, 6, 7, 8})),
               constant("fc.w", artifact::TensorType_Int8, {10, 1, 1, 128}, random_bytes(1280)),
               constant("fc.b", artifact::TensorType_Int32, {1, 1, 1, 10},
                        int32_bytes(std::vector<int32_t>(10, 100)))};
  OperatorSpec conv;
  conv.kind = artifact::OpKind_Conv2D;
  conv.inputs = {0, 7, 8};
  conv.outputs = {1};
  conv.padding = {1, 1, 1, 1};
  requant(conv, 8, 0.004);
  OperatorSpec dw;
  dw.kind = artifact::OpKind_DepthwiseConv2D;
  dw.inputs = {1, 9, 10};
  dw.outputs = {2};
  dw.padding = {1, 1, 1, 1};
  requant(dw, 8, 0.01);
  OperatorSpec add;
  add.kind = artifact::OpKind_Add;
  add.inputs = {1, 2};
  add.outputs = {3};
  add.add = make_add_params({0.05f, -128}, {0.05f, -10}, {0.08f, -60}, {});  // AddOptions
  OperatorSpec pool;
  pool.kind = artifact::OpKind_MaxPool2D;
  pool.inputs = {3};
  pool.outputs = {4};
  pool.filter_h = pool.filter_w = pool.stride_h = pool.stride_w = 2;
  OperatorSpec fc;
  fc.kind = artifact::OpKind_FullyConnected;
  fc.inputs = {4, 11, 12};
  fc.outputs = {5};
  requant(fc, 10, 0.003);
  OperatorSpec sm;
  sm.kind = artifact::OpKind_Softmax;
  sm.inputs = {5};
  sm.outputs = {6};
  uint32_t table[256];
  build_softmax_table(0.1f, 1.0f, table);
  sm.lut_u32.assign(table, table + 256);
  m.operators = {conv, dw, add, pool, fc, sm};
  m.inputs = {0};
  m.outputs = {6};
  m.tensor_arena_bytes = 1600;
  m.scratch_bytes = static_cast<uint32_t>(
      std::max(conv2d_scratch_size({8, 3, 3, 1}), fully_connected_scratch_size(128)));
  return write_artifact(m);
}
// A chain run in bands (format 1.3, a fuzz seed): Conv2D 3x3 8x8x1 -> 8x8x8 and a 2x2
// MaxPool2D -> 4x4x8 in 2 bands; the convolution's output lives in a band buffer of
// 5 rows at 320.
std::string banded_artifact() {
  ModelSpec m;
  m.model_name = "banded-fixture";
  m.tensors = {activation("input", {1, 8, 8, 1}, 0.02f, -3, 0),
               activation("conv", {1, 8, 8, 8}, 0.05f, -128, 0),
               activation("pool", {1, 4, 4, 8}, 0.05f, -128, 64),
               constant("conv.w", artifact::TensorType_Int8, {8, 3, 3, 1}, random_bytes(72)),
               constant("conv.b", artifact::TensorType_Int32, {1, 1, 1, 8},
                        int32_bytes({10, -20, 30, 0, 5, 6, -7, 8}))};
  OperatorSpec conv;
  conv.kind = artifact::OpKind_Conv2D;
  conv.inputs = {0, 3, 4};
  conv.outputs = {1};
  conv.padding = {1, 1, 1, 1};
  requant(conv, 8, 0.004);
  OperatorSpec pool;
  pool.kind = artifact::OpKind_MaxPool2D;
  pool.inputs = {1};
  pool.outputs = {2};
  pool.filter_h = pool.filter_w = pool.stride_h = pool.stride_w = 2;
  m.operators = {conv, pool};
  m.inputs = {0};
  m.outputs = {2};
  m.tensor_arena_bytes = 640;
  m.scratch_bytes = static_cast<uint32_t>(conv2d_scratch_size({8, 3, 3, 1}));
  m.patches = {0, 2, 2, {320}};
  return write_artifact(m);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr, "usage: make_firmware_fixture DIR [ARTIFACT]\n");
    return 2;
  }
  const std::string dir = argv[1];
  std::string bytes = six_operator_artifact();
  if (argc == 3) {
    std::ifstream f(argv[2], std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }

  // The host runtime's answer.
  std::vector<uint8_t> aligned(bytes.size() + 16);
  auto* a = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(aligned.data()) + 15) &
                                       ~uintptr_t{15});
  std::copy(bytes.begin(), bytes.end(), a);
  Interpreter interp;
  auto err = interp.load(a, bytes.size());
  std::vector<uint8_t> arena(interp.arena_bytes());
  if (err.status != LoadStatus::kOk ||
      interp.bind_arena(arena.data(), arena.size()).status != LoadStatus::kOk) {
    std::fprintf(stderr, "host load failed: %s\n", err.what);
    return 1;
  }
  const std::string input = random_bytes(interp.input(0).bytes);
  std::copy(input.begin(), input.end(), static_cast<char*>(interp.input(0).data));
  const auto* chain = interp.model()->patch();
  std::printf("bands: %d\n", chain ? chain->bands() : 0);
  if (interp.invoke().status != LoadStatus::kOk) return 1;
  std::string expected = "output:";
  const auto out = interp.output(0);
  for (size_t i = 0; i < out.bytes; ++i) {
    char hex[4];
    std::snprintf(hex, sizeof hex, " %02x", static_cast<const uint8_t*>(out.data)[i]);
    expected += hex;
  }
  std::ofstream(dir + "/artifact.tfa", std::ios::binary) << bytes;
  if (argc == 2) std::ofstream(dir + "/banded.tfa", std::ios::binary) << banded_artifact();
  std::ofstream(dir + "/input.bin", std::ios::binary) << input;
  std::ofstream(dir + "/expected.txt") << expected << "\n";
  std::printf("%s\n", expected.c_str());
  return 0;
}
