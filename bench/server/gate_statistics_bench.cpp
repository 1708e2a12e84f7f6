// The gate statistics on a simulated fleet (a benchmark, not a test; pure C++, simulated
// time, seeded RNG): how often a rollout's gates roll back, pass, or wait out, and how
// long they take to decide, for clean rollouts, a 2-point accuracy drop, injected input
// drift, and one compromised canary (100x the probes, all correct on a 2-point drop, all
// wrong on a clean rollout). A last row puts the drop at the gate's bound, where either
// decision is an error: it shows how rarely the sequential intervals decide wrongly (the
// rest wait out and take the configured action).
//
// Each rollout has 50 canary devices on the new model and 50 control devices still on the
// old one. Devices differ: accuracy per device ~ N(model, 0.005) (--spread), class shares and input
// channel means per device vary, each device reports a window (20-100 inferences, all of
// them labelled probes) every 1-10 simulated minutes at its own rate. Every 30 minutes
// the gate `accuracy_drop <= 0.01 && psi < 0.1 && input_drift < 0.15` is decided against
// the control group (gate_statistics.h: alpha 0.01 over 12 looks and the 3 clauses); after
// 6 hours undecided it rolls back (the configured action).
//   build/release/bench/server/bench_gate_statistics              # 100 rollouts a row
//   bench_gate_statistics --rollouts 20 --check                    # fewer; exit 1 off target
//   bench_gate_statistics --seed 7 --devices 50 --spread 0.01   # accuracy spread per device
//   bench_gate_statistics --looks 24                              # 12 hours before timing out
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "rollouts/gate_statistics.h"

using namespace tinyfleet::server;
using namespace tinyfleet::server::rollouts;

