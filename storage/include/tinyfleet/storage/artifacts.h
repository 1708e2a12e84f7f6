#pragma once

#include <optional>
#include <vector>

#include <pqxx/pqxx>

#include "tinyfleet/storage/records.h"

namespace tinyfleet::storage::artifacts {

// One row per (version, device class); storing again replaces the earlier
// outcome (a recompile). kNotFound for an unknown version, class or blob.
ArtifactRecord store(pqxx::work& w, const NewArtifact& a);
std::optional<ArtifactRecord> find(pqxx::work& w, int64_t version_id,
                                   const std::string& device_class);
std::vector<ArtifactRecord> list_for_version(pqxx::work& w, int64_t version_id);

}  // namespace tinyfleet::storage::artifacts
