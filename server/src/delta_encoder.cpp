#include "tinyfleet/server/delta_encoder.h"

#include <lzma.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <unordered_map>

#include "tinyfleet/device_agent/delta_decoder.h"
#include "tinyfleet/kernels/runtime/artifact_writer.h"

namespace tinyfleet::server {

namespace {

using storage::Error;
using storage::ErrorCode;

uint32_t log2_ceil(uint64_t n) {
  uint32_t l = 10;  // zstd's minimum window
  while ((uint64_t{1} << l) < n) ++l;
  return l;
}

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}

storage::Expected<std::string> compress(const std::string& data, int level, uint32_t window_log,
                                        const std::string* prefix) {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  if (!cctx) return Error{ErrorCode::kInternal, "zstd: out of memory"};
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, static_cast<int>(window_log));
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  ZSTD_CCtx_setPledgedSrcSize(cctx, data.size());
  if (prefix) ZSTD_CCtx_refPrefix(cctx, prefix->data(), prefix->size());
  std::string out(ZSTD_compressBound(data.size()), '\0');
  const size_t n = ZSTD_compress2(cctx, out.data(), out.size(), data.data(), data.size());
  ZSTD_freeCCtx(cctx);
  if (ZSTD_isError(n)) {
    return Error{ErrorCode::kInternal, std::string("zstd: ") + ZSTD_getErrorName(n)};
  }
  out.resize(n);
  return out;
}

}  // namespace

std::vector<ArtifactSegment> artifact_segments(const std::string& artifact) {
  std::vector<ArtifactSegment> out;
  for (const auto& s : kernels::tensor_segments(artifact)) {
    out.push_back({s.name, s.offset, s.size});
  }
  return out;
}

storage::Expected<Delta> encode_full(const std::string& target, const DeltaOptions& options) {
  if (target.empty()) return Error{ErrorCode::kInvalidArgument, "the target artifact is empty"};
  const uint32_t window = std::min(options.max_window_log, log2_ceil(target.size()));
  auto payload = compress(target, options.level, window, nullptr);
  if (!payload) return payload.error();
  return Delta{update::DeltaCodec_Full, std::move(*payload), window};
}

namespace {

// LZMA2 at its strongest, with the literal-context settings that suit the stream best
// (differences of weights have no useful byte context: lc=0 often wins).
storage::Expected<std::string> compress_lzma(const std::string& data, uint32_t dict_log) {
  std::string best;
  struct Literal {
    uint32_t lc, lp, pb;
  };
  for (const auto [lc, lp, pb] :
       {Literal{0, 0, 0}, Literal{0, 0, 2}, Literal{1, 0, 0}, Literal{3, 0, 0}, Literal{3, 0, 2},
        Literal{0, 2, 2}, Literal{2, 2, 2}}) {
    {
      lzma_options_lzma o{};
      if (lzma_lzma_preset(&o, 9 | LZMA_PRESET_EXTREME)) {
        return Error{ErrorCode::kInternal, "lzma: no preset 9e"};
      }
      o.dict_size = uint32_t{1} << dict_log;
      o.lc = lc;
      o.lp = lp;
      o.pb = pb;
      const lzma_filter filters[2] = {{LZMA_FILTER_LZMA2, &o}, {LZMA_VLI_UNKNOWN, nullptr}};
      std::string out(data.size() + data.size() / 16 + 1024, '\0');
      size_t pos = 0;
      const lzma_ret rc = lzma_raw_buffer_encode(
          filters, nullptr, reinterpret_cast<const uint8_t*>(data.data()), data.size(),
          reinterpret_cast<uint8_t*>(out.data()), &pos, out.size());
      if (rc != LZMA_OK) return Error{ErrorCode::kInternal, "lzma: encoder failed"};
      out.resize(pos);
      if (best.empty() || out.size() < best.size()) best = std::move(out);
    }
  }
  return best;
}

}  // namespace

