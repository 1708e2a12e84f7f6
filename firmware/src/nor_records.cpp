// Named records on NOR flash: two alternating banks per record, a sequence number and a
// CRC-32; the newer valid bank wins, so a save torn by a power cut leaves the old record.
#include <cstdio>
#include <cstring>

#include "tinyfleet/firmware/nor_stores.h"

namespace tinyfleet::firmware {
namespace {
constexpr uint32_t kRecordMagic = 0x524E4654;  // "TFNR"
}  // namespace

struct NorRecords::Bank {
  struct Header {
    uint32_t magic;
    uint32_t seq;
    uint32_t size;
    uint32_t crc;  // over seq, size, name and the data
    char name[16];
  } header;
  bool valid;
};
using BankHeader = NorRecords::Bank::Header;
static_assert(sizeof(BankHeader) == 32, "one program piece");

static uint32_t header_crc(const BankHeader& h) {
  return nor_crc32(reinterpret_cast<const uint8_t*>(h.name), sizeof h.name,
                   nor_crc32(reinterpret_cast<const uint8_t*>(&h.seq), 8));
}

uint32_t NorRecords::bank_bytes() const {
  return layout_.bank_sectors * flash_.geometry().sector_bytes;
}

uint32_t NorRecords::bank_addr(uint32_t pair, int bank) const {
  return layout_.record_sector * flash_.geometry().sector_bytes +
         (2 * pair + static_cast<uint32_t>(bank)) * bank_bytes();
}

bool NorRecords::read_bank(uint32_t pair, int bank, const char* name, Bank* out) {
  out->valid = false;
  const uint32_t addr = bank_addr(pair, bank);
  BankHeader& h = out->header;
  if (!flash_.read(addr, reinterpret_cast<uint8_t*>(&h), sizeof h)) return false;
  if (h.magic != kRecordMagic || h.size > bank_bytes() - sizeof h ||
      h.name[sizeof h.name - 1] != '\0') {
    return true;  // blank, or a header torn or erased by a cut
  }
  if (name && std::strcmp(h.name, name) != 0) return true;  // another record's bank
#ifdef TINYFLEET_NOR_MUTANT_NO_CRC
  // The deliberately wrong variant the power-cut test must catch: the header alone
  // makes a record valid, so a save torn after its header returns a mix.
  out->valid = true;
  return true;
#endif
  uint32_t crc = header_crc(h);
  uint8_t buf[256];
  for (uint32_t off = 0; off < h.size; off += sizeof buf) {
    const uint32_t n = h.size - off < sizeof buf ? h.size - off : sizeof buf;
    if (!flash_.read(addr + sizeof h + off, buf, n)) return false;
    crc = nor_crc32(buf, n, crc);
  }
  out->valid = crc == h.crc;
  return true;
}

int NorRecords::find(const char* name, int* newest, uint32_t* seq) {
  for (uint32_t pair = 0; pair < layout_.record_pairs; ++pair) {
    int best = -1;
    uint32_t best_seq = 0;
    for (int bank = 0; bank < 2; ++bank) {
      Bank b;
      if (!read_bank(pair, bank, name, &b)) return -1;
      if (!b.valid) continue;
      if (best < 0 || b.header.seq > best_seq) {
        best = bank;
        best_seq = b.header.seq;
      }
    }
    if (best >= 0) {
      *newest = best;
      *seq = best_seq;
      return static_cast<int>(pair);
    }
  }
  return -1;
}

long NorRecords::load(const char* name, uint8_t* out, size_t capacity) {
  int bank = -1;
  uint32_t seq = 0;
  const int pair = find(name, &bank, &seq);
  if (pair < 0) return -1;
  BankHeader h;
  const uint32_t addr = bank_addr(static_cast<uint32_t>(pair), bank);
  if (!flash_.read(addr, reinterpret_cast<uint8_t*>(&h), sizeof h) || h.size > capacity ||
      !flash_.read(addr + sizeof h, out, h.size)) {
    return -1;
  }
  return static_cast<long>(h.size);
}

bool NorRecords::save(const char* name, const uint8_t* data, size_t size) {
  BankHeader h;
  if (std::strlen(name) >= sizeof h.name || size > bank_bytes() - sizeof h) return false;
  int newest = -1;
  uint32_t seq = 0;
  int pair = find(name, &newest, &seq);
  if (pair < 0) {  // a new name: the first pair without a valid bank
    for (uint32_t p = 0; p < layout_.record_pairs && pair < 0; ++p) {
      Bank b0, b1;
      if (!read_bank(p, 0, nullptr, &b0) || !read_bank(p, 1, nullptr, &b1)) return false;
      if (!b0.valid && !b1.valid) pair = static_cast<int>(p);
    }
    if (pair < 0) return false;
  }
  const int target = newest == 0 ? 1 : 0;  // never the bank holding the newest copy
  std::snprintf(context_, sizeof context_, "record %s", name);
  flash_.set_context(context_);
  const uint32_t addr = bank_addr(static_cast<uint32_t>(pair), target);
  const uint32_t first = addr / flash_.geometry().sector_bytes;
  for (uint32_t s = 0; s < layout_.bank_sectors; ++s) {
    if (!flash_.erase_if_dirty(first + s)) return false;
  }
  std::memset(&h, 0, sizeof h);
  h.magic = kRecordMagic;
  h.seq = seq + 1;
  h.size = static_cast<uint32_t>(size);
  std::snprintf(h.name, sizeof h.name, "%s", name);
  h.crc = nor_crc32(data, size, header_crc(h));
  // The header first, then the data: the CRC is what tells a torn save.
  return flash_.program(addr, reinterpret_cast<const uint8_t*>(&h), sizeof h) &&
         flash_.program(addr + sizeof h, data, size);
}

}  // namespace tinyfleet::firmware
