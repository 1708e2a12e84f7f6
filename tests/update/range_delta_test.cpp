// The TensorRange codec on real compiled models: it reproduces the target byte for byte
// in pieces of any size, recomputes the content hash, predicts what calibration moves,
// and refuses what it cannot apply instead of writing past the target.
#include <gtest/gtest.h>

#include <random>

#include "memory_slots.h"
#include "tinyfleet/optimizer_service/compiler.h"
#include "tinyfleet/optimizer_service/npz.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/update/delta_decoder.h"
#include "tinyfleet/update/delta_encoder.h"
#include "tinyfleet/update/sodium_crypto.h"

using namespace tinyfleet;
using tinyfleet::testing::fixture_path;
using update::DeltaStatus;

namespace {

std::string compile(const std::string& model, const std::string& calib) {
  auto onnx = optimizer_service::read_file(fixture_path("models/" + model + ".onnx"));
  auto data = optimizer_service::read_npz(fixture_path("data/" + calib + ".npz"));
  EXPECT_TRUE(onnx && data);
  optimizer_service::CompileOptions o;
  o.device_class = "cortex-m4-256k";
  auto c = optimizer_service::compile_model(*onnx, *data, nullptr, o);
  EXPECT_TRUE(c) << c.error().message;
  return c->artifact;
}

struct Models {
  std::string cnn = compile("digits_cnn", "digits_calib");
  std::string cnn_val = compile("digits_cnn", "digits_val");  // calibration changed
  std::string lastlayer = compile("digits_cnn_lastlayer", "digits_calib");
  std::string v2 = compile("digits_cnn_v2", "digits_calib");
};
const Models& models() {
  static const Models m;
  return m;
}

using tinyfleet::testing::MemoryBase;
using tinyfleet::testing::MemorySlot;

update::Delta encode(const std::string& base, const std::string& target) {
  auto d = update::encode_tensor_range(base, target, update::artifact_segments(base),
                                       update::artifact_segments(target), {});
  EXPECT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->codec, update::DeltaCodec_TensorRange);
  return *d;
}

struct Applied {
  DeltaStatus status;
  std::string out;
};

Applied apply(const std::string& payload, const std::string* base, uint64_t target_size,
              size_t piece, bool with_hasher = true) {
  std::vector<uint8_t> work(
      update::DeltaDecoder::workspace_size_for(update::DeltaCodec_TensorRange, 0));
  MemoryBase b(base ? *base : "");
  MemorySlot slot;
  update::SodiumSha256 sha;
  update::DeltaDecoder dec(update::DeltaCodec_TensorRange, target_size, 0, work.data(), work.size(),
                           base ? &b : nullptr, &slot);
  if (with_hasher) dec.set_hasher(&sha);
  auto s = dec.start();
  for (size_t off = 0; s == DeltaStatus::kOk && off < payload.size(); off += piece) {
    s = dec.feed(reinterpret_cast<const uint8_t*>(payload.data()) + off,
                 std::min(piece, payload.size() - off));
  }
  if (s == DeltaStatus::kOk) s = dec.finish();
  return {s, slot.out};
}

TEST(RangeDelta, ReproducesEveryKindOfUpdateInPiecesOfAnySize) {
  const auto& m = models();
  const std::pair<const std::string*, const std::string*> pairs[] = {
      {&m.cnn, &m.lastlayer}, {&m.cnn, &m.v2}, {&m.cnn, &m.cnn_val}, {&m.v2, &m.cnn}};
  for (const auto& [base, target] : pairs) {
    const auto d = encode(*base, *target);
    for (size_t piece : {size_t{1}, size_t{7}, size_t{333}, d.payload.size()}) {
      const auto a = apply(d.payload, base, target->size(), piece);
      EXPECT_EQ(a.status, DeltaStatus::kOk) << to_string(a.status) << " piece " << piece;
      EXPECT_EQ(a.out, *target) << "piece " << piece;
    }
  }
}

TEST(RangeDelta, WithoutABaseItIsACompressedArtifact) {
  const auto& target = models().v2;
  auto d = update::encode_tensor_range("", target, {}, update::artifact_segments(target), {});
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_LT(d->payload.size(), target.size());
  const auto a = apply(d->payload, nullptr, target.size(), 100);
  EXPECT_EQ(a.status, DeltaStatus::kOk) << to_string(a.status);
  EXPECT_EQ(a.out, target);
}

