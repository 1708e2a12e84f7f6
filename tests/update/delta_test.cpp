// The delta codec: every codec round-trips through the streaming decoder in small
// pieces with bounded memory; corrupt or truncated payloads are refused.
#include <gtest/gtest.h>

#include <random>

#include "memory_slots.h"
#include "tinyfleet/update/delta_decoder.h"
#include "tinyfleet/update/delta_encoder.h"

using namespace tinyfleet;
using update::DeltaStatus;

namespace {

using tinyfleet::testing::MemoryBase;
using tinyfleet::testing::MemorySlot;

// An artifact-like blob: a header, then tensors of pseudo-random weights.
struct Artifact {
  std::string bytes;
  std::vector<update::ArtifactSegment> segments;
};

Artifact make_artifact(uint32_t seed, const std::vector<size_t>& tensor_sizes, size_t header) {
  std::mt19937 rng(seed);
  Artifact a;
  a.bytes.resize(header);
  for (auto& c : a.bytes) c = static_cast<char>(rng());
  for (size_t i = 0; i < tensor_sizes.size(); ++i) {
    a.segments.push_back({"tensor" + std::to_string(i), a.bytes.size(), tensor_sizes[i]});
    for (size_t j = 0; j < tensor_sizes[i]; ++j) a.bytes.push_back(static_cast<char>(rng()));
  }
  return a;
}

DeltaStatus apply(const update::Delta& d, const std::string& base, uint64_t target_size,
                  std::string* out, uint32_t window_log, size_t piece = 333) {
  std::vector<uint8_t> work(update::DeltaDecoder::workspace_size(window_log));
  MemoryBase b(base);
  MemorySlot slot;
  update::DeltaDecoder dec(d.codec, target_size, window_log, work.data(), work.size(), &b, &slot);
  if (auto s = dec.start(); s != DeltaStatus::kOk) return s;
  for (size_t off = 0; off < d.payload.size(); off += piece) {
    const auto n = std::min(piece, d.payload.size() - off);
    if (auto s = dec.feed(reinterpret_cast<const uint8_t*>(d.payload.data()) + off, n);
        s != DeltaStatus::kOk) {
      return s;
    }
  }
  auto s = dec.finish();
  *out = slot.out;
  return s;
}

TEST(DeltaCodec, EveryCodecRoundTrips) {
  const auto base = make_artifact(1, {4096, 20000, 300, 7}, 640);
  auto target = base;
  for (size_t i = 0; i < 4096; i += 52) target.bytes[target.segments[0].offset + i] += 1;
  // Fine-tuning: a few weights of one tensor move; the header changes a little.
  std::mt19937 rng(9);
  for (int i = 0; i < 200; ++i) target.bytes[target.segments[1].offset + rng() % 20000] ^= 3;
  target.bytes[10] = 'x';
  update::DeltaOptions opts;
  std::vector<tinyfleet::storage::Expected<update::Delta>> deltas;
  deltas.push_back(update::encode_full(target.bytes, opts));
  deltas.push_back(
      update::encode_tensor_delta(base.bytes, target.bytes, base.segments, target.segments, opts));
  deltas.push_back(update::encode_prefix_delta(base.bytes, target.bytes, opts));
  deltas.push_back(
      update::encode_tensor_lzma(base.bytes, target.bytes, base.segments, target.segments, opts));
  for (const auto& d : deltas) {
    ASSERT_TRUE(d) << d.error().message;
    std::string out;
    EXPECT_EQ(apply(*d, base.bytes, target.bytes.size(), &out, opts.max_window_log),
              DeltaStatus::kOk)
        << "codec " << static_cast<int>(d->codec);
    EXPECT_EQ(out, target.bytes) << "codec " << static_cast<int>(d->codec);
  }
  // Fed one byte at a time, too.
  std::string out;
  EXPECT_EQ(apply(*deltas[1], base.bytes, target.bytes.size(), &out, opts.max_window_log, 1),
            DeltaStatus::kOk);
  EXPECT_EQ(out, target.bytes);
  EXPECT_EQ(apply(*deltas[3], base.bytes, target.bytes.size(), &out, opts.max_window_log, 1),
            DeltaStatus::kOk);
  EXPECT_EQ(out, target.bytes);
}

// What a small device reserves for the LZMA2 codec is enough, and far below zstd's.
DeltaStatus apply_lzma_within(const update::Delta& d, const std::string& base, uint64_t target_size,
                              std::string* out, uint32_t window_log, size_t* peak) {
  const size_t reserve =
      update::DeltaDecoder::workspace_size_for(update::DeltaCodec_TensorLzma, window_log);
  std::vector<uint8_t> work(reserve);
  MemoryBase b(base);
  MemorySlot slot;
  update::DeltaDecoder dec(d.codec, target_size, window_log, work.data(), work.size(), &b, &slot);
  auto s = dec.start();
  if (s == DeltaStatus::kOk) {
    s = dec.feed(reinterpret_cast<const uint8_t*>(d.payload.data()), d.payload.size());
  }
  if (s == DeltaStatus::kOk) s = dec.finish();
  *out = slot.out;
  *peak = dec.peak_bytes();
  return s;
}

TEST(DeltaCodec, LzmaDeltaAppliesInUnder64KB) {
  const auto base = make_artifact(11, {30000, 40000, 900}, 700);
  auto target = base;
  std::mt19937 rng(12);
  for (int i = 0; i < 3000; ++i) {
    target.bytes[target.segments[1].offset + rng() % 40000] += static_cast<char>(rng() % 3 - 1);
  }
  update::DeltaOptions opts;
  opts.max_window_log = 16;
  auto d =
      update::encode_tensor_lzma(base.bytes, target.bytes, base.segments, target.segments, opts);
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->codec, update::DeltaCodec_TensorLzma);
  auto z =
      update::encode_tensor_delta(base.bytes, target.bytes, base.segments, target.segments, opts);
  ASSERT_TRUE(z);
  std::printf("lzma %zu B, zstd %zu B for %zu B of target\n", d->payload.size(), z->payload.size(),
              target.bytes.size());
  std::string out;
  size_t peak = 0;
  ASSERT_EQ(apply_lzma_within(*d, base.bytes, target.bytes.size(), &out, 16, &peak),
            DeltaStatus::kOk);
  EXPECT_EQ(out, target.bytes);
  EXPECT_LE(peak, 64u * 1024) << "peak working memory " << peak;
  EXPECT_LE(update::DeltaDecoder::workspace_size_for(update::DeltaCodec_TensorLzma, 16),
            128u * 1024);
  // A dictionary larger than the device's window is refused by name.
  EXPECT_EQ(apply_lzma_within(*d, base.bytes, target.bytes.size(), &out, 13, &peak),
            DeltaStatus::kWindowTooLarge);
  // The smallest dictionary fits in the least memory.
  opts.max_window_log = 12;
  auto small =
      update::encode_tensor_lzma(base.bytes, target.bytes, base.segments, target.segments, opts);
  ASSERT_TRUE(small);
  ASSERT_EQ(apply_lzma_within(*small, base.bytes, target.bytes.size(), &out, 12, &peak),
            DeltaStatus::kOk);
  EXPECT_EQ(out, target.bytes);
  EXPECT_LE(peak, 48u * 1024) << "peak working memory " << peak;
  // Corrupt and truncated LZMA payloads are refused.
  auto flipped = *d;
  flipped.payload[flipped.payload.size() / 2] ^= 0x21;
  EXPECT_NE(apply(flipped, base.bytes, target.bytes.size(), &out, 16), DeltaStatus::kOk);
  auto truncated = *d;
  truncated.payload.resize(truncated.payload.size() - 3);
  EXPECT_NE(apply(truncated, base.bytes, target.bytes.size(), &out, 16), DeltaStatus::kOk);
}

