#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tinyfleet/server/gate_policy.h"
#include "tinyfleet/storage/error.h"

namespace tinyfleet::server {

// fleetd's settings. Each has a dotted key; it is read from a JSON config file
// (nested objects: {"database": {"uri": ...}}), then the environment
// (TINYFLEET_DATABASE_URI: upper case, dots as underscores), then flags
// (--database.uri=... or --database.uri ...), later sources winning.
struct ServerConfig {
  std::string listen = "127.0.0.1:7443";          // host:port; port 0 picks a free one
  std::string port_file;                          // written with the bound port once serving
  std::string metrics_listen = "127.0.0.1:9464";  // Prometheus /metrics; "" turns it off
  std::string console_listen;                     // web console (docs/console.md); "" off
  int console_threads = 8;
  std::string database_uri;                // also from TINYFLEET_PG_URI
  int database_pool = 8;                   // for API calls (gRPC and console)
  int database_engine_pool = 4;            // for the rollout engine, ingestion, presence
  int database_acquire_timeout_ms = 5000;  // no free connection by then: UNAVAILABLE
  int api_rate_per_second = 200;           // calls per token and second; 0: unlimited
  int api_rate_burst = 400;                // calls a token may make at once
  int grpc_max_concurrent_streams = 100;   // per client connection
  int grpc_max_threads = 64;               // threads serving gRPC calls
  int grpc_max_message_bytes = 8 << 20;    // largest gRPC message, either way
  std::string tls_cert_file;               // both set: TLS; neither: plaintext (loopback only)
  std::string tls_key_file;
  bool insecure = false;  // allows plaintext gRPC and MQTT off loopback (never the console)
  std::string bootstrap_admin_token;  // registered as token "bootstrap-admin" if absent
  std::string mqtt_host = "127.0.0.1";
  int mqtt_port = 1883;
  std::string mqtt_fallback;         // other nodes of the broker's cluster: "host:port,host:port"
  std::string mqtt_ca_file;          // set: MQTT over TLS, the broker's certificate pinned to it
  std::string mqtt_passwd_file;      // the broker's password file; provisioning adds to it
  int mqtt_pid = 0;                  // the broker, sent SIGHUP to reload the password file
  std::string root_public_key_file;  // Ed25519 public key the devices pin (32 bytes or hex)
  // Updates and rollouts: the signing keys (targets.key and targets.cert, from
  // `fleetctl keys init`; never the root key) and fleetd's own broker account. Both
  // set: the update publisher, telemetry ingestion and the rollout engine run.
  std::string keys_dir;
  int keys_warn_days = 14;  // warn this many days before the targets key expires
  // The targets key on a PKCS#11 token instead of targets.key (keys.dir keeps targets.cert).
  std::string keys_pkcs11_module;
  std::string keys_pkcs11_token;
  std::string keys_pkcs11_pin_file;
  std::string keys_pkcs11_key_label = "targets";
  std::string mqtt_user;
  std::string mqtt_password;
  std::string mqtt_share_group = "fleetd";  // one per deployment on a shared broker
  int mqtt_offer_sessions = 4;              // more MQTT sessions the leader's offers go out over
  // The listener's persistent broker session (client id), unique per replica; "": a fresh
  // session of a random id at each start (nothing queued for fleetd while it is down).
  std::string mqtt_session;
  // The broker the devices reach: "mosquitto" (shared subscriptions split device messages
  // over replicas) or "nats" (a nats-server cluster's MQTT listener; device messages come
  // through NATS queue groups, fleetd speaks MQTT 3.1.1 to the listener).
  std::string broker_kind = "mosquitto";
  std::string nats_servers;  // comma-separated nats:// URLs of the cluster's nodes
  std::string nats_user;     // "": mqtt.user
  std::string nats_password;
  std::string nats_ca_file;      // set: NATS over TLS, the servers' certificates checked against it
  std::string nats_queue_group;  // "": mqtt.share_group
  // Device accounts on NATS: the file fleetd writes (a `users = [ ... ]` fragment the nodes
  // include in their authorization block; "": mqtt.passwd_file is written instead), and
  // the local nats-server pids sent SIGHUP after a change (comma-separated; "": none).
  std::string nats_accounts_file;
  std::string nats_pids;
  int update_chunk_bytes = 1024;
  bool update_deltas = true;                         // false: offers carry whole artifacts
  int64_t update_bytes_per_second = 0;               // all chunk answers together; 0: unbounded
  int64_t update_device_bytes_per_second = 1 << 20;  // chunk answers to one device; 0: unbounded
  int64_t update_payload_cache_bytes = 256ll << 20;  // payloads kept for chunk answers
  int rollout_tick_ms = 250;
  // The gates' statistics (GatePolicy; docs/rollouts.md "Gate statistics").
  double gates_alpha = 0.01;
  int gates_max_looks = 12;
  int gates_max_wait_seconds = 4 * 3600;
  int gates_min_devices = 5;
  bool gates_fail_on_timeout = true;
  int64_t gates_device_cap = 0;
  double gates_winsorize = 0.05;
  int devices_offline_after_seconds = 600;       // not heard for this long: offline; 0: never
  int telemetry_retention_days = 30;             // day partitions older are dropped; 0: never
  int telemetry_device_windows_per_minute = 60;  // per device; more are counted, not stored
  int telemetry_device_burst = 40;               // windows a device may send at once
  std::string telemetry_spool_dir;               // windows taken but not stored wait here; "": none
  std::string compile_mode = "in_process";       // or "remote" (the Optimizer gRPC service)
  std::string optimizer_address;                 // host:port of the Optimizer service
  // Mutual TLS to the Optimizer service: its CA, and fleetd's client certificate and key.
  std::string optimizer_ca_file;
  std::string optimizer_cert_file;
  std::string optimizer_key_file;
  int compile_workers = 1;
  int64_t max_upload_bytes = 64ll << 20;
  int shutdown_grace_seconds = 10;
};

// The gates.* settings as the rollout engine, Promote and the console use them.
GatePolicy gate_policy(const ServerConfig& c);

// Reads the config file named by --config (if any), then `env`, then the flags in
// `args`. An unknown key, a malformed number or an unreadable file is an error
// naming it.
storage::Expected<ServerConfig> load_config(const std::vector<std::string>& args,
                                            const std::map<std::string, std::string>& env);

// Every setting with its environment name, default and meaning: `fleetd --help` (text)
// and the table in docs/configuration.md (markdown).
std::string settings_help(bool markdown);

// The process environment as a map (for load_config).
std::map<std::string, std::string> process_environment();

}  // namespace tinyfleet::server
