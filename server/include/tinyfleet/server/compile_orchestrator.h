#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tinyfleet/server/model_compiler.h"
#include "tinyfleet/storage/database.h"
#include "tinyfleet/storage/records.h"

namespace tinyfleet::server {

// What the compile workers have done since start (for metrics).
struct CompileStats {
  uint64_t queued = 0;       // operations waiting for a worker
  uint64_t compiled = 0;     // classes compiled to an artifact
  uint64_t refused = 0;      // classes refused (does not fit, unsupported, ...)
  uint64_t failed = 0;       // operations that failed (internal errors)
  double class_seconds = 0;  // time spent compiling classes
};

// Runs compile operations on worker threads. Each operation is a row in
// `operations`; each class's outcome (artifact or refusal) commits together with
// the operation's progress, so a restart resumes at the first class not done and
// nothing half-made is kept. Nothing a compile does can end fleetd through an exception:
// a compiler that throws is a stored refusal with the reason, anything else thrown fails
// the operation. An operation that a worker started kMaxAttempts times without finishing
// (fleetd died while compiling it) is failed at the next start instead of resumed.
class CompileOrchestrator {
 public:
  static constexpr int kMaxAttempts = 3;

  // `compiler` may be null: operations then fail naming the missing setting.
  CompileOrchestrator(storage::Database& db, ModelCompiler* compiler, int workers);
  ~CompileOrchestrator();
  CompileOrchestrator(const CompileOrchestrator&) = delete;
  CompileOrchestrator& operator=(const CompileOrchestrator&) = delete;

  // Starts the workers and queues every operation left unfinished by an earlier run,
  // except those that crashed fleetd kMaxAttempts times: those fail with the reason.
  storage::Expected<int> start();
  // Lets the class being compiled finish, then stops; the rest stays queued in the
  // database for the next start.
  void stop();

  // Records a compile of model/version for `classes` (empty: the version's target
  // classes) and queues it. Unknown model, version or class: kNotFound; a class the
  // version does not target: kInvalidArgument.
  storage::Expected<storage::OperationRecord> submit(const std::string& model, int32_t version,
                                                     std::vector<std::string> classes);

  // Waits until any operation changes or `timeout` passes; returns the change count
  // (pass the last value seen).
  uint64_t wait_for_change(uint64_t seen, std::chrono::milliseconds timeout);

  CompileStats stats();

 private:
  void work();
  void run(int64_t operation_id);
  void fail(const storage::OperationRecord& op, const std::string& why);
  // Compiles one class and stores the artifact or refusal with the operation's progress;
  // true when refused.
  storage::Expected<bool> compile_class(const storage::OperationRecord& op,
                                        const std::string& model, int32_t version,
                                        const std::string& device_class, size_t index);
  // compiler_->compile, with any exception turned into a refusal naming it.
  storage::Expected<CompileOutcome> compile_guarded(const CompileInput& input);
  void notify();

  storage::Database& db_;
  ModelCompiler* compiler_;
  int workers_;
  std::mutex mu_;
  std::condition_variable queue_cv_;
  std::condition_variable change_cv_;
  std::deque<int64_t> queue_;
  uint64_t changes_ = 0;
  CompileStats stats_;  // guarded by mu_ (queued is read from queue_)
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace tinyfleet::server
