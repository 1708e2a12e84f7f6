// The codecs built in: the host has every one; a firmware build may leave out the zstd
// codecs (Full, ZstdPrefix, TensorZstd) with TINYFLEET_UPDATE_ZSTD=0 or TensorLzma with
// TINYFLEET_UPDATE_LZMA=0, and gets kCodecUnavailable for their payloads.
#ifndef TINYFLEET_UPDATE_ZSTD
#define TINYFLEET_UPDATE_ZSTD 1
#endif
#ifndef TINYFLEET_UPDATE_LZMA
#define TINYFLEET_UPDATE_LZMA 1
#endif

#define ZSTD_STATIC_LINKING_ONLY  // ZSTD_initStaticDCtx: the decoder lives in our workspace
#include "tinyfleet/update/delta_decoder.h"

#if TINYFLEET_UPDATE_LZMA
#include <lzma.h>
#endif
#if TINYFLEET_UPDATE_ZSTD
#include <zstd.h>
#include <zstd_errors.h>
#endif

#include <algorithm>
#include <cstring>
#include <new>

#include "range_delta_decoder.h"

namespace tinyfleet::update {

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
[[maybe_unused]] size_t align16(size_t n) { return (n + 15) & ~static_cast<size_t>(15); }

// LZMA2 dictionaries the TensorLzma codec uses: 4 KB to 16 KB (differences of weights
// rarely repeat from further back; a 16 KB dictionary keeps the decoder near 50 KB).
constexpr uint32_t kLzmaMinDictLog = 12;
constexpr uint32_t kLzmaMaxDictLog = 14;
// liblzma's LZMA2 decoder state besides its dictionary (probability tables for every
// lc/lp, the range decoder, the coder chain), measured on liblzma 5.4 with slack;
// delta_test checks that a decoder fits in it.
constexpr size_t kLzmaStateBytes = 36 * 1024;

uint32_t lzma_dict_log(uint32_t window_log) {
  return window_log < kLzmaMaxDictLog ? window_log : kLzmaMaxDictLog;
}

#if TINYFLEET_UPDATE_LZMA
void* arena_alloc(void* opaque, size_t nmemb, size_t size) {
  auto* a = static_cast<DeltaDecoder::Arena*>(opaque);
  if (size != 0 && nmemb > (SIZE_MAX - 16) / size) return nullptr;
  const size_t n = align16(nmemb * size);
  if (n > a->size - a->used) return nullptr;
  void* p = a->base + a->used;
  a->used += n;
  return p;
}
void arena_free(void*, void*) {}  // the arena lives as long as one decoder

size_t lzma_fixed_bytes() { return align16(sizeof(lzma_stream)) + align16(sizeof(lzma_allocator)); }
#else
size_t lzma_fixed_bytes() { return 0; }
#endif
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
    case DeltaStatus::kNoHasher:
      return "delta recomputes the content hash but the decoder has no sha256";
    case DeltaStatus::kCodecUnavailable:
      return "delta codec not built into this device";
  }
  return "unknown";
}

// The decoder context, a by-reference dictionary object for the prefix codec (static,
// in the workspace too: ZSTD_DCtx_refPrefix would allocate one), and two I/O buffers.
size_t DeltaDecoder::workspace_size_for(update::DeltaCodec codec, uint32_t window_log) {
  if (codec == update::DeltaCodec_TensorRange) return sizeof(RangeDeltaDecoder) + 16;
  if (!codec_available(codec)) return SIZE_MAX;
  if (codec == update::DeltaCodec_TensorLzma) {
    if (window_log < kLzmaMinDictLog) return SIZE_MAX;  // cannot decode any LZMA2 payload
    return 2 * kIoBytes + lzma_fixed_bytes() + (size_t{1} << lzma_dict_log(window_log)) +
           kLzmaStateBytes;
  }
#if TINYFLEET_UPDATE_ZSTD
  return align16(ZSTD_estimateDStreamSize(static_cast<size_t>(1) << window_log)) +
         align16(ZSTD_estimateDDictSize(0, ZSTD_dlm_byRef)) + 2 * kIoBytes;
#else
  return SIZE_MAX;
#endif
}

