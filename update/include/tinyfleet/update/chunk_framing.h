#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/update/wire_format.h"

namespace tinyfleet::update {

// Downloading a payload, one chunk at a time, from any offset (so a download resumes):
//   request on .../chunk/req: "TFCR" | release (8, LE) | offset (8, LE) | length (4, LE)
//   answer on .../chunk:      "TFCK" | release (8, LE) | offset (8, LE) | data
// The server answers min(length, kMaxChunkBytes) bytes (fewer at the payload's end).
inline constexpr size_t kChunkRequestBytes = 24;
inline constexpr size_t kChunkHeaderBytes = 20;
inline constexpr size_t kMaxChunkBytes = 64 * 1024;

struct ChunkRequest {
  uint64_t release = 0;
  uint64_t offset = 0;
  uint32_t length = 0;  // at least 1
};

// Writes the 24 bytes of `req` into out[capacity].
WireStatus encode_chunk_request(const ChunkRequest& req, uint8_t* out, size_t capacity);
WireStatus decode_chunk_request(const uint8_t* data, size_t size, ChunkRequest* out);

// A chunk answer, read in place: `data` points into the caller's buffer.
struct Chunk {
  uint64_t release = 0;
  uint64_t offset = 0;
  const uint8_t* data = nullptr;
  size_t size = 0;  // at most kMaxChunkBytes
};

// Writes the 20-byte header of an answer; the data follows it.
WireStatus encode_chunk_header(uint64_t release, uint64_t offset, uint8_t* out, size_t capacity);
WireStatus decode_chunk(const uint8_t* data, size_t size, Chunk* out);

}  // namespace tinyfleet::update
