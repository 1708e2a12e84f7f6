#pragma once

#include <optional>
#include <vector>

#include <pqxx/pqxx>

#include "tinyfleet/storage/records.h"

namespace tinyfleet::storage::models {

ModelRecord create(pqxx::work& w, const std::string& name, const std::string& description);
ModelRecord get(pqxx::work& w, const std::string& name);  // kNotFound if absent
// Models by name, after `after` (exclusive; "" from the first), at most `limit`.
std::vector<ModelRecord> list(pqxx::work& w, const std::string& after, int limit);

// kNotFound for an unknown model, a blob that is not stored or a target class
// that does not exist; kAlreadyExists for a version number already taken.
ModelVersionRecord create_version(pqxx::work& w, const NewModelVersion& v);
ModelVersionRecord get_version(pqxx::work& w, const std::string& model, int32_t version);
std::optional<ModelVersionRecord> find_version(pqxx::work& w, const std::string& model,
                                               int32_t version);
ModelVersionRecord get_version_by_id(pqxx::work& w, int64_t version_id);
// Versions with number greater than `after`, ascending, at most `limit`.
std::vector<ModelVersionRecord> list_versions(pqxx::work& w, const std::string& model,
                                              int32_t after, int limit);

}  // namespace tinyfleet::storage::models
