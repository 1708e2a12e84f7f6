#pragma once

// The byte-level reader and writer behind every message and the chunk framing
// (internal to the update room). Little-endian, bounds-checked, no allocation: the
// first failure is kept and every later call is a no-op.

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tinyfleet/update/wire_format.h"

// The field names an encoder gives its Writer: they name only a caller's mistake (a
// buffer too small, a text too long), so a device build may leave them out of its flash
// (TINYFLEET_WIRE_ENCODER_NAMES=0, firmware/CMakeLists.txt: -0.9 KB): such a failure then
// names its error but no field. Decoders always name the field.
#if defined(TINYFLEET_WIRE_ENCODER_NAMES) && !TINYFLEET_WIRE_ENCODER_NAMES
#define TF_WIRE_NAME(name) ""
#else
#define TF_WIRE_NAME(name) name
#endif

namespace tinyfleet::update::wire {

// What Writer and Reader share: a position in a buffer of known size, and the first
// failure (after which every call is a no-op).
class Cursor {
 public:
  void fail(WireError e, const char* field) {
    if (status_.ok()) status_ = {e, field};
  }
  size_t position() const { return at_; }
  const WireStatus& status() const { return status_; }

 protected:
  explicit Cursor(size_t size) : size_(size) {}
  // Claims n bytes at the position, or fails with `short_error` naming `field`.
  bool claim(size_t n, const char* field, WireError short_error) {
    if (!status_.ok()) return false;
    if (n > size_ - at_) {
      fail(short_error, field);
      return false;
    }
    return true;
  }
  size_t size_;
  size_t at_ = 0;
  WireStatus status_;
};

class Writer : public Cursor {
 public:
  Writer(uint8_t* out, size_t capacity) : Cursor(capacity), out_(out) {}

  void uint(uint64_t v, size_t bytes, const char* field) {
    if (!claim(bytes, field, WireError::kNoRoom)) return;
    for (size_t i = 0; i < bytes; ++i) out_[at_++] = static_cast<uint8_t>(v >> (8 * i));
  }
  void f32(float v, const char* field) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    uint(bits, 4, field);
  }
  void f64(double v, const char* field) {
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    uint(bits, 8, field);
  }
  void raw(const void* data, size_t n, const char* field) {
    if (!claim(n, field, WireError::kNoRoom)) return;
    if (n > 0) std::memcpy(out_ + at_, data, n);
    at_ += n;
  }
  // u8 length, then the bytes (no NUL); longer than `max` is refused.
  void text(const char* s, size_t max, const char* field) {
    const size_t n = s ? std::strlen(s) : 0;
    if (n > max) return fail(WireError::kTooLong, field);
    uint(n, 1, field);
    raw(s, n, field);
  }
  // Writes v at an earlier position (the header's length).
  void patch_u16(size_t at, uint16_t v) {
    if (status_.ok() && at + 2 <= at_) {
      out_[at] = static_cast<uint8_t>(v);
      out_[at + 1] = static_cast<uint8_t>(v >> 8);
    }
  }
  size_t size() const { return at_; }

 private:
  uint8_t* out_;
};

class Reader : public Cursor {
 public:
  Reader(const uint8_t* data, size_t size) : Cursor(size), data_(data) {}

  uint64_t uint(size_t bytes, const char* field) {
    if (!claim(bytes, field, WireError::kTruncated)) return 0;
    uint64_t v = 0;
    for (size_t i = bytes; i-- > 0;) v = (v << 8) | data_[at_ + i];
    at_ += bytes;
    return v;
  }
  float f32(const char* field) {
    const auto bits = static_cast<uint32_t>(uint(4, field));
    float v;
    std::memcpy(&v, &bits, 4);
    return v;
  }
  double f64(const char* field) {
    const uint64_t bits = uint(8, field);
    double v;
    std::memcpy(&v, &bits, 8);
    return v;
  }
  void raw(void* out, size_t n, const char* field) {
    if (!claim(n, field, WireError::kTruncated)) return;
    std::memcpy(out, data_ + at_, n);
    at_ += n;
  }
  // u8 length (at most `max`), the bytes, NUL-terminated into out[max + 1].
  void text(char* out, size_t max, const char* field) {
    out[0] = '\0';
    const size_t n = static_cast<size_t>(uint(1, field));
    if (!status_.ok()) return;
    if (n > max) return fail(WireError::kTooLong, field);
    if (!claim(n, field, WireError::kTruncated)) return;
    if (std::memchr(data_ + at_, 0, n) != nullptr) return fail(WireError::kBadValue, field);
    std::memcpy(out, data_ + at_, n);
    out[n] = '\0';
    at_ += n;
  }
  // Fails unless every byte was read.
  void end(const char* field) {
    if (status_.ok() && at_ != size_) fail(WireError::kTrailingBytes, field);
  }

 private:
  const uint8_t* data_;
};

// The name of enum value `v` in a table indexed by value, or "unknown".
template <size_t N>
const char* name_of(const char* const (&names)[N], size_t v) {
  return v < N ? names[v] : "unknown";
}

// The 6-byte message header; the body length is patched by finish().
inline void begin(Writer& w, MessageKind kind, uint8_t version, const char* field) {
  w.raw("TF", 2, field);
  w.uint(static_cast<uint8_t>(kind), 1, field);
  w.uint(version, 1, field);
  w.uint(0, 2, field);
}
inline WireStatus finish(Writer& w, size_t* written) {
  if (w.status().ok()) w.patch_u16(4, static_cast<uint16_t>(w.size() - kHeaderBytes));
  *written = w.status().ok() ? w.size() : 0;
  return w.status();
}

// Checks the header of a message of `kind` whose versions 1..max_version this side
// reads; returns the version (0 on failure, with the reason in r.status()).
uint8_t open(Reader& r, size_t size, MessageKind kind, uint8_t max_version, const char* field);

}  // namespace tinyfleet::update::wire
