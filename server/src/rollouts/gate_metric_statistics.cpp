#include "rollouts/gate_metric_statistics.h"

#include <functional>

namespace tinyfleet::server::rollouts {

namespace {

using Comparison =
    std::function<Estimate(const std::vector<DeviceStats>& reference,
                           const std::vector<DeviceStats>& canary, const PoolingPolicy& pooling)>;

// The comparison against control when enough of it reported, else against baseline.
Estimate against_reference(const Comparison& compare, const CohortStats& cohort,
                           const PoolingPolicy& pooling, int min_devices) {
  const Estimate vs_control = compare(cohort.control, cohort.canary, pooling);
  if (vs_control.known() && vs_control.devices >= min_devices) return vs_control;
  const Estimate vs_baseline = compare(cohort.baseline, cohort.canary, pooling);
  if (vs_baseline.known() || !vs_control.known()) return vs_baseline;
  return vs_control;
}

}  // namespace

bool statistical_metric(const std::string& metric) {
  for (const char* m : {"accuracy", "accuracy_drop", "psi", "input_drift", "shadow_agreement",
                        "energy_regression", "latency_regression"}) {
    if (metric == m) return true;
  }
  return false;
}

std::vector<Estimate> metric_estimates(const std::string& metric, const CohortStats& cohort,
                                       const PoolingPolicy& pooling, int min_devices) {
  const auto& canary = cohort.canary;
  if (metric == "accuracy") return {probe_accuracy(canary, pooling)};
  if (metric == "shadow_agreement") return {shadow_agreement(canary, pooling)};
  if (metric == "accuracy_drop") {
    const Comparison drop = [](const auto& r, const auto& c, const auto& p) {
      return accuracy_drop(r, c, p);
    };
    const Estimate e = against_reference(drop, cohort, pooling, min_devices);
    if (!e.known() && cohort.baseline_accuracy) {
      return {accuracy_drop(*cohort.baseline_accuracy, canary, pooling)};
    }
    return {e};
  }
  if (metric == "psi") return {against_reference(output_psi, cohort, pooling, min_devices)};
  if (metric == "energy_regression") {
    return {against_reference(energy_regression, cohort, pooling, min_devices)};
  }
  if (metric == "latency_regression") {
    return {against_reference(latency_regression, cohort, pooling, min_devices)};
  }
  if (metric == "input_drift") {
    const auto enough = [min_devices](const std::vector<Estimate>& v) {
      if (v.empty()) return false;
      for (const auto& e : v) {
        if (!e.known() || e.devices < min_devices) return false;
      }
      return true;
    };
    auto vs_control = input_shift(cohort.control, canary, pooling);
    if (enough(vs_control)) return vs_control;
    auto vs_baseline = input_shift(cohort.baseline, canary, pooling);
    return vs_baseline.empty() ? vs_control : vs_baseline;
  }
  return {};
}

GateVerdict decide_statistical_gates(const std::vector<GateClause>& clauses,
                                     const CohortStats& cohort, int look, double waited_seconds,
                                     const PoolingPolicy& pooling, const SequentialPolicy& policy) {
  std::vector<GateClause> decided;
  std::vector<std::vector<Estimate>> estimates;
  for (const auto& c : clauses) {
    if (!statistical_metric(c.metric)) continue;
    decided.push_back(c);
    estimates.push_back(metric_estimates(c.metric, cohort, pooling, policy.min_devices));
  }
  return decide_gate(decided, estimates, look, waited_seconds, policy);
}

}  // namespace tinyfleet::server::rollouts
