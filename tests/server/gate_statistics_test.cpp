// The gate statistics (server/src/rollouts/gate_statistics.h): pure functions over
// per-device statistics, so no stack. Devices are built from seeded random windows.
#include "rollouts/gate_statistics.h"
#include "rollouts/gate_metric_statistics.h"
#include "rollouts/quantiles.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using namespace tinyfleet::server;
using namespace tinyfleet::server::rollouts;

namespace {

DeviceStats probes(uint64_t correct, uint64_t total) {
  DeviceStats d;
  d.probe_correct = correct;
  d.probe_total = total;
  d.inferences = total;
  return d;
}

// `devices` devices, each with `windows` windows of `per_window` inferences drawn from
// `shares`, the way the device agent reports them.
std::vector<DeviceStats> class_devices(std::mt19937_64& rng, const std::vector<double>& shares,
                                       int devices, int windows, int per_window) {
  std::vector<DeviceStats> out;
  std::discrete_distribution<int> cls(shares.begin(), shares.end());
  for (int i = 0; i < devices; ++i) {
    DeviceStats d;
    d.class_counts.assign(shares.size(), 0);
    for (int w = 0; w < windows * per_window; ++w) ++d.class_counts[cls(rng)];
    d.windows = windows;
    d.inferences = static_cast<uint64_t>(windows * per_window);
    out.push_back(d);
  }
  return out;
}

// The per-window PSI the device agent computed (empty classes clamped to 1e-4), averaged
// over windows: what the gates used before.
double mean_window_psi(std::mt19937_64& rng, const std::vector<double>& shares, int windows,
                       int per_window) {
  std::discrete_distribution<int> cls(shares.begin(), shares.end());
  double sum = 0;
  for (int w = 0; w < windows; ++w) {
    std::vector<double> counts(shares.size(), 0);
    for (int i = 0; i < per_window; ++i) ++counts[cls(rng)];
    for (size_t j = 0; j < shares.size(); ++j) {
      const double a = std::max(counts[j] / per_window, 1e-4), e = shares[j];
      sum += (a - e) * std::log(a / e);
    }
  }
  return sum / windows;
}

std::vector<DeviceStats> moment_devices(std::mt19937_64& rng, int devices, double shift0,
                                        int samples) {
  std::normal_distribution<double> z(0, 1);
  std::vector<DeviceStats> out;
  for (int i = 0; i < devices; ++i) {
    DeviceStats d;
    d.input_count = static_cast<uint64_t>(samples);
    d.input_sum.assign(3, 0);
    d.input_sumsq.assign(3, 0);
    for (int c = 0; c < 3; ++c) {
      const double mean = (c == 0 ? shift0 : 0) + 0.05 * z(rng);
      for (int s = 0; s < samples; ++s) {
        const double x = mean + z(rng);
        d.input_sum[c] += x;
        d.input_sumsq[c] += x * x;
      }
    }
    out.push_back(d);
  }
  return out;
}

const GateClause kDrop{"accuracy_drop", "<=", 0.10};

}  // namespace

TEST(GateStatistics, Quantiles) {
  EXPECT_NEAR(normal_quantile(0.975), 1.959964, 1e-5);
  EXPECT_NEAR(normal_quantile(0.5), 0.0, 1e-9);
  EXPECT_NEAR(normal_quantile(1e-4), -3.719016, 1e-5);
  EXPECT_NEAR(student_t_quantile(0.975, 10), 2.228139, 1e-5);
  EXPECT_NEAR(student_t_quantile(0.995, 5), 4.032143, 1e-5);
  EXPECT_NEAR(student_t_quantile(0.9999, 49), 4.0205, 0.005);
  EXPECT_NEAR(student_t_quantile(0.999, 4), 7.1732, 1e-3);  // the fewest devices decided on
  EXPECT_NEAR(student_t_quantile(1 - 7e-5, 4), 14.272, 1e-2);
  EXPECT_NEAR(student_t_quantile(1 - 7e-5, 9), 6.3059, 1e-3);
  EXPECT_NEAR(student_t_quantile(0.025, 10), -2.228139, 1e-5);
  EXPECT_NEAR(student_t_quantile(0.975, 0), 1.959964, 1e-5);
}

