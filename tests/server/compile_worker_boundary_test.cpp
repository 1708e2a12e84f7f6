// The compile workers' boundary, on a real PostgreSQL: a compiler that throws (a standard
// exception, out of memory, anything else) becomes a stored refusal of that class with
// the reason, the operation ends and the orchestrator keeps serving the next one.
// Nothing real in the compiler throws on purpose, so a compiler that throws stands in
// for one that would.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <new>
#include <stdexcept>
#include <thread>

#include "tinyfleet/server/compile_orchestrator.h"
#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/storage/repositories.h"
#include "tinyfleet/testing/scratch_database.h"

namespace tinyfleet::server {
namespace {

class ThrowingCompiler : public ModelCompiler {
 public:
  storage::Expected<CompileOutcome> compile(const CompileInput& in) override {
    if (in.device_class == "throws-std") throw std::runtime_error("stoll");
    if (in.device_class == "throws-oom") throw std::bad_alloc();
    throw 42;
  }
};

TEST(CompileWorkerBoundary, AThrowingCompilerIsAStoredRefusalNotACrash) {
  testing::ScratchDatabase scratch;
  auto& db = scratch.db();
  const std::vector<std::string> classes = {"throws-std", "throws-oom", "throws-int"};
  ASSERT_TRUE(db.transact([&](pqxx::work& w) {
    for (const auto& c : classes) {
      storage::device_classes::upsert(w, {c, R"({"ram_bytes":1,"flash_bytes":1,"clock_hz":1})"});
    }
    storage::models::create(w, "m", "");
    storage::NewModelVersion v;
    v.model_name = "m";
    v.onnx_sha256 = storage::PgBlobStore::put(w, "not a model");
    v.target_classes = classes;
    storage::models::create_version(w, v);
    return storage::Done{};
  }));
  ThrowingCompiler compiler;
  CompileOrchestrator orchestrator(db, &compiler, 1);
  ASSERT_TRUE(orchestrator.start());
  auto op = orchestrator.submit("m", 1, {});
  ASSERT_TRUE(op) << op.error().message;
  storage::OperationRecord now;
  // Until the operation ends (20 s at most; a sanitizer build is slow): poll with a real
  // pause, since wait_for_change returns at once once anything has changed.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    now = db.transact([&](pqxx::work& w) { return storage::operations::get(w, op->id); }).value();
    if (now.state == "succeeded" || now.state == "failed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  orchestrator.stop();
  EXPECT_EQ(now.state, "succeeded");
  EXPECT_EQ(now.message, "0 compiled, 3 refused");
  EXPECT_EQ(now.attempts, 1);
  auto artifacts = db.transact([&](pqxx::work& w) {
                       return storage::artifacts::list_for_version(
                           w, storage::models::get_version(w, "m", 1).id);
                     }).value();
  std::map<std::string, std::string> reasons;
  for (const auto& a : artifacts) reasons[a.device_class] = a.refusal_reason;
  EXPECT_EQ(reasons["throws-std"], "the compiler failed: stoll");
  EXPECT_EQ(reasons["throws-oom"], "the compiler ran out of memory");
  EXPECT_EQ(reasons["throws-int"], "the compiler failed with an unknown exception");
  EXPECT_EQ(orchestrator.stats().refused, 3u);
}

}  // namespace
}  // namespace tinyfleet::server
