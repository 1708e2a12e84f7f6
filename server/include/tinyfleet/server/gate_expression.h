#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tinyfleet/storage/error.h"

namespace tinyfleet::server {

// One rollout gate: metric op threshold, e.g. "accuracy_drop <= 0.05".
struct GateClause {
  std::string metric;
  std::string op;  // <, <=, >, >=
  double threshold = 0;
};

// The metrics a gate may name (see proto/tinyfleet/v1/rollouts.proto).
const std::vector<std::string>& gate_metrics();

// Clauses joined by "&&" or ","; an empty text has no gates. kInvalidArgument names the
// clause and what is wrong with it.
storage::Expected<std::vector<GateClause>> parse_gates(const std::string& text);

struct GateResultValue {
  GateClause clause;
  double value = 0;
  bool known = false;  // no device reported the metric yet
  bool passed = false;
};

// Each clause against the cohort's metrics (absent: unknown, not passed).
std::vector<GateResultValue> evaluate_gates(const std::vector<GateClause>& clauses,
                                            const std::map<std::string, std::optional<double>>& m);

}  // namespace tinyfleet::server