TEST(GateStatistics, CapIsTheMedianCountOfReportingDevices) {
  EXPECT_EQ(device_cap({0, 10, 50, 5000}, {}), 50u);
  EXPECT_EQ(device_cap({10, 20, 30, 5000}, {}), 25u);
  EXPECT_EQ(device_cap({}, {}), 1u);
  EXPECT_EQ(device_cap({10, 20, 30}, PoolingPolicy{7}), 7u);
}

// Acceptance (issue 19): one compromised canary of 20 reports 100x the probes, all
// correct; the other 19 run a model 30 points worse than the baseline. Naive pooling
// passes it; the capped per-device pooling fails it, against the manifest's baseline and
// against a concurrent control group, at every look.
TEST(GateStatistics, CompromisedCanaryCannotPassAModel30PointsWorse) {
  std::vector<DeviceStats> canary, control;
  for (int i = 0; i < 19; ++i) canary.push_back(probes(30 + i % 3, 50));  // about 0.62
  canary.push_back(probes(5000, 5000));
  for (int i = 0; i < 20; ++i) control.push_back(probes(45 - i % 3, 50));  // about 0.88

  uint64_t correct = 0, total = 0;
  for (const auto& d : canary) correct += d.probe_correct, total += d.probe_total;
  ASSERT_GT(static_cast<double>(correct) / total, 0.9);  // what avg-over-rows pooling sees

  const PoolingPolicy pooling;
  const Estimate vs_baseline = accuracy_drop(0.9, canary, pooling);
  const Estimate vs_control = accuracy_drop(control, canary, pooling);
  EXPECT_GT(vs_baseline.value, 0.25);
  EXPECT_GT(vs_control.value, 0.2);
  EXPECT_EQ(vs_control.devices, 20);

  SequentialPolicy seq;
  for (int look = 1; look <= seq.max_looks; ++look) {
    for (const auto& e : {vs_baseline, vs_control}) {
      const auto d = decide_clause(kDrop, {e}, look, 60.0 * look, seq.alpha, seq);
      EXPECT_EQ(d.verdict, Verdict::kFail) << d.reason;
      EXPECT_FALSE(d.timed_out) << d.reason;
    }
  }
}

// No device moves the pooled accuracy by more than its share, whatever it reports.
TEST(GateStatistics, OneDeviceMovesTheMetricByAtMostItsShare) {
  std::vector<DeviceStats> honest;
  for (int i = 0; i < 19; ++i) honest.push_back(probes(40 + i % 5, 50));
  const PoolingPolicy off{0, 0.0};  // caps only
  const double base = probe_accuracy(honest, off).value;
  for (const auto& liar : {probes(1000000, 1000000), probes(0, 1000000), probes(0, 1)}) {
    auto all = honest;
    all.push_back(liar);
    EXPECT_LE(std::abs(probe_accuracy(all, off).value - base), 1.0 / 20 + 1e-9);
    EXPECT_LE(std::abs(probe_accuracy(all, {}).value - base), 0.01);  // winsorized
  }
}

// A good model with one device reporting 100x the probes all wrong still passes.
TEST(GateStatistics, CompromisedCanaryCannotFailAGoodModel) {
  std::vector<DeviceStats> canary, control;
  for (int i = 0; i < 29; ++i) canary.push_back(probes(900 - i % 7, 1000));
  canary.push_back(probes(0, 100000));
  for (int i = 0; i < 30; ++i) control.push_back(probes(900 - i % 5, 1000));
  SequentialPolicy seq;
  const auto d = decide_clause({"accuracy_drop", "<=", 0.02}, {accuracy_drop(control, canary, {})},
                               1, 60, seq.alpha, seq);
  EXPECT_EQ(d.verdict, Verdict::kPass) << d.reason;
}

