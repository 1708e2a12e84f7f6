#define ZSTD_STATIC_LINKING_ONLY  // ZSTD_initStaticDCtx: the decoder lives in our workspace
#include "tinyfleet/device_agent/delta_decoder.h"

#include <zstd.h>
#include <zstd_errors.h>

#include <cstring>

namespace tinyfleet::device_agent {

namespace {
uint64_t le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint32_t le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}
size_t align16(size_t n) { return (n + 15) & ~static_cast<size_t>(15); }
}  // namespace

const char* to_string(DeltaStatus status) {
  switch (status) {
    case DeltaStatus::kOk:
      return "ok";
    case DeltaStatus::kWorkspaceTooSmall:
      return "decoder workspace too small";
    case DeltaStatus::kWindowTooLarge:
      return "delta needs a larger window than the device allows";
    case DeltaStatus::kBaseUnavailable:
      return "delta needs the base artifact at one address";
    case DeltaStatus::kCorrupt:
      return "delta corrupt";
    case DeltaStatus::kBaseOutOfRange:
      return "delta reads past the end of the base";
    case DeltaStatus::kTooLong:
      return "delta produces more than the target size";
    case DeltaStatus::kIncomplete:
      return "delta ended early";
    case DeltaStatus::kWriteFailed:
      return "slot write failed";
  }
  return "unknown";
}

// The decoder context, a by-reference dictionary object for the prefix codec (static,
// in the workspace too: ZSTD_DCtx_refPrefix would allocate one), and two I/O buffers.
size_t DeltaDecoder::workspace_size(uint32_t window_log) {
  return align16(ZSTD_estimateDStreamSize(static_cast<size_t>(1) << window_log)) +
         align16(ZSTD_estimateDDictSize(0, ZSTD_dlm_byRef)) + 2 * kIoBytes;
}

DeltaDecoder::DeltaDecoder(update::DeltaCodec codec, uint64_t target_size, uint32_t window_log,
                           void* workspace, size_t workspace_bytes, BaseReader* base,
                           SlotWriter* out)
    : codec_(codec),
      target_size_(target_size),
      window_log_(window_log),
      workspace_(static_cast<uint8_t*>(workspace)),
      workspace_bytes_(workspace_bytes),
      base_(base),
      out_(out) {}

DeltaStatus DeltaDecoder::start() {
  if (workspace_bytes_ < workspace_size(window_log_)) return DeltaStatus::kWorkspaceTooSmall;
  const size_t zstd_bytes =
      align16(ZSTD_estimateDStreamSize(static_cast<size_t>(1) << window_log_));
  dctx_ = ZSTD_initStaticDCtx(workspace_, zstd_bytes);
  if (!dctx_) return DeltaStatus::kWorkspaceTooSmall;
  uint8_t* ddict_space = workspace_ + zstd_bytes;
  const size_t ddict_bytes = align16(ZSTD_estimateDDictSize(0, ZSTD_dlm_byRef));
  out_buf_ = ddict_space + ddict_bytes;
  base_buf_ = out_buf_ + kIoBytes;
  ZSTD_DCtx_setParameter(dctx_, ZSTD_d_windowLogMax, static_cast<int>(window_log_));
  if (codec_ == update::DeltaCodec_ZstdPrefix) {
    if (!base_ || !base_->contiguous()) return DeltaStatus::kBaseUnavailable;
    // The base as a raw-content dictionary referenced in place: the same as a prefix.
    const ZSTD_DDict* ddict =
        ZSTD_initStaticDDict(ddict_space, ddict_bytes, base_->contiguous(), base_->size(),
                             ZSTD_dlm_byRef, ZSTD_dct_rawContent);
    if (!ddict || ZSTD_isError(ZSTD_DCtx_refDDict(dctx_, ddict))) return DeltaStatus::kCorrupt;
  }
  return DeltaStatus::kOk;
}

