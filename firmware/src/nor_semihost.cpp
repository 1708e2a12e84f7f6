#include "tinyfleet/firmware/nor_semihost.h"

#include <cstring>

namespace tinyfleet::firmware {
namespace {

enum : uint32_t {
  kSysOpen = 0x01,
  kSysClose = 0x02,
  kSysWrite = 0x05,
  kSysRead = 0x06,
  kSysSeek = 0x0A,
  kSysFlen = 0x0C,
};
enum : uint32_t { kModeRb = 1, kModeRPlusB = 3, kModeWPlusB = 7 };  // fopen "rb", "r+b", "w+b"

long semihost(uint32_t op, const void* args) {
  register uint32_t r0 asm("r0") = op;
  register const void* r1 asm("r1") = args;
  asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return static_cast<long>(r0);
}

long open_file(const char* path, uint32_t mode) {
  const uint32_t args[3] = {reinterpret_cast<uint32_t>(path), mode,
                            static_cast<uint32_t>(std::strlen(path))};
  return semihost(kSysOpen, args);
}

bool seek(long handle, uint32_t pos) {
  const uint32_t args[2] = {static_cast<uint32_t>(handle), pos};
  return semihost(kSysSeek, args) == 0;
}

// SYS_READ and SYS_WRITE return how many bytes were NOT transferred.
long transfer(uint32_t op, long handle, const void* buf, size_t size) {
  const uint32_t args[3] = {static_cast<uint32_t>(handle), reinterpret_cast<uint32_t>(buf),
                            static_cast<uint32_t>(size)};
  return semihost(op, args);
}

}  // namespace

bool SemihostFlashFile::open(const char* path, uint32_t bytes) {
  handle_ = open_file(path, kModeRPlusB);
  if (handle_ < 0) {
    handle_ = open_file(path, kModeWPlusB);
    if (handle_ < 0) return false;
    uint8_t ones[256];
    std::memset(ones, 0xFF, sizeof ones);
    for (uint32_t off = 0; off < bytes; off += sizeof ones) {
      if (!write(off, ones, sizeof ones)) return false;
    }
  }
  const uint32_t args[1] = {static_cast<uint32_t>(handle_)};
  return semihost(kSysFlen, args) >= static_cast<long>(bytes);
}

bool SemihostFlashFile::read(uint32_t addr, uint8_t* out, size_t size) {
  return handle_ >= 0 && seek(handle_, addr) && transfer(kSysRead, handle_, out, size) == 0;
}

bool SemihostFlashFile::write(uint32_t addr, const uint8_t* data, size_t size) {
  return handle_ >= 0 && seek(handle_, addr) && transfer(kSysWrite, handle_, data, size) == 0;
}

long semihost_read_file(const char* path, char* out, size_t capacity) {
  if (capacity == 0) return -1;
  const long h = open_file(path, kModeRb);
  if (h < 0) return -1;
  const uint32_t args[1] = {static_cast<uint32_t>(h)};
  const long len = semihost(kSysFlen, args);
  long got = -1;
  if (len >= 0 && static_cast<size_t>(len) < capacity) {
    got = transfer(kSysRead, h, out, static_cast<size_t>(len)) == 0 ? len : -1;
  }
  semihost(kSysClose, args);
  out[got > 0 ? got : 0] = '\0';
  return got;
}

}  // namespace tinyfleet::firmware
