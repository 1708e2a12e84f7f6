#include "tinyfleet/server/gate_expression.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace tinyfleet::server {

using storage::Error;
using storage::ErrorCode;

const std::vector<std::string>& gate_metrics() {
  static const std::vector<std::string> metrics = {"failure_rate",       "psi",
                                                   "input_drift",        "accuracy",
                                                   "accuracy_drop",      "energy_regression",
                                                   "latency_regression", "shadow_agreement",
                                                   "min_reporting"};
  return metrics;
}

namespace {

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

std::vector<std::string> split_clauses(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == ',' || (text[i] == '&' && i + 1 < text.size() && text[i + 1] == '&')) {
      out.push_back(cur);
      cur.clear();
      if (text[i] == '&') ++i;
      continue;
    }
    cur += text[i];
  }
  out.push_back(cur);
  return out;
}

}  // namespace

storage::Expected<std::vector<GateClause>> parse_gates(const std::string& text) {
  std::vector<GateClause> out;
  if (trim(text).empty()) return out;
  const auto parts = split_clauses(text);
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string clause = trim(parts[i]);
    const std::string where = "gate clause " + std::to_string(i + 1) + " ('" + clause + "')";
    if (clause.empty()) return Error{ErrorCode::kInvalidArgument, where + " is empty"};
    size_t p = 0;
    while (p < clause.size() &&
           (std::isalnum(static_cast<unsigned char>(clause[p])) || clause[p] == '_')) {
      ++p;
    }
    GateClause g;
    g.metric = clause.substr(0, p);
    const auto& known = gate_metrics();
    if (g.metric.empty() || std::find(known.begin(), known.end(), g.metric) == known.end()) {
      std::string list;
      for (const auto& m : known) list += (list.empty() ? "" : ", ") + m;
      return Error{ErrorCode::kInvalidArgument,
                   where + ": unknown metric '" + g.metric + "' (known: " + list + ")"};
    }
    while (p < clause.size() && std::isspace(static_cast<unsigned char>(clause[p]))) ++p;
    for (const char* op : {"<=", ">=", "<", ">"}) {
      if (clause.compare(p, std::char_traits<char>::length(op), op) == 0) {
        g.op = op;
        break;
      }
    }
    if (g.op.empty()) {
      return Error{ErrorCode::kInvalidArgument,
                   where + ": expected one of <, <=, >, >= after '" + g.metric + "'"};
    }
    const std::string number = trim(clause.substr(p + g.op.size()));
    char* end = nullptr;
    g.threshold = std::strtod(number.c_str(), &end);
    if (number.empty() || !end || *end != '\0') {
      return Error{ErrorCode::kInvalidArgument, where + ": '" + number + "' is not a number"};
    }
    out.push_back(g);
  }
  return out;
}

std::vector<GateResultValue> evaluate_gates(const std::vector<GateClause>& clauses,
                                            const std::map<std::string, std::optional<double>>& m) {
  std::vector<GateResultValue> out;
  for (const auto& c : clauses) {
    GateResultValue r;
    r.clause = c;
    auto it = m.find(c.metric);
    if (it != m.end() && it->second) {
      r.known = true;
      r.value = *it->second;
      const double v = r.value, t = c.threshold;
      r.passed = c.op == "<" ? v < t : c.op == "<=" ? v <= t : c.op == ">" ? v > t : v >= t;
    }
    out.push_back(r);
  }
  return out;
}

}  // namespace tinyfleet::server
