#pragma once

#include <optional>
#include <vector>

#include <pqxx/pqxx>

#include "tinyfleet/storage/records.h"

namespace tinyfleet::storage::devices {

// kNotFound for an unknown class, kAlreadyExists for a taken id.
DeviceRecord create(pqxx::work& w, const NewDevice& d);
std::optional<DeviceRecord> find(pqxx::work& w, const std::string& id);
DeviceRecord get(pqxx::work& w, const std::string& id);
// Ordered by id; deprovisioned devices only when filter.status asks for them. Pass the last id of a
// page as filter.after_id for the next.
std::vector<DeviceRecord> list(pqxx::work& w, const DeviceFilter& filter);
void set_status(pqxx::work& w, const std::string& id, const std::string& status);
void record_seen(pqxx::work& w, const std::string& id, const std::string& status);
// kNotFound for an unknown or deprovisioned device.
void set_credential_hash(pqxx::work& w, const std::string& id, const std::string& hash);
// Status "deprovisioned", credential hash cleared; kNotFound if unknown or already so.
void deprovision(pqxx::work& w, const std::string& id);
void set_current_artifact(pqxx::work& w, const std::string& id, const std::string& sha256);

}  // namespace tinyfleet::storage::devices
