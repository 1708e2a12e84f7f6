#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/update/crypto.h"
#include "tinyfleet/update/update_generated.h"

struct ZSTD_DCtx_s;

namespace tinyfleet::update {

// Where the patched artifact goes: the inactive slot, written front to back.
class SlotWriter {
 public:
  virtual ~SlotWriter() = default;
  virtual bool write(const uint8_t* data, size_t size) = 0;
};

// The artifact the device runs now (the base of a delta).
class BaseReader {
 public:
  virtual ~BaseReader() = default;
  virtual uint64_t size() const = 0;
  virtual bool read(uint64_t offset, uint8_t* out, size_t size) = 0;
  // The whole base at one address (flash, mmap) or null; ZstdPrefix needs it.
  virtual const uint8_t* contiguous() const = 0;
};

enum class DeltaStatus : uint8_t {
  kOk = 0,
  kWorkspaceTooSmall,  // the caller's workspace is below workspace_size()
  kWindowTooLarge,     // the payload needs more decoder memory than this device has
  kBaseUnavailable,    // the codec needs the base at one address and there is none
  kCorrupt,            // the payload does not decode, or its regions are inconsistent
  kBaseOutOfRange,     // a region reads past the end of the base
  kTooLong,            // more output than the manifest's target size
  kIncomplete,         // the payload ended early
  kWriteFailed,        // the slot refused a write
  kNoHasher,           // the delta recomputes the content hash and no Sha256 was given
  kCodecUnavailable,   // this build leaves the payload's codec out (a firmware without zstd)
};

const char* to_string(DeltaStatus status);

// Turns a payload (codec of the manifest) plus the base into the target, streaming:
// feed() the payload in pieces of any size, then finish(). Memory is the caller's
// workspace, sized by workspace_size(window_log); nothing is allocated.
//
// TensorZstd payloads decompress to "TFD1", the target size (8 bytes LE), then
// regions covering the target in order: kind (1 byte: 0 literal, 1 difference),
// length (4 bytes LE), for differences the base offset (8 bytes LE), then `length`
// bytes; a difference byte is added (mod 256) to the base byte at the same position.
// TensorLzma payloads carry the same region stream as one byte, the LZMA2 dictionary
// size as a power of two (12..14), then a raw LZMA2 stream.
// TensorRange payloads are typed regions, range-coded (range_model.h); they may end
// with the artifact's content hash, which the decoder computes with set_hasher()'s Sha256.
class RangeDeltaDecoder;
class DeltaDecoder {
 public:
  // Enough for every codec within `window_log` (the zstd codecs need the most).
  static size_t workspace_size(uint32_t window_log);
  // Enough for one codec: what a device that accepts only that codec reserves.
  // (SIZE_MAX when this build cannot decode that codec.)
  static size_t workspace_size_for(update::DeltaCodec codec, uint32_t window_log);
  // Whether this build decodes `codec` (see TINYFLEET_UPDATE_ZSTD/_LZMA in delta_decoder.cpp).
  static bool codec_available(update::DeltaCodec codec);

  DeltaDecoder(update::DeltaCodec codec, uint64_t target_size, uint32_t window_log, void* workspace,
               size_t workspace_bytes, BaseReader* base, SlotWriter* out);
  // The Sha256 a TensorRange payload's content-hash region needs (before start()).
  void set_hasher(Sha256* hasher) { hasher_ = hasher; }
  DeltaStatus start();
  DeltaStatus feed(const uint8_t* payload, size_t size);
  DeltaStatus finish();
  uint64_t written() const;
  // The most workspace this decoder has used so far (decoder state, dictionary and
  // I/O buffers): the working memory of applying the delta, besides the output slot.
  size_t peak_bytes() const;

 private:
  DeltaStatus consume(const uint8_t* data, size_t size);  // decompressed bytes
  DeltaStatus emit(const uint8_t* data, size_t size);
  DeltaStatus feed_zstd(const uint8_t* payload, size_t size);
  DeltaStatus feed_lzma(const uint8_t* payload, size_t size);
  DeltaStatus start_lzma(uint8_t dict_log);

 public:
  // The bump arena liblzma allocates from (inside the workspace); public for its callback.
  struct Arena {
    uint8_t* base = nullptr;
    size_t size = 0, used = 0;
  };

 private:
  static constexpr size_t kIoBytes = 2048;
  update::DeltaCodec codec_;
  uint64_t target_size_;
  uint32_t window_log_;
  uint8_t* workspace_;
  size_t workspace_bytes_;
  BaseReader* base_;
  SlotWriter* out_;
  Sha256* hasher_ = nullptr;
  RangeDeltaDecoder* range_ = nullptr;  // in the workspace
  ZSTD_DCtx_s* dctx_ = nullptr;
  void* lzma_ = nullptr;  // lzma_stream in the workspace, after the first payload byte
  Arena arena_;
  bool lzma_done_ = false;
  uint8_t* out_buf_ = nullptr;   // kIoBytes of decompressed output
  uint8_t* base_buf_ = nullptr;  // kIoBytes of base for differences
  uint64_t written_ = 0;
  bool frame_done_ = false;
  // TensorZstd region parsing.
  uint8_t header_[13] = {};
  size_t header_have_ = 0;
  size_t header_need_ = 12;  // magic + target size first
  bool in_region_ = false;
  uint8_t region_kind_ = 0;
  uint64_t region_left_ = 0;
  uint64_t region_base_ = 0;
  bool stream_started_ = false;
};

}  // namespace tinyfleet::update