namespace {

constexpr int kClasses = 10;
constexpr int kChannels = 4;
constexpr double kBaseAccuracy = 0.90;
constexpr int kLookMinutes = 30;

struct Scenario {
  const char* name;
  double accuracy_drop = 0;  // new model's accuracy below the old one's
  double input_shift = 0;    // canary inputs, channel 0, in standard deviations
  int compromised = 0;       // one canary reports 100x the probes, all correct (1) or wrong (-1)
};

struct SimDevice {
  DeviceStats stats;
  double accuracy = 0, report_probability = 0;
  std::vector<double> class_shares, channel_means;
  int compromised = 0;
};

struct Outcome {
  Verdict verdict = Verdict::kWait;
  bool timed_out = false;
  int minutes = 0;
};

SimDevice make_device(std::mt19937_64& rng, double accuracy, double spread, double shift,
                      const char* id) {
  std::normal_distribution<double> z(0, 1);
  std::uniform_real_distribution<double> u(0, 1);
  SimDevice d;
  d.stats.device_id = id;
  d.accuracy = std::clamp(accuracy + spread * z(rng), 0.0, 1.0);
  d.report_probability = 1.0 / (1.0 + 9.0 * u(rng));  // a window every 1-10 minutes
  double sum = 0;
  for (int j = 0; j < kClasses; ++j) {
    const double base = 1.0 / (1.0 + j);  // skewed class mix
    d.class_shares.push_back(base * std::exp(0.2 * z(rng)));
    sum += d.class_shares.back();
  }
  for (double& s : d.class_shares) s /= sum;
  for (int c = 0; c < kChannels; ++c) d.channel_means.push_back(0.1 * z(rng));
  d.channel_means[0] += shift;
  d.stats.class_counts.assign(kClasses, 0);
  d.stats.input_sum.assign(kChannels, 0);
  d.stats.input_sumsq.assign(kChannels, 0);
  return d;
}

// One telemetry window: n inferences, all labelled probes.
void report_window(SimDevice& d, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> size(20, 100);
  std::normal_distribution<double> z(0, 1);
  const int scale = d.compromised ? 100 : 1;
  const uint64_t n = static_cast<uint64_t>(size(rng)) * scale;
  DeviceStats& s = d.stats;
  s.windows += 1;
  s.inferences += n;
  s.probe_total += n;
  s.probe_correct += d.compromised > 0   ? n
                     : d.compromised < 0 ? 0
                                         : std::binomial_distribution<uint64_t>(n, d.accuracy)(rng);
  uint64_t left = n;
  double share_left = 1.0;
  for (int j = 0; j < kClasses && left > 0; ++j) {
    const double p = j + 1 == kClasses ? 1.0 : std::min(1.0, d.class_shares[j] / share_left);
    const uint64_t k = std::binomial_distribution<uint64_t>(left, p)(rng);
    s.class_counts[j] += k;
    left -= k;
    share_left -= d.class_shares[j];
  }
  s.input_count += n;
  const double nd = static_cast<double>(n);
  for (int c = 0; c < kChannels; ++c) {
    // x = mean + e, e ~ N(0, 1): sum e ~ N(0, n), sum e^2 ~ chi-square(n).
    const double mu = d.channel_means[c], se = std::sqrt(nd) * z(rng);
    const double see = std::gamma_distribution<double>(nd / 2, 2.0)(rng);
    s.input_sum[c] += nd * mu + se;
    s.input_sumsq[c] += nd * mu * mu + 2 * mu * se + see;
  }
}

Outcome run_rollout(const Scenario& sc, int devices, double spread, std::mt19937_64& rng,
                    const std::vector<GateClause>& gate, const SequentialPolicy& policy) {
  std::vector<SimDevice> canary, control;
  for (int i = 0; i < devices; ++i) {
    canary.push_back(
        make_device(rng, kBaseAccuracy - sc.accuracy_drop, spread, sc.input_shift, "c"));
    control.push_back(make_device(rng, kBaseAccuracy, spread, 0, "k"));
  }
  canary[0].compromised = sc.compromised;
  std::uniform_real_distribution<double> u(0, 1);
  const PoolingPolicy pooling;
  std::vector<DeviceStats> can_stats, ctl_stats;
  for (int minute = 1, look = 0;; ++minute) {
    for (auto* group : {&canary, &control}) {
      for (auto& d : *group) {
        if (d.compromised || u(rng) < d.report_probability) report_window(d, rng);
      }
    }
    if (minute % kLookMinutes) continue;
    ++look;
    can_stats.clear(), ctl_stats.clear();
    for (const auto& d : canary) can_stats.push_back(d.stats);
    for (const auto& d : control) ctl_stats.push_back(d.stats);
    const std::vector<std::vector<Estimate>> estimates = {
        {accuracy_drop(ctl_stats, can_stats, pooling)},
        {output_psi(ctl_stats, can_stats, pooling)},
        input_shift(ctl_stats, can_stats, pooling)};
    const auto v = decide_gate(gate, estimates, look, minute * 60.0, policy);
    if (v.verdict != Verdict::kWait) {
      if (std::getenv("GATE_BENCH_VERBOSE")) {
        for (const auto& c : v.clauses)
          std::fprintf(stderr, "  %s: %s\n", sc.name, c.reason.c_str());
      }
      return {v.verdict, v.timed_out, minute};
    }
  }
}

struct Row {
  std::string scenario;
  int rollouts = 0, rolled_back = 0, passed = 0, waited_out = 0;
  double median = 0, p95 = 0;
};

double quantile(std::vector<int> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(std::ceil(q * v.size())) - 1);
  return v[q == 0.5 ? (v.size() - 1) / 2 : i];
}

}  // namespace

