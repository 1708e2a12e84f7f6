#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

// Plain rows as the repositories read and write them. JSON columns travel as
// strings; their shape belongs to the room that writes them.
namespace tinyfleet::storage {

struct DeviceClassRecord {
  std::string name;       // e.g. "cortex-m4-256k"
  std::string spec_json;  // the class as in the device-class catalog
};

struct ModelRecord {
  int64_t id = 0;
  std::string name;
  std::string description;
  std::string created_at;
};

struct NewModelVersion {
  std::string model_name;
  int32_t version = 0;      // 0 = next free number
  std::string onnx_sha256;  // the model file (ONNX or TFLite: model_format)
  std::optional<std::string> calib_sha256;
  std::optional<std::string> val_sha256;
  std::vector<std::string> target_classes;
  std::string metadata_json = "{}";
  std::string model_format = "onnx";  // "onnx" or "tflite"
};

struct ModelVersionRecord {
  int64_t id = 0;
  int64_t model_id = 0;
  std::string model_name;
  int32_t version = 0;
  std::string onnx_sha256;
  std::optional<std::string> calib_sha256;
  std::optional<std::string> val_sha256;
  std::vector<std::string> target_classes;
  std::string metadata_json;
  std::string created_at;
  std::string model_format = "onnx";  // "onnx" or "tflite"
};

enum class ArtifactStatus { kCompiled, kRefused };

// The compiler's typed outputs stored with a compiled artifact (optimizer_service's
// CompileOutputs, as rows).
struct SelfTestRecord {
  std::string input;   // int8 bytes
  std::string output;  // the artifact's exact int8 output
};

struct PlannedBufferRecord {
  std::string tensor;
  int64_t offset = 0;
  int64_t size = 0;
  int32_t first_step = 0;
  int32_t last_step = 0;
};

struct ArtifactOutputs {
  std::vector<SelfTestRecord> self_tests;
  std::vector<float> class_histogram;  // the drift baseline
  float mean_top1_confidence = 0;
  std::vector<float> channel_mean;
  std::vector<float> channel_std;
  int64_t modelled_cycles = 0;  // per inference on the artifact's class
  int64_t arena_bytes = 0;      // the memory plan
  std::vector<PlannedBufferRecord> buffers;
};

struct NewArtifact {
  int64_t version_id = 0;
  std::string device_class;
  ArtifactStatus status = ArtifactStatus::kCompiled;
  std::optional<std::string> artifact_sha256;  // set when compiled
  std::string report_json = "{}";
  std::string refusal_reason;              // set when refused
  std::optional<ArtifactOutputs> outputs;  // compiled only
};

struct ArtifactRecord {
  int64_t id = 0;
  int64_t version_id = 0;
  std::string device_class;
  ArtifactStatus status = ArtifactStatus::kCompiled;
  std::optional<std::string> artifact_sha256;
  int64_t size_bytes = 0;
  std::string report_json;
  std::string refusal_reason;
  std::string created_at;
};

struct NewDevice {
  std::string id;
  std::string fleet = "default";
  std::string device_class;
  std::vector<std::string> tags;
  std::string credential_hash;
};

struct DeviceRecord {
  std::string id;
  std::string fleet;
  std::string device_class;
  std::vector<std::string> tags;
  std::string credential_hash;
  std::optional<std::string> current_artifact_sha256;
  std::optional<std::string> last_seen;
  std::string status;  // provisioned, online, offline, updating, failed
  std::string created_at;
};

struct DeviceFilter {
  std::optional<std::string> device_class;
  std::optional<std::string> tag;
  std::optional<std::string> status;
  std::string after_id;  // keyset pagination: ids greater than this
  int limit = 100;
};

struct TelemetryRow {
  std::string device_id;
  int64_t ts_unix_ms = 0;
  std::optional<int64_t> rollout_id;
  std::string artifact_sha256;
  int32_t inferences = 0;
  double latency_p50_us = 0;
  double latency_p95_us = 0;
  double energy_uj = 0;
  double output_psi = 0;
  double input_drift = 0;
  std::optional<double> probe_accuracy;
  std::optional<double> shadow_agreement;
};

struct AuditEntry {
  std::string actor;
  std::string action;  // e.g. "model.create"
  std::string object;  // e.g. "model/kws"
  std::string details_json = "{}";
};

struct OperationRecord {
  int64_t id = 0;
  std::string kind;    // "compile"
  std::string object;  // "model/kws/versions/3"
  std::string params_json;
  std::string state;  // pending, running, succeeded, failed
  int32_t done = 0;
  int32_t total = 0;
  std::string message;
  std::string created_at;
  std::string updated_at;
};

enum class Role { kViewer, kOperator, kAdmin };
const char* to_string(Role role);
std::optional<Role> role_from_string(const std::string& s);

struct ApiTokenRecord {
  int64_t id = 0;
  std::string name;
  Role role = Role::kViewer;
  std::string created_at;
  bool revoked = false;
};

}  // namespace tinyfleet::storage
