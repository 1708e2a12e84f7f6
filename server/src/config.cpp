#include "tinyfleet/server/config.h"

#include <fstream>
#include <functional>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

extern char** environ;

namespace tinyfleet::server {

namespace {

using storage::Error;
using storage::ErrorCode;
using Setter = std::function<bool(ServerConfig&, const std::string&)>;

Setter text(std::string ServerConfig::*field) {
  return [field](ServerConfig& c, const std::string& v) {
    c.*field = v;
    return true;
  };
}

template <class Int>
Setter number(Int ServerConfig::*field, Int min, Int max) {
  return [=](ServerConfig& c, const std::string& v) {
    try {
      size_t used = 0;
      const long long n = std::stoll(v, &used);
      if (used != v.size() || n < min || n > max) return false;
      c.*field = static_cast<Int>(n);
      return true;
    } catch (const std::exception&) {
      return false;
    }
  };
}

const std::map<std::string, Setter>& settings() {
  static const std::map<std::string, Setter> kSettings = {
      {"listen", text(&ServerConfig::listen)},
      {"port_file", text(&ServerConfig::port_file)},
      {"database.uri", text(&ServerConfig::database_uri)},
      {"database.pool", number(&ServerConfig::database_pool, 1, 256)},
      {"tls.cert_file", text(&ServerConfig::tls_cert_file)},
      {"tls.key_file", text(&ServerConfig::tls_key_file)},
      {"bootstrap_admin_token", text(&ServerConfig::bootstrap_admin_token)},
      {"mqtt.host", text(&ServerConfig::mqtt_host)},
      {"mqtt.port", number(&ServerConfig::mqtt_port, 1, 65535)},
      {"mqtt.passwd_file", text(&ServerConfig::mqtt_passwd_file)},
      {"mqtt.pid", number(&ServerConfig::mqtt_pid, 0, 1 << 30)},
      {"keys.root_public_key_file", text(&ServerConfig::root_public_key_file)},
      {"keys.dir", text(&ServerConfig::keys_dir)},
      {"mqtt.user", text(&ServerConfig::mqtt_user)},
      {"mqtt.password", text(&ServerConfig::mqtt_password)},
      {"mqtt.share_group", text(&ServerConfig::mqtt_share_group)},
      {"updates.chunk_bytes", number(&ServerConfig::update_chunk_bytes, 64, 65536)},
      {"updates.bytes_per_second",
       number<int64_t>(&ServerConfig::update_bytes_per_second, 0, 1ll << 40)},
      {"updates.deltas",
       [](ServerConfig& c, const std::string& v) {
         if (v != "true" && v != "false") return false;
         c.update_deltas = v == "true";
         return true;
       }},
      {"rollouts.tick_ms", number(&ServerConfig::rollout_tick_ms, 10, 60000)},
      {"compile.mode",
       [](ServerConfig& c, const std::string& v) {
         if (v != "remote" && v != "in_process") return false;
         c.compile_mode = v;
         return true;
       }},
      {"compile.optimizer_address", text(&ServerConfig::optimizer_address)},
      {"compile.workers", number(&ServerConfig::compile_workers, 1, 64)},
      {"max_upload_bytes", number<int64_t>(&ServerConfig::max_upload_bytes, 1, 1ll << 34)},
      {"shutdown_grace_seconds", number(&ServerConfig::shutdown_grace_seconds, 0, 3600)},
  };
  return kSettings;
}

std::optional<Error> apply_setting(ServerConfig& c, const std::string& key,
                                   const std::string& value, const std::string& source) {
  auto it = settings().find(key);
  if (it == settings().end()) {
    return Error{ErrorCode::kInvalidArgument, source + ": unknown setting '" + key + "'"};
  }
  if (!it->second(c, value)) {
    return Error{ErrorCode::kInvalidArgument,
                 source + ": bad value '" + value + "' for setting '" + key + "'"};
  }
  return std::nullopt;
}

void flatten(const nlohmann::json& j, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>& out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (it->is_object()) {
      flatten(*it, key, out);
    } else if (it->is_string()) {
      out.emplace_back(key, it->get<std::string>());
    } else {
      out.emplace_back(key, it->dump());
    }
  }
}

std::string env_name(const std::string& key) {
  std::string name = "TINYFLEET_";
  for (char ch : key) name += ch == '.' ? '_' : static_cast<char>(std::toupper(ch));
  return name;
}

}  // namespace

storage::Expected<ServerConfig> load_config(const std::vector<std::string>& args,
                                            const std::map<std::string, std::string>& env) {
  ServerConfig config;
  // Flags as (key, value) pairs; --config is taken out first.
  std::vector<std::pair<std::string, std::string>> flags;
  std::string config_file;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) {
      return Error{ErrorCode::kInvalidArgument, "unexpected argument '" + a + "'"};
    }
    std::string key = a.substr(2), value;
    if (auto eq = key.find('='); eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return Error{ErrorCode::kInvalidArgument, "flag --" + key + " needs a value"};
    }
    if (key == "config") {
      config_file = value;
    } else {
      flags.emplace_back(key, value);
    }
  }
  if (config_file.empty()) {
    if (auto it = env.find("TINYFLEET_CONFIG"); it != env.end()) config_file = it->second;
  }
  if (!config_file.empty()) {
    std::ifstream in(config_file);
    if (!in) return Error{ErrorCode::kInvalidArgument, "cannot read config file " + config_file};
    nlohmann::json j;
    try {
      in >> j;
    } catch (const std::exception& e) {
      return Error{ErrorCode::kInvalidArgument,
                   "config file " + config_file + " is not valid JSON: " + e.what()};
    }
    if (!j.is_object()) {
      return Error{ErrorCode::kInvalidArgument, "config file " + config_file + " is not an object"};
    }
    std::vector<std::pair<std::string, std::string>> entries;
    flatten(j, "", entries);
    for (const auto& [k, v] : entries) {
      if (auto e = apply_setting(config, k, v, "config file " + config_file)) return *e;
    }
  }
  // The local stack's names for the same things.
  const std::map<std::string, std::string> aliases = {{"TINYFLEET_PG_URI", "database.uri"}};
  for (const auto& [name, key] : aliases) {
    if (auto it = env.find(name); it != env.end()) {
      if (auto e = apply_setting(config, key, it->second, "environment " + name)) return *e;
    }
  }
  for (const auto& [key, setter] : settings()) {
    if (auto it = env.find(env_name(key)); it != env.end()) {
      if (auto e = apply_setting(config, key, it->second, "environment " + it->first)) return *e;
    }
  }
  for (const auto& [k, v] : flags) {
    if (auto e = apply_setting(config, k, v, "flag --" + k)) return *e;
  }
  if (config.database_uri.empty()) {
    return Error{ErrorCode::kInvalidArgument,
                 "no database: set database.uri (flag --database.uri, TINYFLEET_DATABASE_URI or "
                 "TINYFLEET_PG_URI)"};
  }
  if (config.tls_cert_file.empty() != config.tls_key_file.empty()) {
    return Error{ErrorCode::kInvalidArgument, "tls.cert_file and tls.key_file go together"};
  }
  return config;
}

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string entry(*e);
    if (auto eq = entry.find('='); eq != std::string::npos) {
      env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
    }
  }
  return env;
}

}  // namespace tinyfleet::server
