// Arbitrary bytes as a delta payload of each codec against a fixed base: the decoder
// must stay within its workspace and the target size.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "../update/memory_slots.h"
#include "tinyfleet/update/delta_decoder.h"

namespace {
// Not a hash: the fuzzer checks the decoder, not sha256.
struct Hasher : tinyfleet::update::Sha256 {
  uint8_t x = 0;
  void reset() override { x = 0; }
  void update(const uint8_t* d, size_t n) override {
    for (size_t i = 0; i < n; ++i) x ^= d[i];
  }
  void finish(uint8_t digest[32]) override {
    for (int i = 0; i < 32; ++i) digest[i] = x;
  }
};
struct Sink : tinyfleet::update::SlotWriter {
  size_t written = 0;
  bool write(const uint8_t*, size_t n) override {
    written += n;
    return true;
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const auto codec =
      static_cast<tinyfleet::update::DeltaCodec>(data[0] % (tinyfleet::update::DeltaCodec_MAX + 1));
  static std::vector<uint8_t> work(tinyfleet::update::DeltaDecoder::workspace_size(15));
  tinyfleet::testing::MemoryBase base(std::string(4096, 'b'));
  Sink sink;
  Hasher hasher;
  tinyfleet::update::DeltaDecoder dec(codec, 8192, 15, work.data(), work.size(), &base, &sink);
  dec.set_hasher(&hasher);
  if (dec.start() != tinyfleet::update::DeltaStatus::kOk) return 0;
  dec.feed(data + 1, size - 1);
  dec.finish();
  if (sink.written > 8192) __builtin_trap();  // the target size bounds the output
  return 0;
}
