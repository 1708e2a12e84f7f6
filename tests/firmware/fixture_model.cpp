#include "fixture_model.h"

#include <sodium.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "fixture_constants.h"
#include "tinyfleet/kernels/ops/activations.h"
#include "tinyfleet/kernels/ops/fully_connected.h"
#include "tinyfleet/kernels/ops/quantization.h"
#include "tinyfleet/kernels/runtime/artifact_writer.h"
#include "tinyfleet/kernels/runtime/interpreter.h"

namespace tinyfleet::firmware_test {

using namespace tinyfleet::kernels;
namespace artifact = tinyfleet::artifact;

namespace {
constexpr int kIn = 64, kOut = 10;

TensorSpec activation(const char* name, Dims d, float scale, int32_t zp, uint32_t offset) {
  TensorSpec t;
  t.name = name;
  t.dims = d;
  t.scale = {scale};
  t.zero_point = {zp};
  t.arena_offset = offset;
  return t;
}
}  // namespace

std::string fixture_artifact(int version) {
  std::mt19937 rng(18);
  std::string weights(kIn * kOut, '\0');
  for (auto& w : weights) w = static_cast<char>(static_cast<int>(rng() % 101) - 50);
  if (version >= 2) {
    // The fine-tune: a tenth of the weights move by one step, and class 3's row leans
    // towards the fixture input (so v2's answer differs from v1's).
    for (int i = 0; i < kIn * kOut; i += 10) {
      weights[i] = static_cast<char>(weights[i] + (i % 20 == 0 ? 1 : -1));
    }
    const std::string in = fixture_input();
    for (int k = 0; k < kIn; ++k) {
      weights[3 * kIn + k] = static_cast<char>(weights[3 * kIn + k] + (in[k] >= 0 ? 12 : -12));
    }
  }
  if (version >= 3) {  // a second fine-tune (the power-cut test's v2 -> v3): class 7 leans in
    const std::string in = fixture_input();
    for (int k = 0; k < kIn; ++k) {
      weights[7 * kIn + k] = static_cast<char>(weights[7 * kIn + k] + (in[k] >= 0 ? 20 : -20));
    }
  }
  ModelSpec m;
  m.device_class = "cortex-m4-256k";
  m.model_name = "firmware-update-fixture";
  TensorSpec w;
  w.name = "fc.w";
  w.dims = {kOut, 1, 1, kIn};
  w.data = weights;
  w.scale.assign(kOut, 0.01f);
  w.zero_point.assign(kOut, 0);
  TensorSpec b;
  b.name = "fc.b";
  b.type = artifact::TensorType_Int32;
  b.dims = {1, 1, 1, kOut};
  const std::vector<int32_t> bias(kOut, 50);
  b.data.assign(reinterpret_cast<const char*>(bias.data()), bias.size() * 4);
  m.tensors = {activation("input", {1, 1, 1, kIn}, 0.02f, -3, 0),
               activation("logits", {1, 1, 1, kOut}, 0.1f, 5, 64),
               activation("probs", {1, 1, 1, kOut}, 1 / 256.f, -128, 80), w, b};
  OperatorSpec fc;
  fc.kind = artifact::OpKind_FullyConnected;
  fc.inputs = {0, 3, 4};
  fc.outputs = {1};
  for (int i = 0; i < kOut; ++i) {
    int32_t mult = 0;
    int shift = 0;
    quantize_multiplier(0.002 * (1.0 + 0.05 * i), &mult, &shift);
    fc.requant_multiplier.push_back(mult);
    fc.requant_shift.push_back(shift);
  }
  OperatorSpec sm;
  sm.kind = artifact::OpKind_Softmax;
  sm.inputs = {1};
  sm.outputs = {2};
  uint32_t table[256];
  build_softmax_table(0.1f, 1.0f, table);
  sm.lut_u32.assign(table, table + 256);
  m.operators = {fc, sm};
  m.inputs = {0};
  m.outputs = {2};
  m.tensor_arena_bytes = 96;
  m.scratch_bytes = static_cast<uint32_t>(fully_connected_scratch_size(kIn));
  return write_artifact(m);
}

std::string fixture_input() {
  std::string in(kIn, '\0');
  for (int i = 0; i < kIn; ++i) in[i] = static_cast<char>((i * 37) % 200 - 100);
  return in;
}

std::string run_on_host(const std::string& bytes, const std::string& input) {
  std::vector<uint8_t> aligned(bytes.size() + 16);
  auto* a = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(aligned.data()) + 15) &
                                       ~uintptr_t{15});
  std::copy(bytes.begin(), bytes.end(), a);
  Interpreter interp;
  if (interp.load(a, bytes.size()).status != LoadStatus::kOk) return "";
  std::vector<uint8_t> arena(interp.arena_bytes());
  if (interp.bind_arena(arena.data(), arena.size()).status != LoadStatus::kOk ||
      input.size() != interp.input(0).bytes) {
    return "";
  }
  std::copy(input.begin(), input.end(), static_cast<char*>(interp.input(0).data));
  if (interp.invoke().status != LoadStatus::kOk) return "";
  const auto out = interp.output(0);
  return std::string(static_cast<const char*>(out.data), out.bytes);
}

std::string fixture_sha256(const std::string& bytes) {
  unsigned char d[32];
  crypto_hash_sha256(d, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return std::string(reinterpret_cast<char*>(d), 32);
}

update::ManifestFields fixture_manifest(const std::string& from, const std::string& to,
                                        const update::Delta& delta, uint32_t version,
                                        uint32_t chunk_size) {
  update::ManifestFields f;
  f.fleet = kFleet;
  f.device_class = kClass;
  f.device_id = kDevice;
  f.model = "digits";
  f.model_version = version;
  f.target_sha256 = fixture_sha256(to);
  f.target_size = to.size();
  f.base_sha256 = fixture_sha256(from);
  f.codec = delta.codec;
  f.payload_sha256 = fixture_sha256(delta.payload);
  f.payload_size = delta.payload.size();
  f.chunk_size = chunk_size;
  f.expires_at = kNow + 3600;
  f.class_histogram = std::vector<float>(10, 0.1f);
  return f;
}

}  // namespace tinyfleet::firmware_test
