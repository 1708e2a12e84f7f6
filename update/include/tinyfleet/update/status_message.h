#pragma once

#include <cstddef>
#include <cstdint>

#include "tinyfleet/update/offer_status.h"
#include "tinyfleet/update/wire_format.h"

namespace tinyfleet::update {

// What the device's update state machine is doing (device_agent/update_agent.h); the
// value is persisted on the device and sent in every status message.
enum class UpdateState : uint8_t {
  kIdle = 0,
  kOffered = 1,
  kDownloading = 2,
  kVerifying = 3,
  kPatching = 4,
  kSelfTest = 5,
  kCommitted = 6,
  kRolledBack = 7,
  kNoModel = 8,  // runs no model: a first install that failed, or a "no model" offer
};
inline constexpr uint8_t kLastUpdateState = 8;
const char* to_string(UpdateState state);

// Why the device sent the status.
enum class StatusEvent : uint8_t {
  kHello = 1,          // on every (re)connect: what the device runs
  kState = 2,          // a state transition was persisted
  kOfferRefused = 3,   // an offer was refused; `refusal` says why
  kError = 4,          // the agent cannot run a model (no valid record, corrupt slots)
  kOfferDeferred = 5,  // a valid offer waits (`refusal` says why: kOnProbation); not a failure
};
inline constexpr uint8_t kLastStatusEvent = 5;
const char* to_string(StatusEvent event);

inline constexpr size_t kMaxDetailBytes = 95;  // a human-readable reason, not parsed

// Published retained on tinyfleet/v1/{fleet}/{device}/status; version 1 (the layout is
// in docs/update-protocol.md). The device's id and fleet are the topic's.
struct StatusMessage {
  char device_class[kMaxNameBytes + 1] = {};
  StatusEvent event = StatusEvent::kState;
  UpdateState state = UpdateState::kIdle;
  OfferStatus refusal = OfferStatus::kOk;  // kOk unless event is kOfferRefused
  bool has_artifact = false;               // false before the first model is installed
  uint64_t release = 0;                    // installed release (0: factory image)
  uint8_t artifact_sha256[32] = {};        // of the installed artifact
  uint64_t pending_release = 0;            // the update in progress or last tried
  uint64_t failed_release = 0;             // a release that failed here (never retried)
  char detail[kMaxDetailBytes + 1] = {};
};
inline constexpr uint8_t kStatusVersion = 1;
inline constexpr size_t kMaxStatusBytes =
    kHeaderBytes + 1 + kMaxNameBytes + 4 + 8 + 32 + 8 + 8 + 1 + kMaxDetailBytes;

// Writes `m` into out[capacity]; *written is its size (0 on failure).
WireStatus encode_status(const StatusMessage& m, uint8_t* out, size_t capacity, size_t* written);
// Reads a status message of a version this side knows into `out`.
WireStatus decode_status(const uint8_t* data, size_t size, StatusMessage* out);

// Copies `text` into a fixed field, cut at the field's size (for details from elsewhere).
template <size_t N>
void set_text(char (&field)[N], const char* text) {
  size_t i = 0;
  for (; text && text[i] != '\0' && i + 1 < N; ++i) field[i] = text[i];
  field[i] = '\0';
}

}  // namespace tinyfleet::update