// Windows of one device are not independent: a device's many probes do not narrow the
// interval below the spread between devices.
TEST(GateStatistics, StandardErrorIsBetweenDevices) {
  std::vector<DeviceStats> devices;
  for (int i = 0; i < 10; ++i) devices.push_back(probes(i % 2 ? 80000 : 100000, 100000));
  const Estimate e = probe_accuracy(devices, {0, 0.0});
  EXPECT_NEAR(e.value, 0.9, 1e-9);
  EXPECT_GT(e.se, 0.02);  // between devices: 0.1 / sqrt(10); binomial alone: ~0.001
  EXPECT_EQ(e.df, 9);
}

TEST(GateStatistics, WaitsOnLittleDataThenTakesTheConfiguredAction) {
  std::vector<DeviceStats> canary;
  for (int i = 0; i < 8; ++i) canary.push_back(probes(8 + i % 2, 10));
  SequentialPolicy seq;
  const Estimate e = accuracy_drop(0.9, canary, {});
  auto d = decide_clause({"accuracy_drop", "<=", 0.05}, {e}, 1, 600, seq.alpha, seq);
  EXPECT_EQ(d.verdict, Verdict::kWait) << d.reason;

  d = decide_clause({"accuracy_drop", "<=", 0.05}, {e}, 3, seq.max_wait_seconds, seq.alpha, seq);
  EXPECT_EQ(d.verdict, Verdict::kFail);
  EXPECT_TRUE(d.timed_out);
  EXPECT_NE(d.reason.find("undecided"), std::string::npos) << d.reason;
  seq.fail_on_timeout = false;
  d = decide_clause({"accuracy_drop", "<=", 0.05}, {e}, seq.max_looks, 60, seq.alpha, seq);
  EXPECT_EQ(d.verdict, Verdict::kPass);
  EXPECT_TRUE(d.timed_out);

  // Too few devices: wait, whatever their counts say.
  const std::vector<DeviceStats> few = {probes(1000, 1000), probes(1000, 1000)};
  d = decide_clause({"accuracy", ">=", 0.5}, {probe_accuracy(few, {})}, 1, 60, seq.alpha, seq);
  EXPECT_EQ(d.verdict, Verdict::kWait) << d.reason;
}

TEST(GateStatistics, Comparators) {
  Estimate e;
  e.value = 0.5, e.se = 0.01, e.df = 30, e.devices = 31;
  SequentialPolicy seq;
  const auto verdict = [&](const char* op, double bound) {
    return decide_clause({"accuracy", op, bound}, {e}, 1, 0, seq.alpha, seq).verdict;
  };
  EXPECT_EQ(verdict(">=", 0.4), Verdict::kPass);
  EXPECT_EQ(verdict(">", 0.6), Verdict::kFail);
  EXPECT_EQ(verdict("<", 0.6), Verdict::kPass);
  EXPECT_EQ(verdict("<=", 0.4), Verdict::kFail);
  EXPECT_EQ(verdict(">=", 0.5), Verdict::kWait);
  EXPECT_EQ(verdict("<", 0.51), Verdict::kWait);
}

TEST(GateStatistics, GateFailsOnAnyClausePassesOnAll) {
  Estimate good, bad;
  good.value = 0.0, good.se = 0.001, good.df = 40, good.devices = 41;
  bad = good, bad.value = 0.5;
  const std::vector<GateClause> clauses = {{"accuracy_drop", "<=", 0.1}, {"psi", "<", 0.1}};
  SequentialPolicy seq;
  EXPECT_EQ(decide_gate(clauses, {{good}, {good}}, 1, 0, seq).verdict, Verdict::kPass);
  const auto v = decide_gate(clauses, {{good}, {bad}}, 1, 0, seq);
  EXPECT_EQ(v.verdict, Verdict::kFail);
  EXPECT_EQ(v.clauses[1].verdict, Verdict::kFail);
  EXPECT_NE(v.clauses[1].reason.find("psi < 0.1"), std::string::npos) << v.clauses[1].reason;
  EXPECT_EQ(decide_gate(clauses, {{good}, {}}, 1, 0, seq).verdict, Verdict::kWait);
}

