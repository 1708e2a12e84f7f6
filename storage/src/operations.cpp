#include "tinyfleet/storage/operations.h"

#include "sql.h"

namespace tinyfleet::storage::operations {

namespace {
#define TF_OPERATION_COLUMNS                                                                      \
  "id, kind, object, params::text, state, done, total, message, " TF_TS("created_at") ", " TF_TS( \
      "updated_at") ", attempts"

const sql::Statement kCreate{"operations.create",
                             "INSERT INTO operations (kind, object, params, total) "
                             "VALUES ($1, $2, $3::jsonb, $4) RETURNING " TF_OPERATION_COLUMNS};
const sql::Statement kFind{"operations.find",
                           "SELECT " TF_OPERATION_COLUMNS " FROM operations WHERE id = $1"};
const sql::Statement kUpdate{
    "operations.update",
    "UPDATE operations SET state = $2, done = $3, message = $4, updated_at = now() "
    "WHERE id = $1 AND state IN ('pending', 'running') RETURNING " TF_OPERATION_COLUMNS};
const sql::Statement kUnfinished{"operations.unfinished",
                                 "SELECT " TF_OPERATION_COLUMNS
                                 " FROM operations WHERE state IN ('pending', 'running') "
                                 "ORDER BY id"};
const sql::Statement kBeginAttempt{
    "operations.begin_attempt",
    "UPDATE operations SET attempts = attempts + 1, state = 'running', updated_at = now() "
    "WHERE id = $1 AND state IN ('pending', 'running') RETURNING " TF_OPERATION_COLUMNS};
const sql::Statement kPause{"operations.pause",
                            "UPDATE operations SET attempts = 0, state = 'pending', message = $2, "
                            "updated_at = now() WHERE id = $1 AND state IN ('pending', 'running')"};

OperationRecord from_row(const pqxx::row& r) {
  OperationRecord o;
  o.id = r[0].as<int64_t>();
  o.kind = r[1].as<std::string>();
  o.object = r[2].as<std::string>();
  o.params_json = r[3].as<std::string>();
  o.state = r[4].as<std::string>();
  o.done = r[5].as<int32_t>();
  o.total = r[6].as<int32_t>();
  o.message = r[7].as<std::string>();
  o.created_at = r[8].as<std::string>();
  o.updated_at = r[9].as<std::string>();
  o.attempts = r[10].as<int32_t>();
  return o;
}

bool valid_state(const std::string& s) {
  return s == "pending" || s == "running" || s == "succeeded" || s == "failed";
}
}  // namespace

OperationRecord create(pqxx::work& w, const std::string& kind, const std::string& object,
                       const std::string& params_json, int32_t total) {
  if (kind.empty()) fail(ErrorCode::kInvalidArgument, "operation kind is empty");
  if (total < 0) fail(ErrorCode::kInvalidArgument, "operation total is negative");
  return from_row(sql::run(w, kCreate, kind, object, params_json, total).at(0));
}

std::optional<OperationRecord> find(pqxx::work& w, int64_t id) {
  auto rows = sql::run(w, kFind, id);
  if (rows.empty()) return std::nullopt;
  return from_row(rows[0]);
}

OperationRecord get(pqxx::work& w, int64_t id) {
  auto op = find(w, id);
  if (!op) fail(ErrorCode::kNotFound, "operation " + std::to_string(id) + " does not exist");
  return *op;
}

OperationRecord update(pqxx::work& w, int64_t id, const std::string& state, int32_t done,
                       const std::string& message) {
  if (!valid_state(state)) {
    fail(ErrorCode::kInvalidArgument,
         "operation state '" + state + "' is not one of pending, running, succeeded, failed");
  }
  auto rows = sql::run(w, kUpdate, id, state, done, message);
  if (rows.empty()) {
    auto existing = get(w, id);  // kNotFound when it does not exist
    fail(ErrorCode::kFailedPrecondition,
         "operation " + std::to_string(id) + " has already ended (" + existing.state + ")");
  }
  return from_row(rows[0]);
}

std::vector<OperationRecord> unfinished(pqxx::work& w) {
  std::vector<OperationRecord> out;
  for (const auto& r : sql::run(w, kUnfinished)) out.push_back(from_row(r));
  return out;
}

std::optional<OperationRecord> begin_attempt(pqxx::work& w, int64_t id) {
  auto rows = sql::run(w, kBeginAttempt, id);
  if (rows.empty()) return std::nullopt;
  return from_row(rows[0]);
}

void pause(pqxx::work& w, int64_t id, const std::string& message) {
  sql::run(w, kPause, id, message);
}

}  // namespace tinyfleet::storage::operations
