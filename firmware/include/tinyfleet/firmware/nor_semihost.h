// The NOR flash's bits in a host file, through ARM semihosting file I/O (SYS_OPEN 0x01,
// SYS_WRITE 0x05, SYS_READ 0x06, SYS_SEEK 0x0A, SYS_FLEN 0x0C; QEMU with
// `-semihosting-config enable=on,target=native`). QEMU performs each SYS_WRITE as a write
// to the host file before the guest continues, so a SIGKILL of QEMU keeps every piece
// written before it, and loses the ones after: a power cut.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/firmware/nor_flash.h"

namespace tinyfleet::firmware {

class SemihostFlashFile final : public FlashMedium {
 public:
  // Opens `path` (relative to QEMU's working directory) for reading and writing; a file
  // that does not exist yet is created blank (`bytes` of 0xFF, a chip fresh from the
  // factory). False when it cannot be opened or is shorter than `bytes`.
  bool open(const char* path, uint32_t bytes);
  bool read(uint32_t addr, uint8_t* out, size_t size) override;
  bool write(uint32_t addr, const uint8_t* data, size_t size) override;

 private:
  long handle_ = -1;
};

// Reads a whole small host file into `out` (NUL-terminated); its size, or -1.
long semihost_read_file(const char* path, char* out, size_t capacity);

}  // namespace tinyfleet::firmware