TEST(DeltaCodec, BestCodecRespectsTheDeviceMemory) {
  const auto base = make_artifact(13, {20000, 20000}, 300);
  auto target = base;
  for (int i = 0; i < 100; ++i) target.bytes[target.segments[0].offset + i * 150] += 1;
  update::DeltaOptions opts;
  opts.max_decoder_bytes = 64 * 1024;
  opts.max_window_log = 16;
  auto best = update::encode_best(base.bytes, target.bytes, base.segments, target.segments, opts);
  ASSERT_TRUE(best) << best.error().message;
  EXPECT_EQ(best->codec, update::DeltaCodec_TensorLzma);
  opts.max_decoder_bytes = 8 * 1024;
  auto none = update::encode_best(base.bytes, target.bytes, base.segments, target.segments, opts);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("device allows"), std::string::npos) << none.error().message;
}

TEST(DeltaCodec, BestCodecIsOneTheDeviceDecodes) {
  // The case above picks TensorLzma within 64 KB; a device that decodes TensorRange only
  // (the Cortex-M4 firmware) gets TensorRange, also for a first model (from nothing).
  const auto base = make_artifact(13, {20000, 20000}, 300);
  auto target = base;
  for (int i = 0; i < 100; ++i) target.bytes[target.segments[0].offset + i * 150] += 1;
  update::DeltaOptions opts;
  opts.max_decoder_bytes = 64 * 1024;
  opts.max_window_log = 16;
  opts.allowed_codecs = 1u << update::DeltaCodec_TensorRange;
  auto best = update::encode_best(base.bytes, target.bytes, base.segments, target.segments, opts);
  ASSERT_TRUE(best) << best.error().message;
  EXPECT_EQ(best->codec, update::DeltaCodec_TensorRange);
  auto first = update::encode_best("", target.bytes, {}, target.segments, opts);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->codec, update::DeltaCodec_TensorRange);
  // Only Full allowed where Full does not fit: refused, naming why.
  opts.allowed_codecs = 1u << update::DeltaCodec_Full;
  auto none = update::encode_best(base.bytes, target.bytes, base.segments, target.segments, opts);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("does not decode"), std::string::npos)
      << none.error().message;
}

