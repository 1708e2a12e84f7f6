#include "tinyfleet/server/device_rejects.h"

#include "tinyfleet/server/log.h"

namespace tinyfleet::server {

const char* DeviceRejects::name(Kind kind) {
  switch (kind) {
    case kStatus:
      return "status";
    case kTelemetry:
      return "telemetry";
    case kChunkRequest:
      return "chunk_request";
    default:
      return "unknown";
  }
}

DeviceRejects::DeviceRejects(std::chrono::milliseconds log_every, size_t max_devices)
    : log_every_(log_every), max_devices_(max_devices) {}

void DeviceRejects::reject(Kind kind, const std::string& fleet, const std::string& device,
                           const std::string& reason) {
  if (kind >= kKinds) return;
  ++totals_[kind];
  uint64_t count = 0, since = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (devices_.size() >= max_devices_ && devices_.find(device) == devices_.end()) {
      devices_.clear();
    }
    auto& d = devices_[device];
    ++d.count;
    ++d.unlogged;
    const auto now = std::chrono::steady_clock::now();
    if (d.logged != std::chrono::steady_clock::time_point{} && now - d.logged < log_every_) return;
    d.logged = now;
    count = d.count;
    since = d.unlogged;
    d.unlogged = 0;
  }
  log::warn("device.message_rejected", {{"fleet", fleet},
                                        {"device", device},
                                        {"kind", name(kind)},
                                        {"reason", reason},
                                        {"rejected", since},
                                        {"rejected_total", count}});
}

uint64_t DeviceRejects::of_device(const std::string& device) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = devices_.find(device);
  return it == devices_.end() ? 0 : it->second.count;
}

}  // namespace tinyfleet::server
