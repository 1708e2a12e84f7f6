#include "tinyfleet/server/compile_orchestrator.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "tinyfleet/server/log.h"
#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/storage/repositories.h"

namespace tinyfleet::server {

namespace {

using storage::ErrorCode;
using storage::Expected;

struct CompileJob {
  std::string model;
  int32_t version = 0;
  std::vector<std::string> classes;
};

CompileJob parse_params(const storage::OperationRecord& op) {
  const auto j = nlohmann::json::parse(op.params_json);
  return CompileJob{j.at("model").get<std::string>(), j.at("version").get<int32_t>(),
                    j.at("classes").get<std::vector<std::string>>()};
}

std::string object_name(const std::string& model, int32_t version) {
  return "model/" + model + "/versions/" + std::to_string(version);
}

}  // namespace

CompileOrchestrator::CompileOrchestrator(storage::Database& db, ModelCompiler* compiler,
                                         int workers)
    : db_(db), compiler_(compiler), workers_(std::max(1, workers)) {}

CompileOrchestrator::~CompileOrchestrator() { stop(); }

Expected<int> CompileOrchestrator::start() {
  auto open = db_.transact([](pqxx::work& w) { return storage::operations::unfinished(w); });
  if (!open) return open.error();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = false;
    for (const auto& op : *open) {
      if (op.kind == "compile") queue_.push_back(op.id);
    }
  }
  for (int i = 0; i < workers_; ++i) threads_.emplace_back([this] { work(); });
  if (!open->empty()) log::info("compile.resume", {{"operations", open->size()}});
  return static_cast<int>(open->size());
}

void CompileOrchestrator::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  change_cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

Expected<storage::OperationRecord> CompileOrchestrator::submit(const std::string& model,
                                                               int32_t version,
                                                               std::vector<std::string> classes) {
  auto op = db_.transact([&](pqxx::work& w) {
    auto v = storage::models::get_version(w, model, version);
    if (classes.empty()) classes = v.target_classes;
    if (classes.empty()) {
      storage::fail(ErrorCode::kInvalidArgument,
                    "model '" + model + "' version " + std::to_string(version) +
                        " has no target device classes; name them in the request");
    }
    for (const auto& c : classes) {
      storage::device_classes::get(w, c);  // kNotFound names the class
      if (std::find(v.target_classes.begin(), v.target_classes.end(), c) ==
          v.target_classes.end()) {
        storage::fail(ErrorCode::kInvalidArgument, "device class '" + c +
                                                       "' is not a target of model '" + model +
                                                       "' version " + std::to_string(version));
      }
    }
    const nlohmann::json params = {{"model", model}, {"version", version}, {"classes", classes}};
    auto rec = storage::operations::create(w, "compile", object_name(model, version), params.dump(),
                                           static_cast<int32_t>(classes.size()));
    storage::audit_log::append(
        w, {"fleetd", "version.compile", object_name(model, version), params.dump()});
    return rec;
  });
  if (!op) return op.error();
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(op->id);
  }
  queue_cv_.notify_one();
  notify();
  return op;
}

uint64_t CompileOrchestrator::wait_for_change(uint64_t seen, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  change_cv_.wait_for(lock, timeout, [&] { return changes_ != seen || stopping_; });
  return changes_;
}

void CompileOrchestrator::notify() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++changes_;
  }
  change_cv_.notify_all();
}

void CompileOrchestrator::work() {
  for (;;) {
    int64_t id = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      id = queue_.front();
      queue_.pop_front();
    }
    run(id);
  }
}

CompileStats CompileOrchestrator::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  CompileStats s = stats_;
  s.queued = queue_.size();
  return s;
}