TEST(DeltaCodec, TensorDeltaIsSmallForFineTunedWeights) {
  const auto base = make_artifact(2, {8192, 32768, 4096}, 512);
  auto target = base;
  for (size_t i = 0; i < 64; ++i) target.bytes[target.segments[1].offset + i * 500] += 1;
  update::DeltaOptions opts;
  auto full = update::encode_full(target.bytes, opts);
  auto tensor =
      update::encode_tensor_delta(base.bytes, target.bytes, base.segments, target.segments, opts);
  ASSERT_TRUE(full && tensor);
  // Random weights do not compress; their differences are almost all zero.
  EXPECT_LT(tensor->payload.size() * 20, full->payload.size())
      << "tensor " << tensor->payload.size() << " full " << full->payload.size();
  auto best = update::encode_best(base.bytes, target.bytes, base.segments, target.segments, opts);
  ASSERT_TRUE(best);
  EXPECT_LE(best->payload.size(), tensor->payload.size());
}

TEST(DeltaCodec, ShiftedTensorsAreMatchedByName) {
  const auto base = make_artifact(3, {5000, 7000}, 100);
  // The target has a longer header and an extra tensor in front: offsets move.
  auto target = make_artifact(4, {900}, 300);
  for (size_t i = 0; i < base.segments.size(); ++i) {
    const auto& s = base.segments[i];
    target.segments.push_back({s.name, target.bytes.size(), s.size});
    target.bytes += base.bytes.substr(s.offset, s.size);
  }
  target.segments[0].name = "new_tensor";
  auto d =
      update::encode_tensor_delta(base.bytes, target.bytes, base.segments, target.segments, {});
  ASSERT_TRUE(d);
  EXPECT_LT(d->payload.size(), 2000u);  // 12 KB of weights travel as zeros
  std::string out;
  ASSERT_EQ(apply(*d, base.bytes, target.bytes.size(), &out, 17), DeltaStatus::kOk);
  EXPECT_EQ(out, target.bytes);
}

TEST(DeltaCodec, CorruptTruncatedAndOversizedPayloadsAreRefused) {
  const auto base = make_artifact(5, {3000, 3000}, 200);
  auto target = base;
  target.bytes[500] ^= 1;
  auto d =
      update::encode_tensor_delta(base.bytes, target.bytes, base.segments, target.segments, {});
  ASSERT_TRUE(d);
  std::string out;
  auto flipped = *d;
  flipped.payload[flipped.payload.size() / 2] ^= 0x40;
  EXPECT_NE(apply(flipped, base.bytes, target.bytes.size(), &out, 17), DeltaStatus::kOk);

  auto truncated = *d;
  truncated.payload.resize(truncated.payload.size() - 5);
  EXPECT_EQ(apply(truncated, base.bytes, target.bytes.size(), &out, 17), DeltaStatus::kIncomplete);

  // The manifest's target size is the bound on output.
  EXPECT_EQ(apply(*d, base.bytes, target.bytes.size() - 1, &out, 17), DeltaStatus::kCorrupt);

  // A prefix delta needs a window the device does not have.
  const auto big = make_artifact(6, {100000}, 10);
  auto big2 = big;
  big2.bytes[5] ^= 1;
  update::DeltaOptions wide;
  wide.max_window_log = 20;
  auto prefix = update::encode_prefix_delta(big.bytes, big2.bytes, wide);
  ASSERT_TRUE(prefix);
  EXPECT_EQ(apply(*prefix, big.bytes, big2.bytes.size(), &out, 16), DeltaStatus::kWindowTooLarge);
  update::DeltaOptions narrow;
  narrow.max_window_log = 16;
  auto refused = update::encode_prefix_delta(big.bytes, big2.bytes, narrow);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("window"), std::string::npos);

  // A difference reaching past the base.
  EXPECT_EQ(apply(*d, base.bytes.substr(0, 1000), target.bytes.size(), &out, 17),
            DeltaStatus::kBaseOutOfRange);
}

TEST(DeltaCodec, WorkspaceIsBoundedAndChecked) {
  // zstd's decoder context dominates; the window adds to it. Measured with zstd 1.5.4:
  // about 322 KB at 2^15 (see docs/update-protocol.md).
  const auto small_window = update::DeltaDecoder::workspace_size(15);
  EXPECT_LT(small_window, update::DeltaDecoder::workspace_size(20));
  EXPECT_LT(small_window, 400u * 1024);
  std::vector<uint8_t> small(1024);
  MemorySlot slot;
  update::DeltaDecoder dec(update::DeltaCodec_Full, 10, 15, small.data(), small.size(), nullptr,
                           &slot);
  EXPECT_EQ(dec.start(), DeltaStatus::kWorkspaceTooSmall);
}

}  // namespace
