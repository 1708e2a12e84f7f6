#include "rollouts/gate_metric_statistics.h"

#include <functional>

namespace tinyfleet::server::rollouts {

namespace {

using Comparison = std::function<std::vector<Estimate>(const std::vector<DeviceStats>& reference,
                                                       const std::vector<DeviceStats>& canary,
                                                       const PoolingPolicy& pooling)>;

// Every estimate known from at least `min_devices` devices.
bool enough(const std::vector<Estimate>& v, int min_devices) {
  if (v.empty()) return false;
  for (const auto& e : v) {
    if (!e.known() || e.devices < min_devices) return false;
  }
  return true;
}

bool any_known(const std::vector<Estimate>& v) {
  for (const auto& e : v) {
    if (e.known()) return true;
  }
  return false;
}

// The comparison against control when enough of it reported, else against baseline
// (when that has anything), else control's.
MetricEstimates against_reference(const Comparison& compare, const CohortStats& cohort,
                                  const PoolingPolicy& pooling, int min_devices) {
  auto vs_control = compare(cohort.control, cohort.canary, pooling);
  if (enough(vs_control, min_devices)) return {std::move(vs_control), "control"};
  auto vs_baseline = compare(cohort.baseline, cohort.canary, pooling);
  if (any_known(vs_baseline) || !any_known(vs_control)) {
    return {std::move(vs_baseline), "baseline"};
  }
  return {std::move(vs_control), "control"};
}

template <class F>
Comparison one(F f) {
  return [f](const auto& r, const auto& c, const auto& p) {
    return std::vector<Estimate>{f(r, c, p)};
  };
}

}  // namespace

bool statistical_metric(const std::string& metric) {
  for (const char* m : {"accuracy", "accuracy_drop", "psi", "input_drift", "shadow_agreement",
                        "energy_regression", "latency_regression"}) {
    if (metric == m) return true;
  }
  return false;
}

CohortNeed cohort_need(const std::vector<GateClause>& clauses) {
  CohortNeed need = CohortNeed::kNone;
  for (const auto& c : clauses) {
    if (statistical_metric(c.metric)) return CohortNeed::kFull;
    if (c.metric == "min_reporting") need = CohortNeed::kReporting;
  }
  return need;
}

MetricEstimates metric_estimates(const std::string& metric, const CohortStats& cohort,
                                 const PoolingPolicy& pooling, int min_devices) {
  const auto& canary = cohort.canary;
  if (metric == "accuracy") return {{probe_accuracy(canary, pooling)}, ""};
  if (metric == "shadow_agreement") return {{shadow_agreement(canary, pooling)}, ""};
  if (metric == "accuracy_drop") {
    auto e = against_reference(
        one([](const auto& r, const auto& c, const auto& p) { return accuracy_drop(r, c, p); }),
        cohort, pooling, min_devices);
    if (!any_known(e.estimates) && cohort.baseline_accuracy) {
      return {{accuracy_drop(*cohort.baseline_accuracy, canary, pooling)}, "manifest"};
    }
    return e;
  }
  if (metric == "psi") return against_reference(one(output_psi), cohort, pooling, min_devices);
  if (metric == "energy_regression") {
    return against_reference(one(energy_regression), cohort, pooling, min_devices);
  }
  if (metric == "latency_regression") {
    return against_reference(one(latency_regression), cohort, pooling, min_devices);
  }
  if (metric == "input_drift") return against_reference(input_shift, cohort, pooling, min_devices);
  return {};
}

const std::vector<DeviceStats>* group_devices(const CohortStats& cohort, const std::string& group) {
  if (group == "canary") return &cohort.canary;
  if (group == "control") return &cohort.control;
  if (group == "baseline") return &cohort.baseline;
  return nullptr;
}

GroupLevel group_level(const std::string& metric, const std::vector<DeviceStats>& devices,
                       const PoolingPolicy& pooling) {
  Estimate e;
  if (metric == "accuracy" || metric == "accuracy_drop") {
    e = probe_accuracy(devices, pooling);
  } else if (metric == "shadow_agreement") {
    e = shadow_agreement(devices, pooling);
  } else if (metric == "energy_regression") {
    e = measured_energy_per_inference(devices, pooling);
  } else if (metric == "latency_regression") {
    e = latency_p95_us(devices, pooling);
  } else {
    GroupLevel g;
    for (const auto& d : devices) {
      const bool reported = metric == "psi" ? !d.class_counts.empty() : d.input_count > 0;
      g.devices += reported ? 1 : 0;
    }
    return g;
  }
  if (!e.known()) return {};
  return {e.value, e.devices};
}

GateVerdict decide_statistical_gates(const std::vector<GateClause>& clauses,
                                     const CohortStats& cohort, int look, double waited_seconds,
                                     const PoolingPolicy& pooling, const SequentialPolicy& policy) {
  std::vector<GateClause> decided;
  std::vector<std::vector<Estimate>> estimates;
  for (const auto& c : clauses) {
    if (!statistical_metric(c.metric)) continue;
    decided.push_back(c);
    estimates.push_back(metric_estimates(c.metric, cohort, pooling, policy.min_devices).estimates);
  }
  return decide_gate(decided, estimates, look, waited_seconds, policy);
}

}  // namespace tinyfleet::server::rollouts
