#include <gtest/gtest.h>

#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/testing/scratch_database.h"

using namespace tinyfleet::storage;
using tinyfleet::testing::ScratchDatabase;

TEST(Sha256, MatchesTheKnownDigestOfAbc) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(PgBlobStore, ABlobStoredTwiceIsStoredOnce) {
  ScratchDatabase scratch;
  PgBlobStore blobs(scratch.db());
  std::string payload(
      "weights\0with\xff"
      "binary",
      19);
  auto a = blobs.put(payload);
  auto b = blobs.put(payload);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(*a, sha256_hex(payload));
  auto rows = scratch.db().transact(
      [](pqxx::work& w) { return w.exec("SELECT count(*) FROM blobs")[0][0].as<int>(); });
  EXPECT_EQ(*rows, 1);
  auto back = blobs.get(*a);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, payload);  // binary-safe round trip
  EXPECT_TRUE(*blobs.contains(*a));
}

TEST(PgBlobStore, AnUnknownDigestIsNotFound) {
  ScratchDatabase scratch;
  PgBlobStore blobs(scratch.db());
  const std::string missing(64, 'a');
  auto r = blobs.get(missing);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  EXPECT_NE(r.error().message.find(missing), std::string::npos);
  EXPECT_FALSE(*blobs.contains(missing));
}
