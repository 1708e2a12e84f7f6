#pragma once

// A device's status report (tinyfleet/v1/<fleet>/<device>/status, JSON; see
// docs/update-protocol.md) as a typed value. The engine reads reports only through
// parse_status_report, so the encoding can change in one place.
#include <cstdint>
#include <string>

#include "tinyfleet/storage/error.h"

namespace tinyfleet::server::rollouts {

struct StatusReport {
  std::string event;     // e.g. "offer_refused"; empty for a plain state report
  std::string state;     // the agent's state, e.g. "Running", "RolledBack"
  std::string artifact;  // sha256 (hex) of the artifact the device runs; empty: none
  std::string detail;    // human-readable
  int64_t release = 0;   // the release the device runs
  int64_t failed_release = 0;
};

constexpr size_t kMaxStatusReportBytes = 16 * 1024;
constexpr size_t kMaxStatusFieldBytes = 1024;

// kInvalidArgument naming what is wrong: not a JSON object, over kMaxStatusReportBytes,
// a field of the wrong type, a string over kMaxStatusFieldBytes, a negative release.
// Absent fields take their defaults. Never throws.
storage::Expected<StatusReport> parse_status_report(const std::string& payload);

}  // namespace tinyfleet::server::rollouts
