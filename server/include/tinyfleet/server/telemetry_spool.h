#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace tinyfleet::server {

// Telemetry windows fleetd has taken from the broker but not yet committed, appended to
// segment files in a folder of this replica's own. Paho acknowledges a QoS 1 message
// (PUBACK) as it hands it over, so without this a fleetd killed with windows queued in
// memory would lose them; a write(2) to a file survives the process (not the machine).
// The ingestion's writer seals the current segment with each batch it takes and removes
// the batch's segments once the batch is committed; at start the segments a killed
// process left are replayed (windows already stored are then dropped as replays by their
// seq). Records: u16 fleet size, u16 device size, u32 payload size (little endian), then
// the bytes; a record cut short by a crash ends the segment. Not thread-safe: the caller
// serializes.
class TelemetrySpool {
 public:
  explicit TelemetrySpool(std::string dir);
  ~TelemetrySpool();
  TelemetrySpool(const TelemetrySpool&) = delete;
  TelemetrySpool& operator=(const TelemetrySpool&) = delete;

  // Creates the folder; false (and nothing is spooled) when it cannot.
  bool open();
  using Record = std::function<void(const std::string& fleet, const std::string& device,
                                    const std::string& payload)>;
  // Calls `f` for every record of the segments left by an earlier process, oldest first,
  // then removes those segments (what `f` keeps is spooled again by then). Returns how many.
  size_t replay(const Record& f);
  void append(const std::string& fleet, const std::string& device, const std::string& payload);
  // Closes the current segment (the records of the batch just taken) and returns its
  // number, 0 when nothing was appended since the last seal.
  uint64_t seal();
  void remove(const std::vector<uint64_t>& segments);
  static constexpr size_t kMaxPayloadBytes = 1 << 16;

 private:
  std::string path(uint64_t segment) const;
  std::string dir_;
  int fd_ = -1;
  uint64_t current_ = 0, next_ = 1;
  bool ok_ = false;
};

}  // namespace tinyfleet::server
