#include "tinyfleet/device_agent/inference_loop.h"

#include <cmath>
#include <cstring>

namespace tinyfleet::device_agent {

namespace {
int argmax(const int8_t* v, size_t n) {
  int best = 0;
  for (size_t i = 1; i < n; ++i) {
    if (v[i] > v[best]) best = static_cast<int>(i);
  }
  return best;
}
}  // namespace

InferenceLoop::InferenceLoop(const InferenceConfig& config, UpdateAgent& agent, Clock& clock,
                             Outbox& outbox, EnergyMeter* meter)
    : config_(config), agent_(agent), clock_(clock), outbox_(outbox), meter_(meter) {
  window_start_ms_ = clock_.monotonic_ms();
  seq_ = clock_.now_unix() << 20;
  energy_start_ok_ = meter_ && meter_->read_uj(&energy_start_uj_);
}

int InferenceLoop::infer(const float* sample, size_t len, int label) {
  if (!agent_.model_ready()) return -1;
  ModelRunner& model = agent_.model();
  const size_t in = model.input_bytes(), out = model.output_bytes();
  if (in != len || in > kMaxInputBytes || out > kMaxOutputBytes || out == 0) return -1;
  const float inv = model.input_scale() > 0 ? 1.0f / model.input_scale() : 1.0f;
  for (size_t i = 0; i < len; ++i) {
    const long q = std::lround(sample[i] * inv) + model.input_zero_point();
    input_[i] = static_cast<int8_t>(q < -128 ? -128 : q > 127 ? 127 : q);
  }
  const uint64_t t0 = clock_.monotonic_us();
  const uint64_t a0 = clock_.active_ns();
  agent_.inference_starting();  // arms the watchdog: a hang resets the device
  const bool ok = model.run(input_, output_);
  const uint64_t active_us = (clock_.active_ns() - a0) / 1000;
  const uint64_t elapsed_us = clock_.monotonic_us() - t0;
  const uint64_t release = agent_.record().installed_release;
  agent_.inference_done(ok, elapsed_us / 1000);
  if (!ok) {
    stats_.add_failure();
    return -1;
  }
  if (agent_.record().installed_release != release) return -1;  // rolled back just now
  const int top = argmax(output_, out);
  const ModelInfo& info = agent_.model_info();
  stats_.add(static_cast<uint32_t>(elapsed_us), top, sample, len, info.channels, active_us);
  if (label >= 0) stats_.add_probe(top == label);

  // Shadow mode: the previous model on the same input for the first N inferences.
  if (ModelRunner* shadow = agent_.shadow()) {
    if (shadow_release_ != release) {
      shadow_release_ = release;
      shadow_left_ = config_.shadow_inferences;
    }
    if (shadow_left_ > 0 && shadow->output_bytes() == out && shadow->input_bytes() == in &&
        shadow->run(input_, shadow_output_)) {
      stats_.add_shadow(argmax(shadow_output_, out) == top);
      --shadow_left_;
    }
    if (shadow_left_ == 0) agent_.end_shadow();
  }
  return top;
}

void InferenceLoop::poll() {
  const uint64_t now = clock_.monotonic_ms();
  const uint64_t elapsed = now - window_start_ms_;
  if (elapsed >= config_.window_ms) {
    window_start_ms_ =
        elapsed < 2ull * config_.window_ms ? window_start_ms_ + config_.window_ms : now;
    uint64_t energy_end_uj = 0;
    const bool energy_end_ok = meter_ && meter_->read_uj(&energy_end_uj);
    if (stats_.inferences() > 0 || stats_.failures() > 0) {
      TelemetryWindow w;
      w.seq = ++seq_;
      w.ts_unix = clock_.now_unix();
      w.release = agent_.record().installed_release;
      std::memcpy(w.artifact_sha256, agent_.record().installed_sha256, 32);
      stats_.close(agent_.model_info(), config_.clock_hz, config_.active_mw, &w);
      // A counter that went back (reset, wrapped) measured nothing this window.
      if (energy_start_ok_ && energy_end_ok && energy_end_uj >= energy_start_uj_) {
        w.flags |= update::kTelemetryEnergyMeasured;
        w.energy_measured_uj = static_cast<double>(energy_end_uj - energy_start_uj_);
      }
      ring_.push(w);
    }
    energy_start_ok_ = energy_end_ok;
    energy_start_uj_ = energy_end_uj;
    stats_.reset();
  }
  flush();
}

void InferenceLoop::flush() {
  while (!ring_.empty()) {
    size_t size = 0;
    const uint8_t* message = ring_.front(&size);
    if (!outbox_.publish_telemetry(message, size)) break;
    ring_.pop();
    ++sent_;
  }
}

}  // namespace tinyfleet::device_agent
