// Arbitrary bytes as a chunk request (fleetd's side) and as a chunk answer (the device's
// side): bounded decoding; an accepted request encodes back to the same bytes, and an
// accepted answer's data lies inside the input.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "tinyfleet/update/chunk_framing.h"

using namespace tinyfleet::update;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ChunkRequest req;
  if (decode_chunk_request(data, size, &req).ok()) {
    uint8_t out[kChunkRequestBytes];
    if (!encode_chunk_request(req, out, sizeof out).ok() || size != kChunkRequestBytes ||
        std::memcmp(out, data, size) != 0) {
      std::abort();
    }
  }
  Chunk chunk;
  if (decode_chunk(data, size, &chunk).ok()) {
    if (chunk.data != data + kChunkHeaderBytes || chunk.size != size - kChunkHeaderBytes) {
      std::abort();
    }
  }
  return 0;
}