namespace {

// Writes regions, merging a difference that continues the previous one in the base.
class RegionWriter {
 public:
  RegionWriter(const std::string& base, const std::string& target, std::string& out)
      : base_(base), target_(target), out_(out) {}
  void literal(uint64_t from, uint64_t to) {
    if (from >= to) return;
    if (kind_ == 0 && end_ == from) {
      end_ = to;
      return;
    }
    flush();
    kind_ = 0, start_ = from, end_ = to;
  }
  void difference(uint64_t from, uint64_t to, uint64_t base_offset) {
    if (from >= to) return;
    const int kind = 1;
    if (kind_ == kind && end_ == from && base_at_ + (end_ - start_) == base_offset) {
      end_ = to;
      return;
    }
    flush();
    kind_ = kind, start_ = from, end_ = to, base_at_ = base_offset;
  }
  void flush() {
    while (kind_ >= 0 && start_ < end_) {
      const uint64_t n = std::min<uint64_t>(end_ - start_, 0xffffffffu);
      out_.push_back(static_cast<char>(kind_));
      put_le(out_, n, 4);
      if (kind_ == 0) {
        out_.append(target_, start_, n);
      } else {
        put_le(out_, base_at_, 8);
        for (uint64_t i = 0; i < n; ++i) {
          out_.push_back(static_cast<char>(static_cast<uint8_t>(target_[start_ + i]) -
                                           static_cast<uint8_t>(base_[base_at_ + i])));
        }
        base_at_ += n;
      }
      start_ += n;
    }
    kind_ = -1;
  }

 private:
  const std::string& base_;
  const std::string& target_;
  std::string& out_;
  int kind_ = -1;
  uint64_t start_ = 0, end_ = 0, base_at_ = 0;
};

// Finds, for bytes outside matched tensors (graph, quantization parameters, tensors that
// changed shape), approximate matches in the base as bsdiff does: seed with an exact
// 8-byte match, extend while the differences stay mostly zero; the rest is literal.
class BaseMatcher {
 public:
  explicit BaseMatcher(const std::string& base) : base_(base) {
    for (uint64_t q = 0; q + kGram <= base.size(); ++q) {
      auto& v = index_[gram(base, q)];
      if (v.size() < kCandidates) v.push_back(q);
    }
  }
  void cover(const std::string& target, uint64_t from, uint64_t to, RegionWriter& w) const {
    uint64_t p = from, lit = from;
    while (p + kGram <= to) {
      auto it = index_.find(gram(target, p));
      if (it == index_.end()) {
        ++p;
        continue;
      }
      uint64_t best_q = 0, best_len = 0;
      for (uint64_t q : it->second) {
        const uint64_t len = extend(target, p, to, q);
        if (len > best_len) best_len = len, best_q = q;
      }
      if (best_len < kGram) {
        ++p;
        continue;
      }
      w.literal(lit, p);
      w.difference(p, p + best_len, best_q);
      p += best_len;
      lit = p;
    }
    w.literal(lit, to);
  }

 private:
  static constexpr uint64_t kGram = 8;
  static constexpr size_t kCandidates = 8;
  static uint64_t gram(const std::string& s, uint64_t at) {
    uint64_t v = 0;
    std::memcpy(&v, s.data() + at, kGram);
    return v;
  }
  // The length that maximizes matches*2 - length (bsdiff's forward extension).
  uint64_t extend(const std::string& target, uint64_t p, uint64_t to, uint64_t q) const {
    int64_t score = 0, best = 0;
    uint64_t best_len = 0;
    for (uint64_t i = 0; p + i < to && q + i < base_.size(); ++i) {
      score += target[p + i] == base_[q + i] ? 1 : -1;
      if (score > best) best = score, best_len = i + 1;
      if (i + 1 - best_len > 64) break;
    }
    return best_len;
  }
  const std::string& base_;
  std::unordered_map<uint64_t, std::vector<uint64_t>> index_;
};

}  // namespace

storage::Expected<std::string> region_stream(const std::string& base, const std::string& target,
                                             const std::vector<ArtifactSegment>& base_segments,
                                             const std::vector<ArtifactSegment>& target_segments) {
  if (target.empty()) return Error{ErrorCode::kInvalidArgument, "the target artifact is empty"};
  std::vector<ArtifactSegment> targets = target_segments;
  std::map<std::string, const ArtifactSegment*> by_name;
  for (const auto& s : base_segments) {
    if (s.offset + s.size > base.size()) {
      return Error{ErrorCode::kInvalidArgument, "base segment '" + s.name + "' is out of range"};
    }
    by_name[s.name] = &s;
  }
  std::sort(targets.begin(), targets.end(),
            [](const ArtifactSegment& a, const ArtifactSegment& b) { return a.offset < b.offset; });

  std::string stream = "TFD1";
  put_le(stream, target.size(), 8);
  RegionWriter w(base, target, stream);
  const BaseMatcher matcher(base);
  uint64_t pos = 0;
  for (const auto& t : targets) {
    if (t.offset < pos || t.offset + t.size > target.size()) {
      return Error{ErrorCode::kInvalidArgument,
                   "target segment '" + t.name + "' overlaps another or is out of range"};
    }
    auto it = by_name.find(t.name);
    if (it != by_name.end() && it->second->size == t.size) {
      matcher.cover(target, pos, t.offset, w);
      w.difference(t.offset, t.offset + t.size, it->second->offset);
      pos = t.offset + t.size;
    }
  }
  matcher.cover(target, pos, target.size(), w);
  w.flush();
  return stream;
}

