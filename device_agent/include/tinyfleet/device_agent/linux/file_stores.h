#pragma once

#include <cstdint>
#include <string>

#include "tinyfleet/device_agent/ports.h"

namespace tinyfleet::device_agent::linux_port {

// Records as files in `dir`: written to a temporary file, fsync'd, renamed over the
// old one, and the directory fsync'd, so a power cut leaves the old or the new.
class FileRecordStore final : public RecordStore {
 public:
  explicit FileRecordStore(std::string dir, bool durable = true)
      : dir_(std::move(dir)), durable_(durable) {}
  long load(const char* name, uint8_t* out, size_t capacity) override;
  bool save(const char* name, const uint8_t* data, size_t size) override;

 private:
  std::string dir_;
  bool durable_;
};

// Slots "slot-0.tfa" and "slot-1.tfa" and "staging.bin" in `dir`. A slot is
// written to "slot-N.tfa.partial" and renamed into place on commit; a slot is
// mapped read-only (mmap) for the runtime and the delta decoder.
class FileSlotStore : public SlotStore {
 public:
  explicit FileSlotStore(std::string dir, bool durable = true);
  ~FileSlotStore() override;

  bool begin_slot(int slot) override;
  bool append_slot(int slot, const uint8_t* data, size_t size) override;
  bool commit_slot(int slot) override;
  long slot_size(int slot) override;
  bool read_slot(int slot, uint64_t offset, uint8_t* out, size_t size) override;
  const uint8_t* map_slot(int slot) override;

  long staging_size() override;
  bool staging_append(uint64_t offset, const uint8_t* data, size_t size) override;
  bool staging_read(uint64_t offset, uint8_t* out, size_t size) override;
  bool staging_clear() override;

 private:
  std::string slot_path(int slot) const;
  void unmap(int slot);

  std::string dir_;
  bool durable_;
  int writing_fd_[2] = {-1, -1};
  const uint8_t* map_[2] = {nullptr, nullptr};
  size_t map_size_[2] = {0, 0};
};

}  // namespace tinyfleet::device_agent::linux_port
