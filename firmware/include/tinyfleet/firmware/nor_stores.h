// The agent's storage ports (device_agent/ports.h) on NOR flash (nor_flash.h), laid out
// in sectors (docs/firmware.md, "NOR flash"):
// - records: pairs of banks; a save erases the pair's older (or invalid) bank and
//   programs a header {magic, sequence, size, CRC-32, name} and then the data; load takes
//   the valid bank (CRC) with the higher sequence, so a torn save leaves the old record;
// - slots A/B: a header page written by commit_slot (size, CRC-32 of the content), the
//   content after it; begin_slot erases the header sector first (the slot is then empty);
// - staging: a log of pages, each {magic, offset, length, CRC-32} and up to 240 bytes;
//   staging_size() is the end of the chain of valid pages from offset 0, so a page torn
//   by a cut is skipped (the next append goes to the next blank page).
// Flash read through semihosting is not memory-mapped: map_slot copies the slot into a
// RAM buffer the board gives (its SRAM; on memory-mapped flash it would return the
// flash address instead).
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/device_agent/ports.h"
#include "tinyfleet/firmware/nor_flash.h"

namespace tinyfleet::firmware {

struct NorLayout {
  uint32_t record_sector = 0;  // first sector of the record banks
  uint32_t record_pairs = 8;   // named records (the agent uses 6)
  uint32_t bank_sectors = 3;   // 12 KB banks: an 8 KB offer and its header
  uint32_t slot_sector[2] = {48, 58};
  uint32_t slot_sectors = 10;  // 40 KB: digits_cnn's 28.5 KB artifact and room
  uint32_t staging_sector = 68;
  uint32_t staging_sectors = 10;
  uint32_t sectors() const { return staging_sector + staging_sectors; }
};

class NorRecords final : public device_agent::RecordStore {
 public:
  NorRecords(NorFlash& flash, const NorLayout& layout) : flash_(flash), layout_(layout) {}
  long load(const char* name, uint8_t* out, size_t capacity) override;
  bool save(const char* name, const uint8_t* data, size_t size) override;

 public:
  struct Bank;  // a bank's header and whether its CRC holds (nor_records.cpp)

 private:
  uint32_t bank_addr(uint32_t pair, int bank) const;
  uint32_t bank_bytes() const;
  // Reads a bank's header and checks its CRC (only if it holds `name`, when given).
  bool read_bank(uint32_t pair, int bank, const char* name, Bank* out);
  // The pair holding `name` (newest valid bank in *newest, -1 if none), or -1.
  int find(const char* name, int* newest, uint32_t* seq);

  NorFlash& flash_;
  NorLayout layout_;
  char context_[32] = {};
};

class NorSlots final : public device_agent::SlotStore {
 public:
  static constexpr uint32_t kStagingPageData = 240;
  static constexpr uint32_t kMaxStagingPages = 256;
  // map0/map1: RAM copies of slot 0 and 1 for map_slot (map_bytes each).
  NorSlots(NorFlash& flash, const NorLayout& layout, uint8_t* map0, uint8_t* map1,
           size_t map_bytes);

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
  // Staging pages a cut left torn (skipped) since start-up's scan.
  uint32_t staging_torn_pages() { return mount() ? torn_pages_ : 0; }

 private:
  static bool valid(int slot) { return slot == 0 || slot == 1; }
  uint32_t slot_addr(int slot) const;
  uint32_t slot_capacity() const;
  bool mount();

  NorFlash& flash_;
  NorLayout layout_;
  uint8_t* map_[2];
  size_t map_bytes_;
  bool mapped_[2] = {};
  bool writing_[2] = {};
  uint32_t cursor_[2] = {};
  uint32_t crc_[2] = {};
  // Staging: the chain of valid pages (physical page, start offset, length).
  bool mounted_ = false;
  uint32_t chain_count_ = 0, chain_end_ = 0, next_free_ = 0, torn_pages_ = 0;
  uint16_t chain_page_[kMaxStagingPages] = {};
  uint16_t chain_len_[kMaxStagingPages] = {};
  uint32_t chain_start_[kMaxStagingPages] = {};
};

}  // namespace tinyfleet::firmware
