#pragma once

// Creating a rollout: the one path behind the gRPC Rollouts service's CreateRollout and
// the console's POST /api/v1/rollouts, so both check, select and refuse alike.
#include <string>

#include <pqxx/pqxx>

#include "tinyfleet/v1/rollouts.pb.h"

namespace tinyfleet::server::rollouts {

// In `w`: the request's own checks (name, phases, gates, on_gate_failure; defaults for
// an empty fleet, phases, on_gate_failure and rate), the model version, the fleet's devices
// the selector matches, the version's artifact for every selected class, and no selected
// device in another active rollout (one created at the same time included); then stores
// the rollout with its devices and appends "rollout.create" by `caller` to the audit log.
// `updates_off` not empty: refused with it (fleetd cannot send updates).
// Throws storage::StorageException naming what is wrong (kInvalidArgument, kNotFound,
// kAlreadyExists, kFailedPrecondition): the messages fleetctl prints and the console's
// form shows.
void create(pqxx::work& w, const v1::CreateRolloutRequest& req, const std::string& caller,
            const std::string& updates_off);

}  // namespace tinyfleet::server::rollouts
