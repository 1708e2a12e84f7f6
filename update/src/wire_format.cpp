#include "tinyfleet/update/wire_format.h"

#include "wire_codec.h"

namespace tinyfleet::update {

const char* to_string(WireError error) {
  static const char* const kNames[] = {
      "ok",         "truncated",       "trailing bytes",  "bad magic",
      "wrong kind", "unknown version", "length mismatch", "too long",
      "bad value",  "no room",         "bad name"};
  return wire::name_of(kNames, static_cast<size_t>(error));
}

void to_hex(const uint8_t* data, size_t size, char* out) {
  constexpr char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < size; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 15];
  }
  out[2 * size] = '\0';
}

namespace wire {

uint8_t open(Reader& r, size_t size, MessageKind kind, uint8_t max_version, const char* field) {
  char magic[2] = {};
  r.raw(magic, 2, field);
  const auto got_kind = static_cast<uint8_t>(r.uint(1, field));
  const auto version = static_cast<uint8_t>(r.uint(1, field));
  const auto length = static_cast<size_t>(r.uint(2, field));
  if (!r.status().ok()) return 0;
  if (magic[0] != 'T' || magic[1] != 'F') {
    r.fail(WireError::kBadMagic, field);
  } else if (got_kind != static_cast<uint8_t>(kind)) {
    r.fail(WireError::kWrongKind, field);
  } else if (version == 0 || version > max_version) {
    r.fail(WireError::kUnknownVersion, field);
  } else if (length != size - kHeaderBytes) {
    r.fail(WireError::kLengthMismatch, field);
  }
  return r.status().ok() ? version : 0;
}

}  // namespace wire
}  // namespace tinyfleet::update
