#include "tinyfleet/optimizer_service/calibration.h"

#include <algorithm>
#include <cmath>

namespace tinyfleet::optimizer_service {

RangeObserver::RangeObserver(size_t tensors, int bins)
    : bins_(bins), lo_(tensors, 3.4e38f), hi_(tensors, -3.4e38f), counts_(tensors) {}

void RangeObserver::observe(size_t t, const std::vector<float>& values) {
  if (!histograms_) {
    for (float v : values) {
      lo_[t] = std::min(lo_[t], v);
      hi_[t] = std::max(hi_[t], v);
    }
    return;
  }
  auto& c = counts_[t];
  if (c.empty()) c.assign(static_cast<size_t>(bins_), 0.0);
  const float width = (hi_[t] - lo_[t]) / static_cast<float>(bins_);
  for (float v : values) {
    int b = width > 0 ? static_cast<int>((v - lo_[t]) / width) : 0;
    c[static_cast<size_t>(std::min(bins_ - 1, std::max(0, b)))] += 1.0;
  }
}

void RangeObserver::begin_histograms() { histograms_ = true; }

TensorRange RangeObserver::range(size_t t, CalibrationMethod method, double percentile) const {
  TensorRange r{lo_[t], hi_[t]};
  const auto& c = counts_[t];
  if (method == CalibrationMethod::kMinMax || c.empty() || hi_[t] <= lo_[t]) return r;
  const double width = (static_cast<double>(hi_[t]) - lo_[t]) / bins_;
  double total = 0;
  for (double v : c) total += v;
  if (method == CalibrationMethod::kPercentile) {
    const double cut = total * (100.0 - percentile) / 100.0;
    double acc = 0;
    int first = 0, last = bins_ - 1;
    for (; first < bins_ && acc + c[static_cast<size_t>(first)] <= cut; ++first)
      acc += c[static_cast<size_t>(first)];
    acc = 0;
    for (; last > first && acc + c[static_cast<size_t>(last)] <= cut; --last)
      acc += c[static_cast<size_t>(last)];
    r.lo = static_cast<float>(lo_[t] + first * width);
    r.hi = static_cast<float>(lo_[t] + (last + 1) * width);
    return r;
  }
  // MSE: shrink the range towards zero in steps and keep the clip with the least error
  // (rounding error inside the range, clipping error outside) over the histogram.
  double best = -1;
  for (int step = 0; step <= 20; ++step) {
    const double s = 1.0 - 0.025 * step;
    const double a = std::min(0.0, lo_[t] * s), b = std::max(0.0, hi_[t] * s);
    const double scale = (b - a) / 255.0;
    if (scale <= 0) continue;
    double err = 0;
    for (int i = 0; i < bins_; ++i) {
      if (c[static_cast<size_t>(i)] == 0) continue;
      const double x = lo_[t] + (i + 0.5) * width;
      const double clipped = std::min(b, std::max(a, x));
      const double q = std::round((clipped - a) / scale) * scale + a;
      err += c[static_cast<size_t>(i)] * (x - q) * (x - q);
    }
    if (best < 0 || err < best) {
      best = err;
      r = {static_cast<float>(a), static_cast<float>(b)};
    }
  }
  return r;
}

}  // namespace tinyfleet::optimizer_service
