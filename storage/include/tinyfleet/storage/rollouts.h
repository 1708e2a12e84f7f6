#pragma once

#include <optional>
#include <vector>

#include <pqxx/pqxx>

#include "tinyfleet/storage/records.h"

namespace tinyfleet::storage::rollouts {

// kInvalidArgument for no phases, percents not increasing or not ending at 100.
RolloutRecord create(pqxx::work& w, const NewRollout& r);
RolloutRecord get(pqxx::work& w, int64_t id);
std::vector<RolloutRecord> list(pqxx::work& w, bool active_only);
void set_state(pqxx::work& w, int64_t id, const std::string& state, const std::string& reason);
void set_phase_state(pqxx::work& w, int64_t id, int32_t phase, const std::string& state);
void set_current_phase(pqxx::work& w, int64_t id, int32_t phase);

// Admits a device into a phase; kAlreadyExists if it was admitted before.
void admit_device(pqxx::work& w, int64_t rollout_id, const std::string& device_id, int32_t phase);
// Moves a device from `from` to `to` and keeps the phase's counters in step.
// Returns false (and changes nothing) when the device is not in state `from`,
// so two writers racing on one device cannot both win.
bool transition_device(pqxx::work& w, int64_t rollout_id, const std::string& device_id,
                       const std::string& from, const std::string& to,
                       const std::string& error = "");
std::vector<RolloutDeviceRecord> devices(pqxx::work& w, int64_t rollout_id);

}  // namespace tinyfleet::storage::rollouts
