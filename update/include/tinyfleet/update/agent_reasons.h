#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/update/status_message.h"

namespace tinyfleet::update {

// The reasons the device agent (device_agent/update_agent.h) gives in a status message's
// detail and its record. A host build sends the text; the firmware build
// (TINYFLEET_AGENT_REASON_CODES=1) sends a short code, and fleetd names it
// (name_detail): "#N" for the N-th reason below, "#dN" for a DeltaStatus, "#rN" for a
// RootStatus, and no detail on a refusal or deferral (its refusal code names it).
// Codes are on the wire: append, never reorder.
#define TINYFLEET_AGENT_REASONS(X)                                                  \
  X(RootNotStored, "cannot store the trusted root metadata")                        \
  X(TargetsKeyRevoked, "the update's targets key was revoked by the root metadata") \
  X(Provisioned, "provisioned without a model")                                     \
  X(FactoryImage, "factory image")                                                  \
  X(ActiveSlotMismatch, "active slot did not match its sha256")                     \
  X(NoSlotMatches, "no slot holds a model matching its recorded sha256")            \
  X(NoRecord, "no valid agent record; waiting for provisioning")                    \
  X(OfferLostAcrossRestart, "offer lost across restart")                            \
  X(SelfTestHung, "new model hung in its self-test (watchdog reset)")               \
  X(SelfTestCrashed, "new model crashed or hung during self-test")                  \
  X(ProbationHung, "new model hung on probation (watchdog reset)")                  \
  X(ProbationRestarted, "restarted while the new model was on probation")           \
  X(ModelHung, "the model hung (watchdog reset)")                                   \
  X(OfferWithdrawn, "offer withdrawn by fleetd")                                    \
  X(NoModelOffered, "no model offered by fleetd: running none")                     \
  X(PayloadTooLong, "server sent more than the payload size")                       \
  X(StagingNotWritten, "cannot write the staging area")                             \
  X(OfferLost, "offer lost")                                                        \
  X(PayloadIncomplete, "payload incomplete")                                        \
  X(StagingNotRead, "cannot read the staging area")                                 \
  X(PayloadMismatch, "payload sha256 mismatch")                                     \
  X(SlotNotOpened, "cannot open the inactive slot")                                 \
  X(SlotNotCommitted, "cannot commit the inactive slot")                            \
  X(BaselineNotStored, "cannot store the model's baseline")                         \
  X(PatchedMismatch, "patched artifact sha256 mismatch")                            \
  X(ModelFailed, "new model failed to run")                                         \
  X(InferenceTooSlow, "new model exceeded the inference time limit")                \
  X(ProbationPassed, "probation passed")                                            \
  X(ModelNotLoaded, "new model does not load")                                      \
  X(SelfTestMisfit, "self-test vector does not fit the new model")                  \
  X(SelfTestTooSlow, "new model exceeded the self-test time limit")                 \
  X(SelfTestDiffers, "self-test output differs from the expected output")           \
  X(SwitchNotStored, "cannot persist the switch")

enum class AgentReason : uint8_t {
  kNone = 0,
#define TF_AGENT_REASON_ENUM(name, text) k##name,
  TINYFLEET_AGENT_REASONS(TF_AGENT_REASON_ENUM)
#undef TF_AGENT_REASON_ENUM
      kEnd,
};
static_assert(static_cast<int>(AgentReason::kEnd) <= 100, "codes are at most two digits");

inline constexpr const char* kAgentReasonText[] = {"",
#define TF_AGENT_REASON_TEXT(name, text) text,
                                                   TINYFLEET_AGENT_REASONS(TF_AGENT_REASON_TEXT)
#undef TF_AGENT_REASON_TEXT
};

// "#NN": the code of reason R, a string constant of 4 bytes.
template <AgentReason R>
struct AgentReasonCode {
  static constexpr char text[4] = {'#', static_cast<char>('0' + static_cast<int>(R) / 10),
                                   static_cast<char>('0' + static_cast<int>(R) % 10), '\0'};
};

// "#" kind NN (kind 'd': a DeltaStatus, 'r': a RootStatus) into out.
inline void format_detail_code(char (&out)[5], char kind, uint8_t code) {
  out[0] = '#';
  out[1] = kind;
  out[2] = static_cast<char>('0' + code / 10 % 10);
  out[3] = static_cast<char>('0' + code % 10);
  out[4] = '\0';
}

// The text a status detail stands for: the name of its code (above), the name of the
// refusal code for an empty detail on a refusal or deferral, else the detail itself (a
// device that sends text; an unknown code stays as it came).
const char* name_detail(const char* detail, StatusEvent event, OfferStatus refusal);

}  // namespace tinyfleet::update

// The agent core's reasons: their text, or their code in a build that sends codes.
#if TINYFLEET_AGENT_REASON_CODES
#define TF_AGENT_REASON(name) \
  (::tinyfleet::update::AgentReasonCode<::tinyfleet::update::AgentReason::k##name>::text)
#else
#define TF_AGENT_REASON(name)                              \
  (::tinyfleet::update::kAgentReasonText[static_cast<int>( \
      ::tinyfleet::update::AgentReason::k##name)])
#endif
