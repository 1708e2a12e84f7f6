#include "tinyfleet/update/agent_reasons.h"

#include "tinyfleet/update/delta_decoder.h"
#include "tinyfleet/update/root_metadata.h"

namespace tinyfleet::update {

namespace {
// The number of one or two decimal digits ending `text`; -1 if it is anything else.
int code_of(const char* text) {
  int n = 0;
  int digits = 0;
  for (; *text != '\0'; ++text, ++digits) {
    if (*text < '0' || *text > '9' || digits == 2) return -1;
    n = n * 10 + (*text - '0');
  }
  return digits == 0 ? -1 : n;
}
}  // namespace

const char* name_detail(const char* detail, StatusEvent event, OfferStatus refusal) {
  if (detail[0] == '\0') {
    const bool refused =
        event == StatusEvent::kOfferRefused || event == StatusEvent::kOfferDeferred;
    return refused ? to_string(refusal) : detail;
  }
  if (detail[0] != '#') return detail;
  if (detail[1] == 'd') {
    const int n = code_of(detail + 2);
    return n >= 1 && n <= static_cast<int>(DeltaStatus::kCodecUnavailable)
               ? to_string(static_cast<DeltaStatus>(n))
               : detail;
  }
  if (detail[1] == 'r') {
    const int n = code_of(detail + 2);
    return n >= 1 && n <= static_cast<int>(RootStatus::kNotSelfSigned)
               ? to_string(static_cast<RootStatus>(n))
               : detail;
  }
  const int n = code_of(detail + 1);
  return n >= 1 && n < static_cast<int>(AgentReason::kEnd) ? kAgentReasonText[n] : detail;
}

}  // namespace tinyfleet::update