DeltaStatus DeltaDecoder::feed(const uint8_t* payload, size_t size) {
  if (!dctx_) return DeltaStatus::kWorkspaceTooSmall;
  ZSTD_inBuffer in{payload, size, 0};
  while (in.pos < in.size) {
    if (frame_done_) return DeltaStatus::kCorrupt;  // bytes after the frame
    ZSTD_outBuffer out{out_buf_, kIoBytes, 0};
    const size_t rc = ZSTD_decompressStream(dctx_, &out, &in);
    if (ZSTD_isError(rc)) {
      return ZSTD_getErrorCode(rc) == ZSTD_error_frameParameter_windowTooLarge
                 ? DeltaStatus::kWindowTooLarge
                 : DeltaStatus::kCorrupt;
    }
    if (out.pos > 0) {
      if (auto s = consume(out_buf_, out.pos); s != DeltaStatus::kOk) return s;
    }
    if (rc == 0) frame_done_ = true;
  }
  // Flush what zstd still holds for the input seen so far.
  for (;;) {
    ZSTD_outBuffer out{out_buf_, kIoBytes, 0};
    ZSTD_inBuffer none{nullptr, 0, 0};
    const size_t rc = ZSTD_decompressStream(dctx_, &out, &none);
    if (ZSTD_isError(rc)) return DeltaStatus::kCorrupt;
    if (out.pos > 0) {
      if (auto s = consume(out_buf_, out.pos); s != DeltaStatus::kOk) return s;
    }
    if (rc == 0) frame_done_ = true;
    if (out.pos < kIoBytes) break;
  }
  return DeltaStatus::kOk;
}

DeltaStatus DeltaDecoder::finish() {
  if (!frame_done_) return DeltaStatus::kIncomplete;
  if (codec_ == update::DeltaCodec_TensorZstd &&
      (in_region_ || header_have_ != 0 || !stream_started_)) {
    return DeltaStatus::kIncomplete;
  }
  return written_ == target_size_ ? DeltaStatus::kOk : DeltaStatus::kIncomplete;
}

DeltaStatus DeltaDecoder::emit(const uint8_t* data, size_t size) {
  if (written_ + size > target_size_) return DeltaStatus::kTooLong;
  if (!out_->write(data, size)) return DeltaStatus::kWriteFailed;
  written_ += size;
  return DeltaStatus::kOk;
}

DeltaStatus DeltaDecoder::consume(const uint8_t* data, size_t size) {
  if (codec_ != update::DeltaCodec_TensorZstd) return emit(data, size);
  while (size > 0) {
    if (!in_region_) {
      // Collect a header: first the stream header, then one per region.
      const size_t take = std::min(size, header_need_ - header_have_);
      std::memcpy(header_ + header_have_, data, take);
      header_have_ += take;
      data += take;
      size -= take;
      if (header_have_ == 5 && stream_started_ && header_[0] == 1 && header_need_ == 5) {
        header_need_ = 13;  // a difference also names its base offset
        continue;
      }
      if (header_have_ < header_need_) continue;
      if (!stream_started_) {
        if (std::memcmp(header_, "TFD1", 4) != 0 || le64(header_ + 4) != target_size_) {
          return DeltaStatus::kCorrupt;
        }
        stream_started_ = true;
      } else {
        region_kind_ = header_[0];
        if (region_kind_ > 1) return DeltaStatus::kCorrupt;
        region_left_ = le32(header_ + 1);
        region_base_ = region_kind_ == 1 ? le64(header_ + 5) : 0;
        if (region_kind_ == 1 && (!base_ || region_base_ + region_left_ > base_->size())) {
          return DeltaStatus::kBaseOutOfRange;
        }
        in_region_ = region_left_ > 0;
      }
      header_have_ = 0;
      header_need_ = 5;
      continue;
    }
    const size_t take = static_cast<size_t>(std::min<uint64_t>({size, region_left_, kIoBytes}));
    if (region_kind_ == 0) {
      if (auto s = emit(data, take); s != DeltaStatus::kOk) return s;
    } else {
      if (!base_->read(region_base_, base_buf_, take)) return DeltaStatus::kBaseOutOfRange;
      for (size_t i = 0; i < take; ++i) base_buf_[i] = static_cast<uint8_t>(base_buf_[i] + data[i]);
      if (auto s = emit(base_buf_, take); s != DeltaStatus::kOk) return s;
      region_base_ += take;
    }
    region_left_ -= take;
    data += take;
    size -= take;
    if (region_left_ == 0) in_region_ = false;
  }
  return DeltaStatus::kOk;
}

}  // namespace tinyfleet::device_agent
