#pragma once

// Between storage records and tinyfleet.v1 messages; nothing else.
#include <vector>

#include "tinyfleet/storage/records.h"
#include "tinyfleet/v1/admin.pb.h"
#include "tinyfleet/v1/device_registry.pb.h"
#include "tinyfleet/v1/model_registry.pb.h"

namespace tinyfleet::server::convert {

void model(const storage::ModelRecord& r, v1::Model* out);
// The version with one Artifact per target class (PENDING where none is stored yet).
void version(const storage::ModelVersionRecord& r, const std::vector<storage::ArtifactRecord>& a,
             v1::ModelVersion* out);
void artifact(const storage::ArtifactRecord& r, v1::Artifact* out);
void operation(const storage::OperationRecord& r, v1::Operation* out);
void device(const storage::DeviceRecord& r, v1::Device* out);
void token(const storage::ApiTokenRecord& r, v1::Token* out);
v1::Role role(storage::Role r);
std::optional<storage::Role> role(v1::Role r);

}  // namespace tinyfleet::server::convert
