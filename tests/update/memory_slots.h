#pragma once

// A base artifact and an output slot in memory, for the delta codec tests.
#include <cstring>
#include <string>

#include "tinyfleet/update/delta_decoder.h"

namespace tinyfleet::testing {

struct MemoryBase : update::BaseReader {
  explicit MemoryBase(const std::string& b) : bytes(b) {}
  uint64_t size() const override { return bytes.size(); }
  bool read(uint64_t off, uint8_t* out, size_t n) override {
    if (off > bytes.size() || n > bytes.size() - off) return false;
    std::memcpy(out, bytes.data() + off, n);
    return true;
  }
  const uint8_t* contiguous() const override {
    return reinterpret_cast<const uint8_t*>(bytes.data());
  }
  std::string bytes;
};

struct MemorySlot : update::SlotWriter {
  bool write(const uint8_t* d, size_t n) override {
    out.append(reinterpret_cast<const char*>(d), n);
    return true;
  }
  std::string out;
};

}  // namespace tinyfleet::testing
