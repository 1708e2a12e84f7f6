// The per-token rate limiter alone (no stack): a burst, then the rate; keys apart; the
// table of keys stays bounded.
#include "rate_limiter.h"

#include <gtest/gtest.h>

namespace tinyfleet::server {
namespace {

using std::chrono::milliseconds;

TEST(RateLimiter, ABurstThenTheRate) {
  RateLimiter limiter(/*rate_per_second=*/2, /*burst=*/3);
  const auto t0 = RateLimiter::Clock::now();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.allow("a", t0)) << i;
  EXPECT_FALSE(limiter.allow("a", t0));
  EXPECT_NEAR(limiter.retry_after("a", t0), 0.5, 1e-6);
  // Another key has its own bucket.
  EXPECT_TRUE(limiter.allow("b", t0));
  // Half a second later, one call (2 a second); not two.
  EXPECT_TRUE(limiter.allow("a", t0 + milliseconds(500)));
  EXPECT_FALSE(limiter.allow("a", t0 + milliseconds(500)));
  // A long pause refills to the burst, not beyond.
  const auto t1 = t0 + std::chrono::seconds(60);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.allow("a", t1)) << i;
  EXPECT_FALSE(limiter.allow("a", t1));
}

TEST(RateLimiter, TheTableOfKeysStaysBounded) {
  RateLimiter limiter(1, 1);
  const auto t0 = RateLimiter::Clock::now();
  // Every key used up: none can be forgotten as full, so the oldest goes.
  for (size_t i = 0; i < RateLimiter::kMaxKeys + 500; ++i) {
    EXPECT_TRUE(limiter.allow("k" + std::to_string(i), t0 + milliseconds(i % 100)));
  }
  EXPECT_LE(limiter.keys(), RateLimiter::kMaxKeys);
  // Keys whose buckets refilled are dropped first.
  limiter.allow("late", t0 + std::chrono::seconds(10));
  EXPECT_LE(limiter.keys(), RateLimiter::kMaxKeys);
}

}  // namespace
}  // namespace tinyfleet::server
