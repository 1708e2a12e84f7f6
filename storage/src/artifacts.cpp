#include "tinyfleet/storage/artifacts.h"

#include "sql.h"
#include "tinyfleet/storage/device_classes.h"
#include "tinyfleet/storage/models.h"

namespace tinyfleet::storage::artifacts {

namespace {
#define TF_ARTIFACT_COLUMNS                                                                  \
  "a.id, a.version_id, a.device_class, a.status, a.artifact_sha256, COALESCE(b.size_bytes, " \
  "0), a.report::text, a.refusal_reason, " TF_TS("a.created_at")

const sql::Statement kStore{
    "artifacts.store",
    "INSERT INTO artifacts (version_id, device_class, status, artifact_sha256, report, "
    "refusal_reason) VALUES ($1, $2, $3, $4, $5::jsonb, $6) "
    "ON CONFLICT (version_id, device_class) DO UPDATE SET status = EXCLUDED.status, "
    "artifact_sha256 = EXCLUDED.artifact_sha256, report = EXCLUDED.report, "
    "refusal_reason = EXCLUDED.refusal_reason, created_at = now(), modelled_cycles = NULL, "
    "drift_class_histogram = NULL, drift_mean_top1_confidence = NULL, drift_channel_mean = NULL, "
    "drift_channel_std = NULL, arena_bytes = NULL WHERE artifacts.status = 'refused' "
    "OR (artifacts.artifact_sha256 = EXCLUDED.artifact_sha256 "
    "AND artifacts.modelled_cycles IS NULL) RETURNING id"};
const sql::Statement kFind{"artifacts.find",
                           "SELECT " TF_ARTIFACT_COLUMNS
                           " FROM artifacts a LEFT JOIN blobs b ON b.sha256 = a.artifact_sha256 "
                           "WHERE a.version_id = $1 AND a.device_class = $2"};
const sql::Statement kList{"artifacts.list",
                           "SELECT " TF_ARTIFACT_COLUMNS
                           " FROM artifacts a LEFT JOIN blobs b ON b.sha256 = a.artifact_sha256 "
                           "WHERE a.version_id = $1 ORDER BY a.device_class"};
const sql::Statement kBlobExists{"artifacts.blob_exists", "SELECT 1 FROM blobs WHERE sha256 = $1"};
const sql::Statement kStoreOutputs{
    "artifacts.store_outputs",
    "UPDATE artifacts SET modelled_cycles = $2, drift_class_histogram = $3::real[], "
    "drift_mean_top1_confidence = $4, drift_channel_mean = $5::real[], "
    "drift_channel_std = $6::real[], arena_bytes = $7 WHERE id = $1"};
const sql::Statement kClearSelfTests{"artifacts.clear_self_tests",
                                     "DELETE FROM artifact_self_tests WHERE artifact_id = $1"};
const sql::Statement kClearBuffers{"artifacts.clear_buffers",
                                   "DELETE FROM artifact_buffers WHERE artifact_id = $1"};
const sql::Statement kAddSelfTest{
    "artifacts.add_self_test",
    "INSERT INTO artifact_self_tests (artifact_id, idx, input, output) VALUES ($1, $2, $3, $4)"};
const sql::Statement kAddBuffer{
    "artifacts.add_buffer",
    "INSERT INTO artifact_buffers (artifact_id, idx, tensor, offset_bytes, size_bytes, "
    "first_step, last_step) VALUES ($1, $2, $3, $4, $5, $6, $7)"};
const sql::Statement kOutputs{
    "artifacts.outputs",
    "SELECT modelled_cycles, drift_class_histogram, drift_mean_top1_confidence, "
    "drift_channel_mean, drift_channel_std, arena_bytes FROM artifacts "
    "WHERE id = $1 AND modelled_cycles IS NOT NULL"};
const sql::Statement kSelfTests{
    "artifacts.self_tests",
    "SELECT input, output FROM artifact_self_tests WHERE artifact_id = $1 ORDER BY idx"};
const sql::Statement kBuffers{"artifacts.buffers",
                              "SELECT tensor, offset_bytes, size_bytes, first_step, last_step "
                              "FROM artifact_buffers WHERE artifact_id = $1 ORDER BY idx"};
const sql::Statement kLatestBySha{
    "artifacts.latest_by_sha256",
    "SELECT id FROM artifacts WHERE artifact_sha256 = $1 AND modelled_cycles IS NOT NULL "
    "ORDER BY created_at DESC, id DESC LIMIT 1"};

pqxx::binarystring bytes(const std::string& s) { return pqxx::binarystring(s.data(), s.size()); }

void check_outputs(const ArtifactOutputs& o) {
  if (o.self_tests.empty() || o.modelled_cycles < 0 || o.arena_bytes < 0) {
    fail(ErrorCode::kInvalidArgument,
         "compile outputs need self-tests and non-negative cycles and arena bytes");
  }
  for (const auto& b : o.buffers) {
    if (b.offset + b.size > o.arena_bytes) {
      fail(ErrorCode::kInvalidArgument, "planned buffer '" + b.tensor + "' ends past the " +
                                            std::to_string(o.arena_bytes) + " B arena");
    }
  }
}

void store_outputs(pqxx::work& w, int64_t id, const ArtifactOutputs& o) {
  sql::run(w, kStoreOutputs, id, o.modelled_cycles, sql::to_real_array(o.class_histogram),
           o.mean_top1_confidence, sql::to_real_array(o.channel_mean),
           sql::to_real_array(o.channel_std), o.arena_bytes);
  sql::run(w, kClearSelfTests, id);
  sql::run(w, kClearBuffers, id);
  for (size_t i = 0; i < o.self_tests.size(); ++i) {
    sql::run(w, kAddSelfTest, id, static_cast<int>(i), bytes(o.self_tests[i].input),
             bytes(o.self_tests[i].output));
  }
  for (size_t i = 0; i < o.buffers.size(); ++i) {
    const auto& b = o.buffers[i];
    sql::run(w, kAddBuffer, id, static_cast<int>(i), b.tensor, b.offset, b.size, b.first_step,
             b.last_step);
  }
}

ArtifactRecord from_row(const pqxx::row& r) {
  ArtifactRecord a;
  a.id = r[0].as<int64_t>();
  a.version_id = r[1].as<int64_t>();
  a.device_class = r[2].as<std::string>();
  a.status =
      r[3].as<std::string>() == "compiled" ? ArtifactStatus::kCompiled : ArtifactStatus::kRefused;
  a.artifact_sha256 = sql::opt_string(r[4]);
  a.size_bytes = r[5].as<int64_t>();
  a.report_json = r[6].as<std::string>();
  a.refusal_reason = r[7].as<std::string>();
  a.created_at = r[8].as<std::string>();
  return a;
}
}  // namespace

ArtifactRecord store(pqxx::work& w, const NewArtifact& a) {
  models::get_version_by_id(w, a.version_id);
  device_classes::get(w, a.device_class);
  const bool compiled = a.status == ArtifactStatus::kCompiled;
  if (compiled != a.artifact_sha256.has_value()) {
    fail(ErrorCode::kInvalidArgument, compiled ? "a compiled artifact needs its blob sha256"
                                               : "a refused compile cannot have an artifact blob");
  }
  if (!compiled && a.refusal_reason.empty()) {
    fail(ErrorCode::kInvalidArgument, "a refused compile needs a reason");
  }
  if (compiled && sql::run(w, kBlobExists, *a.artifact_sha256).empty()) {
    fail(ErrorCode::kNotFound, "artifact blob " + *a.artifact_sha256 + " is not stored");
  }
  if (!compiled && a.outputs) {
    fail(ErrorCode::kInvalidArgument, "a refused compile cannot have compile outputs");
  }
  if (a.outputs) check_outputs(*a.outputs);
  auto written =
      sql::run(w, kStore, a.version_id, a.device_class, compiled ? "compiled" : "refused",
               sql::nullable(a.artifact_sha256), a.report_json, a.refusal_reason);
  auto stored = *find(w, a.version_id, a.device_class);
  if (written.empty()) {
    // A compiled artifact with its outputs is there already: it is immutable (devices
    // may run it). The same bytes again leave it as it is; anything else is refused.
    // (The same bytes over a row stored without outputs, compiled before they were
    // kept, add them: kStore wrote that row.)
    if (compiled && stored.artifact_sha256 == a.artifact_sha256) return stored;
    fail(ErrorCode::kAlreadyExists,
         "model version " + std::to_string(a.version_id) + " already has a compiled artifact for " +
             a.device_class + " (sha256 " + stored.artifact_sha256.value_or("") +
             "); artifacts are immutable: register a new version to change it");
  }
  if (a.outputs) {
    store_outputs(w, stored.id, *a.outputs);
  } else {
    // A recompile replaces a refused outcome (kStore cleared the columns): no rows of
    // earlier outputs stay behind.
    sql::run(w, kClearSelfTests, stored.id);
    sql::run(w, kClearBuffers, stored.id);
  }
  return stored;
}

std::optional<ArtifactRecord> find(pqxx::work& w, int64_t version_id,
                                   const std::string& device_class) {
  auto r = sql::run(w, kFind, version_id, device_class);
  if (r.empty()) return std::nullopt;
  return from_row(r[0]);
}

std::vector<ArtifactRecord> list_for_version(pqxx::work& w, int64_t version_id) {
  std::vector<ArtifactRecord> out;
  for (const auto& r : sql::run(w, kList, version_id)) out.push_back(from_row(r));
  return out;
}

std::optional<ArtifactOutputs> outputs(pqxx::work& w, int64_t artifact_id) {
  auto r = sql::run(w, kOutputs, artifact_id);
  if (r.empty()) return std::nullopt;
  ArtifactOutputs o;
  o.modelled_cycles = r[0][0].as<int64_t>();
  o.class_histogram = sql::from_real_array(r[0][1]);
  o.mean_top1_confidence = r[0][2].is_null() ? 0.0f : r[0][2].as<float>();
  o.channel_mean = sql::from_real_array(r[0][3]);
  o.channel_std = sql::from_real_array(r[0][4]);
  o.arena_bytes = r[0][5].is_null() ? 0 : r[0][5].as<int64_t>();
  for (const auto& row : sql::run(w, kSelfTests, artifact_id)) {
    o.self_tests.push_back({pqxx::binarystring(row[0]).str(), pqxx::binarystring(row[1]).str()});
  }
  for (const auto& row : sql::run(w, kBuffers, artifact_id)) {
    o.buffers.push_back({row[0].as<std::string>(), row[1].as<int64_t>(), row[2].as<int64_t>(),
                         row[3].as<int32_t>(), row[4].as<int32_t>()});
  }
  return o;
}

std::optional<ArtifactOutputs> outputs_by_sha256(pqxx::work& w, const std::string& sha256) {
  auto r = sql::run(w, kLatestBySha, sha256);
  if (r.empty()) return std::nullopt;
  return outputs(w, r[0][0].as<int64_t>());
}

}  // namespace tinyfleet::storage::artifacts
