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
    "refusal_reason = EXCLUDED.refusal_reason, created_at = now()"};
const sql::Statement kFind{"artifacts.find",
                           "SELECT " TF_ARTIFACT_COLUMNS
                           " FROM artifacts a LEFT JOIN blobs b ON b.sha256 = a.artifact_sha256 "
                           "WHERE a.version_id = $1 AND a.device_class = $2"};
const sql::Statement kList{"artifacts.list",
                           "SELECT " TF_ARTIFACT_COLUMNS
                           " FROM artifacts a LEFT JOIN blobs b ON b.sha256 = a.artifact_sha256 "
                           "WHERE a.version_id = $1 ORDER BY a.device_class"};
const sql::Statement kBlobExists{"artifacts.blob_exists", "SELECT 1 FROM blobs WHERE sha256 = $1"};

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
  sql::run(w, kStore, a.version_id, a.device_class, compiled ? "compiled" : "refused",
           sql::nullable(a.artifact_sha256), a.report_json, a.refusal_reason);
  return *find(w, a.version_id, a.device_class);
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

}  // namespace tinyfleet::storage::artifacts
