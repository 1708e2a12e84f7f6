#include "rollouts/gate_statistics.h"

#include "rollouts/quantiles.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>

namespace tinyfleet::server::rollouts {

namespace {

// One device's contribution to a pooled statistic (weights and weighted rates), and a
// group's sums of them. Every statistic below is a smooth function of the two groups'
// sums, so deleting a device is a subtraction.
using Sums = std::vector<double>;

struct Group {
  std::vector<Sums> rows;
  Sums total;
};

// The q-quantile of v (linear interpolation; v not empty).
double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double at = q * static_cast<double>(v.size() - 1);
  const size_t i = static_cast<size_t>(at);
  if (i + 1 >= v.size()) return v.back();
  return v[i] + (at - static_cast<double>(i)) * (v[i + 1] - v[i]);
}

// Each rate column (row[j] / row[0]) clipped to its [share, 1 - share] quantiles over the
// group's devices, so a few devices reporting extreme rates (a compromised one at 100%)
// count as the most extreme honest ones instead of widening every interval.
void winsorize(std::vector<Sums>& rows, double share) {
  if (share <= 0 || rows.size() < 3) return;
  const size_t width = rows.front().size();
  std::vector<double> col(rows.size());
  for (size_t j = 1; j < width; ++j) {
    for (size_t i = 0; i < rows.size(); ++i) col[i] = rows[i][j] / rows[i][0];
    const double lo = quantile(col, share), hi = quantile(col, 1 - share);
    for (size_t i = 0; i < rows.size(); ++i) rows[i][j] = rows[i][0] * std::clamp(col[i], lo, hi);
  }
}

Group make_group(std::vector<Sums> rows, size_t width, const PoolingPolicy& policy) {
  winsorize(rows, policy.winsorize);
  Group g{std::move(rows), Sums(width, 0.0)};
  for (const auto& r : g.rows) {
    for (size_t j = 0; j < width; ++j) g.total[j] += r[j];
  }
  return g;
}

using Statistic = std::function<double(const Sums& reference, const Sums& canary)>;

constexpr double kInf = std::numeric_limits<double>::infinity();

// The statistic on all devices, its delete-one-device jackknife variance summed over the
// groups, and (bias_correct) the jackknife's bias correction. `reference` may be null (a
// fixed baseline). Groups of one device have no variance estimate: se is infinite.
Estimate jackknife(const Group* reference, const Group& canary, const Statistic& f,
                   bool bias_correct, int bias_df = 1) {
  Estimate e;
  const Sums none;
  const Sums& ref_total = reference ? reference->total : none;
  const double theta = f(ref_total, canary.total);
  double var = 0, bias = 0;
  int fewest = std::numeric_limits<int>::max();
  for (int which = 0; which < 2; ++which) {
    const Group* g = which == 0 ? reference : &canary;
    if (!g) continue;
    const int m = static_cast<int>(g->rows.size());
    fewest = std::min(fewest, m);
    if (m < 2) {
      var = kInf;
      continue;
    }
    std::vector<double> loo(m);
    Sums left = g->total;
    for (int i = 0; i < m; ++i) {
      for (size_t j = 0; j < left.size(); ++j) left[j] = g->total[j] - g->rows[i][j];
      loo[i] = which == 0 ? f(left, canary.total) : f(ref_total, left);
    }
    double mean = 0;
    for (double v : loo) mean += v;
    mean /= m;
    double ss = 0;
    for (double v : loo) ss += (v - mean) * (v - mean);
    var += (m - 1.0) / m * ss;
    bias += (m - 1.0) * (mean - theta);
  }
  e.devices = fewest == std::numeric_limits<int>::max() ? 0 : fewest;
  e.df = std::max(0, e.devices - 1);
  if (e.devices == 0) return e;
  e.value = bias_correct ? theta - bias : theta;
  // Near its minimum a quadratic statistic (PSI) has a jackknife variance of about 0 while
  // its own spread is that of the bias removed, a sum of bias_df chi-square terms: its
  // standard deviation is bias * sqrt(2 / bias_df). Count that in.
  e.se = std::sqrt(var + (bias_correct ? 2.0 * bias * bias / std::max(1, bias_df) : 0.0));
  if (!std::isfinite(e.value)) e.devices = 0;
  return e;
}

std::vector<uint64_t> nonzero(std::vector<uint64_t> v) {
  v.erase(std::remove(v.begin(), v.end(), uint64_t{0}), v.end());
  return v;
}

// A proportion x/n per device, pooled with the weight min(n, cap): rows [w, w * x/n].
using Counts = std::function<std::pair<uint64_t, uint64_t>(const DeviceStats&)>;

Group proportion_group(const std::vector<DeviceStats>& devices, const Counts& counts,
                       const PoolingPolicy& policy) {
  std::vector<uint64_t> ns;
  for (const auto& d : devices) ns.push_back(counts(d).second);
  const double cap = static_cast<double>(device_cap(ns, policy));
  std::vector<Sums> rows;
  for (const auto& d : devices) {
    const auto [x, n] = counts(d);
    if (n == 0) continue;
    const double w = std::min(static_cast<double>(n), cap);
    rows.push_back({w, w * static_cast<double>(std::min(x, n)) / static_cast<double>(n)});
  }
  return make_group(std::move(rows), 2, policy);
}

double rate(const Sums& s) { return s[1] / s[0]; }

// The binomial variance of a group's pooled rate on its capped counts (Agresti-Coull
// centre, so a group at 0 or 1 still has some): the floor under the jackknife's.
double binomial_variance(const Group& g) {
  const double n = g.total[0];
  if (n <= 0) return kInf;
  const double p = (g.total[1] + 2.0) / (n + 4.0);
  return p * (1.0 - p) / (n + 4.0);
}

Estimate floored(Estimate e, double floor_variance) {
  if (e.known()) e.se = std::sqrt(std::max(e.se * e.se, floor_variance));
  return e;
}

Estimate proportion(const std::vector<DeviceStats>& devices, const Counts& counts,
                    const PoolingPolicy& policy) {
  const Group g = proportion_group(devices, counts, policy);
  const Estimate e = jackknife(
      nullptr, g, [](const Sums&, const Sums& c) { return rate(c); }, false);
  return floored(e, binomial_variance(g));
}

std::pair<uint64_t, uint64_t> probes(const DeviceStats& d) {
  return {d.probe_correct, d.probe_total};
}

// Measured energy per inference per device, pooled with the weight min(inferences, cap).
Group energy_group(const std::vector<DeviceStats>& devices, const PoolingPolicy& policy) {
  const auto usable = [](const DeviceStats& d) {
    return d.energy_measured_uj && std::isfinite(*d.energy_measured_uj) &&
           *d.energy_measured_uj >= 0 && d.inferences > 0;
  };
  std::vector<uint64_t> ns;
  for (const auto& d : devices) ns.push_back(usable(d) ? d.inferences : 0);
  const double cap = static_cast<double>(device_cap(ns, policy));
  std::vector<Sums> rows;
  for (const auto& d : devices) {
    if (!usable(d)) continue;
    const double n = static_cast<double>(d.inferences), w = std::min(n, cap);
    rows.push_back({w, w * *d.energy_measured_uj / n});
  }
  return make_group(std::move(rows), 2, policy);
}

// Latency histogram shares per device, pooled with the weight min(inferences in it, cap).
Group latency_group(const std::vector<DeviceStats>& devices, const PoolingPolicy& policy) {
  constexpr size_t kBuckets = kLatencyBuckets;
  std::vector<uint64_t> ns;
  for (const auto& d : devices) {
    uint64_t n = 0;
    if (d.latency_hist.size() == kBuckets) {
      for (uint64_t c : d.latency_hist) n += c;
    }
    ns.push_back(n);
  }
  const double cap = static_cast<double>(device_cap(ns, policy));
  std::vector<Sums> rows;
  for (size_t i = 0; i < devices.size(); ++i) {
    if (ns[i] == 0) continue;
    const double n = static_cast<double>(ns[i]), w = std::min(n, cap);
    Sums r(kBuckets + 1, 0.0);
    r[0] = w;
    for (size_t b = 0; b < kBuckets; ++b) {
      r[b + 1] = w * static_cast<double>(devices[i].latency_hist[b]) / n;
    }
    rows.push_back(std::move(r));
  }
  return make_group(std::move(rows), kBuckets + 1, policy);
}

// The 95th percentile (us) of pooled histogram shares, linear within its bucket (bucket 0
// is [0, 2) us, bucket b [2^b, 2^(b+1)), the last one taken as [2^b, 2^(b+1)) too).
double latency_p95(const Sums& s) {
  double total = 0;
  for (size_t b = 1; b < s.size(); ++b) total += s[b];
  const double target = 0.95 * total;
  double before = 0;
  for (size_t b = 1; b < s.size(); ++b) {
    if (s[b] > 0 && before + s[b] >= target) {
      const double lo = b == 1 ? 0 : std::ldexp(1.0, static_cast<int>(b - 1));
      const double hi = std::ldexp(1.0, static_cast<int>(b));
      return lo + (target - before) / s[b] * (hi - lo);
    }
    before += s[b];
  }
  return std::numeric_limits<double>::quiet_NaN();
}

// Class shares per device, pooled with the weight min(inferences, cap): rows
// [w, w * share_1, ..., w * share_k].
Group class_group(const std::vector<DeviceStats>& devices, size_t k, const PoolingPolicy& policy) {
  std::vector<uint64_t> ns;
  for (const auto& d : devices) {
    uint64_t n = 0;
    if (d.class_counts.size() <= k) {  // longer: over kMaxGateClasses, left out
      for (uint64_t c : d.class_counts) n += c;
    }
    ns.push_back(n);
  }
  const double cap = static_cast<double>(device_cap(ns, policy));
  std::vector<Sums> rows;
  for (size_t i = 0; i < devices.size(); ++i) {
    if (ns[i] == 0) continue;
    const double w = std::min(static_cast<double>(ns[i]), cap);
    Sums r(k + 1, 0.0);
    r[0] = w;
    const auto& cc = devices[i].class_counts;
    for (size_t j = 0; j < cc.size(); ++j) {
      r[j + 1] = w * static_cast<double>(cc[j]) / static_cast<double>(ns[i]);
    }
    rows.push_back(std::move(r));
  }
  return make_group(std::move(rows), k + 1, policy);
}

// Per-channel first and second moments per device, pooled with the weight
// min(input_count, cap): rows [w, w * mean_1..C, w * meansq_1..C].
Group moment_group(const std::vector<DeviceStats>& devices, size_t channels,
                   const PoolingPolicy& policy) {
  std::vector<uint64_t> ns;
  for (const auto& d : devices) {
    const bool shaped = d.input_sum.size() == channels && d.input_sumsq.size() == channels;
    ns.push_back(shaped ? d.input_count : 0);
  }
  const double cap = static_cast<double>(device_cap(ns, policy));
  std::vector<Sums> rows;
  for (size_t i = 0; i < devices.size(); ++i) {
    if (ns[i] == 0) continue;
    const double n = static_cast<double>(ns[i]);
    const double w = std::min(n, cap);
    Sums r(1 + 2 * channels, 0.0);
    r[0] = w;
    for (size_t c = 0; c < channels; ++c) {
      r[1 + c] = w * devices[i].input_sum[c] / n;
      r[1 + channels + c] = w * devices[i].input_sumsq[c] / n;
    }
    bool finite = true;
    for (double v : r) finite = finite && std::isfinite(v);
    if (finite) rows.push_back(std::move(r));
  }
  return make_group(std::move(rows), 1 + 2 * channels, policy);
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

}  // namespace

uint64_t device_cap(const std::vector<uint64_t>& counts, const PoolingPolicy& policy) {
  if (policy.cap > 0) return policy.cap;
  auto v = nonzero(counts);
  if (v.empty()) return 1;
  std::sort(v.begin(), v.end());
  const size_t m = v.size();
  return m % 2 ? v[m / 2] : std::max<uint64_t>(1, (v[m / 2 - 1] + v[m / 2]) / 2);
}

Estimate probe_accuracy(const std::vector<DeviceStats>& devices, const PoolingPolicy& policy) {
  return proportion(devices, probes, policy);
}

Estimate accuracy_drop(const std::vector<DeviceStats>& reference,
                       const std::vector<DeviceStats>& canary, const PoolingPolicy& policy) {
  const Group r = proportion_group(reference, probes, policy);
  const Group c = proportion_group(canary, probes, policy);
  const Estimate e = jackknife(
      &r, c, [](const Sums& a, const Sums& b) { return rate(a) - rate(b); }, false);
  return floored(e, binomial_variance(r) + binomial_variance(c));
}

Estimate accuracy_drop(double baseline, const std::vector<DeviceStats>& canary,
                       const PoolingPolicy& policy) {
  Estimate e = probe_accuracy(canary, policy);
  e.value = baseline - e.value;
  return e;
}

Estimate failure_rate(const std::vector<DeviceStats>& devices, const PoolingPolicy& policy) {
  return proportion(
      devices, [](const DeviceStats& d) { return std::make_pair(d.failures, d.inferences); },
      policy);
}

Estimate shadow_agreement(const std::vector<DeviceStats>& devices, const PoolingPolicy& policy) {
  return proportion(
      devices, [](const DeviceStats& d) { return std::make_pair(d.shadow_agree, d.shadow_total); },
      policy);
}

Estimate energy_regression(const std::vector<DeviceStats>& reference,
                           const std::vector<DeviceStats>& canary, const PoolingPolicy& policy) {
  const Group r = energy_group(reference, policy), c = energy_group(canary, policy);
  return jackknife(
      &r, c, [](const Sums& a, const Sums& b) { return rate(b) / rate(a) - 1; }, false);
}

Estimate latency_regression(const std::vector<DeviceStats>& reference,
                            const std::vector<DeviceStats>& canary, const PoolingPolicy& policy) {
  const Group r = latency_group(reference, policy), c = latency_group(canary, policy);
  return jackknife(
      &r, c, [](const Sums& a, const Sums& b) { return latency_p95(b) / latency_p95(a) - 1; },
      false);
}

Estimate measured_energy_per_inference(const std::vector<DeviceStats>& devices,
                                       const PoolingPolicy& policy) {
  const Group g = energy_group(devices, policy);
  return jackknife(
      nullptr, g, [](const Sums&, const Sums& c) { return rate(c); }, false);
}

Estimate latency_p95_us(const std::vector<DeviceStats>& devices, const PoolingPolicy& policy) {
  const Group g = latency_group(devices, policy);
  return jackknife(
      nullptr, g, [](const Sums&, const Sums& c) { return latency_p95(c); }, false);
}

Estimate output_psi(const std::vector<DeviceStats>& reference,
                    const std::vector<DeviceStats>& canary, const PoolingPolicy& policy) {
  size_t k = 0;
  for (const auto* group : {&reference, &canary}) {
    for (const auto& d : *group) {
      if (d.class_counts.size() <= kMaxGateClasses) k = std::max(k, d.class_counts.size());
    }
  }
  if (k < 2) return {};
  const Group r = class_group(reference, k, policy);
  const Group c = class_group(canary, k, policy);
  const auto psi = [k](const Sums& a, const Sums& b) {
    // Shares over the column sums (winsorized columns need not add up to the weight).
    double na = 0, nb = 0;
    const double smooth = 0.5;
    for (size_t j = 1; j <= k; ++j) na += a[j] + smooth, nb += b[j] + smooth;
    double s = 0;
    for (size_t j = 1; j <= k; ++j) {
      const double p = (b[j] + smooth) / nb, q = (a[j] + smooth) / na;
      s += (p - q) * std::log(p / q);
    }
    return s;
  };
  Estimate e = jackknife(&r, c, psi, true, static_cast<int>(k) - 1);
  e.value = std::max(0.0, e.value);
  e.absolute = true;  // PSI is not negative: its interval starts at 0 at the lowest
  return e;
}

std::vector<Estimate> input_shift(const std::vector<DeviceStats>& reference,
                                  const std::vector<DeviceStats>& canary,
                                  const PoolingPolicy& policy) {
  size_t channels = 0;
  for (const auto& d : reference) {
    if (d.input_sum.size() <= kMaxGateChannels) channels = std::max(channels, d.input_sum.size());
  }
  std::vector<Estimate> out;
  if (channels == 0) return out;
  const Group r = moment_group(reference, channels, policy);
  const Group c = moment_group(canary, channels, policy);
  for (size_t ch = 0; ch < channels; ++ch) {
    const auto shift = [ch, channels](const Sums& a, const Sums& b) {
      const double mean_a = a[1 + ch] / a[0], mean_b = b[1 + ch] / b[0];
      const double var_a = a[1 + channels + ch] / a[0] - mean_a * mean_a;
      return (mean_b - mean_a) / std::sqrt(std::max(var_a, 1e-12));
    };
    Estimate e = jackknife(&r, c, shift, false);
    e.absolute = true;
    out.push_back(e);
  }
  return out;
}

ClauseDecision decide_clause(const GateClause& clause, const std::vector<Estimate>& estimates,
                             int look, double waited_seconds, double alpha,
                             const SequentialPolicy& policy) {
  ClauseDecision d;
  const bool enough =
      !estimates.empty() && std::all_of(estimates.begin(), estimates.end(), [&](const Estimate& e) {
        return e.known() && e.devices >= policy.min_devices;
      });
  std::string why;
  if (enough) {
    // Bonferroni over looks and components: each interval is one-sided at this level.
    const double level =
        alpha / std::max(1, policy.max_looks) / static_cast<double>(estimates.size());
    d.value = d.lo = d.hi = -kInf;
    for (const auto& e : estimates) {
      const double q = student_t_quantile(1 - level, e.df);
      double lo = e.value - q * e.se, hi = e.value + q * e.se, v = e.value;
      if (e.absolute) {
        v = std::abs(v);
        const double a = std::abs(lo), b = std::abs(hi);
        if (lo <= 0 && hi >= 0) {
          lo = 0;
          hi = std::max(a, b);
        } else {
          lo = std::min(a, b);
          hi = std::max(a, b);
        }
      }
      d.value = std::max(d.value, v);
      d.lo = std::max(d.lo, lo);
      d.hi = std::max(d.hi, hi);
    }
    const double t = clause.threshold;
    bool pass = false, fail = false;
    if (clause.op == "<") {
      pass = d.hi < t, fail = d.lo >= t;
    } else if (clause.op == "<=") {
      pass = d.hi <= t, fail = d.lo > t;
    } else if (clause.op == ">") {
      pass = d.lo > t, fail = d.hi <= t;
    } else if (clause.op == ">=") {
      pass = d.lo >= t, fail = d.hi < t;
    }
    d.verdict = pass ? Verdict::kPass : fail ? Verdict::kFail : Verdict::kWait;
    why = number(d.value) + " [" + number(d.lo) + ", " + number(d.hi) + "] at " +
          number(100 * (1 - alpha)) + "% over " + std::to_string(estimates.front().devices) +
          "+ devices";
  } else {
    why = "fewer than " + std::to_string(policy.min_devices) + " devices reported it";
  }
  if (d.verdict == Verdict::kWait &&
      (waited_seconds >= policy.max_wait_seconds || look >= policy.max_looks)) {
    d.timed_out = true;
    d.verdict = policy.fail_on_timeout ? Verdict::kFail : Verdict::kPass;
    why += "; undecided after " + std::to_string(look) + " looks, " + number(waited_seconds / 60) +
           " min";
  }
  d.reason = clause.metric + " " + clause.op + " " + number(clause.threshold) + ": " + why;
  return d;
}

GateVerdict decide_gate(const std::vector<GateClause>& clauses,
                        const std::vector<std::vector<Estimate>>& estimates, int look,
                        double waited_seconds, const SequentialPolicy& policy) {
  GateVerdict g;
  const double alpha = policy.alpha / std::max<size_t>(1, clauses.size());
  bool all_pass = true, fail = false, timeout_fail = false, timed_out = false;
  for (size_t i = 0; i < clauses.size(); ++i) {
    const auto& e = i < estimates.size() ? estimates[i] : std::vector<Estimate>{};
    auto d = decide_clause(clauses[i], e, look, waited_seconds, alpha, policy);
    timed_out = timed_out || d.timed_out;
    if (d.verdict == Verdict::kFail) (d.timed_out ? timeout_fail : fail) = true;
    all_pass = all_pass && d.verdict == Verdict::kPass;
    g.clauses.push_back(std::move(d));
  }
  if (fail) {
    g.verdict = Verdict::kFail;
  } else if (timeout_fail) {
    g.verdict = Verdict::kFail, g.timed_out = true;
  } else if (all_pass) {
    g.verdict = Verdict::kPass, g.timed_out = timed_out;
  } else {
    g.verdict = Verdict::kWait;
  }
  return g;
}

}  // namespace tinyfleet::server::rollouts
