#include "rollouts/status_report.h"

#include <nlohmann/json.hpp>

namespace tinyfleet::server::rollouts {

namespace {

using storage::Error;
using storage::ErrorCode;

Error invalid(const std::string& what) {
  return Error{ErrorCode::kInvalidArgument, "status report: " + what};
}

}  // namespace

storage::Expected<StatusReport> parse_status_report(const std::string& payload) {
  if (payload.size() > kMaxStatusReportBytes) {
    return invalid(std::to_string(payload.size()) + " bytes, more than " +
                   std::to_string(kMaxStatusReportBytes));
  }
  const auto j = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return invalid("not a JSON object");
  StatusReport r;
  for (auto [key, field] : {std::pair{"event", &r.event}, std::pair{"state", &r.state},
                            std::pair{"artifact", &r.artifact}, std::pair{"detail", &r.detail}}) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_string()) return invalid(std::string("'") + key + "' is not a string");
    const auto& s = it->get_ref<const std::string&>();
    if (s.size() > kMaxStatusFieldBytes) {
      return invalid(std::string("'") + key + "' has " + std::to_string(s.size()) +
                     " bytes, more than " + std::to_string(kMaxStatusFieldBytes));
    }
    *field = s;
  }
  for (auto [key, field] :
       {std::pair{"release", &r.release}, std::pair{"failed_release", &r.failed_release}}) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_number_integer()) return invalid(std::string("'") + key + "' is not an integer");
    if (it->is_number_unsigned() ? it->get<uint64_t>() > uint64_t(INT64_MAX)
                                 : it->get<int64_t>() < 0) {
      return invalid(std::string("'") + key + "' is out of range");
    }
    *field = it->get<int64_t>();
  }
  return r;
}

}  // namespace tinyfleet::server::rollouts
