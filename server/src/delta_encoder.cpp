#include "tinyfleet/server/delta_encoder.h"

#include <zstd.h>

#include <algorithm>
#include <map>

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

storage::Expected<Delta> encode_full(const std::string& target, const DeltaOptions& options) {
  if (target.empty()) return Error{ErrorCode::kInvalidArgument, "the target artifact is empty"};
  const uint32_t window = std::min(options.max_window_log, log2_ceil(target.size()));
  auto payload = compress(target, options.level, window, nullptr);
  if (!payload) return payload.error();
  return Delta{update::DeltaCodec_Full, std::move(*payload), window};
}

storage::Expected<Delta> encode_tensor_delta(const std::string& base, const std::string& target,
                                             const std::vector<ArtifactSegment>& base_segments,
                                             const std::vector<ArtifactSegment>& target_segments,
                                             const DeltaOptions& options) {
  if (target.empty()) return Error{ErrorCode::kInvalidArgument, "the target artifact is empty"};
  std::vector<ArtifactSegment> targets = target_segments;
  std::vector<ArtifactSegment> bases = base_segments;
  if (targets.empty() && base.size() == target.size()) {
    targets = {{"*", 0, target.size()}};
    bases = {{"*", 0, base.size()}};
  }
  std::map<std::string, const ArtifactSegment*> by_name;
  for (const auto& s : bases) {
    if (s.offset + s.size > base.size()) {
      return Error{ErrorCode::kInvalidArgument, "base segment '" + s.name + "' is out of range"};
    }
    by_name[s.name] = &s;
  }
  std::sort(targets.begin(), targets.end(),
            [](const ArtifactSegment& a, const ArtifactSegment& b) { return a.offset < b.offset; });

  std::string stream = "TFD1";
  put_le(stream, target.size(), 8);
  auto literal = [&](uint64_t from, uint64_t to) {
    while (from < to) {
      const uint64_t n = std::min<uint64_t>(to - from, 0xffffffffu);
      stream.push_back(0);
      put_le(stream, n, 4);
      stream.append(target, from, n);
      from += n;
    }
  };
  uint64_t pos = 0;
  for (const auto& t : targets) {
    if (t.offset < pos || t.offset + t.size > target.size()) {
      return Error{ErrorCode::kInvalidArgument,
                   "target segment '" + t.name + "' overlaps another or is out of range"};
    }
    literal(pos, t.offset);
    auto it = by_name.find(t.name);
    if (it != by_name.end() && it->second->size == t.size && t.size <= 0xffffffffu) {
      stream.push_back(1);
      put_le(stream, t.size, 4);
      put_le(stream, it->second->offset, 8);
      for (uint64_t i = 0; i < t.size; ++i) {
        stream.push_back(static_cast<char>(static_cast<uint8_t>(target[t.offset + i]) -
                                           static_cast<uint8_t>(base[it->second->offset + i])));
      }
    } else {
      literal(t.offset, t.offset + t.size);
    }
    pos = t.offset + t.size;
  }
  literal(pos, target.size());
  const uint32_t window = std::min(options.max_window_log, log2_ceil(stream.size()));
  auto payload = compress(stream, options.level, window, nullptr);
  if (!payload) return payload.error();
  return Delta{update::DeltaCodec_TensorZstd, std::move(*payload), window};
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
  auto best = encode_full(target, options);
  if (!best) return best;
  if (base.empty()) return best;
  if (!target_segments.empty() || base.size() == target.size()) {
    auto tensor = encode_tensor_delta(base, target, base_segments, target_segments, options);
    if (tensor && tensor->payload.size() < best->payload.size()) best = std::move(tensor);
  }
  auto prefix = encode_prefix_delta(base, target, options);
  if (prefix && prefix->payload.size() < best->payload.size()) best = std::move(prefix);
  return best;
}

}  // namespace tinyfleet::server
