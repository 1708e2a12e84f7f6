#pragma once

#include <cstdint>
#include <string>

#include "tinyfleet/device_agent/ports.h"

namespace tinyfleet::device_agent::linux_port {

// An energy counter read from a file holding one decimal integer that only grows, the
// energy used so far: a hwmon energyN_input (uJ), or a file a board's current-sensor
// or fuel-gauge driver keeps. Configured by path (absent unless configured); `scale`
// converts the file's unit to uJ (1 for hwmon). A file that cannot be read, or holds
// anything but an integer (and a newline), reads as absent for that window.
class FileEnergyMeter final : public EnergyMeter {
 public:
  explicit FileEnergyMeter(std::string path, uint64_t scale = 1)
      : path_(std::move(path)), scale_(scale) {}
  bool read_uj(uint64_t* out) override;

 private:
  std::string path_;
  uint64_t scale_;
};

}  // namespace tinyfleet::device_agent::linux_port
