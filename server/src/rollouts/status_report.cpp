#include "rollouts/status_report.h"

#include <cstdint>

namespace tinyfleet::server::rollouts {

bool StatusReport::updating() const {
  using S = update::UpdateState;
  return state == S::kOffered || state == S::kDownloading || state == S::kVerifying ||
         state == S::kPatching || state == S::kSelfTest;
}

storage::Expected<StatusReport> parse_status_report(const std::string& payload) {
  update::StatusMessage m;
  const update::WireStatus st =
      update::decode_status(reinterpret_cast<const uint8_t*>(payload.data()), payload.size(), &m);
  if (!st.ok()) {
    return storage::Error{
        storage::ErrorCode::kInvalidArgument,
        std::string("status report: ") + st.field + ": " + update::to_string(st.error)};
  }
  if (m.release > uint64_t(INT64_MAX) || m.failed_release > uint64_t(INT64_MAX)) {
    return storage::Error{storage::ErrorCode::kInvalidArgument,
                          "status report: release out of range"};
  }
  StatusReport r;
  r.event = m.event;
  r.state = m.state;
  if (m.has_artifact) {
    char hex[65];
    update::to_hex(m.artifact_sha256, 32, hex);
    r.artifact = hex;
  }
  r.detail = m.detail;
  r.release = static_cast<int64_t>(m.release);
  r.failed_release = static_cast<int64_t>(m.failed_release);
  r.refusal = m.refusal;
  return r;
}

}  // namespace tinyfleet::server::rollouts
