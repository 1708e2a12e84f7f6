#pragma once

#include <string>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "rollouts/status_report.h"

namespace tinyfleet::server::rollouts::repo {

// A device's latest report that is neither a refusal nor a rollback: what nearly every
// report is (offer received, downloading, installed, running). plain() says whether
// repo::apply_status may be replaced by apply_plain_statuses for it.
bool plain(const StatusReport& s);

struct PlainStatus {
  std::string fleet, device;
  const StatusReport* report = nullptr;
};

// What repo::apply_status(w, fleet, device, report, /*latest=*/true) does for each
// report, in three statements for the whole batch (a device at most once): the devices'
// artifact, status and last_seen; offered -> updated where the target is installed;
// reverting -> rolled_back where the previous model is back. Returns the rollout rows
// changed.
int apply_plain_statuses(pqxx::work& w, const std::vector<PlainStatus>& reports);

// Locks the devices' rows (FOR UPDATE) in (fleet, id) order, the order presence locks
// them in, before a batch updates them in whatever order its joins take.
void lock_devices(pqxx::work& w, const std::vector<std::string>& ids);

}  // namespace tinyfleet::server::rollouts::repo
