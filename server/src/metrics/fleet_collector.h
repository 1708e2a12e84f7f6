#pragma once

// The metrics read when Prometheus scrapes: counters fleetd's parts keep, and the
// fleet's state from PostgreSQL (cached for a second so scrapes cannot load the
// database).
#include <chrono>
#include <mutex>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include "tinyfleet/server/metrics.h"

namespace tinyfleet::server::metrics {

class FleetCollector : public prometheus::Collectable {
 public:
  explicit FleetCollector(const MetricsSources& sources) : sources_(sources) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::vector<prometheus::MetricFamily> counters() const;
  std::vector<prometheus::MetricFamily> fleet_state() const;  // cached

  MetricsSources sources_;
  mutable std::mutex mu_;
  mutable std::chrono::steady_clock::time_point read_at_;
  mutable std::vector<prometheus::MetricFamily> state_;
};

}  // namespace tinyfleet::server::metrics
