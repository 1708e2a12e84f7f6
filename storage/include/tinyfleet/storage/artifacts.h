#pragma once

#include <optional>
#include <vector>

#include <pqxx/pqxx>

#include "tinyfleet/storage/records.h"

namespace tinyfleet::storage::artifacts {

// One row per (version, device class). A compiled artifact is immutable: storing again
// replaces only a refused outcome; over a compiled one, the same blob is a no-op (the
// stored row is returned; if that row has no compile outputs yet, as rows compiled before
// they were stored, it gets these outputs and report) and anything else kAlreadyExists (migration
// 0008's trigger refuses such an update from any writer). kNotFound for an unknown version, class
// or blob; kInvalidArgument for malformed outputs.
ArtifactRecord store(pqxx::work& w, const NewArtifact& a);
std::optional<ArtifactRecord> find(pqxx::work& w, int64_t version_id,
                                   const std::string& device_class);
std::vector<ArtifactRecord> list_for_version(pqxx::work& w, int64_t version_id);

// The typed compile outputs stored with artifact row `artifact_id`; nullopt when the row
// has none (refused, or compiled before they were stored).
std::optional<ArtifactOutputs> outputs(pqxx::work& w, int64_t artifact_id);
// The same for the most recently stored compiled row of the artifact with this sha256
// (one artifact, one set of outputs: the class is part of the artifact; a recompile
// with another validation set is the newer row).
std::optional<ArtifactOutputs> outputs_by_sha256(pqxx::work& w, const std::string& sha256);

}  // namespace tinyfleet::storage::artifacts
