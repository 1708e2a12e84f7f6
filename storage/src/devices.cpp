#include "tinyfleet/storage/devices.h"

#include "sql.h"
#include "tinyfleet/storage/device_classes.h"

namespace tinyfleet::storage::devices {

namespace {
#define TF_DEVICE_COLUMNS                                                                  \
  "id, fleet, device_class, tags::text, credential_hash, current_artifact_sha256, "        \
  "CASE WHEN last_seen IS NULL THEN NULL ELSE " TF_TS("last_seen") " END, status, " TF_TS( \
      "created_at")

const sql::Statement kCreate{
    "devices.create",
    "INSERT INTO devices (id, fleet, device_class, tags, credential_hash) "
    "VALUES ($1, $2, $3, $4::jsonb, $5) ON CONFLICT (id) DO NOTHING RETURNING id"};
const sql::Statement kFind{"devices.find",
                           "SELECT " TF_DEVICE_COLUMNS " FROM devices WHERE id = $1"};
// Optional filters are NULL when unused; keyset pagination on id.
const sql::Statement kList{"devices.list",
                           "SELECT " TF_DEVICE_COLUMNS
                           " FROM devices WHERE id > $1 "
                           "AND ($2::text IS NULL OR device_class = $2) "
                           "AND ($3::text IS NULL OR tags @> jsonb_build_array($3::text)) "
                           "AND (($4::text IS NULL AND status <> 'deprovisioned') OR status = $4) "
                           "ORDER BY id LIMIT $5"};
const sql::Statement kSetStatus{"devices.set_status",
                                "UPDATE devices SET status = $2 WHERE id = $1"};
const sql::Statement kSeen{"devices.seen",
                           "UPDATE devices SET status = $2, last_seen = now() WHERE id = $1"};
const sql::Statement kSetCredential{
    "devices.set_credential",
    "UPDATE devices SET credential_hash = $2 WHERE id = $1 AND status <> 'deprovisioned'"};
const sql::Statement kDeprovision{
    "devices.deprovision",
    "UPDATE devices SET status = 'deprovisioned', credential_hash = '' WHERE id = $1 "
    "AND status <> 'deprovisioned'"};
const sql::Statement kSetArtifact{"devices.set_artifact",
                                  "UPDATE devices SET current_artifact_sha256 = $2 WHERE id = $1"};

DeviceRecord from_row(const pqxx::row& r) {
  DeviceRecord d;
  d.id = r[0].as<std::string>();
  d.fleet = r[1].as<std::string>();
  d.device_class = r[2].as<std::string>();
  d.tags = sql::from_json_array(r[3].as<std::string>());
  d.credential_hash = r[4].as<std::string>();
  d.current_artifact_sha256 = sql::opt_string(r[5]);
  d.last_seen = sql::opt_string(r[6]);
  d.status = r[7].as<std::string>();
  d.created_at = r[8].as<std::string>();
  return d;
}

void require_updated(const pqxx::result& r, const std::string& id) {
  if (r.affected_rows() == 0) fail(ErrorCode::kNotFound, "device '" + id + "' does not exist");
}
}  // namespace

DeviceRecord create(pqxx::work& w, const NewDevice& d) {
  device_classes::get(w, d.device_class);
  auto r = sql::run(w, kCreate, d.id, d.fleet, d.device_class, sql::to_json_array(d.tags),
                    d.credential_hash);
  if (r.empty()) fail(ErrorCode::kAlreadyExists, "device '" + d.id + "' already exists");
  return get(w, d.id);
}

std::optional<DeviceRecord> find(pqxx::work& w, const std::string& id) {
  auto r = sql::run(w, kFind, id);
  if (r.empty()) return std::nullopt;
  return from_row(r[0]);
}

DeviceRecord get(pqxx::work& w, const std::string& id) {
  auto d = find(w, id);
  if (!d) fail(ErrorCode::kNotFound, "device '" + id + "' does not exist");
  return *d;
}

std::vector<DeviceRecord> list(pqxx::work& w, const DeviceFilter& f) {
  if (f.limit < 1 || f.limit > 10000) {
    fail(ErrorCode::kInvalidArgument, "page size must be 1..10000, got " + std::to_string(f.limit));
  }
  std::vector<DeviceRecord> out;
  for (const auto& r : sql::run(w, kList, f.after_id, sql::nullable(f.device_class),
                                sql::nullable(f.tag), sql::nullable(f.status), f.limit)) {
    out.push_back(from_row(r));
  }
  return out;
}

void set_status(pqxx::work& w, const std::string& id, const std::string& status) {
  require_updated(sql::run(w, kSetStatus, id, status), id);
}

void record_seen(pqxx::work& w, const std::string& id, const std::string& status) {
  require_updated(sql::run(w, kSeen, id, status), id);
}

void set_credential_hash(pqxx::work& w, const std::string& id, const std::string& hash) {
  if (sql::run(w, kSetCredential, id, hash).affected_rows() == 0) {
    fail(ErrorCode::kNotFound, "device '" + id + "' does not exist or is deprovisioned");
  }
}

void deprovision(pqxx::work& w, const std::string& id) {
  if (sql::run(w, kDeprovision, id).affected_rows() == 0) {
    fail(ErrorCode::kNotFound, "device '" + id + "' does not exist or is deprovisioned already");
  }
}

void set_current_artifact(pqxx::work& w, const std::string& id, const std::string& sha256) {
  require_updated(sql::run(w, kSetArtifact, id, sha256), id);
}

}  // namespace tinyfleet::storage::devices
