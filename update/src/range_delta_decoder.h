#pragma once

// The TensorRange codec's decoder (range_model.h has the format): a binary range
// decoder over a staging buffer, and the region state machine. It lives in the
// DeltaDecoder's workspace: 20.5 KB with its buffers (models 10 KB, remembered ratios
// 8 KB, staging and I/O buffers).
#include <cstddef>
#include <cstdint>

#include "tinyfleet/update/crypto.h"
#include "tinyfleet/update/delta_decoder.h"
#include "tinyfleet/update/range_model.h"

namespace tinyfleet::update {

class RangeDeltaDecoder {
 public:
  RangeDeltaDecoder(uint64_t target_size, BaseReader* base, SlotWriter* out, Sha256* hasher)
      : target_size_(target_size), base_(base), out_(out), hasher_(hasher) {
    state_.reset();
    if (hasher_) hasher_->reset();
  }
  DeltaStatus feed(const uint8_t* payload, size_t size);
  DeltaStatus finish();
  uint64_t written() const { return written_; }

  // The coder interface of range_model.h.
  int bit(range::Prob& prob, int);
  int direct(int);
  void fail() { failed_ = true; }

 private:
  // One value (a header, a literal, a difference, a residual) needs at most this many
  // payload bytes: every modelled bit reads at most two, eight direct bits one.
  static constexpr size_t kHeaderLookahead = 6 * (2 * (4 + range::IntModel::kLenBits) + 5);
  static constexpr size_t kStageBytes = 1024;
  static constexpr size_t kIoBytes = 1024;

  DeltaStatus run(bool final);
  DeltaStatus step();
  DeltaStatus put(uint8_t byte);
  DeltaStatus flush();
  DeltaStatus base_byte(uint64_t offset, uint8_t* out);
  void normalize();  // keeps range_ >= kTop, reading payload bytes into code_
  uint8_t next_byte();

  uint64_t target_size_;
  BaseReader* base_;
  SlotWriter* out_;
  Sha256* hasher_;
  range::CodingState state_;
  // Range decoder.
  uint32_t range_ = 0xFFFFFFFF, code_ = 0;
  int init_left_ = 4;  // the first four payload bytes fill code_
  uint8_t stage_[kStageBytes];
  size_t stage_pos_ = 0, stage_len_ = 0, overrun_ = 0;
  bool failed_ = false;
  // Regions.
  bool in_region_ = false, done_ = false;
  range::RegionHeader region_;
  uint64_t region_left_ = 0;  // bytes
  uint64_t written_ = 0;      // bytes decoded (flushed or in out_buf_)
  uint8_t out_buf_[kIoBytes];
  size_t out_len_ = 0;
  uint8_t base_buf_[kIoBytes];
  uint64_t base_buf_at_ = 0;
  size_t base_buf_len_ = 0;
};

}  // namespace tinyfleet::update
