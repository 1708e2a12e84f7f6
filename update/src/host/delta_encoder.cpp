#include "tinyfleet/update/delta_encoder.h"

#include <lzma.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <unordered_map>

#include "region_plan.h"
#include "tinyfleet/kernels/runtime/artifact_writer.h"
#include "tinyfleet/update/delta_decoder.h"

namespace tinyfleet::update {

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
  return kernels::tensor_segments(artifact);
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

storage::Expected<std::string> region_stream(const std::string& base, const std::string& target,
                                             const std::vector<ArtifactSegment>& base_segments,
                                             const std::vector<ArtifactSegment>& target_segments) {
  auto regions = plan_regions(base, target, base_segments, target_segments, {});
  if (!regions) return regions.error();
  std::string stream = "TFD1";
  put_le(stream, target.size(), 8);
  for (const auto& r : *regions) {
    for (uint64_t start = r.from; start < r.to;) {
      const uint64_t n = std::min<uint64_t>(r.to - start, 0xffffffffu);
      stream.push_back(static_cast<char>(r.kind));
      put_le(stream, n, 4);
      if (r.kind == range::kLiteral) {
        stream.append(target, start, n);
      } else {
        const uint64_t at = r.base + (start - r.from);
        put_le(stream, at, 8);
        for (uint64_t i = 0; i < n; ++i) {
          stream.push_back(static_cast<char>(static_cast<uint8_t>(target[start + i]) -
                                             static_cast<uint8_t>(base[at + i])));
        }
      }
      start += n;
    }
  }
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
    if (options.allowed_codecs != 0 && (options.allowed_codecs & (1u << d->codec)) == 0) {
      why = std::string("the device does not decode ") + update::EnumNameDeltaCodec(d->codec);
      return;
    }
    const size_t need = DeltaDecoder::workspace_size_for(d->codec, d->window_log);
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
  consider(encode_tensor_range(base, target,
                               base.empty() ? std::vector<ArtifactSegment>{} : base_segments,
                               target_segments, options));
  if (!best) return Error{ErrorCode::kFailedPrecondition, why};
  return std::move(*best);
}

}  // namespace tinyfleet::update
