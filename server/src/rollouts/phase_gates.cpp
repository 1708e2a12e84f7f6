#include "rollouts/phase_gates.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tinyfleet::server::rollouts {

namespace {

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

const char* verdict_name(Verdict v) {
  return v == Verdict::kPass ? "pass" : v == Verdict::kFail ? "fail" : "wait";
}

nlohmann::json maybe(std::optional<double> v) {
  return v && std::isfinite(*v) ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

// One clause as the report and the reasons show it.
struct Clause {
  Verdict verdict = Verdict::kWait;
  bool timed_out = false, known = false;
  std::optional<double> value, lo, hi;
  std::string detail;
  nlohmann::json canary, reference;  // reference: null when not comparative
};

// failure_rate and min_reporting: device counts, no interval. A min_reporting quorum
// not reached waits kQuorumGraceSeconds past the bake (never while baking), then fails.
Clause count_clause(const GateClause& c, const PhaseCounts& p, int reporting, int look,
                    double waited_seconds) {
  Clause out;
  const bool quorum = c.metric == "min_reporting";
  const int of = quorum ? p.updated : p.finished();
  const int count = quorum ? reporting : p.failed;
  if (of > 0 || !quorum) out.value = of > 0 ? double(count) / of : 0.0;
  out.known = out.value.has_value();
  out.lo = out.hi = out.value;
  out.canary = {{"value", maybe(out.value)}, {"devices", quorum ? reporting : of}};
  const auto g = evaluate_gates({c}, {{c.metric, out.value}})[0];
  out.detail = out.known ? number(g.value) + " (" + std::to_string(count) + " of " +
                               std::to_string(of) + " devices)"
                         : "no device updated yet";
  if (g.known && g.passed) {
    out.verdict = Verdict::kPass;
  } else if (!g.known || (quorum && (look == 0 || waited_seconds < kQuorumGraceSeconds))) {
    out.verdict = Verdict::kWait;
  } else {
    out.verdict = Verdict::kFail;
  }
  return out;
}

// The value a clause's estimates show (the largest, |value| for shifts), when any is known.
std::optional<double> point_value(const std::vector<Estimate>& estimates) {
  std::optional<double> v;
  for (const auto& e : estimates) {
    if (!e.known()) continue;
    const double x = e.absolute ? std::abs(e.value) : e.value;
    v = v ? std::max(*v, x) : x;
  }
  return v;
}

nlohmann::json level(const GroupLevel& g) {
  return {{"value", maybe(g.value)}, {"devices", g.devices}};
}

Clause statistical_clause(const GateClause& c, const CohortStats& cohort, int look,
                          double waited_seconds, double alpha, const GatePolicy& policy) {
  const auto pooling = pooling_policy(policy);
  auto sequential = sequential_policy(policy);
  if (look == 0) sequential.max_wait_seconds = INFINITY;  // baking: no timeout yet
  const auto m = metric_estimates(c.metric, cohort, pooling, policy.min_devices);
  const auto d =
      decide_clause(c, m.estimates, std::max(look, 0), waited_seconds, alpha, sequential);
  Clause out;
  out.verdict = d.verdict;
  out.timed_out = d.timed_out;
  out.value = point_value(m.estimates);
  out.known = out.value.has_value();
  const bool decided_on_data =
      std::all_of(m.estimates.begin(), m.estimates.end(),
                  [&](const Estimate& e) { return e.known() && e.devices >= policy.min_devices; });
  if (!m.estimates.empty() && decided_on_data) out.value = d.value, out.lo = d.lo, out.hi = d.hi;
  out.detail = d.reason.substr(std::min(d.reason.size(), d.reason.find(": ") + 2));
  out.canary = level(group_level(c.metric, cohort.canary, pooling));
  if (m.reference == "manifest") {
    out.reference = {
        {"group", "manifest"}, {"value", maybe(cohort.baseline_accuracy)}, {"devices", 0}};
  } else if (const auto* devices = group_devices(cohort, m.reference)) {
    out.reference = level(group_level(c.metric, *devices, pooling));
    out.reference["group"] = m.reference;
  }
  return out;
}

}  // namespace

PoolingPolicy pooling_policy(const GatePolicy& g) { return {g.device_cap, g.winsorize}; }

SequentialPolicy sequential_policy(const GatePolicy& g) {
  SequentialPolicy s;
  s.alpha = g.alpha;
  s.max_looks = std::max(1, g.max_looks);
  s.max_wait_seconds = g.max_wait_seconds;
  s.min_devices = g.min_devices;
  s.fail_on_timeout = g.fail_on_timeout;
  return s;
}

int look_due(double waited_seconds, const GatePolicy& g) {
  const int looks = std::max(1, g.max_looks);
  if (looks == 1 || waited_seconds >= g.max_wait_seconds) return looks;
  const double every = g.max_wait_seconds / (looks - 1);
  return std::min(looks, 1 + static_cast<int>(std::max(0.0, waited_seconds) / every));
}

PhaseGates decide_phase(const std::vector<GateClause>& clauses, const PhaseCounts& p,
                        const CohortStats& cohort, int phase, int look, double waited_seconds,
                        const GatePolicy& policy) {
  PhaseGates out;
  // alpha is split over the statistical clauses, as decide_gate does.
  const auto statistical = std::count_if(clauses.begin(), clauses.end(), [](const GateClause& c) {
    return statistical_metric(c.metric);
  });
  const double alpha = policy.alpha / static_cast<double>(std::max<long>(1, statistical));
  const int reporting = static_cast<int>(cohort.canary.size());
  std::string waiting, failed;
  bool all_pass = true, fail = false;
  for (const auto& c : clauses) {
    const Clause x = statistical_metric(c.metric)
                         ? statistical_clause(c, cohort, look, waited_seconds, alpha, policy)
                         : count_clause(c, p, reporting, look, waited_seconds);
    nlohmann::json j = {{"metric", c.metric},
                        {"op", c.op},
                        {"threshold", c.threshold},
                        {"value", x.value && std::isfinite(*x.value) ? *x.value : 0.0},
                        {"lo", maybe(x.lo)},
                        {"hi", maybe(x.hi)},
                        {"known", x.known},
                        {"passed", x.verdict == Verdict::kPass},
                        {"verdict", verdict_name(x.verdict)},
                        {"timed_out", x.timed_out},
                        {"canary", x.canary}};
    if (!x.reference.is_null()) j["reference"] = x.reference;
    out.report.push_back(std::move(j));
    out.details.push_back(x.detail);
    out.timed_out = out.timed_out || x.timed_out;
    all_pass = all_pass && x.verdict == Verdict::kPass;
    if (x.verdict == Verdict::kFail && !fail) {
      fail = true;
      failed =
          "gate '" + gate_text(c) + "' failed in phase " + std::to_string(phase) + ": " + x.detail;
    }
    if (x.verdict == Verdict::kWait) waiting += (waiting.empty() ? "" : ", ") + c.metric;
  }
  if (fail) {
    out.verdict = Verdict::kFail;
    out.reason = failed;
  } else if (!all_pass) {
    out.verdict = Verdict::kWait;
    out.reason = "phase " + std::to_string(phase) + " waits for telemetry: " + waiting;
  }
  return out;
}

std::optional<std::string> promote_refusal(const std::vector<GateClause>& clauses,
                                           const PhaseCounts& p, const CohortStats& cohort,
                                           const GatePolicy& policy) {
  const auto g = decide_phase(clauses, p, cohort, 0, 1, 0, policy);
  for (size_t i = 0; i < clauses.size(); ++i) {
    const auto& r = g.report[i];
    if (r["verdict"] == "pass") continue;
    const std::string gate = "gate '" + gate_text(clauses[i]) + "'";
    if (!r["known"].get<bool>()) return gate + " has no data yet";
    return gate + " does not pass: " + g.details[i];
  }
  return std::nullopt;
}

}  // namespace tinyfleet::server::rollouts
