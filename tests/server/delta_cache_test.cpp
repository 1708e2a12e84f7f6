// The publisher's delta cache and rate bound.
#include <gtest/gtest.h>

#include <random>

#include "tinyfleet/server/delta_cache.h"

using namespace tinyfleet::server;

namespace {

std::string bytes(uint32_t seed, size_t n) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

TEST(DeltaCache, EncodesEachPairOnceAndEvictsTheLeastRecent) {
  DeltaCache cache(2);
  const auto a = bytes(1, 4000), b = bytes(2, 4000), c = bytes(3, 4000);
  auto first = cache.get(a, b, {}, {}, {});
  ASSERT_TRUE(first);
  auto again = cache.get(a, b, {}, {}, {});
  ASSERT_TRUE(again);
  EXPECT_EQ(first->get(), again->get());  // the same object: not encoded twice
  EXPECT_EQ(cache.hits(), 1u);
  EXPECT_EQ(cache.misses(), 1u);
  ASSERT_TRUE(cache.get(b, c, {}, {}, {}));
  ASSERT_TRUE(cache.get(a, b, {}, {}, {}));  // refreshes (a, b)
  ASSERT_TRUE(cache.get(a, c, {}, {}, {}));  // evicts (b, c), the least recent
  EXPECT_EQ(cache.misses(), 3u);
  ASSERT_TRUE(cache.get(a, b, {}, {}, {}));
  EXPECT_EQ(cache.hits(), 3u);
  ASSERT_TRUE(cache.get(b, c, {}, {}, {}));
  EXPECT_EQ(cache.misses(), 4u);
  EXPECT_FALSE(cache.get(a, "", {}, {}, {}));  // an empty target is an error, not cached
}

// Whole artifacts and deltas from nothing (a first model) are encoded once per target
// too, apart from the deltas of the same target.
TEST(DeltaCache, WholeArtifactsAndDeltasFromNothingAreEncodedOnce) {
  DeltaCache cache(4);
  const auto a = bytes(1, 4000), b = bytes(2, 4000);
  auto full = cache.full(a, {});
  ASSERT_TRUE(full);
  EXPECT_EQ((*full)->codec, tinyfleet::update::DeltaCodec_Full);
  auto expected = tinyfleet::update::encode_full(a, {});
  ASSERT_TRUE(expected);
  EXPECT_EQ((*full)->payload, expected->payload);
  auto full_again = cache.full(a, {});
  ASSERT_TRUE(full_again);
  EXPECT_EQ(full->get(), full_again->get());
  auto from_nothing = cache.get("", a, {}, {}, {});  // a delta, keyed apart from Full
  ASSERT_TRUE(from_nothing);
  EXPECT_NE(from_nothing->get(), full->get());
  ASSERT_TRUE(cache.get("", a, {}, {}, {}));
  EXPECT_EQ(cache.misses(), 2u);
  EXPECT_EQ(cache.hits(), 2u);
  EXPECT_NE(cache.full(b, {})->get(), full->get());  // another target
  EXPECT_FALSE(cache.full("", {}));                  // an empty target: an error
}

TEST(TokenBucket, BoundsBytesPerSecond) {
  TokenBucket bucket(1000, 1000);  // 1000 B/s, 1 s of burst
  EXPECT_TRUE(bucket.take(600, 0.0));
  EXPECT_TRUE(bucket.take(400, 0.0));
  EXPECT_FALSE(bucket.take(1, 0.0));    // burst spent
  EXPECT_FALSE(bucket.take(300, 0.2));  // 200 B earned
  EXPECT_TRUE(bucket.take(300, 0.35));  // 350 B earned
  EXPECT_TRUE(bucket.take(900, 10.0));  // refilled, capped at the burst
  EXPECT_FALSE(bucket.take(200, 10.0));
}

}  // namespace