void CompileOrchestrator::run(int64_t operation_id) {
  auto loaded =
      db_.transact([&](pqxx::work& w) { return storage::operations::get(w, operation_id); });
  if (!loaded) {
    log::error("compile.load_failed",
               {{"operation", operation_id}, {"error", loaded.error().message}});
    return;
  }
  auto op = *loaded;
  CompileJob job;
  try {
    job = parse_params(op);
  } catch (const std::exception& e) {
    db_.transact([&](pqxx::work& w) {
      return storage::operations::update(
          w, op.id, "failed", op.done, std::string("malformed operation parameters: ") + e.what());
    });
    notify();
    return;
  }
  auto fail_operation = [&](const std::string& why) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.failed;
    }
    db_.transact([&](pqxx::work& w) {
      return storage::operations::update(w, op.id, "failed", op.done, why);
    });
    log::error("compile.failed", {{"operation", op.id}, {"object", op.object}, {"error", why}});
    notify();
  };
  if (!compiler_) {
    fail_operation(
        "fleetd has no compiler configured: set compile.optimizer_address (remote) or "
        "compile.mode=in_process");
    return;
  }
  int refused = 0;
  for (size_t i = static_cast<size_t>(op.done); i < job.classes.size(); ++i) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;  // resumed at this class on the next start
    }
    const auto& device_class = job.classes[i];
    auto input = db_.transact([&](pqxx::work& w) {
      auto v = storage::models::get_version(w, job.model, job.version);
      CompileInput in;
      in.device_class = device_class;
      in.device_class_json = storage::device_classes::get(w, device_class).spec_json;
      in.onnx = storage::PgBlobStore::get(w, v.onnx_sha256).value_or("");
      in.model_format = v.model_format;
      if (v.calib_sha256)
        in.calibration_npz = storage::PgBlobStore::get(w, *v.calib_sha256).value_or("");
      if (v.val_sha256)
        in.validation_npz = storage::PgBlobStore::get(w, *v.val_sha256).value_or("");
      storage::operations::update(w, op.id, "running", static_cast<int32_t>(i),
                                  "compiling for " + device_class);
      return std::make_pair(v.id, in);
    });
    if (!input) return fail_operation(input.error().message);
    notify();
    const auto started = std::chrono::steady_clock::now();
    auto outcome = compiler_->compile(input->second);
    if (!outcome) return fail_operation(outcome.error().message);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
    if (outcome->refused) ++refused;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++(outcome->refused ? stats_.refused : stats_.compiled);
      stats_.class_seconds += ms / 1000.0;
    }
    auto stored = db_.transact([&](pqxx::work& w) {
      storage::NewArtifact a;
      a.version_id = input->first;
      a.device_class = device_class;
      a.report_json = outcome->report_json;
      if (outcome->refused) {
        a.status = storage::ArtifactStatus::kRefused;
        a.refusal_reason = outcome->refusal_reason;
      } else {
        a.status = storage::ArtifactStatus::kCompiled;
        a.artifact_sha256 = storage::PgBlobStore::put(w, outcome->artifact);
        a.outputs = outcome->outputs;
      }
      storage::artifacts::store(w, a);
      storage::operations::update(w, op.id, "running", static_cast<int32_t>(i + 1),
                                  device_class + (outcome->refused ? " refused" : " compiled"));
      return storage::Done{};
    });
    if (!stored) return fail_operation(stored.error().message);
    log::info("compile.class_done", {{"operation", op.id},
                                     {"object", op.object},
                                     {"device_class", device_class},
                                     {"refused", outcome->refused},
                                     {"reason", outcome->refusal_reason},
                                     {"ms", ms}});
    op.done = static_cast<int32_t>(i + 1);
    notify();
  }
  const auto total = static_cast<int>(job.classes.size());
  const std::string summary =
      std::to_string(total - refused) + " compiled, " + std::to_string(refused) + " refused";
  db_.transact([&](pqxx::work& w) {
    return storage::operations::update(w, op.id, "succeeded", total, summary);
  });
  log::info("compile.done", {{"operation", op.id}, {"object", op.object}, {"summary", summary}});
  notify();
}

}  // namespace tinyfleet::server
