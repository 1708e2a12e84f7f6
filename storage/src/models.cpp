#include "tinyfleet/storage/models.h"

#include "sql.h"
#include "tinyfleet/storage/device_classes.h"

namespace tinyfleet::storage::models {

namespace {
#define TF_VERSION_COLUMNS                                                             \
  "v.id, v.model_id, m.name, v.version, v.onnx_sha256, v.calib_sha256, v.val_sha256, " \
  "v.target_classes::text, v.metadata::text, " TF_TS("v.created_at") ", v.model_format"

const sql::Statement kCreate{"models.create",
                             "INSERT INTO models (name, description) VALUES ($1, $2) "
                             "ON CONFLICT (name) DO NOTHING "
                             "RETURNING id, name, description, " TF_TS("created_at")};
const sql::Statement kGet{"models.get", "SELECT id, name, description, " TF_TS(
                                            "created_at") " FROM models WHERE name = $1"};
const sql::Statement kList{"models.list",
                           "SELECT id, name, description, " TF_TS(
                               "created_at") " FROM models WHERE name > $1 ORDER BY name LIMIT $2"};
// Locks the model row so concurrent "next version" requests get distinct numbers.
const sql::Statement kLockModel{"models.lock", "SELECT id FROM models WHERE name = $1 FOR UPDATE"};
const sql::Statement kNextVersion{
    "models.next_version",
    "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE model_id = $1"};
const sql::Statement kVersionTaken{
    "models.version_taken", "SELECT 1 FROM model_versions WHERE model_id = $1 AND version = $2"};
const sql::Statement kBlobExists{"models.blob_exists", "SELECT 1 FROM blobs WHERE sha256 = $1"};
const sql::Statement kInsertVersion{
    "models.insert_version",
    "INSERT INTO model_versions (model_id, version, onnx_sha256, calib_sha256, val_sha256, "
    "target_classes, metadata, model_format) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8) "
    "RETURNING id"};
const sql::Statement kGetVersion{"models.get_version",
                                 "SELECT " TF_VERSION_COLUMNS
                                 " FROM model_versions v JOIN models m ON m.id = v.model_id "
                                 "WHERE m.name = $1 AND v.version = $2"};
const sql::Statement kGetVersionById{"models.get_version_by_id",
                                     "SELECT " TF_VERSION_COLUMNS
                                     " FROM model_versions v JOIN models m ON m.id = v.model_id "
                                     "WHERE v.id = $1"};
const sql::Statement kListVersions{"models.list_versions",
                                   "SELECT " TF_VERSION_COLUMNS
                                   " FROM model_versions v JOIN models m ON m.id = v.model_id "
                                   "WHERE m.name = $1 AND v.version > $2 "
                                   "ORDER BY v.version LIMIT $3"};

ModelRecord model_from_row(const pqxx::row& r) {
  return {r[0].as<int64_t>(), r[1].as<std::string>(), r[2].as<std::string>(),
          r[3].as<std::string>()};
}

ModelVersionRecord version_from_row(const pqxx::row& r) {
  ModelVersionRecord v;
  v.id = r[0].as<int64_t>();
  v.model_id = r[1].as<int64_t>();
  v.model_name = r[2].as<std::string>();
  v.version = r[3].as<int32_t>();
  v.onnx_sha256 = r[4].as<std::string>();
  v.calib_sha256 = sql::opt_string(r[5]);
  v.val_sha256 = sql::opt_string(r[6]);
  v.target_classes = sql::from_json_array(r[7].as<std::string>());
  v.metadata_json = r[8].as<std::string>();
  v.created_at = r[9].as<std::string>();
  v.model_format = r[10].as<std::string>();
  return v;
}

void require_blob(pqxx::work& w, const std::string& sha, const char* what) {
  if (sql::run(w, kBlobExists, sha).empty()) {
    fail(ErrorCode::kNotFound, std::string(what) + " blob " + sha + " is not stored");
  }
}
}  // namespace

ModelRecord create(pqxx::work& w, const std::string& name, const std::string& description) {
  auto r = sql::run(w, kCreate, name, description);
  if (r.empty()) fail(ErrorCode::kAlreadyExists, "model '" + name + "' already exists");
  return model_from_row(r[0]);
}

ModelRecord get(pqxx::work& w, const std::string& name) {
  auto r = sql::run(w, kGet, name);
  if (r.empty()) fail(ErrorCode::kNotFound, "model '" + name + "' does not exist");
  return model_from_row(r[0]);
}

std::vector<ModelRecord> list(pqxx::work& w, const std::string& after, int limit) {
  std::vector<ModelRecord> out;
  for (const auto& r : sql::run(w, kList, after, limit)) out.push_back(model_from_row(r));
  return out;
}

ModelVersionRecord create_version(pqxx::work& w, const NewModelVersion& v) {
  auto locked = sql::run(w, kLockModel, v.model_name);
  if (locked.empty()) fail(ErrorCode::kNotFound, "model '" + v.model_name + "' does not exist");
  const auto model_id = locked[0][0].as<int64_t>();
  if (v.version < 0) {
    fail(ErrorCode::kInvalidArgument, "version must be positive, got " + std::to_string(v.version));
  }
  int32_t number = v.version;
  if (number == 0) {
    number = sql::run(w, kNextVersion, model_id)[0][0].as<int32_t>();
  } else if (!sql::run(w, kVersionTaken, model_id, number).empty()) {
    fail(ErrorCode::kAlreadyExists,
         "model '" + v.model_name + "' already has version " + std::to_string(number));
  }
  require_blob(w, v.onnx_sha256, "onnx");
  if (v.calib_sha256) require_blob(w, *v.calib_sha256, "calibration");
  if (v.val_sha256) require_blob(w, *v.val_sha256, "validation");
  for (const auto& c : v.target_classes) device_classes::get(w, c);
  auto id = sql::run(w, kInsertVersion, model_id, number, v.onnx_sha256,
                     sql::nullable(v.calib_sha256), sql::nullable(v.val_sha256),
                     sql::to_json_array(v.target_classes), v.metadata_json, v.model_format)[0][0]
                .as<int64_t>();
  return get_version_by_id(w, id);
}

std::optional<ModelVersionRecord> find_version(pqxx::work& w, const std::string& model,
                                               int32_t version) {
  auto r = sql::run(w, kGetVersion, model, version);
  if (r.empty()) return std::nullopt;
  return version_from_row(r[0]);
}

ModelVersionRecord get_version(pqxx::work& w, const std::string& model, int32_t version) {
  auto r = sql::run(w, kGetVersion, model, version);
  if (r.empty()) {
    get(w, model);  // names the model when it is the model that is missing
    fail(ErrorCode::kNotFound, "model '" + model + "' has no version " + std::to_string(version));
  }
  return version_from_row(r[0]);
}

ModelVersionRecord get_version_by_id(pqxx::work& w, int64_t version_id) {
  auto r = sql::run(w, kGetVersionById, version_id);
  if (r.empty())
    fail(ErrorCode::kNotFound,
         "model version id " + std::to_string(version_id) + " does not exist");
  return version_from_row(r[0]);
}

std::vector<ModelVersionRecord> list_versions(pqxx::work& w, const std::string& model,
                                              int32_t after, int limit) {
  get(w, model);
  std::vector<ModelVersionRecord> out;
  for (const auto& r : sql::run(w, kListVersions, model, after, limit)) {
    out.push_back(version_from_row(r));
  }
  return out;
}

}  // namespace tinyfleet::storage::models
