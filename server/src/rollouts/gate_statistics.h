#pragma once

// Gate statistics as pure functions (no database, no clock) over per-device sufficient
// statistics (device_stats.h). Two rules make them sound and robust:
//
// - Per device first, then across devices: each device's rate (accuracy, class shares,
//   channel means) is pooled with the weight min(n_i, cap), cap the median count of its
//   group (or a configured maximum), so no device moves a metric by more than its share;
//   per-device rates are winsorized at the group's 5% and 95% quantiles, so a device at an
//   extreme counts as the most extreme honest one.
// - Devices are the independent units (windows of one device are not): the standard error
//   of every metric is the delete-one-device jackknife over both groups, so correlated
//   windows on one device do not fake precision; for proportions it is floored by the
//   binomial error of the capped counts. The jackknife also removes the small-sample bias
//   of PSI (its expected value under no drift).
//
// A gate clause then passes when its bound holds with confidence 1-alpha, fails when it is
// violated with that confidence, and otherwise waits; alpha is split (Bonferroni) over the
// clauses, the channels of input drift and the maximum number of looks, so repeated looks
// keep the false-decision rate under alpha. Past max_wait (or the last look) the clause
// takes the configured action. See docs/rollouts.md, "Gate statistics".
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rollouts/device_stats.h"
#include "tinyfleet/server/gate_expression.h"

namespace tinyfleet::server::rollouts {

// Devices reporting more output classes or input channels than this are left out (the
// ingest bounds them already; these keep every statistic's cost bounded on its own).
inline constexpr size_t kMaxGateClasses = 1024;
inline constexpr size_t kMaxGateChannels = 1024;

// How devices are pooled.
struct PoolingPolicy {
  // A device counts at most this many trials (probes, inferences, input samples); 0: the
  // median count of the reporting devices of its group.
  uint64_t cap = 0;
  // Each per-device rate is clipped to the group's [w, 1-w] quantiles of that rate before
  // pooling (winsorizing), so a few devices at an extreme neither move nor widen a metric
  // much more than honest devices do; 0: off.
  double winsorize = 0.05;
};

// A metric's estimate over devices. `se` is its standard error over devices with `df`
// degrees of freedom (fewest devices of a group minus one); `devices` is the fewest
// reporting devices of the groups compared (0: nobody reported).
struct Estimate {
  double value = 0;
  double se = 0;
  int df = 0;
  int devices = 0;
  bool absolute = false;  // the metric is |value| (a shift either way)
  bool known() const { return devices > 0; }
};

// The weight cap of a group of counts (policy.cap, or the median of the non-zero counts).
uint64_t device_cap(const std::vector<uint64_t>& counts, const PoolingPolicy& policy);

// Capped-pooled probe accuracy of a cohort, and the accuracy drop against a reference
// cohort (concurrent control devices on the old model) or against a fixed baseline (the
// manifest's): reference minus canary.
Estimate probe_accuracy(const std::vector<DeviceStats>& devices, const PoolingPolicy& policy);
Estimate accuracy_drop(const std::vector<DeviceStats>& reference,
                       const std::vector<DeviceStats>& canary, const PoolingPolicy& policy);
Estimate accuracy_drop(double baseline, const std::vector<DeviceStats>& canary,
                       const PoolingPolicy& policy);

// Failure rate (failures / inferences) and shadow agreement, capped-pooled.
Estimate failure_rate(const std::vector<DeviceStats>& devices, const PoolingPolicy& policy);
Estimate shadow_agreement(const std::vector<DeviceStats>& devices, const PoolingPolicy& policy);

// Canary over reference minus 1: measured energy per inference (devices with an energy
// meter only), and the 95th percentile of latency from the pooled histograms (the jackknife
// of a percentile is rough: the histogram's buckets are a factor of 2 wide).
Estimate energy_regression(const std::vector<DeviceStats>& reference,
                           const std::vector<DeviceStats>& canary, const PoolingPolicy& policy);
Estimate latency_regression(const std::vector<DeviceStats>& reference,
                            const std::vector<DeviceStats>& canary, const PoolingPolicy& policy);
// One group's level of those two (what the gate report shows beside the comparison):
// measured energy per inference (uJ) and the p95 latency (us), pooled the same way.
Estimate measured_energy_per_inference(const std::vector<DeviceStats>& devices,
                                       const PoolingPolicy& policy);
Estimate latency_p95_us(const std::vector<DeviceStats>& devices, const PoolingPolicy& policy);

// Output drift: PSI between the capped-pooled class shares of the canary and of the
// reference (additive smoothing of 0.5 per class), jackknife bias-corrected (clean data
// gives about 0, not the (k-1)/n of a raw PSI) and clamped at 0.
Estimate output_psi(const std::vector<DeviceStats>& reference,
                    const std::vector<DeviceStats>& canary, const PoolingPolicy& policy);

// Input drift: per channel, the standardised mean shift (canary mean minus reference mean,
// over the reference's standard deviation), means capped-pooled over devices.
std::vector<Estimate> input_shift(const std::vector<DeviceStats>& reference,
                                  const std::vector<DeviceStats>& canary,
                                  const PoolingPolicy& policy);

// How a gate decides over repeated looks.
struct SequentialPolicy {
  double alpha = 0.01;  // false-decision probability per gate, over all looks
  int max_looks = 12;   // looks the alpha is split over
  double max_wait_seconds = 4 * 3600.0;
  int min_devices = 5;          // fewer reporting devices: wait
  bool fail_on_timeout = true;  // the configured action once max_wait is over
};

enum class Verdict { kPass, kFail, kWait };

struct ClauseDecision {
  Verdict verdict = Verdict::kWait;
  bool timed_out = false;            // the verdict is the configured action, not the data's
  double value = 0, lo = 0, hi = 0;  // the metric and its interval at this look's level
  std::string reason;                // names the clause, the value and its interval
};

// One clause on the estimates of its metric (one, or one per input channel: all must hold
// for a pass, any violated fails). `look` counts from 1; `alpha` is this clause's share.
ClauseDecision decide_clause(const GateClause& clause, const std::vector<Estimate>& estimates,
                             int look, double waited_seconds, double alpha,
                             const SequentialPolicy& policy);

// Every clause (alpha split evenly): fail if any fails, pass if all pass, else wait.
// `estimates[i]` belongs to `clauses[i]`.
struct GateVerdict {
  Verdict verdict = Verdict::kWait;
  bool timed_out = false;
  std::vector<ClauseDecision> clauses;
};
GateVerdict decide_gate(const std::vector<GateClause>& clauses,
                        const std::vector<std::vector<Estimate>>& estimates, int look,
                        double waited_seconds, const SequentialPolicy& policy);

}  // namespace tinyfleet::server::rollouts
