#include "tinyfleet/storage/device_classes.h"

#include "sql.h"

namespace tinyfleet::storage::device_classes {

namespace {
const sql::Statement kUpsert{"device_classes.upsert",
                             "INSERT INTO device_classes (name, spec) VALUES ($1, $2::jsonb) "
                             "ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec "
                             "RETURNING name, spec::text"};
const sql::Statement kFind{"device_classes.find",
                           "SELECT name, spec::text FROM device_classes WHERE name = $1"};
const sql::Statement kList{"device_classes.list",
                           "SELECT name, spec::text FROM device_classes ORDER BY name"};

DeviceClassRecord from_row(const pqxx::row& r) {
  return {r[0].as<std::string>(), r[1].as<std::string>()};
}
}  // namespace

DeviceClassRecord upsert(pqxx::work& w, const DeviceClassRecord& c) {
  return from_row(sql::run(w, kUpsert, c.name, c.spec_json)[0]);
}

std::optional<DeviceClassRecord> find(pqxx::work& w, const std::string& name) {
  auto r = sql::run(w, kFind, name);
  if (r.empty()) return std::nullopt;
  return from_row(r[0]);
}

DeviceClassRecord get(pqxx::work& w, const std::string& name) {
  auto c = find(w, name);
  if (!c) fail(ErrorCode::kNotFound, "device class '" + name + "' does not exist");
  return *c;
}

std::vector<DeviceClassRecord> list(pqxx::work& w) {
  std::vector<DeviceClassRecord> out;
  for (const auto& r : sql::run(w, kList)) out.push_back(from_row(r));
  return out;
}

}  // namespace tinyfleet::storage::device_classes
