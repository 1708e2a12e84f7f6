#pragma once

// A device's status report (tinyfleet/v1/<fleet>/<device>/status, the binary status
// message of update/; see docs/update-protocol.md) as the engine's typed value. The
// engine reads reports only through parse_status_report.
#include <cstdint>
#include <string>

#include "tinyfleet/storage/error.h"
#include "tinyfleet/update/offer_status.h"
#include "tinyfleet/update/status_message.h"

namespace tinyfleet::server::rollouts {

struct StatusReport {
  update::StatusEvent event = update::StatusEvent::kState;  // why the device sent it
  update::UpdateState state = update::UpdateState::kIdle;   // the agent's update state
  std::string artifact;  // sha256 (hex) of the artifact the device runs; empty: none
  std::string detail;    // human-readable; printable ASCII (other bytes become '?')
  int64_t release = 0;   // the release the device runs
  int64_t failed_release = 0;
  update::OfferStatus refusal = update::OfferStatus::kOk;  // why an offer was refused
  // With kOfferRefused, the release of the refused offer (the message's pending release);
  // 0: the device could not read it (the offer did not verify that far).
  int64_t refused_release = 0;

  // The device is between an offer and its commit (or rollback).
  bool updating() const;
};

// kInvalidArgument naming what is wrong (update::decode_status's error and field):
// a wrong magic, kind or version, a truncated message, a string over its bound, an
// enum out of range, a release beyond INT64_MAX. Never throws.
storage::Expected<StatusReport> parse_status_report(const std::string& payload);

}  // namespace tinyfleet::server::rollouts