// Clean data: the cohort's PSI is about 0 (the demo's windows of 20 inferences gave a mean
// per-window PSI of 0.9-1.6); a real shift shows at about its true PSI.
TEST(GateStatistics, OutputPsiIsNearZeroOnCleanDataAndSeesDrift) {
  std::mt19937_64 rng(19);
  const std::vector<double> shares = {0.3, 0.2, 0.15, 0.1, 0.08, 0.06, 0.05, 0.03, 0.02, 0.01};
  EXPECT_GT(mean_window_psi(rng, shares, 200, 20), 0.5);

  const auto reference = class_devices(rng, shares, 20, 10, 20);
  const auto canary = class_devices(rng, shares, 20, 10, 20);
  const Estimate clean = output_psi(reference, canary, {});
  EXPECT_LT(clean.value, 0.02);
  SequentialPolicy seq;
  EXPECT_EQ(decide_clause({"psi", "<", 0.1}, {clean}, 1, 0, seq.alpha, seq).verdict,
            Verdict::kPass);

  std::vector<double> shifted = shares;
  std::swap(shifted[0], shifted[4]);  // PSI(shares, shifted) = 2 * 0.22 * ln(0.3 / 0.08) = 0.58
  const Estimate drift = output_psi(reference, class_devices(rng, shifted, 20, 10, 20), {});
  EXPECT_NEAR(drift.value, 0.58, 0.08);
  EXPECT_EQ(decide_clause({"psi", "<", 0.1}, {drift}, 1, 0, seq.alpha, seq).verdict,
            Verdict::kFail);
}

TEST(GateStatistics, InputShiftPerChannel) {
  std::mt19937_64 rng(7);
  const auto reference = moment_devices(rng, 20, 0, 200);
  const auto clean = input_shift(reference, moment_devices(rng, 20, 0, 200), {});
  ASSERT_EQ(clean.size(), 3u);
  for (const auto& e : clean) EXPECT_LT(std::abs(e.value), 0.1);
  SequentialPolicy seq;
  const GateClause clause{"input_drift", "<", 0.25};
  EXPECT_EQ(decide_clause(clause, clean, 1, 0, seq.alpha, seq).verdict, Verdict::kPass);

  const auto drift = input_shift(reference, moment_devices(rng, 20, 0.6, 200), {});
  EXPECT_NEAR(drift[0].value, 0.6, 0.1);
  EXPECT_LT(std::abs(drift[1].value), 0.1);
  const auto d = decide_clause(clause, drift, 1, 0, seq.alpha, seq);
  EXPECT_EQ(d.verdict, Verdict::kFail) << d.reason;
  EXPECT_NEAR(d.value, 0.6, 0.1);
}

// What a device may put in its statistics (the ingest bounds them; these must not yield
// NaN or a decision): nothing reported, mismatched channel vectors, correct > total,
// non-finite sums, one class only.
TEST(GateStatistics, MalformedOrEmptyStatisticsAreUnknownNotNaN) {
  const PoolingPolicy pooling;
  EXPECT_FALSE(probe_accuracy({}, pooling).known());
  EXPECT_FALSE(accuracy_drop(std::vector<DeviceStats>{}, {probes(1, 2)}, pooling).known());
  EXPECT_FALSE(output_psi({}, {}, pooling).known());
  EXPECT_TRUE(input_shift({}, {}, pooling).empty());

  std::vector<DeviceStats> odd;
  for (int i = 0; i < 6; ++i) odd.push_back(probes(10, 5));  // correct > total: clamped
  EXPECT_NEAR(probe_accuracy(odd, pooling).value, 1.0, 1e-12);

  DeviceStats bad;
  bad.input_count = 10;
  bad.input_sum = {1.0, NAN};
  bad.input_sumsq = {1.0, 2.0};
  DeviceStats short_vectors;
  short_vectors.input_count = 10;
  short_vectors.input_sum = {1.0};
  short_vectors.input_sumsq = {1.0};
  const auto shift = input_shift({bad, short_vectors}, {bad, short_vectors}, pooling);
  for (const auto& e : shift) {
    EXPECT_FALSE(e.known());
    EXPECT_FALSE(std::isnan(e.value) && e.known());
  }
  std::mt19937_64 rng(3);
  auto many = class_devices(rng, {0.5, 0.5}, 6, 2, 20);
  many[0].class_counts.assign(kMaxGateClasses + 1, 7);  // too many classes: left out
  EXPECT_EQ(output_psi(many, many, pooling).devices, 5);
  DeviceStats one_class;
  one_class.class_counts = {100};
  EXPECT_FALSE(output_psi({one_class}, {one_class}, pooling).known());
  SequentialPolicy seq;
  EXPECT_EQ(
      decide_clause({"psi", "<", 0.1}, {output_psi({}, {}, pooling)}, 1, 0, seq.alpha, seq).verdict,
      Verdict::kWait);
}

