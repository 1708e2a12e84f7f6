#include "tinyfleet/update/status_message.h"

#include "wire_codec.h"

namespace tinyfleet::update {

const char* to_string(UpdateState state) {
  static const char* const kNames[] = {"Idle",      "Offered",    "Downloading",
                                       "Verifying", "Patching",   "SelfTest",
                                       "Committed", "RolledBack", "NoModel"};
  return wire::name_of(kNames, static_cast<size_t>(state));
}

const char* to_string(StatusEvent event) {
  static const char* const kNames[] = {"unknown",       "hello", "state",
                                       "offer_refused", "error", "offer_deferred"};
  return wire::name_of(kNames, static_cast<size_t>(event));
}

WireStatus encode_status(const StatusMessage& m, uint8_t* out, size_t capacity, size_t* written) {
  wire::Writer w(out, capacity);
  wire::begin(w, MessageKind::kStatus, kStatusVersion, TF_WIRE_NAME("status.header"));
  w.text(m.device_class, kMaxNameBytes, TF_WIRE_NAME("status.device_class"));
  w.uint(static_cast<uint8_t>(m.event), 1, TF_WIRE_NAME("status.event"));
  w.uint(static_cast<uint8_t>(m.state), 1, TF_WIRE_NAME("status.state"));
  w.uint(static_cast<uint8_t>(m.refusal), 1, TF_WIRE_NAME("status.refusal"));
  w.uint(m.has_artifact ? 1 : 0, 1, TF_WIRE_NAME("status.flags"));
  w.uint(m.release, 8, TF_WIRE_NAME("status.release"));
  w.raw(m.artifact_sha256, 32, TF_WIRE_NAME("status.artifact_sha256"));
  w.uint(m.pending_release, 8, TF_WIRE_NAME("status.pending_release"));
  w.uint(m.failed_release, 8, TF_WIRE_NAME("status.failed_release"));
  w.text(m.detail, kMaxDetailBytes, TF_WIRE_NAME("status.detail"));
  return wire::finish(w, written);
}

WireStatus decode_status(const uint8_t* data, size_t size, StatusMessage* out) {
  *out = StatusMessage{};
  wire::Reader r(data, size);
  if (wire::open(r, size, MessageKind::kStatus, kStatusVersion, "status.header") == 0) {
    return r.status();
  }
  r.text(out->device_class, kMaxNameBytes, "status.device_class");
  const auto event = static_cast<uint8_t>(r.uint(1, "status.event"));
  const auto state = static_cast<uint8_t>(r.uint(1, "status.state"));
  const auto refusal = static_cast<uint8_t>(r.uint(1, "status.refusal"));
  const auto flags = static_cast<uint8_t>(r.uint(1, "status.flags"));
  out->release = r.uint(8, "status.release");
  r.raw(out->artifact_sha256, 32, "status.artifact_sha256");
  out->pending_release = r.uint(8, "status.pending_release");
  out->failed_release = r.uint(8, "status.failed_release");
  r.text(out->detail, kMaxDetailBytes, "status.detail");
  r.end("status");
  if (!r.status().ok()) return r.status();
  if (event == 0 || event > kLastStatusEvent) return {WireError::kBadValue, "status.event"};
  if (state > kLastUpdateState) return {WireError::kBadValue, "status.state"};
  if (refusal > kLastOfferStatus) return {WireError::kBadValue, "status.refusal"};
  if (flags > 1) return {WireError::kBadValue, "status.flags"};
  out->event = static_cast<StatusEvent>(event);
  out->state = static_cast<UpdateState>(state);
  out->refusal = static_cast<OfferStatus>(refusal);
  out->has_artifact = flags == 1;
  return {};
}

}  // namespace tinyfleet::update
