// The agent's storage ports in RAM for the QEMU check apps: named records, two model
// slots and a staging area, a clock that stands still. A board puts the same contracts
// on flash (docs/firmware.md); these only make the agent core run on the target.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>

#include "fixture_constants.h"
#include "tinyfleet/device_agent/ports.h"

namespace tinyfleet::firmware_test {

class RamRecords final : public device_agent::RecordStore {
 public:
  long load(const char* name, uint8_t* out, size_t capacity) override {
    Record* r = find(name, false);
    if (!r || r->size > capacity) return -1;
    std::memcpy(out, r->data, r->size);
    return static_cast<long>(r->size);
  }
  bool save(const char* name, const uint8_t* data, size_t size) override {
    Record* r = find(name, true);
    if (!r || size > sizeof r->data) return false;
    std::memcpy(r->data, data, size);
    r->size = size;
    return true;
  }

 private:
  struct Record {
    char name[16] = {};
    uint8_t data[2048] = {};  // the largest is the offer (under 1 KB here)
    size_t size = 0;
  };
  Record* find(const char* name, bool create) {
    for (auto& r : records_) {
      if (std::strcmp(r.name, name) == 0) return &r;
    }
    for (auto& r : records_) {
      if (create && !r.name[0]) {
        std::snprintf(r.name, sizeof r.name, "%s", name);
        return &r;
      }
    }
    return nullptr;
  }
  Record records_[5];
};

class RamSlots final : public device_agent::SlotStore {
 public:
  static constexpr size_t kSlotBytes = 4096;
  bool begin_slot(int s) override {
    if (!valid(s)) return false;
    size_[s] = 0;
    committed_[s] = false;
    return true;
  }
  bool append_slot(int s, const uint8_t* data, size_t size) override {
    if (!valid(s) || committed_[s] || size > kSlotBytes - size_[s]) return false;
    std::memcpy(slot_[s] + size_[s], data, size);
    size_[s] += size;
    return true;
  }
  bool commit_slot(int s) override { return valid(s) && (committed_[s] = true); }
  long slot_size(int s) override {
    return valid(s) && committed_[s] ? static_cast<long>(size_[s]) : -1;
  }
  bool read_slot(int s, uint64_t offset, uint8_t* out, size_t size) override {
    if (!valid(s) || offset > size_[s] || size > size_[s] - offset) return false;
    std::memcpy(out, slot_[s] + offset, size);
    return true;
  }
  const uint8_t* map_slot(int s) override { return valid(s) ? slot_[s] : nullptr; }
  long staging_size() override { return static_cast<long>(staged_); }
  bool staging_append(uint64_t offset, const uint8_t* data, size_t size) override {
    if (offset != staged_ || size > kSlotBytes - staged_) return false;
    std::memcpy(staging_ + staged_, data, size);
    staged_ += size;
    return true;
  }
  bool staging_read(uint64_t offset, uint8_t* out, size_t size) override {
    if (offset > staged_ || size > staged_ - offset) return false;
    std::memcpy(out, staging_ + offset, size);
    return true;
  }
  bool staging_clear() override {
    staged_ = 0;
    return true;
  }

 private:
  static bool valid(int s) { return s == 0 || s == 1; }
  alignas(16) uint8_t slot_[2][kSlotBytes] = {};
  size_t size_[2] = {};
  bool committed_[2] = {};
  uint8_t staging_[kSlotBytes] = {};
  size_t staged_ = 0;
};

class FixedClock final : public device_agent::Clock {
 public:
  uint64_t now_unix() override { return kNow; }
  uint64_t monotonic_ms() override { return 0; }
};

}  // namespace tinyfleet::firmware_test
