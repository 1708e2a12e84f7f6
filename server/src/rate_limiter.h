#pragma once

// Per-key token buckets: each key (a hash of a bearer token) may make `burst` calls at
// once and `rate_per_second` calls a second after that. The authenticator asks before it
// looks the token up, so a flood of calls with one token (known or not) costs no
// database work. Keys whose bucket is full again are forgotten once the table passes
// kMaxKeys, and when every key is still limited the oldest is, so memory stays bounded.
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace tinyfleet::server {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr size_t kMaxKeys = 10000;

  RateLimiter(double rate_per_second, double burst);

  // Takes one token from `key`'s bucket; false when it is empty (the call is refused).
  bool allow(const std::string& key, Clock::time_point now = Clock::now());
  // Seconds until `key` may call again (0 when it may now).
  double retry_after(const std::string& key, Clock::time_point now = Clock::now());
  size_t keys() const;

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point at;
  };
  void refill(Bucket& b, Clock::time_point now) const;
  void evict(Clock::time_point now);

  const double rate_, burst_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace tinyfleet::server
