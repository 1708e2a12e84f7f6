// fleetd on the local stack for end-to-end tests: a scratch folder with fresh signing
// keys, and the settings that join fleetd to the stack's broker over TLS with them.
// Header-only: tests that include it link tinyfleet::testing, tinyfleet::storage and
// tinyfleet::update_host.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "tinyfleet/storage/database.h"
#include "tinyfleet/testing/environment.h"
#include "tinyfleet/update/update_keys.h"

namespace tinyfleet::testing {

// Empties `dir` and makes fleetd's keys in dir/keys: a new root and a targets key
// certified for 30 days from now (update::init_keys). False if they could not be made.
inline bool fresh_keys_dir(const std::filesystem::path& dir) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto now = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());
  return static_cast<bool>(update::init_keys((dir / "keys").string(), now, 30));
}

// fleetd's settings for the stack's broker over TLS (fleetd's account, the stack's CA),
// in share group `group`, signing with the keys fresh_keys_dir(dir) made; rollouts tick
// every 200 ms. Callers add their own settings to it.
inline std::map<std::string, std::string> stack_fleetd_settings(const std::filesystem::path& dir,
                                                                const std::string& group) {
  return {{"mqtt.port", require_env("TINYFLEET_MQTT_TLS_PORT")},
          {"mqtt.ca_file", broker_ca_file()},
          {"mqtt.user", require_env("TINYFLEET_MQTT_SERVER_USER")},
          {"mqtt.password", require_env("TINYFLEET_MQTT_SERVER_PASSWORD")},
          {"mqtt.share_group", group},
          {"keys.dir", (dir / "keys").string()},
          {"keys.root_public_key_file", (dir / "keys" / "root.pub").string()},
          {"rollouts.tick_ms", "200"}};
}

// device -> (state, release offered; 0: none) of rollout `name`'s devices; nullopt when
// the database cannot be read.
inline std::optional<std::map<std::string, std::pair<std::string, int64_t>>> rollout_device_states(
    storage::Database& db, const std::string& name) {
  auto rows = db.transact([&](pqxx::work& w) {
    return w.exec_params(
        "SELECT rd.device_id, rd.state, COALESCE(rd.release_seq, 0) FROM rollout_devices rd "
        "JOIN rollouts r ON r.id = rd.rollout_id WHERE r.name = $1",
        name);
  });
  if (!rows) return std::nullopt;
  std::map<std::string, std::pair<std::string, int64_t>> out;
  for (const auto& row : *rows) {
    out[row[0].as<std::string>()] = {row[1].as<std::string>(), row[2].as<int64_t>()};
  }
  return out;
}

}  // namespace tinyfleet::testing
