#include "tinyfleet/update/chunk_framing.h"

#include <cstring>

#include "wire_codec.h"

namespace tinyfleet::update {

namespace {
// "TFCR"/"TFCK", then release and offset: the part both frames share.
void put_frame(wire::Writer& w, const char* magic, uint64_t release, uint64_t offset,
               const char* field) {
  w.raw(magic, 4, field);
  w.uint(release, 8, field);
  w.uint(offset, 8, field);
}
bool get_frame(wire::Reader& r, const char* magic, uint64_t* release, uint64_t* offset,
               const char* field) {
  char got[4] = {};
  r.raw(got, 4, field);
  if (r.status().ok() && std::memcmp(got, magic, 4) != 0) r.fail(WireError::kBadMagic, field);
  *release = r.uint(8, field);
  *offset = r.uint(8, field);
  return r.status().ok();
}
}  // namespace

WireStatus encode_chunk_request(const ChunkRequest& req, uint8_t* out, size_t capacity) {
  if (req.length == 0) return {WireError::kBadValue, "chunk_request.length"};
  wire::Writer w(out, capacity);
  put_frame(w, "TFCR", req.release, req.offset, "chunk_request");
  w.uint(req.length, 4, "chunk_request.length");
  return w.status();
}

WireStatus decode_chunk_request(const uint8_t* data, size_t size, ChunkRequest* out) {
  *out = ChunkRequest{};
  wire::Reader r(data, size);
  get_frame(r, "TFCR", &out->release, &out->offset, "chunk_request");
  out->length = static_cast<uint32_t>(r.uint(4, "chunk_request.length"));
  r.end("chunk_request");
  if (!r.status().ok()) return r.status();
  if (out->length == 0) return {WireError::kBadValue, "chunk_request.length"};
  return {};
}

WireStatus encode_chunk_header(uint64_t release, uint64_t offset, uint8_t* out, size_t capacity) {
  wire::Writer w(out, capacity);
  put_frame(w, "TFCK", release, offset, "chunk");
  return w.status();
}

WireStatus decode_chunk(const uint8_t* data, size_t size, Chunk* out) {
  *out = Chunk{};
  wire::Reader r(data, size);
  if (!get_frame(r, "TFCK", &out->release, &out->offset, "chunk")) return r.status();
  out->size = size - kChunkHeaderBytes;
  if (out->size > kMaxChunkBytes) return {WireError::kTooLong, "chunk.data"};
  out->data = data + kChunkHeaderBytes;
  return {};
}

}  // namespace tinyfleet::update
