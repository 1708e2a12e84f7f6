#include "tinyfleet/server/delta_cache.h"

#include <algorithm>

#include "tinyfleet/storage/blob_store.h"

namespace tinyfleet::server {

template <class Make>
storage::Expected<std::shared_ptr<const update::Delta>> DeltaCache::cached(const std::string& key,
                                                                           Make make) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end()) {
      ++hits_;
      order_.erase(it->second.second);
      order_.push_front(key);
      it->second.second = order_.begin();
      return it->second.first;
    }
    ++misses_;
  }
  storage::Expected<update::Delta> delta = make();
  if (!delta) return delta.error();
  auto shared = std::make_shared<const update::Delta>(std::move(*delta));
  std::lock_guard<std::mutex> lock(mu_);
  if (entries_.count(key) == 0) {
    order_.push_front(key);
    entries_[key] = {shared, order_.begin()};
    while (entries_.size() > std::max<size_t>(1, max_entries_)) {
      entries_.erase(order_.back());
      order_.pop_back();
    }
  }
  return std::shared_ptr<const update::Delta>(shared);
}

storage::Expected<std::shared_ptr<const update::Delta>> DeltaCache::get(
    const std::string& base, const std::string& target,
    const std::vector<update::ArtifactSegment>& base_segments,
    const std::vector<update::ArtifactSegment>& target_segments,
    const update::DeltaOptions& options) {
  const std::string key = storage::sha256_hex(base) + ":" + storage::sha256_hex(target) + ":" +
                          std::to_string(options.max_window_log);
  return cached(key, [&] {
    return update::encode_best(base, target, base_segments, target_segments, options);
  });
}

storage::Expected<std::shared_ptr<const update::Delta>> DeltaCache::full(
    const std::string& target, const update::DeltaOptions& options) {
  const std::string key =
      "full:" + storage::sha256_hex(target) + ":" + std::to_string(options.max_window_log);
  return cached(key, [&] { return update::encode_full(target, options); });
}

bool TokenBucket::take(double bytes, double now_s) {
  if (last_ >= 0) tokens_ = std::min(burst_, tokens_ + (now_s - last_) * rate_);
  last_ = now_s;
  if (bytes > tokens_) return false;
  tokens_ -= bytes;
  return true;
}

}  // namespace tinyfleet::server
