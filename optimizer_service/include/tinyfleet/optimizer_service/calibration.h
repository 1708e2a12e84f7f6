#pragma once

// Activation ranges from calibration data: min/max, a percentile of the observed values,
// or the clipping range with the least quantization error (MSE) over a histogram.
#include <cstddef>
#include <vector>

namespace tinyfleet::optimizer_service {

enum class CalibrationMethod { kMinMax, kPercentile, kMse };

struct TensorRange {
  float lo = 0;
  float hi = 0;
};

// Two passes over the calibration set: observe() every tensor's values to find min and
// max, then begin_histograms() and observe() again to fill 2048-bin histograms.
class RangeObserver {
 public:
  explicit RangeObserver(size_t tensors, int bins = 2048);
  void observe(size_t tensor, const std::vector<float>& values);
  void begin_histograms();
  TensorRange range(size_t tensor, CalibrationMethod method, double percentile = 99.99) const;

 private:
  int bins_;
  bool histograms_ = false;
  std::vector<float> lo_, hi_;
  std::vector<std::vector<double>> counts_;
};

}  // namespace tinyfleet::optimizer_service
