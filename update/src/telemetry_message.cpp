#include "tinyfleet/update/telemetry_message.h"

#include "wire_codec.h"

namespace tinyfleet::update {

WireStatus encode_telemetry(const TelemetryMessage& m, uint8_t* out, size_t capacity,
                            size_t* written) {
  wire::Writer w(out, capacity);
  wire::begin(w, MessageKind::kTelemetry, kTelemetryVersion, "telemetry.header");
  w.uint(m.seq, 8, "telemetry.seq");
  w.uint(m.ts_unix, 8, "telemetry.ts_unix");
  w.uint(m.release, 8, "telemetry.release");
  w.raw(m.artifact_sha256, 32, "telemetry.artifact_sha256");
  w.uint(m.inferences, 4, "telemetry.inferences");
  w.f32(m.latency_p50_us, "telemetry.latency_p50_us");
  w.f32(m.latency_p95_us, "telemetry.latency_p95_us");
  w.f32(m.energy_uj, "telemetry.energy_uj");
  w.f32(m.output_psi, "telemetry.output_psi");
  w.f32(m.input_drift, "telemetry.input_drift");
  w.uint(m.probes, 4, "telemetry.probes");
  w.uint(m.probes_correct, 4, "telemetry.probes_correct");
  w.uint(m.shadow, 4, "telemetry.shadow");
  w.uint(m.shadow_agree, 4, "telemetry.shadow_agree");
  return wire::finish(w, written);
}

WireStatus decode_telemetry(const uint8_t* data, size_t size, TelemetryMessage* out) {
  *out = TelemetryMessage{};
  wire::Reader r(data, size);
  if (wire::open(r, size, MessageKind::kTelemetry, kTelemetryVersion, "telemetry.header") == 0) {
    return r.status();
  }
  out->seq = r.uint(8, "telemetry.seq");
  out->ts_unix = r.uint(8, "telemetry.ts_unix");
  out->release = r.uint(8, "telemetry.release");
  r.raw(out->artifact_sha256, 32, "telemetry.artifact_sha256");
  out->inferences = static_cast<uint32_t>(r.uint(4, "telemetry.inferences"));
  out->latency_p50_us = r.f32("telemetry.latency_p50_us");
  out->latency_p95_us = r.f32("telemetry.latency_p95_us");
  out->energy_uj = r.f32("telemetry.energy_uj");
  out->output_psi = r.f32("telemetry.output_psi");
  out->input_drift = r.f32("telemetry.input_drift");
  out->probes = static_cast<uint32_t>(r.uint(4, "telemetry.probes"));
  out->probes_correct = static_cast<uint32_t>(r.uint(4, "telemetry.probes_correct"));
  out->shadow = static_cast<uint32_t>(r.uint(4, "telemetry.shadow"));
  out->shadow_agree = static_cast<uint32_t>(r.uint(4, "telemetry.shadow_agree"));
  r.end("telemetry");
  if (!r.status().ok()) return r.status();
  if (out->probes_correct > out->probes) return {WireError::kBadValue, "telemetry.probes_correct"};
  if (out->shadow_agree > out->shadow) return {WireError::kBadValue, "telemetry.shadow_agree"};
  return {};
}

}  // namespace tinyfleet::update
