// Model slots A/B and the staging log on NOR flash (nor_stores.h).
#include <cstring>

#include "tinyfleet/firmware/nor_stores.h"

namespace tinyfleet::firmware {
namespace {
constexpr uint32_t kSlotMagic = 0x534E4654;     // "TFNS"
constexpr uint32_t kStagingMagic = 0x504E4654;  // "TFNP"

struct SlotHeader {
  uint32_t magic;
  uint32_t size;
  uint32_t data_crc;
  uint32_t header_crc;  // over the three fields above
};

struct PageHeader {
  uint32_t magic;
  uint32_t offset;  // where this page's bytes go in the payload
  uint16_t length;
  uint16_t reserved;
  uint32_t crc;  // over offset, length and the bytes
};
static_assert(sizeof(PageHeader) == 16, "page header");

uint32_t page_crc(const PageHeader& h, const uint8_t* data) {
  return nor_crc32(data, h.length, nor_crc32(reinterpret_cast<const uint8_t*>(&h.offset), 6));
}
}  // namespace

NorSlots::NorSlots(NorFlash& flash, const NorLayout& layout, uint8_t* map0, uint8_t* map1,
                   size_t map_bytes)
    : flash_(flash), layout_(layout), map_{map0, map1}, map_bytes_(map_bytes) {}

uint32_t NorSlots::slot_addr(int slot) const {
  return layout_.slot_sector[slot] * flash_.geometry().sector_bytes;
}

uint32_t NorSlots::slot_capacity() const {
  return layout_.slot_sectors * flash_.geometry().sector_bytes - flash_.geometry().page_bytes;
}

bool NorSlots::begin_slot(int slot) {
  if (!valid(slot)) return false;
  mapped_[slot] = writing_[slot] = false;
  flash_.set_context(slot == 0 ? "slot 0" : "slot 1");
  // The header sector first: from its first erased piece on, the slot reads empty.
  for (uint32_t s = 0; s < layout_.slot_sectors; ++s) {
    if (!flash_.erase_if_dirty(layout_.slot_sector[slot] + s)) return false;
  }
  writing_[slot] = true;
  cursor_[slot] = crc_[slot] = 0;
  return true;
}

bool NorSlots::append_slot(int slot, const uint8_t* data, size_t size) {
  if (!valid(slot) || !writing_[slot] || size > slot_capacity() - cursor_[slot]) return false;
  flash_.set_context(slot == 0 ? "slot 0" : "slot 1");
  const uint32_t at = slot_addr(slot) + flash_.geometry().page_bytes + cursor_[slot];
  if (!flash_.program(at, data, size)) return false;
  crc_[slot] = nor_crc32(data, size, crc_[slot]);
  cursor_[slot] += static_cast<uint32_t>(size);
  return true;
}

bool NorSlots::commit_slot(int slot) {
  if (!valid(slot) || !writing_[slot]) return false;
  SlotHeader h{kSlotMagic, cursor_[slot], crc_[slot], 0};
  h.header_crc = nor_crc32(reinterpret_cast<const uint8_t*>(&h), 12);
  flash_.set_context(slot == 0 ? "slot 0 header" : "slot 1 header");
  writing_[slot] = false;
  return flash_.program(slot_addr(slot), reinterpret_cast<const uint8_t*>(&h), sizeof h);
}

long NorSlots::slot_size(int slot) {
  SlotHeader h;
  if (!valid(slot) || !flash_.read(slot_addr(slot), reinterpret_cast<uint8_t*>(&h), sizeof h)) {
    return -1;
  }
  const bool ok = h.magic == kSlotMagic && h.size <= slot_capacity() &&
                  h.header_crc == nor_crc32(reinterpret_cast<const uint8_t*>(&h), 12);
  return ok ? static_cast<long>(h.size) : -1;
}

bool NorSlots::read_slot(int slot, uint64_t offset, uint8_t* out, size_t size) {
  const long n = slot_size(slot);
  if (n < 0 || offset > static_cast<uint64_t>(n) || size > static_cast<uint64_t>(n) - offset) {
    return false;
  }
  const uint32_t at =
      slot_addr(slot) + flash_.geometry().page_bytes + static_cast<uint32_t>(offset);
  return flash_.read(at, out, size);
}

const uint8_t* NorSlots::map_slot(int slot) {
  if (!valid(slot)) return nullptr;
  if (mapped_[slot]) return map_[slot];
  const long n = slot_size(slot);
  if (n < 0 || static_cast<size_t>(n) > map_bytes_ || !read_slot(slot, 0, map_[slot], n)) {
    return nullptr;
  }
  SlotHeader h;
  if (!flash_.read(slot_addr(slot), reinterpret_cast<uint8_t*>(&h), sizeof h) ||
      nor_crc32(map_[slot], static_cast<size_t>(n)) != h.data_crc) {
    return nullptr;  // content that is not what commit_slot summed
  }
  mapped_[slot] = true;
  return map_[slot];
}

// Scans the staging pages once after start-up: the chain of valid pages from offset 0,
// pages torn by a cut (a header without its bytes) skipped, the next blank page.
bool NorSlots::mount() {
  if (mounted_) return true;
  const NorGeometry& g = flash_.geometry();
  const uint32_t pages = layout_.staging_sectors * g.sector_bytes / g.page_bytes;
  const uint32_t base = layout_.staging_sector * g.sector_bytes;
  chain_count_ = chain_end_ = next_free_ = torn_pages_ = 0;
  uint8_t page[256];
  if (g.page_bytes != sizeof page) return false;
  for (uint32_t p = 0; p < pages && p < kMaxStagingPages; ++p) {
    if (!flash_.read(base + p * g.page_bytes, page, sizeof page)) return false;
    bool blank = true;
    for (uint8_t b : page) blank = blank && b == 0xFF;
    if (blank) continue;
    next_free_ = p + 1;
    PageHeader h;
    std::memcpy(&h, page, sizeof h);
#ifdef TINYFLEET_NOR_MUTANT_ATOMIC_PAGE
    // The deliberately wrong variant the power-cut test must catch: a page assumed to
    // land whole, so a header means its bytes are there.
    const bool landed = true;
#else
    const bool landed = h.crc == page_crc(h, page + sizeof h);
#endif
    const bool ok = h.magic == kStagingMagic && h.length <= kStagingPageData && landed;
    if (!ok) {
      ++torn_pages_;
    } else if (h.offset == chain_end_) {
      chain_page_[chain_count_] = static_cast<uint16_t>(p);
      chain_start_[chain_count_] = h.offset;
      chain_len_[chain_count_] = h.length;
      ++chain_count_;
      chain_end_ += h.length;
    }
  }
  mounted_ = true;
  return true;
}

long NorSlots::staging_size() { return mount() ? static_cast<long>(chain_end_) : -1; }

bool NorSlots::staging_append(uint64_t offset, const uint8_t* data, size_t size) {
  if (!mount() || offset != chain_end_) return false;
  const NorGeometry& g = flash_.geometry();
  const uint32_t pages = layout_.staging_sectors * g.sector_bytes / g.page_bytes;
  flash_.set_context("staging");
  while (size > 0) {
    if (next_free_ >= pages || next_free_ >= kMaxStagingPages) return false;
    PageHeader h{kStagingMagic, chain_end_, 0, 0xFFFF, 0};
    h.length = static_cast<uint16_t>(size < kStagingPageData ? size : kStagingPageData);
    h.crc = page_crc(h, data);
    const uint32_t at = layout_.staging_sector * g.sector_bytes + next_free_ * g.page_bytes;
    const uint32_t page = next_free_++;  // a failed program leaves this page torn
    if (!flash_.program(at, reinterpret_cast<const uint8_t*>(&h), sizeof h) ||
        !flash_.program(at + sizeof h, data, h.length)) {
      return false;
    }
    chain_page_[chain_count_] = static_cast<uint16_t>(page);
    chain_start_[chain_count_] = chain_end_;
    chain_len_[chain_count_] = h.length;
    ++chain_count_;
    chain_end_ += h.length;
    data += h.length;
    size -= h.length;
  }
  return true;
}

bool NorSlots::staging_read(uint64_t offset, uint8_t* out, size_t size) {
  if (!mount() || offset > chain_end_ || size > chain_end_ - offset) return false;
  const NorGeometry& g = flash_.geometry();
  for (uint32_t k = 0; k < chain_count_ && size > 0; ++k) {
    const uint32_t start = chain_start_[k], end = start + chain_len_[k];
    if (offset >= end) continue;
    const uint32_t skip = static_cast<uint32_t>(offset) - start;
    const size_t n = size < end - offset ? size : end - offset;
    const uint32_t at = layout_.staging_sector * g.sector_bytes + chain_page_[k] * g.page_bytes +
                        sizeof(PageHeader) + skip;
    if (!flash_.read(at, out, n)) return false;
    out += n;
    offset += n;
    size -= n;
  }
  return size == 0;
}

bool NorSlots::staging_clear() {
  flash_.set_context("staging erase");
  // Back to front: a cut leaves a prefix of the old log, never pages after a gap.
  for (uint32_t s = layout_.staging_sectors; s-- > 0;) {
    if (!flash_.erase_if_dirty(layout_.staging_sector + s)) return false;
  }
  mounted_ = true;
  chain_count_ = chain_end_ = next_free_ = torn_pages_ = 0;
  return true;
}

}  // namespace tinyfleet::firmware
