#pragma once

#include <vector>

#include <pqxx/pqxx>

#include "tinyfleet/storage/records.h"

namespace tinyfleet::storage::audit_log {

void append(pqxx::work& w, const AuditEntry& e);
std::vector<AuditEntry> for_object(pqxx::work& w, const std::string& object);

}  // namespace tinyfleet::storage::audit_log
