#include "tinyfleet/device_agent/telemetry.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace tinyfleet::device_agent {

float population_stability(const uint32_t* counts, const float* baseline, size_t classes) {
  uint64_t total = 0;
  for (size_t i = 0; i < classes; ++i) total += counts[i];
  if (total == 0 || classes == 0) return -1.0f;
  double psi = 0;
  for (size_t i = 0; i < classes; ++i) {
    const double a = std::max(1e-4, static_cast<double>(counts[i]) / static_cast<double>(total));
    const double e = std::max(1e-4, static_cast<double>(baseline[i]));
    psi += (a - e) * std::log(a / e);
  }
  return static_cast<float>(psi);
}

void WindowStats::reset() { *this = WindowStats(); }

void WindowStats::add(uint32_t latency_us, int top_class, const float* input, size_t input_len,
                      size_t channels, uint64_t active_us) {
  // Keep the first kLatencySamples latencies, then replace one in a rotating slot: a
  // deterministic stand-in for reservoir sampling that needs no random source.
  if (latency_n_ < kLatencySamples) {
    latency_[latency_n_++] = latency_us;
  } else {
    latency_[inferences_ % kLatencySamples] = latency_us;
  }
  ++inferences_;
  ++latency_hist_[update::latency_bucket(latency_us)];
  active_us_ += active_us;
  if (top_class >= 0 && static_cast<size_t>(top_class) < kMaxClasses) {
    ++classes_[top_class];
    if (top_class >= top_seen_) top_seen_ = static_cast<uint8_t>(top_class + 1);
  }
  if (input && channels > 0 && channels <= kMaxChannels && input_len % channels == 0 &&
      (channels_ == 0 || channels_ == channels)) {
    // Channels last (NHWC, or the features of an [N, K] input).
    channels_ = static_cast<uint8_t>(channels);
    const size_t per = input_len / channels;
    for (size_t c = 0; c < channels; ++c) {
      double sum = 0;
      for (size_t i = 0; i < per; ++i) sum += input[i * channels + c];
      const double mean = sum / static_cast<double>(per);
      channel_sum_[c] += mean;
      channel_sumsq_[c] += mean * mean;
    }
    ++channel_n_;
  }
}

void WindowStats::add_probe(bool correct) {
  ++probes_;
  probes_correct_ += correct ? 1 : 0;
}

void WindowStats::add_shadow(bool agree) {
  ++shadow_;
  shadow_agree_ += agree ? 1 : 0;
}

namespace {
// Insertion sort of a window's latency samples (at most kLatencySamples = 256, once per
// window): std::nth_element's introselect costs 0.4 KB of an MCU's flash for nothing at
// this size (docs/firmware.md, Footprint).
void sort_samples(uint32_t* v, uint32_t n) {
  for (uint32_t i = 1; i < n; ++i) {
    const uint32_t x = v[i];
    uint32_t j = i;
    for (; j > 0 && v[j - 1] > x; --j) v[j] = v[j - 1];
    v[j] = x;
  }
}
float percentile(const uint32_t* sorted, uint32_t n, double q) {
  if (n == 0) return 0;
  return static_cast<float>(sorted[static_cast<uint32_t>(q * (n - 1) + 0.5)]);
}
}  // namespace

void WindowStats::close(const ModelInfo& info, uint64_t clock_hz, float active_mw,
                        TelemetryWindow* out) {
  out->inferences = inferences_;
  sort_samples(latency_, latency_n_);
  out->latency_p50_us = percentile(latency_, latency_n_, 0.50);
  out->latency_p95_us = percentile(latency_, latency_n_, 0.95);
  // cycles / Hz = seconds; s x mW = mJ; x 1000 = uJ.
  const double modelled_uj = clock_hz > 0 ? static_cast<double>(info.modelled_cycles) /
                                                static_cast<double>(clock_hz) * active_mw * 1000.0
                                          : 0.0;
  out->energy_uj = static_cast<float>(modelled_uj);
  out->output_psi = info.classes > 0 && info.classes <= kMaxClasses
                        ? population_stability(classes_, info.class_histogram, info.classes)
                        : -1.0f;
  out->input_drift = -1.0f;
  if (info.channels > 0 && info.channels <= kMaxChannels && channel_n_ > 0) {
    double drift = 0;
    for (size_t c = 0; c < info.channels; ++c) {
      const double mean = channel_sum_[c] / static_cast<double>(channel_n_);
      drift += std::fabs(mean - info.channel_mean[c]) / std::max(1e-6f, info.channel_std[c]);
    }
    out->input_drift = static_cast<float>(drift / info.channels);
  }
  out->probes = probes_;
  out->probes_correct = probes_correct_;
  out->shadow = shadow_;
  out->shadow_agree = shadow_agree_;

  out->version = update::kTelemetryVersion;
  out->failures = failures_;
  // The classes of the baseline, or as many as were seen when there is none.
  const size_t classes = info.classes > 0 && info.classes <= kMaxClasses ? info.classes : top_seen_;
  out->classes = static_cast<uint8_t>(classes > top_seen_ ? classes : top_seen_);
  for (size_t i = 0; i < out->classes; ++i) out->class_counts[i] = classes_[i];
  out->channels = channel_n_ > 0 ? channels_ : 0;
  out->input_count = channel_n_;
  for (size_t c = 0; c < out->channels; ++c) {
    out->input_sum[c] = channel_sum_[c];
    out->input_sumsq[c] = channel_sumsq_[c];
  }
  for (size_t b = 0; b < update::kTelemetryLatencyBuckets; ++b)
    out->latency_hist[b] = latency_hist_[b];
  out->active_us = active_us_;
  out->energy_modelled_uj = modelled_uj * inferences_;
}

bool TelemetryRing::push(const TelemetryWindow& w) {
  uint8_t message[update::kTelemetryMaxBytes];
  size_t size = 0;
  if (!update::encode_telemetry(w, message, sizeof message, &size).ok()) {
    ++dropped_;
    return false;
  }
  return push(message, size);
}

bool TelemetryRing::push(const uint8_t* message, size_t size) {
  if (size + 2 > kBytes || size > 0xffff) {
    ++dropped_;
    return false;
  }
  while (used_ + 2 + size > kBytes) {
    pop();
    ++dropped_;
  }
  bytes_[used_] = static_cast<uint8_t>(size);
  bytes_[used_ + 1] = static_cast<uint8_t>(size >> 8);
  std::memcpy(bytes_ + used_ + 2, message, size);
  used_ += 2 + size;
  ++count_;
  return true;
}

const uint8_t* TelemetryRing::front(size_t* size) const {
  *size = count_ == 0 ? 0 : static_cast<size_t>(bytes_[0] | (bytes_[1] << 8));
  return bytes_ + 2;
}

void TelemetryRing::pop() {
  if (count_ == 0) return;
  const size_t first = 2 + static_cast<size_t>(bytes_[0] | (bytes_[1] << 8));
  std::memmove(bytes_, bytes_ + first, used_ - first);
  used_ -= first;
  --count_;
}

}  // namespace tinyfleet::device_agent