TEST(RangeDelta, RecomputesTheContentHashAndSaysWhenItCannot) {
  const auto& m = models();
  ASSERT_EQ(kernels::content_hash_offset(m.lastlayer),
            static_cast<int64_t>(m.lastlayer.size()) - 32);
  const auto d = encode(m.cnn, m.lastlayer);
  const auto a = apply(d.payload, &m.cnn, m.lastlayer.size(), 64, /*with_hasher=*/false);
  EXPECT_EQ(a.status, DeltaStatus::kNoHasher);
  EXPECT_EQ(a.out, m.lastlayer.substr(0, a.out.size()));  // what it wrote is right
  EXPECT_TRUE(kernels::content_hash_matches(apply(d.payload, &m.cnn, m.lastlayer.size(), 64).out));
}

TEST(RangeDelta, PredictsWhatCalibrationMoves) {
  // Calibration changes every bias and requantization multiplier, each layer's by one
  // ratio: predicted, they cost a few bytes; as byte differences (the LZMA codec) they
  // cost most of the delta.
  const auto& m = models();
  const auto ours = encode(m.cnn, m.cnn_val);
  update::DeltaOptions o;
  o.max_window_log = 14;
  auto lzma = update::encode_tensor_lzma(m.cnn, m.cnn_val, update::artifact_segments(m.cnn),
                                         update::artifact_segments(m.cnn_val), o);
  ASSERT_TRUE(lzma);
  EXPECT_LT(ours.payload.size() * 2, lzma->payload.size())
      << ours.payload.size() << " vs " << lzma->payload.size();
}

TEST(RangeDelta, AppliesInAFewKilobytes) {
  const size_t need = update::DeltaDecoder::workspace_size_for(update::DeltaCodec_TensorRange, 0);
  EXPECT_LE(need, 24u * 1024);
  std::vector<uint8_t> small(need - 64);
  MemorySlot slot;
  update::DeltaDecoder dec(update::DeltaCodec_TensorRange, 100, 0, small.data(), small.size(),
                           nullptr, &slot);
  EXPECT_EQ(dec.start(), DeltaStatus::kWorkspaceTooSmall);
}

TEST(RangeDelta, DamagedPayloadsNeverWritePastTheTarget) {
  const auto& m = models();
  const auto d = encode(m.cnn, m.v2);
  // Truncated: the decoder says so.
  const auto cut = apply(d.payload.substr(0, d.payload.size() / 2), &m.cnn, m.v2.size(), 50);
  EXPECT_NE(cut.status, DeltaStatus::kOk);
  // Flipped bytes: refused, or a wrong artifact the manifest's sha256 refuses; never
  // more than the target's size.
  std::mt19937 rng(3);
  int refused = 0;
  for (int i = 0; i < 200; ++i) {
    std::string bad = d.payload;
    bad[rng() % bad.size()] ^= static_cast<char>(1 + rng() % 255);
    const auto a = apply(bad, &m.cnn, m.v2.size(), 97);
    EXPECT_LE(a.out.size(), m.v2.size());
    refused += a.status != DeltaStatus::kOk;
  }
  EXPECT_GT(refused, 0);
  // Against the wrong base: regions that read past it are refused by name.
  const std::string wrong(100, 'x');
  const auto tiny = apply(d.payload, &wrong, m.v2.size(), 97);
  EXPECT_EQ(tiny.status, DeltaStatus::kBaseOutOfRange);
}

TEST(RangeDelta, BytesAfterTheEndAreRefusedNotSpunOn) {
  // The fuzzer found feed() looping for ever once the decoder was done and its stage
  // full: a payload with trailing bytes must end with an error.
  const auto& m = models();
  const auto d = encode(m.cnn, m.v2);
  for (size_t piece : {size_t{1}, size_t{97}, size_t{5000}}) {
    const auto a = apply(d.payload + std::string(4096, '\x1b'), &m.cnn, m.v2.size(), piece);
    EXPECT_EQ(a.status, DeltaStatus::kCorrupt) << "piece " << piece;
    EXPECT_LE(a.out.size(), m.v2.size());
  }
}

}  // namespace
