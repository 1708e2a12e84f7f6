#pragma once

#include <cstddef>
#include <cstdint>

namespace tinyfleet::update {

// The devices' messages (status, telemetry, presence) share one binary layout, specified
// in docs/update-protocol.md: a 6-byte header, then fixed-width little-endian fields and
// length-prefixed strings. Every decoder checks each length against the bytes it has and
// against the field's bound before reading, and returns what was wrong as a value.

// What a decoder (or encoder) found wrong.
enum class WireError : uint8_t {
  kOk = 0,
  kTruncated,       // the bytes end inside the header or a field
  kTrailingBytes,   // bytes after the last field
  kBadMagic,        // not "TF" (a message) or "TFCR"/"TFCK" (chunk framing)
  kWrongKind,       // a message of another kind
  kUnknownVersion,  // a version this side does not know
  kLengthMismatch,  // the header's body length is not the number of bytes that follow
  kTooLong,         // a length above its bound (string, chunk data)
  kBadValue,        // an enum or flag outside its range, a NUL in a string, a zero length
  kNoRoom,          // encoding: the caller's buffer is too small
  kBadName,         // a fleet or device name that may not appear in a topic
};
const char* to_string(WireError error);

// The error and the field it concerns ("status.detail"); `field` is a static string.
struct WireStatus {
  WireError error = WireError::kOk;
  const char* field = "";
  bool ok() const { return error == WireError::kOk; }
};

enum class MessageKind : uint8_t { kStatus = 1, kTelemetry = 2, kPresence = 3 };

// magic "TF" (2 bytes) | kind (1) | version (1) | body length (2, LE)
inline constexpr size_t kHeaderBytes = 6;
// Fleet, device and device class names.
inline constexpr size_t kMaxNameBytes = 64;

// Lower-case hex of data[size] into out[2 * size + 1], NUL-terminated (artifact hashes
// are stored and shown as hex).
void to_hex(const uint8_t* data, size_t size, char* out);

}  // namespace tinyfleet::update
