#include "rollouts/status_report.h"

#include <cstdint>

#include "tinyfleet/update/agent_reasons.h"

namespace tinyfleet::server::rollouts {

namespace {
// The detail is stored (rollout_devices.error) and shown: bytes outside printable ASCII
// (control characters, bytes that are not UTF-8, which PostgreSQL would refuse and so fail
// the whole batch of reports) become '?'.
std::string printable(const char* text) {
  std::string out(text);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  }
  return out;
}
}  // namespace

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
  const bool refused = m.event == update::StatusEvent::kOfferRefused;
  if (m.release > uint64_t(INT64_MAX) || m.failed_release > uint64_t(INT64_MAX) ||
      (refused && m.pending_release > uint64_t(INT64_MAX))) {
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
  // A firmware device sends codes, a Linux agent text: both are stored named.
  r.detail = printable(update::name_detail(m.detail, m.event, m.refusal));
  r.release = static_cast<int64_t>(m.release);
  r.failed_release = static_cast<int64_t>(m.failed_release);
  r.refusal = m.refusal;
  if (refused) r.refused_release = static_cast<int64_t>(m.pending_release);
  return r;
}

}  // namespace tinyfleet::server::rollouts
