#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <pqxx/pqxx>

#include "tinyfleet/storage/records.h"

namespace tinyfleet::storage::operations {

OperationRecord create(pqxx::work& w, const std::string& kind, const std::string& object,
                       const std::string& params_json, int32_t total);
std::optional<OperationRecord> find(pqxx::work& w, int64_t id);
OperationRecord get(pqxx::work& w, int64_t id);  // kNotFound if absent
// Records progress; kFailedPrecondition when the operation has already ended.
OperationRecord update(pqxx::work& w, int64_t id, const std::string& state, int32_t done,
                       const std::string& message);
// A worker picks the operation up: running, attempts + 1. nullopt when it has ended (or
// does not exist).
std::optional<OperationRecord> begin_attempt(pqxx::work& w, int64_t id);
// A clean shutdown leaves it for the next start: pending, attempts back to 0.
void pause(pqxx::work& w, int64_t id, const std::string& message);
// Pending or running, oldest first: what a restarted server resumes.
std::vector<OperationRecord> unfinished(pqxx::work& w);

}  // namespace tinyfleet::storage::operations