namespace {

DeviceStats metered(std::mt19937_64& rng, double uj_per_inference, int latency_bucket) {
  std::normal_distribution<double> z(0, 1);
  DeviceStats d;
  d.inferences = 1000;
  d.energy_measured_uj = 1000 * uj_per_inference * (1 + 0.02 * z(rng));
  d.energy_modelled_uj = 1000 * 5.0;
  d.latency_hist.assign(kLatencyBuckets, 0);
  d.latency_hist[latency_bucket] = 900;
  d.latency_hist[latency_bucket + 1] = 100;
  return d;
}

}  // namespace

TEST(GateStatistics, EnergyOnMeasuredAndLatencyFromHistograms) {
  std::mt19937_64 rng(5);
  std::vector<DeviceStats> reference, canary;
  for (int i = 0; i < 20; ++i) reference.push_back(metered(rng, 10.0, 5));
  for (int i = 0; i < 20; ++i) canary.push_back(metered(rng, 12.0, 6));
  const Estimate energy = energy_regression(reference, canary, {});
  EXPECT_NEAR(energy.value, 0.2, 0.02);
  EXPECT_GT(energy.se, 0.0);
  // p95 in the upper bucket: [64, 128) us against [128, 256) us.
  EXPECT_NEAR(latency_regression(reference, canary, {}).value, 1.0, 1e-9);

  for (auto& d : canary) d.energy_measured_uj.reset();  // modelled energy does not count
  EXPECT_FALSE(energy_regression(reference, canary, {}).known());
  for (auto& d : canary) d.latency_hist.resize(3);  // malformed histograms are left out
  EXPECT_FALSE(latency_regression(reference, canary, {}).known());
}

TEST(GateMetricStatistics, EveryTelemetryMetricMapsOntoTheStatistics) {
  for (const char* m : {"accuracy", "accuracy_drop", "psi", "input_drift", "shadow_agreement",
                        "energy_regression", "latency_regression"}) {
    EXPECT_TRUE(statistical_metric(m)) << m;
  }
  EXPECT_FALSE(statistical_metric("failure_rate"));
  EXPECT_FALSE(statistical_metric("min_reporting"));
}

// The gate as the engine would call it: the control group when it reported, else the
// baseline devices, else the manifest's accuracy; device-count metrics left to gates.h.
TEST(GateMetricStatistics, DecidesAgainstControlThenBaseline) {
  CohortStats cohort;
  for (int i = 0; i < 20; ++i) cohort.canary.push_back(probes(700 + i % 5, 1000));
  for (int i = 0; i < 20; ++i) cohort.control.push_back(probes(900 - i % 5, 1000));
  const std::vector<GateClause> clauses = {{"failure_rate", "<=", 0.05},
                                           {"accuracy_drop", "<=", 0.1}};
  SequentialPolicy seq;
  auto v = decide_statistical_gates(clauses, cohort, 1, 60, {}, seq);
  ASSERT_EQ(v.clauses.size(), 1u);
  EXPECT_EQ(v.verdict, Verdict::kFail) << v.clauses[0].reason;
  EXPECT_NEAR(v.clauses[0].value, 0.2, 0.01);

  // Control too small: the baseline devices (here as good as the canary) decide.
  cohort.control.resize(2);
  for (int i = 0; i < 20; ++i) cohort.baseline.push_back(probes(702 - i % 5, 1000));
  v = decide_statistical_gates(clauses, cohort, 1, 60, {}, seq);
  EXPECT_EQ(v.verdict, Verdict::kPass) << v.clauses[0].reason;

  // Nobody on the old model reported probes: the manifest's accuracy.
  cohort.control.clear();
  cohort.baseline.clear();
  EXPECT_EQ(decide_statistical_gates(clauses, cohort, 1, 60, {}, seq).verdict, Verdict::kWait);
  cohort.baseline_accuracy = 0.95;
  v = decide_statistical_gates(clauses, cohort, 1, 60, {}, seq);
  EXPECT_EQ(v.verdict, Verdict::kFail) << v.clauses[0].reason;
  EXPECT_NEAR(v.clauses[0].value, 0.25, 0.01);
}