storage::Expected<Delta> encode_tensor_delta(const std::string& base, const std::string& target,
                                             const std::vector<ArtifactSegment>& base_segments,
                                             const std::vector<ArtifactSegment>& target_segments,
                                             const DeltaOptions& options) {
  auto stream = region_stream(base, target, base_segments, target_segments);
  if (!stream) return stream.error();
  const uint32_t window = std::min(options.max_window_log, log2_ceil(stream->size()));
  auto payload = compress(*stream, options.level, window, nullptr);
  if (!payload) return payload.error();
  return Delta{update::DeltaCodec_TensorZstd, std::move(*payload), window};
}

storage::Expected<Delta> encode_tensor_lzma(const std::string& base, const std::string& target,
                                            const std::vector<ArtifactSegment>& base_segments,
                                            const std::vector<ArtifactSegment>& target_segments,
                                            const DeltaOptions& options) {
  auto stream = region_stream(base, target, base_segments, target_segments);
  if (!stream) return stream.error();
  // The smallest dictionary that holds the whole stream, 4 KB to 16 KB, within the window.
  uint32_t dict_log = 12;
  while (dict_log < 14 && (uint64_t{1} << dict_log) < stream->size()) ++dict_log;
  if (dict_log > options.max_window_log) {
    if (options.max_window_log < 12) {
      return Error{ErrorCode::kFailedPrecondition,
                   "an LZMA2 delta needs at least a 2^12 byte window; the device allows 2^" +
                       std::to_string(options.max_window_log)};
    }
    dict_log = options.max_window_log;
  }
  auto packed = compress_lzma(*stream, dict_log);
  if (!packed) return packed.error();
  std::string payload(1, static_cast<char>(dict_log));
  payload += *packed;
  return Delta{update::DeltaCodec_TensorLzma, std::move(payload), dict_log};
}

storage::Expected<Delta> encode_prefix_delta(const std::string& base, const std::string& target,
                                             const DeltaOptions& options) {
  if (target.empty()) return Error{ErrorCode::kInvalidArgument, "the target artifact is empty"};
  const uint32_t window = log2_ceil(base.size() + target.size());
  if (window > options.max_window_log) {
    return Error{ErrorCode::kFailedPrecondition,
                 "a prefix delta needs a 2^" + std::to_string(window) +
                     " byte window; the device allows 2^" + std::to_string(options.max_window_log)};
  }
  auto payload = compress(target, options.level, window, &base);
  if (!payload) return payload.error();
  return Delta{update::DeltaCodec_ZstdPrefix, std::move(*payload), window};
}

storage::Expected<Delta> encode_best(const std::string& base, const std::string& target,
                                     const std::vector<ArtifactSegment>& base_segments,
                                     const std::vector<ArtifactSegment>& target_segments,
                                     const DeltaOptions& options) {
  std::optional<Delta> best;
  std::string why = "no delta codec fits the device";
  auto consider = [&](storage::Expected<Delta> d) {
    if (!d) {
      why = d.error().message;
      return;
    }
    const size_t need = device_agent::DeltaDecoder::workspace_size_for(d->codec, d->window_log);
    if (options.max_decoder_bytes != 0 && need > options.max_decoder_bytes) {
      why = "applying the delta needs " + std::to_string(need) + " bytes; the device allows " +
            std::to_string(options.max_decoder_bytes);
      return;
    }
    if (!best || d->payload.size() < best->payload.size()) best = std::move(*d);
  };
  consider(encode_full(target, options));
  const bool comparable = !target_segments.empty() || base.size() == target.size();
  if (!base.empty() && comparable) {
    consider(encode_tensor_delta(base, target, base_segments, target_segments, options));
  }
  consider(encode_tensor_lzma(base, target,
                              base.empty() ? std::vector<ArtifactSegment>{} : base_segments,
                              target_segments, options));
  if (!base.empty()) consider(encode_prefix_delta(base, target, options));
  if (!best) return Error{ErrorCode::kFailedPrecondition, why};
  return std::move(*best);
}

}  // namespace tinyfleet::server