int main(int argc, char** argv) {
  int rollouts = 100, devices = 50;
  double spread = 0.005;
  int looks = 12;
  unsigned long long seed = 20261201;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--rollouts" && has_value) {
      rollouts = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--looks" && has_value) {
      looks = std::clamp(std::atoi(argv[++i]), 1, 1000);
    } else if (a == "--spread" && has_value) {
      spread = std::clamp(std::atof(argv[++i]), 0.0, 0.2);
    } else if (a == "--devices" && has_value) {
      devices = std::max(2, std::atoi(argv[++i]));
    } else if (a == "--seed" && has_value) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--check") {
      check = true;
    } else {
      std::fprintf(
          stderr,
          "usage: %s [--rollouts N] [--devices N] [--spread SD] [--looks N] [--seed N] [--check]\n",
          argv[0]);
      return 2;
    }
  }
  const std::vector<GateClause> gate = {
      {"accuracy_drop", "<=", 0.01}, {"psi", "<", 0.1}, {"input_drift", "<", 0.15}};
  SequentialPolicy policy;
  policy.alpha = 0.01;
  policy.max_looks = looks;
  policy.max_wait_seconds = looks * kLookMinutes * 60.0;
  policy.fail_on_timeout = true;
  const Scenario scenarios[] = {{"clean", 0, 0, 0},
                                {"accuracy -2 points", 0.02, 0, 0},
                                {"input drift 0.3 sd", 0, 0.3, 0},
                                {"-2 points, 1 canary 100x probes all correct", 0.02, 0, 1},
                                {"clean, 1 canary 100x probes all wrong", 0, 0, -1},
                                {"accuracy -1 point (at the bound)", 0.01, 0, 0}};
  std::printf(
      "gate: accuracy_drop <= 0.01 && psi < 0.1 && input_drift < 0.15 against %d "
      "control devices; %d canaries; accuracy spread per device %.3f; alpha %.2f over %d looks "
      "every %d min; "
      "undecided after %d min: roll back; seed %llu\n\n",
      devices, devices, spread, policy.alpha, policy.max_looks, kLookMinutes,
      policy.max_looks * kLookMinutes, seed);
  std::printf(
      "| scenario | rollouts | rolled back | passed | waited out | median min | p95 min |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  std::vector<Row> rows;
  std::mt19937_64 rng(seed);
  for (const auto& sc : scenarios) {
    Row r{sc.name, rollouts};
    std::vector<int> minutes;
    for (int i = 0; i < rollouts; ++i) {
      const Outcome o = run_rollout(sc, devices, spread, rng, gate, policy);
      if (o.timed_out) {
        ++r.waited_out;
      } else if (o.verdict == Verdict::kFail) {
        ++r.rolled_back;
      } else {
        ++r.passed;
      }
      minutes.push_back(o.minutes);
    }
    r.median = quantile(minutes, 0.5);
    r.p95 = quantile(minutes, 0.95);
    std::printf("| %s | %d | %d | %d | %d | %.0f | %.0f |\n", r.scenario.c_str(), r.rollouts,
                r.rolled_back, r.passed, r.waited_out, r.median, r.p95);
    rows.push_back(r);
  }
  // Targets: false rollbacks (decided or waited out) on clean <= 1%; the drop and the drift
  // detected (rolled back on the data) >= 95%, with or without the compromised canary.
  const double n = rollouts;
  const auto false_rollbacks = [](const Row& r) { return r.rolled_back + r.waited_out; };
  const bool clean_ok = false_rollbacks(rows[0]) <= std::ceil(0.01 * n) &&
                        false_rollbacks(rows[4]) <= std::ceil(0.01 * n);
  bool detect_ok = true;
  for (size_t i = 1; i <= 3; ++i) detect_ok = detect_ok && rows[i].rolled_back >= 0.95 * n;
  std::printf(
      "\nfalse rollbacks on clean: %.1f%%, with a compromised canary %.1f%% (target "
      "<= 1%%); detection: %.1f%%, %.1f%%, %.1f%% (target >= 95%%)\n",
      100 * false_rollbacks(rows[0]) / n, 100 * false_rollbacks(rows[4]) / n,
      100 * rows[1].rolled_back / n, 100 * rows[2].rolled_back / n, 100 * rows[3].rolled_back / n);
  if (check && !(clean_ok && detect_ok)) {
    std::fprintf(stderr, "off target\n");
    return 1;
  }
  return 0;
}
