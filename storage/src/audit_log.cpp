#include "tinyfleet/storage/audit_log.h"

#include "sql.h"

namespace tinyfleet::storage::audit_log {

namespace {
const sql::Statement kAppend{"audit_log.append",
                             "INSERT INTO audit_log (actor, action, object, details) "
                             "VALUES ($1, $2, $3, $4::jsonb)"};
const sql::Statement kForObject{"audit_log.for_object",
                                "SELECT actor, action, object, details::text FROM audit_log "
                                "WHERE object = $1 ORDER BY id"};
}  // namespace

void append(pqxx::work& w, const AuditEntry& e) {
  sql::run(w, kAppend, e.actor, e.action, e.object, e.details_json);
}

std::vector<AuditEntry> for_object(pqxx::work& w, const std::string& object) {
  std::vector<AuditEntry> out;
  for (const auto& r : sql::run(w, kForObject, object)) {
    out.push_back({r[0].as<std::string>(), r[1].as<std::string>(), r[2].as<std::string>(),
                   r[3].as<std::string>()});
  }
  return out;
}

}  // namespace tinyfleet::storage::audit_log
