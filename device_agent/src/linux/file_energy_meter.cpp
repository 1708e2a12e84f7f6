#include "tinyfleet/device_agent/linux/file_energy_meter.h"

#include <fcntl.h>
#include <unistd.h>

namespace tinyfleet::device_agent::linux_port {

bool FileEnergyMeter::read_uj(uint64_t* out) {
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[32];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n <= 0 || n == static_cast<ssize_t>(sizeof buf)) return false;  // empty, or too long
  uint64_t v = 0;
  ssize_t i = 0;
  for (; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) {
    const uint64_t digit = static_cast<uint64_t>(buf[i] - '0');
    if (v > (UINT64_MAX - digit) / 10) return false;
    v = v * 10 + digit;
  }
  if (i == 0) return false;
  if (i < n && !(buf[i] == '\n' && i + 1 == n)) return false;
  if (scale_ != 0 && v > UINT64_MAX / scale_) return false;
  *out = v * scale_;
  return true;
}

}  // namespace tinyfleet::device_agent::linux_port
