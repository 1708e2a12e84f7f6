#include "tinyfleet/firmware/nor_flash.h"

#include <cstring>

namespace tinyfleet::firmware {

uint32_t nor_crc32(const uint8_t* data, size_t size, uint32_t crc) {
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

bool NorFlash::in_range(uint32_t addr, size_t size) const {
  return addr <= geometry_.bytes() && size <= geometry_.bytes() - addr;
}

bool NorFlash::fail(const char* why) {
  error_ = why;
  return false;
}

void NorFlash::before_piece(NorOp op, uint32_t addr) {
  ++ops_;
  if (hook_) hook_(op, addr, ops_);
}

bool NorFlash::read(uint32_t addr, uint8_t* out, size_t size) {
  if (!in_range(addr, size)) return fail("read past the end of the chip");
  return medium_.read(addr, out, size) || fail("the flash medium cannot be read");
}

bool NorFlash::is_erased(uint32_t addr, size_t size) {
  uint8_t buf[256];
  while (size > 0) {
    const size_t n = size < sizeof buf ? size : sizeof buf;
    if (!read(addr, buf, n)) return false;
    for (size_t i = 0; i < n; ++i) {
      if (buf[i] != 0xFF) return false;
    }
    addr += static_cast<uint32_t>(n);
    size -= n;
  }
  return true;
}

bool NorFlash::erase_sector(uint32_t sector) {
  if (sector >= geometry_.sectors) return fail("erase of a sector past the end of the chip");
  uint8_t ones[256];
  std::memset(ones, 0xFF, sizeof ones);
  const uint32_t base = sector * geometry_.sector_bytes;
  for (uint32_t piece = 0; piece < geometry_.sector_bytes; piece += geometry_.erase_piece_bytes) {
    before_piece(NorOp::kErase, base + piece);
    for (uint32_t off = 0; off < geometry_.erase_piece_bytes; off += sizeof ones) {
      if (!medium_.write(base + piece + off, ones, sizeof ones)) {
        return fail("the flash medium cannot be written");
      }
    }
  }
  return true;
}

bool NorFlash::erase_if_dirty(uint32_t sector) {
  if (sector >= geometry_.sectors) return fail("erase of a sector past the end of the chip");
  const uint32_t base = sector * geometry_.sector_bytes;
  return is_erased(base, geometry_.sector_bytes) || erase_sector(sector);
}

bool NorFlash::program(uint32_t addr, const uint8_t* data, size_t size) {
  if (!in_range(addr, size)) return fail("program past the end of the chip");
  // NOR programs only clear bits: every target byte must read 0xFF first (a program over
  // programmed bytes would AND them, silently corrupting both).
  if (!is_erased(addr, size)) return fail("program over bytes that are not erased");
  const uint32_t piece = geometry_.program_piece_bytes;
  while (size > 0) {
    // One piece: up to the next piece boundary (pieces never cross pages).
    const uint32_t room = piece - addr % piece;
    const size_t n = size < room ? size : room;
    before_piece(NorOp::kProgram, addr);
    if (!medium_.write(addr, data, n)) return fail("the flash medium cannot be written");
    addr += static_cast<uint32_t>(n);
    data += n;
    size -= n;
  }
  return true;
}

}  // namespace tinyfleet::firmware
