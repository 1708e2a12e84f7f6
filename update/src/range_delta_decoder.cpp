#include "range_delta_decoder.h"

#include <cstring>

namespace tinyfleet::update {

int RangeDeltaDecoder::bit(range::Prob& prob, int) {
  const uint32_t bound = (range_ >> range::kProbBits) * prob.p;
  int b;
  if (code_ < bound) {
    range_ = bound;
    prob.update(0);
    b = 0;
  } else {
    code_ -= bound;
    range_ -= bound;
    prob.update(1);
    b = 1;
  }
  normalize();
  return b;
}

int RangeDeltaDecoder::direct(int) {
  range_ >>= 1;
  int b = 0;
  if (code_ >= range_) {
    code_ -= range_;
    b = 1;
  }
  normalize();
  return b;
}

void RangeDeltaDecoder::normalize() {
  while (range_ < range::kTop) {
    range_ <<= 8;
    code_ = (code_ << 8) | next_byte();
  }
}

uint8_t RangeDeltaDecoder::next_byte() {
  if (stage_pos_ < stage_len_) return stage_[stage_pos_++];
  ++overrun_;  // past the end of the payload: zeros, and finish() says it ended early
  return 0;
}

DeltaStatus RangeDeltaDecoder::feed(const uint8_t* payload, size_t size) {
  while (size > 0) {
    if (stage_pos_ > 0) {
      std::memmove(stage_, stage_ + stage_pos_, stage_len_ - stage_pos_);
      stage_len_ -= stage_pos_;
      stage_pos_ = 0;
    }
    const size_t take = size < kStageBytes - stage_len_ ? size : kStageBytes - stage_len_;
    // A full stage that decoding no longer consumes: bytes after the end of the delta
    // (or a payload that cannot go on). Refused, never an endless loop.
    if (take == 0) return DeltaStatus::kCorrupt;
    std::memcpy(stage_ + stage_len_, payload, take);
    stage_len_ += take;
    payload += take;
    size -= take;
    if (auto s = run(false); s != DeltaStatus::kOk) return s;
  }
  return DeltaStatus::kOk;
}

DeltaStatus RangeDeltaDecoder::finish() {
  if (auto s = run(true); s != DeltaStatus::kOk) return s;
  return done_ ? DeltaStatus::kOk : DeltaStatus::kIncomplete;
}

DeltaStatus RangeDeltaDecoder::run(bool final) {
  while (!done_) {
    if (failed_) return DeltaStatus::kCorrupt;
    if (overrun_ > 4) return DeltaStatus::kIncomplete;
    const size_t avail = stage_len_ - stage_pos_;
    if (!final && avail < kHeaderLookahead) break;
    if (init_left_ > 0) {
      for (; init_left_ > 0; --init_left_) code_ = (code_ << 8) | next_byte();
      continue;
    }
    if (auto s = step(); s != DeltaStatus::kOk) return s;
  }
  if (failed_) return DeltaStatus::kCorrupt;
  return final || done_ ? flush() : DeltaStatus::kOk;
}

DeltaStatus RangeDeltaDecoder::put(uint8_t byte) {
  if (written_ >= target_size_) return DeltaStatus::kTooLong;
  out_buf_[out_len_++] = byte;
  ++written_;
  return out_len_ == kIoBytes ? flush() : DeltaStatus::kOk;
}

DeltaStatus RangeDeltaDecoder::flush() {
  if (out_len_ == 0) return DeltaStatus::kOk;
  if (hasher_) hasher_->update(out_buf_, out_len_);
  if (!out_->write(out_buf_, out_len_)) return DeltaStatus::kWriteFailed;
  out_len_ = 0;
  return DeltaStatus::kOk;
}

DeltaStatus RangeDeltaDecoder::base_byte(uint64_t offset, uint8_t* out) {
  if (offset < base_buf_at_ || offset - base_buf_at_ >= base_buf_len_) {
    const uint64_t left = base_->size() - offset;  // the region was checked against size()
    base_buf_len_ = static_cast<size_t>(left < kIoBytes ? left : kIoBytes);
    base_buf_at_ = offset;
    if (!base_->read(offset, base_buf_, base_buf_len_)) {
      base_buf_len_ = 0;
      return DeltaStatus::kBaseOutOfRange;
    }
  }
  *out = base_buf_[offset - base_buf_at_];
  return DeltaStatus::kOk;
}

DeltaStatus RangeDeltaDecoder::step() {
  if (!in_region_) {
    if (written_ == target_size_) {
      done_ = true;
      return DeltaStatus::kOk;
    }
    range::RegionHeader h;
    if (!range::code_header(*this, state_, h)) return DeltaStatus::kCorrupt;
    const uint64_t bytes = h.bytes();
    if (bytes > target_size_ - written_) return DeltaStatus::kTooLong;
    if (h.kind == range::kDifference || h.kind == range::kScaled || h.kind == range::kScales) {
      if (!base_) return DeltaStatus::kBaseUnavailable;
      const int64_t at = static_cast<int64_t>(written_) + h.displacement;
      if (at < 0 || static_cast<uint64_t>(at) > base_->size() ||
          bytes > base_->size() - static_cast<uint64_t>(at)) {
        return DeltaStatus::kBaseOutOfRange;
      }
    }
    if (h.kind == range::kContentHash) {
      if (h.length != 32 || written_ + 32 != target_size_) return DeltaStatus::kCorrupt;
      if (!hasher_) return DeltaStatus::kNoHasher;
      if (auto s = flush(); s != DeltaStatus::kOk) return s;
      const uint8_t zeros[32] = {};
      uint8_t digest[32];
      hasher_->update(zeros, sizeof zeros);
      hasher_->finish(digest);
      hasher_ = nullptr;  // finished: the digest itself is not hashed
      for (uint8_t b : digest) {
        if (auto s = put(b); s != DeltaStatus::kOk) return s;
      }
      return DeltaStatus::kOk;
    }
    region_ = h;
    region_left_ = bytes;
    in_region_ = true;
    return DeltaStatus::kOk;
  }
  const uint64_t at = written_ + static_cast<uint64_t>(region_.displacement);
  if (region_.kind == range::kLiteral) {
    if (auto s = put(range::code_literal(*this, state_, 0)); s != DeltaStatus::kOk) return s;
    --region_left_;
  } else if (region_.kind == range::kDifference) {
    uint8_t b = 0;
    if (auto s = base_byte(at, &b); s != DeltaStatus::kOk) return s;
    const uint8_t d = range::code_difference(*this, state_, region_.width, written_, 0);
    if (auto s = put(static_cast<uint8_t>(b + d)); s != DeltaStatus::kOk) return s;
    --region_left_;
  } else {  // scaled, scales: one 32-bit element
    uint8_t b[4];
    for (int i = 0; i < 4; ++i) {
      if (auto s = base_byte(at + i, &b[i]); s != DeltaStatus::kOk) return s;
    }
    const uint32_t base = b[0] | b[1] << 8 | b[2] << 16 | static_cast<uint32_t>(b[3]) << 24;
    const uint64_t element = (region_.bytes() - region_left_) / 4;
    const uint32_t v = region_.kind == range::kScales
                           ? range::code_scale(*this, state_, base, 0)
                           : static_cast<uint32_t>(range::predict_scaled(
                                 state_, region_, static_cast<int32_t>(base), element)) +
                                 static_cast<uint32_t>(range::code_residual(*this, state_, 0));
    for (int i = 0; i < 4; ++i) {
      if (auto s = put(static_cast<uint8_t>(v >> (8 * i))); s != DeltaStatus::kOk) return s;
    }
    region_left_ -= 4;
  }
  if (region_left_ == 0) in_region_ = false;
  return DeltaStatus::kOk;
}

}  // namespace tinyfleet::update
