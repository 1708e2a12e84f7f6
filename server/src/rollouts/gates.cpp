#include "rollouts/gates.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tinyfleet::server::rollouts {

namespace {

std::string number(double v, const char* format) {
  char buf[48];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

}  // namespace

std::map<std::string, std::optional<double>> gate_metric_values(const PhaseCounts& p,
                                                                const CohortTelemetry& t) {
  std::map<std::string, std::optional<double>> m;
  const int finished = p.finished();
  m["failure_rate"] = finished > 0 ? double(p.failed) / finished : 0.0;
  m["min_reporting"] =
      t.cohort > 0 ? std::optional<double>(double(t.reporting) / t.cohort) : std::nullopt;
  m["psi"] = t.psi;
  m["input_drift"] = t.input_drift;
  m["accuracy"] = t.accuracy_new;
  if (t.accuracy_new && t.accuracy_old) m["accuracy_drop"] = *t.accuracy_old - *t.accuracy_new;
  if (t.energy_new && t.energy_old && *t.energy_old > 0) {
    m["energy_regression"] = *t.energy_new / *t.energy_old - 1.0;
  }
  if (t.latency_p95_new && t.latency_p95_old && *t.latency_p95_old > 0) {
    m["latency_regression"] = *t.latency_p95_new / *t.latency_p95_old - 1.0;
  }
  m["shadow_agreement"] = t.shadow_agreement;
  return m;
}

std::string gate_text(const GateClause& c) {
  return c.metric + " " + c.op + " " + number(c.threshold, "%g");
}

std::optional<std::string> early_failure(const std::vector<GateClause>& clauses,
                                         const PhaseCounts& p, int phase) {
  const int finished = p.finished();
  if (finished == 0) return std::nullopt;
  for (const auto& c : clauses) {
    if (c.metric != "failure_rate") continue;
    const auto g = evaluate_gates({c}, {{"failure_rate", double(p.failed) / finished}});
    if (g[0].passed) continue;
    return "gate '" + gate_text(c) + "' failed in phase " + std::to_string(phase) + ": " +
           number(g[0].value, "%.3f") + " (" + std::to_string(p.failed) + " of " +
           std::to_string(finished) + " devices failed to update)";
  }
  return std::nullopt;
}

bool settled(const std::vector<GateClause>& clauses, const PhaseCounts& p) {
  if (p.pending > 0 || p.total == 0) return false;
  double required = 1.0;
  for (const auto& c : clauses) {
    if (c.metric == "min_reporting") required = std::min(1.0, std::max(0.0, c.threshold));
  }
  return p.finished() >= static_cast<int>(std::ceil(required * p.total - 1e-9));
}

GateDecision decide(const std::vector<GateClause>& clauses, const PhaseCounts& p,
                    const CohortTelemetry& t, int phase, double baking_for, int bake_seconds,
                    double quorum_grace_seconds) {
  GateDecision d;
  d.results = evaluate_gates(clauses, gate_metric_values(p, t));
  std::string waiting;
  for (const auto& g : d.results) {
    // Too few devices reporting is a quorum not reached yet: wait for them, up to the
    // grace past the bake, then fail naming how many reported.
    const bool quorum = g.clause.metric == "min_reporting";
    if (!g.known || (quorum && !g.passed && baking_for < bake_seconds + quorum_grace_seconds)) {
      waiting += (waiting.empty() ? "" : ", ") + g.clause.metric;
      continue;
    }
    if (!g.passed && d.kind != GateDecision::kFail) {
      d.kind = GateDecision::kFail;
      d.reason = "gate '" + gate_text(g.clause) + "' failed in phase " + std::to_string(phase) +
                 ": " + number(g.value, "%.4g");
    }
  }
  if (d.kind == GateDecision::kFail) return d;
  if (!waiting.empty()) {
    d.kind = GateDecision::kWait;
    d.reason = "phase " + std::to_string(phase) + " waits for telemetry: " + waiting;
  }
  return d;
}

std::optional<std::string> promote_refusal(const std::vector<GateClause>& clauses,
                                           const PhaseCounts& p, const CohortTelemetry& t) {
  for (const auto& g : evaluate_gates(clauses, gate_metric_values(p, t))) {
    if (!g.known) return "gate '" + gate_text(g.clause) + "' has no data yet";
    if (!g.passed) {
      return "gate '" + gate_text(g.clause) + "' does not pass: " + number(g.value, "%.4g");
    }
  }
  return std::nullopt;
}

}  // namespace tinyfleet::server::rollouts
