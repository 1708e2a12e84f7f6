#include "convert.h"

#include <algorithm>

namespace tinyfleet::server::convert {

void model(const storage::ModelRecord& r, v1::Model* out) {
  out->set_name(r.name);
  out->set_description(r.description);
  out->set_created_at(r.created_at);
}

void artifact(const storage::ArtifactRecord& r, v1::Artifact* out) {
  out->set_device_class(r.device_class);
  out->set_status(r.status == storage::ArtifactStatus::kCompiled ? v1::ARTIFACT_STATUS_COMPILED
                                                                 : v1::ARTIFACT_STATUS_REFUSED);
  out->set_sha256(r.artifact_sha256.value_or(""));
  out->set_size(static_cast<uint64_t>(r.size_bytes));
  out->set_refusal_reason(r.refusal_reason);
  out->set_report_json(r.report_json);
  out->set_created_at(r.created_at);
}

void version(const storage::ModelVersionRecord& r, const std::vector<storage::ArtifactRecord>& a,
             v1::ModelVersion* out) {
  out->set_model(r.model_name);
  out->set_version(static_cast<uint32_t>(r.version));
  out->set_onnx_sha256(r.onnx_sha256);
  out->set_format(r.model_format == "tflite" ? v1::MODEL_FORMAT_TFLITE : v1::MODEL_FORMAT_ONNX);
  out->set_calibration_sha256(r.calib_sha256.value_or(""));
  out->set_validation_sha256(r.val_sha256.value_or(""));
  for (const auto& c : r.target_classes) out->add_target_classes(c);
  out->set_metadata_json(r.metadata_json);
  out->set_created_at(r.created_at);
  for (const auto& c : r.target_classes) {
    auto it = std::find_if(a.begin(), a.end(),
                           [&](const storage::ArtifactRecord& x) { return x.device_class == c; });
    auto* entry = out->add_artifacts();
    if (it == a.end()) {
      entry->set_device_class(c);
      entry->set_status(v1::ARTIFACT_STATUS_PENDING);
    } else {
      artifact(*it, entry);
    }
  }
}

void operation(const storage::OperationRecord& r, v1::Operation* out) {
  out->set_id(std::to_string(r.id));
  out->set_kind(r.kind);
  out->set_object(r.object);
  if (r.state == "pending") out->set_state(v1::OPERATION_STATE_PENDING);
  if (r.state == "running") out->set_state(v1::OPERATION_STATE_RUNNING);
  if (r.state == "succeeded") out->set_state(v1::OPERATION_STATE_SUCCEEDED);
  if (r.state == "failed") out->set_state(v1::OPERATION_STATE_FAILED);
  out->set_done(static_cast<uint32_t>(r.done));
  out->set_total(static_cast<uint32_t>(r.total));
  out->set_message(r.message);
}

void device(const storage::DeviceRecord& r, v1::Device* out) {
  out->set_id(r.id);
  out->set_fleet(r.fleet);
  out->set_device_class(r.device_class);
  for (const auto& t : r.tags) out->add_tags(t);
  out->set_status(r.status);
  out->set_current_artifact_sha256(r.current_artifact_sha256.value_or(""));
  out->set_last_seen(r.last_seen.value_or(""));
  out->set_created_at(r.created_at);
}

v1::Role role(storage::Role r) {
  switch (r) {
    case storage::Role::kViewer:
      return v1::ROLE_VIEWER;
    case storage::Role::kOperator:
      return v1::ROLE_OPERATOR;
    case storage::Role::kAdmin:
      return v1::ROLE_ADMIN;
  }
  return v1::ROLE_UNSPECIFIED;
}

std::optional<storage::Role> role(v1::Role r) {
  switch (r) {
    case v1::ROLE_VIEWER:
      return storage::Role::kViewer;
    case v1::ROLE_OPERATOR:
      return storage::Role::kOperator;
    case v1::ROLE_ADMIN:
      return storage::Role::kAdmin;
    default:
      return std::nullopt;
  }
}

void token(const storage::ApiTokenRecord& r, v1::Token* out) {
  out->set_name(r.name);
  out->set_role(role(r.role));
  out->set_revoked(r.revoked);
  out->set_created_at(r.created_at);
}

}  // namespace tinyfleet::server::convert
