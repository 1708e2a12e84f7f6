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

}  // namespace tinyfleet::server::rollouts
