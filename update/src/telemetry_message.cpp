#include "tinyfleet/update/telemetry_message.h"

#include <cmath>

#include "wire_codec.h"

namespace tinyfleet::update {

size_t latency_bucket(uint64_t latency_us) {
  size_t b = 0;
  while (latency_us >= 2 && b + 1 < kTelemetryLatencyBuckets) {
    latency_us >>= 1;
    ++b;
  }
  return b;
}

namespace {

void encode_v2(const TelemetryMessage& m, wire::Writer& w) {
  w.uint(m.failures, 4, TF_WIRE_NAME("telemetry.failures"));
  if (m.classes > kTelemetryMaxClasses)
    return w.fail(WireError::kTooLong, TF_WIRE_NAME("telemetry.classes"));
  w.uint(m.classes, 1, TF_WIRE_NAME("telemetry.classes"));
  for (size_t i = 0; i < m.classes; ++i)
    w.uint(m.class_counts[i], 4, TF_WIRE_NAME("telemetry.class_counts"));
  if (m.channels > kTelemetryMaxChannels) {
    return w.fail(WireError::kTooLong, TF_WIRE_NAME("telemetry.channels"));
  }
  w.uint(m.channels, 1, TF_WIRE_NAME("telemetry.channels"));
  w.uint(m.input_count, 4, TF_WIRE_NAME("telemetry.input_count"));
  for (size_t c = 0; c < m.channels; ++c) {
    w.f64(m.input_sum[c], TF_WIRE_NAME("telemetry.input_sum"));
    w.f64(m.input_sumsq[c], TF_WIRE_NAME("telemetry.input_sumsq"));
  }
  for (uint32_t n : m.latency_hist) w.uint(n, 4, TF_WIRE_NAME("telemetry.latency_hist"));
  w.uint(m.active_us, 8, TF_WIRE_NAME("telemetry.active_us"));
  w.uint(m.flags, 1, TF_WIRE_NAME("telemetry.flags"));
  w.f64(m.energy_measured_uj, TF_WIRE_NAME("telemetry.energy_measured_uj"));
  w.f64(m.energy_modelled_uj, TF_WIRE_NAME("telemetry.energy_modelled_uj"));
}

void decode_v2(wire::Reader& r, TelemetryMessage* out) {
  out->failures = static_cast<uint32_t>(r.uint(4, TF_WIRE_NAME("telemetry.failures")));
  out->classes = static_cast<uint8_t>(r.uint(1, TF_WIRE_NAME("telemetry.classes")));
  if (r.status().ok() && out->classes > kTelemetryMaxClasses) {
    return r.fail(WireError::kTooLong, TF_WIRE_NAME("telemetry.classes"));
  }
  for (size_t i = 0; i < out->classes; ++i) {
    out->class_counts[i] = static_cast<uint32_t>(r.uint(4, TF_WIRE_NAME("telemetry.class_counts")));
  }
  out->channels = static_cast<uint8_t>(r.uint(1, TF_WIRE_NAME("telemetry.channels")));
  if (r.status().ok() && out->channels > kTelemetryMaxChannels) {
    return r.fail(WireError::kTooLong, TF_WIRE_NAME("telemetry.channels"));
  }
  out->input_count = static_cast<uint32_t>(r.uint(4, TF_WIRE_NAME("telemetry.input_count")));
  for (size_t c = 0; c < out->channels; ++c) {
    out->input_sum[c] = r.f64(TF_WIRE_NAME("telemetry.input_sum"));
    out->input_sumsq[c] = r.f64(TF_WIRE_NAME("telemetry.input_sumsq"));
  }
  for (uint32_t& n : out->latency_hist)
    n = static_cast<uint32_t>(r.uint(4, TF_WIRE_NAME("telemetry.latency_hist")));
  out->active_us = r.uint(8, TF_WIRE_NAME("telemetry.active_us"));
  out->flags = static_cast<uint8_t>(r.uint(1, TF_WIRE_NAME("telemetry.flags")));
  out->energy_measured_uj = r.f64(TF_WIRE_NAME("telemetry.energy_measured_uj"));
  out->energy_modelled_uj = r.f64(TF_WIRE_NAME("telemetry.energy_modelled_uj"));
}

// What cannot be in a window: the field it concerns, or nullptr.
const char* impossible(const TelemetryMessage& m) {
  if (m.probes_correct > m.probes) return TF_WIRE_NAME("telemetry.probes_correct");
  if (m.shadow_agree > m.shadow) return TF_WIRE_NAME("telemetry.shadow_agree");
  if (m.version < 2) return nullptr;
  uint64_t sum = 0;
  for (size_t i = 0; i < m.classes; ++i) sum += m.class_counts[i];
  if (sum > m.inferences) return TF_WIRE_NAME("telemetry.class_counts");
  sum = 0;
  for (uint32_t n : m.latency_hist) sum += n;
  if (sum > m.inferences) return TF_WIRE_NAME("telemetry.latency_hist");
  if (m.channels > 0 && m.input_count == 0) return TF_WIRE_NAME("telemetry.input_count");
  for (size_t c = 0; c < m.channels; ++c) {
    if (!std::isfinite(m.input_sum[c])) return TF_WIRE_NAME("telemetry.input_sum");
    if (!std::isfinite(m.input_sumsq[c]) || m.input_sumsq[c] < 0)
      return TF_WIRE_NAME("telemetry.input_sumsq");
  }
  if ((m.flags & ~kTelemetryEnergyMeasured) != 0) return TF_WIRE_NAME("telemetry.flags");
  if (!std::isfinite(m.energy_measured_uj) || m.energy_measured_uj < 0 ||
      ((m.flags & kTelemetryEnergyMeasured) == 0 && m.energy_measured_uj != 0)) {
    return TF_WIRE_NAME("telemetry.energy_measured_uj");
  }
  if (!std::isfinite(m.energy_modelled_uj) || m.energy_modelled_uj < 0) {
    return TF_WIRE_NAME("telemetry.energy_modelled_uj");
  }
  return nullptr;
}

}  // namespace

WireStatus encode_telemetry(const TelemetryMessage& m, uint8_t* out, size_t capacity,
                            size_t* written) {
  wire::Writer w(out, capacity);
  if (m.version == 0 || m.version > kTelemetryVersion) {
    w.fail(WireError::kUnknownVersion, TF_WIRE_NAME("telemetry.header"));
    return wire::finish(w, written);
  }
  wire::begin(w, MessageKind::kTelemetry, m.version, TF_WIRE_NAME("telemetry.header"));
  w.uint(m.seq, 8, TF_WIRE_NAME("telemetry.seq"));
  w.uint(m.ts_unix, 8, TF_WIRE_NAME("telemetry.ts_unix"));
  w.uint(m.release, 8, TF_WIRE_NAME("telemetry.release"));
  w.raw(m.artifact_sha256, 32, TF_WIRE_NAME("telemetry.artifact_sha256"));
  w.uint(m.inferences, 4, TF_WIRE_NAME("telemetry.inferences"));
  w.f32(m.latency_p50_us, TF_WIRE_NAME("telemetry.latency_p50_us"));
  w.f32(m.latency_p95_us, TF_WIRE_NAME("telemetry.latency_p95_us"));
  w.f32(m.energy_uj, TF_WIRE_NAME("telemetry.energy_uj"));
  w.f32(m.output_psi, TF_WIRE_NAME("telemetry.output_psi"));
  w.f32(m.input_drift, TF_WIRE_NAME("telemetry.input_drift"));
  w.uint(m.probes, 4, TF_WIRE_NAME("telemetry.probes"));
  w.uint(m.probes_correct, 4, TF_WIRE_NAME("telemetry.probes_correct"));
  w.uint(m.shadow, 4, TF_WIRE_NAME("telemetry.shadow"));
  w.uint(m.shadow_agree, 4, TF_WIRE_NAME("telemetry.shadow_agree"));
  if (m.version >= 2) encode_v2(m, w);
  return wire::finish(w, written);
}

WireStatus decode_telemetry(const uint8_t* data, size_t size, TelemetryMessage* out) {
  *out = TelemetryMessage{};
  wire::Reader r(data, size);
  out->version =
      wire::open(r, size, MessageKind::kTelemetry, kTelemetryVersion, "telemetry.header");
  if (out->version == 0) return r.status();
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
  if (out->version >= 2) decode_v2(r, out);
  r.end("telemetry");
  if (!r.status().ok()) return r.status();
  if (const char* field = impossible(*out)) return {WireError::kBadValue, field};
  return {};
}

}  // namespace tinyfleet::update
