#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "tinyfleet/update/delta_encoder.h"

namespace tinyfleet::server {

// Deltas by (base sha256, target sha256, decoder window): a rollout sends the same pair
// to many devices, so each pair is encoded once. Least recently used pairs go first.
// Whole artifacts (Full, compressed) are kept the same way, by (target, window).
class DeltaCache {
 public:
  explicit DeltaCache(size_t max_entries) : max_entries_(max_entries) {}
  storage::Expected<std::shared_ptr<const update::Delta>> get(
      const std::string& base, const std::string& target,
      const std::vector<update::ArtifactSegment>& base_segments,
      const std::vector<update::ArtifactSegment>& target_segments,
      const update::DeltaOptions& options);
  // The whole target, compressed (update::encode_full).
  storage::Expected<std::shared_ptr<const update::Delta>> full(const std::string& target,
                                                               const update::DeltaOptions& options);
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

 private:
  template <class Make>
  storage::Expected<std::shared_ptr<const update::Delta>> cached(const std::string& key, Make make);
  size_t max_entries_;
  std::mutex mu_;
  std::list<std::string> order_;  // most recent first
  std::map<std::string,
           std::pair<std::shared_ptr<const update::Delta>, std::list<std::string>::iterator>>
      entries_;
  uint64_t hits_ = 0, misses_ = 0;
};

// A token bucket: how many bytes may go out now. The publisher drops a chunk request
// that would exceed it; the device asks again after its chunk timeout.
class TokenBucket {
 public:
  TokenBucket(double bytes_per_second, double burst_bytes)
      : rate_(bytes_per_second), burst_(burst_bytes), tokens_(burst_bytes) {}
  // True (and the bytes are taken) when `bytes` may be sent at time `now_s`.
  bool take(double bytes, double now_s);

 private:
  double rate_, burst_, tokens_, last_ = -1;
};

}  // namespace tinyfleet::server
