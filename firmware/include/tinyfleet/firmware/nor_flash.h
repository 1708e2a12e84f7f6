// An emulated NOR flash with the rules of the real part (docs/firmware.md, "NOR flash"):
// a sector is erased to 0xFF before it is programmed; a program only clears bits and the
// driver refuses to program a byte that is not erased; programs go by pages and a page
// program is NOT atomic (each page is written in pieces), nor is a sector erase. The bits
// live in a FlashMedium: a host file through ARM semihosting on QEMU (nor_semihost.h).
#pragma once

#include <cstddef>
#include <cstdint>

namespace tinyfleet::firmware {

// Where the chip's bits are kept. read/write are byte-exact and synchronous: what write
// returned true for is on the medium even if the device dies right after.
class FlashMedium {
 public:
  virtual ~FlashMedium() = default;
  virtual bool read(uint32_t addr, uint8_t* out, size_t size) = 0;
  virtual bool write(uint32_t addr, const uint8_t* data, size_t size) = 0;
};

struct NorGeometry {
  uint32_t sector_bytes = 4096;
  uint32_t page_bytes = 256;
  uint32_t program_piece_bytes = 64;  // a page program lands in pieces of this size
  uint32_t erase_piece_bytes = 1024;  // a sector erase, too
  uint32_t sectors = 0;
  uint32_t bytes() const { return sector_bytes * sectors; }
};

enum class NorOp : uint8_t { kErase, kProgram };

// Called before each piece of an erase or program lands (op_index counts from 1 since
// start-up): the power-cut app stops the device there.
using NorOpHook = void (*)(NorOp op, uint32_t addr, uint64_t op_index);

class NorFlash {
 public:
  NorFlash(FlashMedium& medium, const NorGeometry& geometry)
      : medium_(medium), geometry_(geometry) {}

  const NorGeometry& geometry() const { return geometry_; }
  bool read(uint32_t addr, uint8_t* out, size_t size);
  // Erases sector `sector` to 0xFF, piece by piece from its start.
  bool erase_sector(uint32_t sector);
  // Erases it unless it already reads all 0xFF (a blank check, as drivers do).
  bool erase_if_dirty(uint32_t sector);
  bool is_erased(uint32_t addr, size_t size);
  // Programs `size` bytes at `addr`, page by page, each page in pieces. False (error()
  // says why) when the range leaves the chip or a target byte is not erased.
  bool program(uint32_t addr, const uint8_t* data, size_t size);

  const char* error() const { return error_; }
  uint64_t ops() const { return ops_; }
  void set_hook(NorOpHook hook) { hook_ = hook; }
  // What the caller is writing ("record agent-state", "slot 1", "staging"), for the hook.
  void set_context(const char* what) { context_ = what; }
  const char* context() const { return context_; }

 private:
  bool in_range(uint32_t addr, size_t size) const;
  bool fail(const char* why);
  void before_piece(NorOp op, uint32_t addr);

  FlashMedium& medium_;
  NorGeometry geometry_;
  NorOpHook hook_ = nullptr;
  const char* context_ = "";
  const char* error_ = "";
  uint64_t ops_ = 0;
};

uint32_t nor_crc32(const uint8_t* data, size_t size, uint32_t crc = 0);

}  // namespace tinyfleet::firmware
