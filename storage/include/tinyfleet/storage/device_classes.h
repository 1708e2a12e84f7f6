#pragma once

#include <optional>
#include <vector>

#include <pqxx/pqxx>

#include "tinyfleet/storage/records.h"

namespace tinyfleet::storage::device_classes {

// Creates the class, or replaces its spec when it exists (the catalog is data).
DeviceClassRecord upsert(pqxx::work& w, const DeviceClassRecord& c);
std::optional<DeviceClassRecord> find(pqxx::work& w, const std::string& name);
DeviceClassRecord get(pqxx::work& w, const std::string& name);  // kNotFound if absent
std::vector<DeviceClassRecord> list(pqxx::work& w);

}  // namespace tinyfleet::storage::device_classes
