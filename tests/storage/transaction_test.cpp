#include <gtest/gtest.h>

#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/storage/repositories.h"
#include "tinyfleet/testing/scratch_database.h"

using namespace tinyfleet::storage;
using tinyfleet::testing::ScratchDatabase;

namespace {
int64_t count(Database& db, const std::string& table) {
  return db
      .transact([&](pqxx::work& w) {
        return w.exec("SELECT count(*) FROM " + table)[0][0].as<int64_t>();
      })
      .value();
}
}  // namespace

TEST(Transactions, AFailureMidwayLeavesNothingBehind) {
  ScratchDatabase scratch;
  auto r = scratch.db().transact([](pqxx::work& w) {
    device_classes::upsert(w, {"cortex-m4-256k", "{}"});
    models::create(w, "kws", "");
    auto sha = PgBlobStore::put(w, "model");
    models::create_version(w, {"kws", 0, sha, {}, {}, {}});
    devices::create(w, {"dev-1", "f", "cortex-m4-256k", {}, "h"});
    devices::create(w, {"dev-2", "f", "no-such-class", {}, "h"});  // fails here
    return Done{};
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kNotFound);
  for (const char* table : {"device_classes", "models", "model_versions", "blobs", "devices"}) {
    EXPECT_EQ(count(scratch.db(), table), 0) << table;
  }
}

TEST(Transactions, AnExceptionFromTheCallerRollsBackToo) {
  ScratchDatabase scratch;
  auto r = scratch.db().transact([](pqxx::work& w) -> int {
    models::create(w, "kws", "");
    throw std::runtime_error("caller gave up");
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::kInternal);
  EXPECT_EQ(r.error().message, "caller gave up");
  EXPECT_EQ(count(scratch.db(), "models"), 0);
}

TEST(Database, AnUnreachableServerIsUnavailable) {
  auto db = Database::open({"postgresql://nobody@127.0.0.1:1/none", 1});
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(db.error().message.find("cannot connect"), std::string::npos);
}
