// The host runtime packs Conv2D and DepthwiseConv2D weights once at load
// (kernels/runtime/packed_operators.cpp): compiled fixture models (digits_dscnn,
// digits_resnet, the MLPerf Tiny KWS reference) give the same bytes with and without
// packing; every weighted operator with a packed path on this core runs from it; and
// the packed copy is what runs (corrupting it changes the output).
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "tinyfleet/kernels/ops/packed_weights.h"
#include "tinyfleet/kernels/runtime/interpreter.h"
#include "tinyfleet/optimizer_service/class_compiler.h"
#include "tinyfleet/optimizer_service/npz.h"
#include "tinyfleet/testing/environment.h"

using namespace tinyfleet::optimizer_service;
namespace k = tinyfleet::kernels;
using tinyfleet::testing::fixture_path;

namespace {

const char* kM4 =
    R"({"ram_bytes":262144,"flash_bytes":1048576,"clock_hz":80000000,"runtime_ram_bytes":4096,
        "runtime_flash_bytes":24576,"cycles_per_mac":{"conv":1.2,"depthwise":2.0,
        "fully_connected":1.1,"other":4.0}})";

std::string compiled(const std::string& model) {
  const bool tflite = model == "kws_ref";
  auto bytes = read_file(fixture_path(tflite ? "models/thirdparty/mlperf_tiny/kws_ref_model.tflite"
                                             : "models/" + model + ".onnx"));
  auto calib = read_file(fixture_path("data/digits_calib.npz"));
  EXPECT_TRUE(bytes && calib) << model;
  // A .tflite keeps its own quantization: no calibration data.
  const auto o = compile_for_class(*bytes, tflite ? "" : *calib, "", "cortex-m4-256k", kM4);
  EXPECT_FALSE(o.refused) << model << ": " << o.refusal_reason;
  return o.artifact;
}

// An artifact loaded (packing or not) with an arena of its own.
struct Loaded {
  std::vector<uint8_t> bytes, arena;
  k::Interpreter interp;
  Loaded(const std::string& artifact, bool pack) {
    bytes.resize(artifact.size() + 16);
    auto* a = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(bytes.data()) + 15) &
                                         ~uintptr_t{15});
    std::memcpy(a, artifact.data(), artifact.size());
    interp.set_pack_weights(pack);
    const auto err = interp.load(a, artifact.size());
    EXPECT_EQ(err.status, k::LoadStatus::kOk) << err.what;
    arena.resize(interp.arena_bytes());
    interp.bind_arena(arena.data(), arena.size());
  }
  std::vector<int8_t> run(const std::vector<int8_t>& input) {
    const auto in = interp.input(0);
    EXPECT_EQ(in.bytes, input.size());
    std::memcpy(in.data, input.data(), input.size());
    EXPECT_EQ(interp.invoke().status, k::LoadStatus::kOk);
    const auto o = interp.output(0);
    const auto* p = static_cast<const int8_t*>(o.data);
    return {p, p + o.bytes};
  }
};

// The input zero point everywhere, then seeded random inputs.
std::vector<std::vector<int8_t>> inputs(const k::Interpreter& interp) {
  const auto in = interp.input(0);
  std::vector<std::vector<int8_t>> v{
      std::vector<int8_t>(in.bytes, static_cast<int8_t>(in.zero_point))};
  std::mt19937 rng(23);
  for (int i = 0; i < 4; ++i) {
    std::vector<int8_t> x(in.bytes);
    for (auto& b : x) b = static_cast<int8_t>(static_cast<int>(rng() % 256) - 128);
    v.push_back(x);
  }
  return v;
}

// The Conv2D and DepthwiseConv2D operators whose layer has a packed path on this core.
int32_t packable_operators(const k::Interpreter& interp) {
  const auto* m = interp.model();
  int32_t n = 0;
  for (const auto* op : *m->operators()) {
    const bool dw = op->kind() == tinyfleet::artifact::OpKind_DepthwiseConv2D;
    if (op->kind() != tinyfleet::artifact::OpKind_Conv2D && !dw) continue;
    const auto f = interp.tensor(op->inputs()->Get(1)).dims;
    k::DepthwiseParams p;
    p.input_offset = -interp.tensor(op->inputs()->Get(0)).zero_point;
    p.depth_multiplier = op->depth_multiplier();
    n += (dw ? k::opt::depthwise_packed_size(p, f) : k::opt::conv2d_packed_size(f)) > 0;
  }
  return n;
}

bool avx2_core() {
#if defined(TINYFLEET_KERNELS_HOST_AVX2)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

class PackedRuntime : public ::testing::TestWithParam<std::string> {};

TEST_P(PackedRuntime, SameBytesWithAndWithoutPacking) {
  const std::string artifact = compiled(GetParam());
  Loaded stored(artifact, false), packed(artifact, true);
  EXPECT_EQ(stored.interp.packed_operators(), 0);
  EXPECT_EQ(stored.interp.packed_bytes(), 0u);
  const int32_t packable = packable_operators(packed.interp);
  EXPECT_EQ(packed.interp.packed_operators(), packable);
  if (avx2_core()) {
    EXPECT_GT(packable, 0) << "no operator took the packed path";
    EXPECT_GT(packed.interp.packed_bytes(), 0u);
  }
  for (const auto& x : inputs(packed.interp)) {
    EXPECT_EQ(packed.run(x), stored.run(x)) << GetParam();
  }
}

// Each packed block corrupted in turn past its header (the weights and constants: the
// header must still name the layer, or the kernel refuses it): the output changes, so
// invoke() read the packed copy and not the stored weights.
TEST_P(PackedRuntime, CorruptingThePackedCopyChangesTheOutput) {
  const std::string artifact = compiled(GetParam());
  Loaded stored(artifact, false);
  const auto x = inputs(stored.interp)[1];
  const auto want = stored.run(x);
  const auto ops = static_cast<int32_t>(stored.interp.model()->operators()->size());
  int corrupted = 0;
  for (int32_t op = 0; op < ops; ++op) {
    Loaded packed(artifact, true);
    const size_t n = packed.interp.packed_weights_bytes(op);
    if (n == 0) continue;
    ASSERT_EQ(packed.run(x), want);
    auto* block = static_cast<unsigned char*>(const_cast<void*>(packed.interp.packed_weights(op)));
    for (size_t i = n / 2; i < n; ++i) block[i] ^= 0x5a;  // past the header (64 bytes at most)
    EXPECT_NE(packed.run(x), want) << GetParam() << ": operator " << op;
    ++corrupted;
  }
  EXPECT_EQ(corrupted, packable_operators(stored.interp));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PackedRuntime,
                         ::testing::Values("digits_dscnn", "digits_resnet", "kws_ref"));

}  // namespace