bool DeltaDecoder::codec_available(update::DeltaCodec codec) {
  if (codec == update::DeltaCodec_TensorRange) return true;
  if (codec == update::DeltaCodec_TensorLzma) return TINYFLEET_UPDATE_LZMA != 0;
  return TINYFLEET_UPDATE_ZSTD != 0;
}

size_t DeltaDecoder::workspace_size(uint32_t window_log) {
  const size_t z = workspace_size_for(update::DeltaCodec_TensorZstd, window_log);
  const size_t l = workspace_size_for(update::DeltaCodec_TensorLzma, window_log);
  const size_t r = workspace_size_for(update::DeltaCodec_TensorRange, window_log);
  size_t most = r;
  if (l != SIZE_MAX && l > most) most = l;
  if (z != SIZE_MAX && z > most) most = z;
  return most;
}

size_t DeltaDecoder::peak_bytes() const {
  if (codec_ == update::DeltaCodec_TensorRange) return sizeof(RangeDeltaDecoder) + 16;
  if (codec_ == update::DeltaCodec_TensorLzma) {
    return 2 * kIoBytes + (lzma_ ? lzma_fixed_bytes() : 0) + arena_.used;
  }
  return workspace_size_for(codec_, window_log_);  // zstd's static context: all of it
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

uint64_t DeltaDecoder::written() const { return range_ ? range_->written() : written_; }

DeltaStatus DeltaDecoder::start() {
  if (codec_ == update::DeltaCodec_TensorRange) {
    void* p = workspace_;
    size_t space = workspace_bytes_;
    if (!std::align(alignof(RangeDeltaDecoder), sizeof(RangeDeltaDecoder), p, space)) {
      return DeltaStatus::kWorkspaceTooSmall;
    }
    range_ = new (p) RangeDeltaDecoder(target_size_, base_, out_, hasher_);
    return DeltaStatus::kOk;
  }
  if (!codec_available(codec_)) return DeltaStatus::kCodecUnavailable;
  if (codec_ == update::DeltaCodec_TensorLzma) {
    // The I/O buffers first; the LZMA2 decoder when the payload names its dictionary.
    if (workspace_bytes_ < 2 * kIoBytes + lzma_fixed_bytes()) {
      return DeltaStatus::kWorkspaceTooSmall;
    }
    out_buf_ = workspace_;
    base_buf_ = workspace_ + kIoBytes;
    return DeltaStatus::kOk;
  }
#if TINYFLEET_UPDATE_ZSTD
  if (workspace_bytes_ < workspace_size_for(codec_, window_log_)) {
    return DeltaStatus::kWorkspaceTooSmall;
  }
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
#endif
  return DeltaStatus::kOk;
}

#if TINYFLEET_UPDATE_LZMA
DeltaStatus DeltaDecoder::start_lzma(uint8_t dict_log) {
  if (dict_log < kLzmaMinDictLog || dict_log > kLzmaMaxDictLog) return DeltaStatus::kCorrupt;
  if (dict_log > window_log_) return DeltaStatus::kWindowTooLarge;
  uint8_t* p = workspace_ + 2 * kIoBytes;
  auto* strm = reinterpret_cast<lzma_stream*>(p);
  auto* allocator = reinterpret_cast<lzma_allocator*>(p + align16(sizeof(lzma_stream)));
  arena_.base = p + lzma_fixed_bytes();
  arena_.size = workspace_bytes_ - 2 * kIoBytes - lzma_fixed_bytes();
  arena_.used = 0;
  *strm = LZMA_STREAM_INIT;
  allocator->alloc = arena_alloc;
  allocator->free = arena_free;
  allocator->opaque = &arena_;
  strm->allocator = allocator;
  lzma_options_lzma options{};
  options.dict_size = uint32_t{1} << dict_log;
  const lzma_filter filters[2] = {{LZMA_FILTER_LZMA2, &options}, {LZMA_VLI_UNKNOWN, nullptr}};
  const lzma_ret rc = lzma_raw_decoder(strm, filters);
  if (rc == LZMA_MEM_ERROR) return DeltaStatus::kWorkspaceTooSmall;
  if (rc != LZMA_OK) return DeltaStatus::kCorrupt;
  lzma_ = strm;
  return DeltaStatus::kOk;
}

DeltaStatus DeltaDecoder::feed_lzma(const uint8_t* payload, size_t size) {
  if (!out_buf_) return DeltaStatus::kWorkspaceTooSmall;
  if (!lzma_) {
    if (size == 0) return DeltaStatus::kOk;
    if (auto s = start_lzma(payload[0]); s != DeltaStatus::kOk) return s;
    ++payload;
    --size;
  }
  auto* strm = static_cast<lzma_stream*>(lzma_);
  strm->next_in = payload;
  strm->avail_in = size;
  while (strm->avail_in > 0 || !lzma_done_) {
    if (lzma_done_) return DeltaStatus::kCorrupt;  // bytes after the end of the stream
    strm->next_out = out_buf_;
    strm->avail_out = kIoBytes;
    const lzma_ret rc = lzma_code(strm, LZMA_RUN);
    const size_t produced = kIoBytes - strm->avail_out;
    if (rc == LZMA_MEM_ERROR || rc == LZMA_MEMLIMIT_ERROR) return DeltaStatus::kWorkspaceTooSmall;
    if (rc != LZMA_OK && rc != LZMA_STREAM_END) return DeltaStatus::kCorrupt;
    if (produced > 0) {
      if (auto s = consume(out_buf_, produced); s != DeltaStatus::kOk) return s;
    }
    if (rc == LZMA_STREAM_END) lzma_done_ = true;
    if (strm->avail_in == 0 && produced < kIoBytes) break;  // needs more input
  }
  return DeltaStatus::kOk;
}
#else
DeltaStatus DeltaDecoder::start_lzma(uint8_t) { return DeltaStatus::kCodecUnavailable; }
DeltaStatus DeltaDecoder::feed_lzma(const uint8_t*, size_t) {
  return DeltaStatus::kCodecUnavailable;
}
#endif

DeltaStatus DeltaDecoder::feed(const uint8_t* payload, size_t size) {
  if (codec_ == update::DeltaCodec_TensorRange) {
    return range_ ? range_->feed(payload, size) : DeltaStatus::kWorkspaceTooSmall;
  }
  if (codec_ == update::DeltaCodec_TensorLzma) return feed_lzma(payload, size);
  return feed_zstd(payload, size);
}

#if TINYFLEET_UPDATE_ZSTD
DeltaStatus DeltaDecoder::feed_zstd(const uint8_t* payload, size_t size) {
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
#else
DeltaStatus DeltaDecoder::feed_zstd(const uint8_t*, size_t) {
  return DeltaStatus::kCodecUnavailable;
}
#endif

DeltaStatus DeltaDecoder::finish() {
  if (codec_ == update::DeltaCodec_TensorRange) {
    return range_ ? range_->finish() : DeltaStatus::kWorkspaceTooSmall;
  }
  if (!codec_available(codec_)) return DeltaStatus::kCodecUnavailable;
  if (codec_ == update::DeltaCodec_TensorLzma ? !lzma_done_ : !frame_done_) {
    return DeltaStatus::kIncomplete;
  }
  if ((codec_ == update::DeltaCodec_TensorZstd || codec_ == update::DeltaCodec_TensorLzma) &&
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
  if (codec_ != update::DeltaCodec_TensorZstd && codec_ != update::DeltaCodec_TensorLzma) {
    return emit(data, size);
  }
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
        region_base_ = region_kind_ != 0 ? le64(header_ + 5) : 0;
        // Checked without overflow: a hostile offset near 2^64 must not wrap around.
        if (region_kind_ != 0 && (!base_ || region_base_ > base_->size() ||
                                  region_left_ > base_->size() - region_base_)) {
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

}  // namespace tinyfleet::update