// Whatever a device puts in its statistics (huge, NaN or infinite sums, odd vector sizes,
// counts near 2^64): every estimate is known and finite or unknown, and nothing decides on
// a NaN.
TEST(GateStatistics, HostileStatisticsNeverDecideOnNaN) {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int> small(0, 6);
  const double odd[] = {0.0, -1.0, 1e300, -1e300, NAN, INFINITY, 3.5};
  const uint64_t counts[] = {0, 1, 20, 1000, UINT64_MAX / 4, UINT64_MAX};
  const auto any_count = [&] { return counts[small(rng) % 6]; };
  const auto device = [&] {
    DeviceStats d;
    d.inferences = any_count(), d.failures = any_count();
    d.probe_correct = any_count(), d.probe_total = any_count();
    d.shadow_agree = any_count(), d.shadow_total = any_count();
    d.class_counts.resize(small(rng));
    for (auto& c : d.class_counts) c = any_count();
    d.input_count = any_count();
    const int channels = small(rng) % 3;
    for (int c = 0; c < channels; ++c) {
      d.input_sum.push_back(odd[small(rng)]);
      d.input_sumsq.push_back(odd[small(rng)]);
    }
    if (small(rng) > 2) d.latency_hist.assign(kLatencyBuckets, any_count());
    if (small(rng) > 2) d.energy_measured_uj = odd[small(rng)];
    return d;
  };
  SequentialPolicy seq;
  seq.min_devices = 2;
  for (int round = 0; round < 300; ++round) {
    CohortStats cohort;
    for (int i = 0; i < 2 + small(rng); ++i) cohort.canary.push_back(device());
    for (int i = 0; i < small(rng); ++i) cohort.control.push_back(device());
    for (int i = 0; i < small(rng); ++i) cohort.baseline.push_back(device());
    for (const char* m : {"accuracy", "accuracy_drop", "psi", "input_drift", "shadow_agreement",
                          "energy_regression", "latency_regression"}) {
      for (const auto& e : metric_estimates(m, cohort, {}, seq.min_devices).estimates) {
        if (e.known()) {
          EXPECT_TRUE(std::isfinite(e.value)) << m;
        }
      }
      const auto v = decide_statistical_gates({{m, "<", 0.5}}, cohort, 1, 0, {}, seq);
      ASSERT_EQ(v.clauses.size(), 1u);
      if (v.verdict != Verdict::kWait) {
        EXPECT_FALSE(std::isnan(v.clauses[0].value)) << v.clauses[0].reason;
        EXPECT_FALSE(std::isnan(v.clauses[0].lo) || std::isnan(v.clauses[0].hi))
            << v.clauses[0].reason;
      }
    }
  }
}

// The engine reads of the telemetry only what the clauses use: counts read none of it,
// min_reporting only who reported, any statistical clause every group.
TEST(GateStatistics, CohortNeedReadsOnlyWhatTheClausesUse) {
  auto need = [](std::vector<std::string> metrics) {
    std::vector<GateClause> clauses;
    for (auto& m : metrics) clauses.push_back({m, "<", 0.5});
    return cohort_need(clauses);
  };
  EXPECT_EQ(need({}), CohortNeed::kNone);
  EXPECT_EQ(need({"failure_rate"}), CohortNeed::kNone);
  EXPECT_EQ(need({"failure_rate", "min_reporting"}), CohortNeed::kReporting);
  EXPECT_EQ(need({"min_reporting", "accuracy_drop"}), CohortNeed::kFull);
  EXPECT_EQ(need({"psi", "failure_rate"}), CohortNeed::kFull);
  EXPECT_EQ(need({"latency_regression"}), CohortNeed::kFull);
}
