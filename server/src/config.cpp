#include "tinyfleet/server/config.h"

#include <fstream>
#include <functional>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "console/listen_address.h"

extern char** environ;

namespace tinyfleet::server {

namespace {

using storage::Error;
using storage::ErrorCode;
using Setter = std::function<bool(ServerConfig&, const std::string&)>;
using Getter = std::function<std::string(const ServerConfig&)>;

// One setting: how to set it from text, how to print its value, what it means.
struct Setting {
  Setter set;
  Getter get;
  std::string help;
};

Setting text(std::string ServerConfig::*field, std::string help) {
  return {[field](ServerConfig& c, const std::string& v) {
            c.*field = v;
            return true;
          },
          [field](const ServerConfig& c) { return c.*field; }, std::move(help)};
}

template <class Int>
Setting number(Int ServerConfig::*field, Int min, Int max, std::string help) {
  return {[=](ServerConfig& c, const std::string& v) {
            try {
              size_t used = 0;
              const long long n = std::stoll(v, &used);
              if (used != v.size() || n < min || n > max) return false;
              c.*field = static_cast<Int>(n);
              return true;
            } catch (const std::exception&) {
              return false;
            }
          },
          [field](const ServerConfig& c) { return std::to_string(c.*field); },
          help + " (" + std::to_string(min) + ".." + std::to_string(max) + ")"};
}

// A setting that takes one of `values`.
Setting choice(std::string ServerConfig::*field, std::vector<std::string> values,
               std::string help) {
  std::string names;
  for (const auto& v : values) names += (names.empty() ? "" : ", ") + v;
  return {[field, values](ServerConfig& c, const std::string& v) {
            for (const auto& ok : values) {
              if (v == ok) c.*field = v;
            }
            return c.*field == v;
          },
          [field](const ServerConfig& c) { return c.*field; }, help + " (" + names + ")"};
}

// A real number in [min, max].
Setting real(double ServerConfig::*field, double min, double max, std::string help) {
  return {[=](ServerConfig& c, const std::string& v) {
            try {
              size_t used = 0;
              const double x = std::stod(v, &used);
              if (used != v.size() || !(x >= min && x <= max)) return false;
              c.*field = x;
              return true;
            } catch (const std::exception&) {
              return false;
            }
          },
          [field](const ServerConfig& c) {
            std::ostringstream out;
            out << c.*field;
            return out.str();
          },
          help + " (" +
              [&] {
                std::ostringstream out;
                out << min << ".." << max;
                return out.str();
              }() +
              ")"};
}

Setting flag(bool ServerConfig::*field, std::string help) {
  return {[field](ServerConfig& c, const std::string& v) {
            if (v != "true" && v != "false") return false;
            c.*field = v == "true";
            return true;
          },
          [field](const ServerConfig& c) { return std::string(c.*field ? "true" : "false"); },
          help + " (true, false)"};
}

// Every setting fleetd reads; --help and docs/configuration.md are printed from it.
const std::map<std::string, Setting>& settings() {
  using C = ServerConfig;
  static const std::map<std::string, Setting> kSettings = {
      {"listen", text(&C::listen, "gRPC address host:port; port 0 picks a free one")},
      {"port_file", text(&C::port_file, "file written with the bound port once serving")},
      {"metrics.listen", text(&C::metrics_listen,
                              "Prometheus GET /metrics address host:port (port 0 picks one); "
                              "empty: no metrics")},
      {"console.listen",
       text(&C::console_listen,
            "web console and HTTP/JSON API address host:port (port 0 picks one; HTTPS with "
            "tls.cert_file, else loopback only); empty: no console")},
      {"console.threads",
       number(
           &C::console_threads, 1, 64,
           "console connections served at once (an idle kept-alive one holds its thread for 2 s)")},
      {"database.uri",
       text(&C::database_uri, "PostgreSQL URI (required; also from TINYFLEET_PG_URI)")},
      {"database.pool",
       number(&C::database_pool, 1, 256, "database connections for API calls (gRPC, console)")},
      {"database.engine_pool",
       number(&C::database_engine_pool, 1, 256,
              "database connections for the rollout engine, telemetry ingestion and device "
              "presence (apart from API calls, so no flood of calls starves them)")},
      {"database.acquire_timeout_ms",
       number(&C::database_acquire_timeout_ms, 1, 600000,
              "wait for a free database connection, ms; then the call is UNAVAILABLE")},
      {"api.rate_per_second",
       number(&C::api_rate_per_second, 0, 1000000,
              "gRPC and console calls per bearer token and second (token bucket; beyond: "
              "RESOURCE_EXHAUSTED); 0: unlimited")},
      {"api.rate_burst",
       number(&C::api_rate_burst, 1, 1000000, "calls one bearer token may make at once")},
      {"grpc.max_concurrent_streams", number(&C::grpc_max_concurrent_streams, 1, 100000,
                                             "gRPC calls open at once on one client connection")},
      {"grpc.max_threads", number(&C::grpc_max_threads, 2, 4096,
                                  "threads serving gRPC calls (beyond: RESOURCE_EXHAUSTED)")},
      {"grpc.max_message_bytes",
       number(&C::grpc_max_message_bytes, 1 << 16, 1 << 30, "largest gRPC message, bytes")},
      {"tls.cert_file",
       text(&C::tls_cert_file, "PEM certificate: with tls.key_file, gRPC over TLS")},
      {"tls.key_file", text(&C::tls_key_file, "PEM private key of tls.cert_file")},
      {"insecure",
       flag(&C::insecure,
            "true: plaintext off loopback is allowed (gRPC without tls.cert_file, MQTT without "
            "mqtt.ca_file, the Optimizer link without compile.optimizer_*); false: fleetd "
            "refuses to start with it")},
      {"bootstrap_admin_token",
       text(&C::bootstrap_admin_token, "registered as admin token 'bootstrap-admin' if absent")},
      {"mqtt.host", text(&C::mqtt_host, "the broker's host")},
      {"mqtt.port", number(&C::mqtt_port, 1, 65535, "the broker's port")},
      {"mqtt.fallback",
       text(&C::mqtt_fallback,
            "other nodes of the broker's cluster, comma-separated host:port (at most 8): "
            "fleetd's MQTT sessions go to the next one when theirs dies; empty: mqtt.host only")},
      {"mqtt.ca_file",
       text(&C::mqtt_ca_file,
            "PEM CA the broker's certificate must chain to (and name mqtt.host): set, MQTT over "
            "TLS (ssl://); empty, plaintext")},
      {"mqtt.passwd_file",
       text(&C::mqtt_passwd_file, "the broker's password file; provisioning adds devices to it")},
      {"mqtt.pid", number(&C::mqtt_pid, 0, 1 << 30, "the broker's pid, sent SIGHUP to reload")},
      {"keys.root_public_key_file",
       text(&C::root_public_key_file, "Ed25519 public key the devices pin (32 bytes or hex)")},
      {"keys.dir", text(&C::keys_dir,
                        "targets.key, targets.cert and root-vN.meta from 'fleetctl keys init' "
                        "(not root.key)")},
      {"keys.pkcs11_module",
       text(&C::keys_pkcs11_module,
            "PKCS#11 module holding the targets key (then keys.dir needs only targets.cert)")},
      {"keys.pkcs11_token", text(&C::keys_pkcs11_token, "label of the token with the targets key")},
      {"keys.pkcs11_pin_file",
       text(&C::keys_pkcs11_pin_file, "file holding the token's user PIN (mode 0600)")},
      {"keys.pkcs11_key_label",
       text(&C::keys_pkcs11_key_label, "CKA_LABEL of the Ed25519 targets key pair on the token")},
      {"keys.warn_days",
       number(&C::keys_warn_days, 0, 3650, "warn this many days before the targets key expires")},
      {"mqtt.user", text(&C::mqtt_user, "fleetd's own broker account")},
      {"mqtt.password", text(&C::mqtt_password, "password of mqtt.user")},
      {"mqtt.offer_sessions",
       number(&C::mqtt_offer_sessions, 0, 16,
              "more MQTT sessions a phase's offers go out over, in turn (Mosquitto reads one "
              "packet per connection per turn of its loop); 0: the publisher's one session; "
              "not used with broker.kind nats")},
      {"mqtt.share_group",
       text(&C::mqtt_share_group,
            "shared-subscription group; one per deployment on a broker; empty: plain "
            "subscriptions, for one fleetd (Mosquitto keeps those across its restarts, not "
            "shared ones)")},
      {"mqtt.session",
       text(&C::mqtt_session,
            "the listener's persistent session (client id, one per replica): the broker keeps "
            "statuses and telemetry for it while fleetd is down; empty: a fresh one each start")},
      {"broker.kind",
       choice(&C::broker_kind, {"mosquitto", "nats"},
              "mosquitto: device messages split over replicas by MQTT shared subscriptions; "
              "nats: a nats-server cluster (mqtt.host/port its MQTT listener, spoken as MQTT "
              "3.1.1), device messages taken through NATS queue groups (nats.*)")},
      {"nats.servers",
       text(&C::nats_servers,
            "broker.kind nats: comma-separated nats:// URLs of the cluster's nodes (fleetd "
            "reconnects to another when one dies)")},
      {"nats.user", text(&C::nats_user, "fleetd's NATS account; empty: mqtt.user")},
      {"nats.password", text(&C::nats_password, "password of nats.user; empty: mqtt.password")},
      {"nats.ca_file",
       text(&C::nats_ca_file, "PEM CA the NATS servers' certificates must chain to: set, TLS")},
      {"nats.queue_group",
       text(&C::nats_queue_group,
            "queue group the replicas of one deployment join; empty: mqtt.share_group")},
      {"nats.accounts_file",
       text(&C::nats_accounts_file,
            "broker.kind nats: the file of device accounts provisioning writes (a 'users = [ "
            "... ]' fragment every node includes in its authorization block); empty: "
            "mqtt.passwd_file")},
      {"nats.pids",
       text(&C::nats_pids,
            "comma-separated pids of local nats-server nodes, sent SIGHUP after "
            "nats.accounts_file changes; empty: none (another tool distributes the file)")},
      {"updates.chunk_bytes", number(&C::update_chunk_bytes, 64, 65536, "update chunk size")},
      {"updates.bytes_per_second",
       number<int64_t>(&C::update_bytes_per_second, 0, 1ll << 40,
                       "all chunk answers together, bytes/s; 0: unbounded")},
      {"updates.deltas", flag(&C::update_deltas, "false: offers carry whole artifacts")},
      {"updates.device_bytes_per_second",
       number<int64_t>(&C::update_device_bytes_per_second, 0, 1ll << 40,
                       "chunk answers to one device, bytes/s; 0: unbounded")},
      {"updates.payload_cache_bytes",
       number<int64_t>(&C::update_payload_cache_bytes, 1 << 20, 1ll << 40,
                       "update payloads kept in memory, bytes (least recently used go first)")},
      {"devices.offline_after_seconds",
       number(&C::devices_offline_after_seconds, 0, 7 * 86400,
              "a device not heard for this long is marked offline; 0: only by its presence; "
              "a tenth of it (1-30 s) is how far last_seen may lag")},
      {"telemetry.retention_days",
       number(&C::telemetry_retention_days, 0, 36500,
              "telemetry day partitions older than this are dropped (hourly); 0: kept for ever")},
      {"telemetry.device_windows_per_minute",
       number(&C::telemetry_device_windows_per_minute, 1, 60000,
              "telemetry windows stored per device and minute; more are counted and dropped")},
      {"telemetry.spool_dir",
       text(&C::telemetry_spool_dir,
            "folder (one per replica) where windows taken from the broker wait until stored; "
            "a killed fleetd replays them at start; empty: none")},
      {"telemetry.device_burst",
       number(&C::telemetry_device_burst, 1, 100000,
              "telemetry windows a device may send at once (its offline ring is 32)")},
      {"rollouts.tick_ms", number(&C::rollout_tick_ms, 10, 60000, "rollout engine period, ms")},
      {"gates.alpha",
       real(&C::gates_alpha, 1e-6, 0.5, "a gate's false-decision probability, over all its looks")},
      {"gates.max_looks", number(&C::gates_max_looks, 1, 1000,
                                 "looks after the bake, spread over gates.max_wait_seconds")},
      {"gates.max_wait_seconds",
       number(&C::gates_max_wait_seconds, 0, 30 * 86400,
              "a gate still undecided this long after the bake takes the timeout action")},
      {"gates.min_devices",
       number(&C::gates_min_devices, 2, 100000, "reporting devices a group needs to decide")},
      {"gates.fail_on_timeout",
       flag(&C::gates_fail_on_timeout, "the timeout action: fail the phase (false: pass it)")},
      {"gates.device_cap",
       number<int64_t>(&C::gates_device_cap, 0, 1ll << 40,
                       "trials (probes, inferences) one device counts at most; 0: the median")},
      {"gates.winsorize",
       real(&C::gates_winsorize, 0, 0.25,
            "per-device rates are clipped to this quantile at each end before pooling")},
      {"compile.mode", choice(&C::compile_mode, {"in_process", "remote"},
                              "where models compile: in fleetd, or the Optimizer service")},
      {"compile.optimizer_address",
       text(&C::optimizer_address, "host:port of the Optimizer service (compile.mode remote)")},
      {"compile.optimizer_ca_file",
       text(&C::optimizer_ca_file,
            "PEM CA the Optimizer service's certificate must chain to: set, mutual TLS")},
      {"compile.optimizer_cert_file",
       text(&C::optimizer_cert_file,
            "PEM client certificate fleetd shows the Optimizer service (mutual TLS)")},
      {"compile.optimizer_key_file",
       text(&C::optimizer_key_file, "PEM private key of compile.optimizer_cert_file")},
      {"compile.workers", number(&C::compile_workers, 1, 64, "compiles at once")},
      {"max_upload_bytes",
       number<int64_t>(&C::max_upload_bytes, 1, 1ll << 34, "largest uploaded file, bytes")},
      {"shutdown_grace_seconds",
       number(&C::shutdown_grace_seconds, 0, 3600, "time in-flight calls get on SIGTERM")},
  };
  return kSettings;
}

std::optional<Error> apply_setting(ServerConfig& c, const std::string& key,
                                   const std::string& value, const std::string& source) {
  auto it = settings().find(key);
  if (it == settings().end()) {
    return Error{ErrorCode::kInvalidArgument, source + ": unknown setting '" + key + "'"};
  }
  if (!it->second.set(c, value)) {
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

// "unix:..." and loopback hosts stay on this machine.
bool local_address(const std::string& listen, const std::string& host) {
  if (listen.rfind("unix:", 0) == 0) return true;
  return console::is_loopback_host(host);
}

// Plaintext leaves this machine only when `insecure` says so; the optimizer link is
// either mutual TLS (all three files) or plaintext to a loopback worker.
std::optional<Error> check_transport_security(const ServerConfig& c) {
  const auto refuse = [](const std::string& why) {
    return Error{ErrorCode::kInvalidArgument, why};
  };
  if (c.listen.rfind("unix:", 0) != 0) {
    auto address = console::parse_listen_address(c.listen, "listen");
    if (!address) return address.error();
    if (c.tls_cert_file.empty() && !address->loopback && !c.insecure) {
      return refuse("listen " + c.listen +
                    " is not a loopback address and gRPC would be plaintext: set tls.cert_file "
                    "and tls.key_file, or insecure=true (--insecure=true) to allow plaintext");
    }
  }
  if (c.mqtt_ca_file.empty() && !local_address("", c.mqtt_host) && !c.insecure) {
    return refuse("mqtt.host " + c.mqtt_host +
                  " is not a loopback address and MQTT would be plaintext: set mqtt.ca_file, "
                  "or insecure=true (--insecure=true) to allow plaintext");
  }
  auto fallback = console::parse_address_list(c.mqtt_fallback, "mqtt.fallback", 8);
  if (!fallback) return fallback.error();
  for (const auto& node : *fallback) {
    if (c.mqtt_ca_file.empty() && !node.loopback && !c.insecure) {
      return refuse("mqtt.fallback " + node.host +
                    " is not a loopback address and MQTT would be plaintext: set mqtt.ca_file, "
                    "or insecure=true (--insecure=true) to allow plaintext");
    }
  }
  const int optimizer_files =
      !c.optimizer_ca_file.empty() + !c.optimizer_cert_file.empty() + !c.optimizer_key_file.empty();
  if (optimizer_files != 0 && optimizer_files != 3) {
    return refuse(
        "compile.optimizer_ca_file, compile.optimizer_cert_file and "
        "compile.optimizer_key_file go together (mutual TLS)");
  }
  if (c.compile_mode == "remote" && !c.optimizer_address.empty() && optimizer_files == 0 &&
      !c.insecure) {
    const auto colon = c.optimizer_address.rfind(':');
    std::string host = c.optimizer_address.substr(0, colon == std::string::npos ? 0 : colon);
    if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    if (!local_address(c.optimizer_address, host)) {
      return refuse("compile.optimizer_address " + c.optimizer_address +
                    " is not a loopback address and the link would be plaintext and "
                    "unauthenticated: set compile.optimizer_ca_file, compile.optimizer_cert_file "
                    "and compile.optimizer_key_file, or insecure=true");
    }
  }
  return std::nullopt;
}

}  // namespace

GatePolicy gate_policy(const ServerConfig& c) {
  GatePolicy g;
  g.alpha = c.gates_alpha;
  g.max_looks = c.gates_max_looks;
  g.max_wait_seconds = c.gates_max_wait_seconds;
  g.min_devices = c.gates_min_devices;
  g.fail_on_timeout = c.gates_fail_on_timeout;
  g.device_cap = static_cast<uint64_t>(c.gates_device_cap);
  g.winsorize = c.gates_winsorize;
  return g;
}

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
  for (const auto& [key, setting] : settings()) {
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
  if (auto e = check_transport_security(config)) return *e;
  return config;
}

std::string settings_help(bool markdown) {
  const ServerConfig defaults;
  std::ostringstream out;
  if (markdown) {
    out << "| setting | environment | default | meaning |\n|---|---|---|---|\n";
  } else {
    out << "fleetd: the tinyfleet server\n\n"
           "  fleetd [--config FILE.json] [--SETTING VALUE | --SETTING=VALUE]...\n"
           "  fleetd --help [markdown]\n\n"
           "A setting comes from the JSON config file (nested objects: {\"database\": {\"uri\": "
           "...}}),\nthen the environment, then flags; later sources win. An unknown setting "
           "or a bad\nvalue stops fleetd with a message naming it (exit 2).\n\n";
  }
  for (const auto& [key, s] : settings()) {
    const std::string def = s.get(defaults);
    if (markdown) {
      out << "| `" << key << "` | `" << env_name(key) << "` | "
          << (def.empty() ? "" : "`" + def + "`") << " | " << s.help << " |\n";
    } else {
      out << "  --" << key << (def.empty() ? "" : " (default " + def + ")") << "\n      " << s.help
          << "; " << env_name(key) << "\n";
    }
  }
  return out.str();
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
