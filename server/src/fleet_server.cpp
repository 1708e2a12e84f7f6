#include "tinyfleet/server/fleet_server.h"

#include <sodium.h>

#include <cctype>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>

#include <unistd.h>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include "console/listen_address.h"
#include "mqtt_options.h"
#include "rate_limiter.h"
#include "reflection_v1.h"
#include "rollouts/repository.h"
#include "tinyfleet/server/admin_service.h"
#include "tinyfleet/server/authenticator.h"
#include "tinyfleet/server/broker_accounts.h"
#include "tinyfleet/server/compile_orchestrator.h"
#include "tinyfleet/server/console.h"
#include "tinyfleet/server/device_presence.h"
#include "tinyfleet/server/device_registry_service.h"
#include "tinyfleet/server/device_rejects.h"
#include "tinyfleet/server/fleet_listener.h"
#include "tinyfleet/server/log.h"
#include "tinyfleet/server/metrics.h"
#include "tinyfleet/server/model_compiler.h"
#include "tinyfleet/server/model_registry_service.h"
#include "tinyfleet/server/nats_queue.h"
#include "tinyfleet/server/offer_builder.h"
#include "tinyfleet/server/rollout_engine.h"
#include "tinyfleet/server/rollouts_service.h"
#include "tinyfleet/server/telemetry_ingest.h"
#include "tinyfleet/server/telemetry_service.h"
#include "tinyfleet/server/update_publisher.h"
#include "tinyfleet/storage/blob_store.h"
#include "tinyfleet/storage/migrations.h"
#include "tinyfleet/update/pkcs11_signer.h"
#include "tinyfleet/update/root_keys.h"
#include "tinyfleet/update/topics.h"
#include "tinyfleet/update/update_keys.h"

namespace tinyfleet::server {

namespace {

using storage::Error;
using storage::ErrorCode;

storage::Expected<std::string> read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Error{ErrorCode::kInvalidArgument, std::string("cannot read ") + what + " " + path};
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// 16 random hex digits (fleetd's MQTT client ids end with them).
std::string random_suffix() {
  if (sodium_init() < 0) return std::to_string(::getpid());
  unsigned char bytes[8];
  randombytes_buf(bytes, sizeof bytes);
  char hex[2 * sizeof bytes + 1];
  sodium_bin2hex(hex, sizeof hex, bytes, sizeof bytes);
  return hex;
}

// The root public key file holds the 32 raw bytes or 64 hex digits.
storage::Expected<std::string> read_root_public_key(const std::string& path) {
  auto text = read_file(path, "root public key file");
  if (!text) return text.error();
  if (text->size() == crypto_sign_PUBLICKEYBYTES) return *text;
  std::string hex;
  for (char c : *text) {
    if (!std::isspace(static_cast<unsigned char>(c))) hex += c;
  }
  std::string raw(crypto_sign_PUBLICKEYBYTES, '\0');
  size_t len = 0;
  if (hex.size() != 2 * crypto_sign_PUBLICKEYBYTES ||
      sodium_hex2bin(reinterpret_cast<unsigned char*>(raw.data()), raw.size(), hex.data(),
                     hex.size(), nullptr, &len, nullptr) != 0 ||
      len != raw.size()) {
    return Error{ErrorCode::kInvalidArgument,
                 "root public key file " + path + " holds neither 32 bytes nor 64 hex digits"};
  }
  return raw;
}

// The online keys: no root secret beside them; the targets key's expiry ahead.
void check_keys(const ServerConfig& config, const update::TargetsKey& key) {
  if (std::filesystem::exists(std::filesystem::path(config.keys_dir) / "root.key")) {
    log::warn("keys.root_online",
              {{"dir", config.keys_dir},
               {"reason",
                "root.key is in keys.dir, which fleetd reads: move it offline (fleetctl keys "
                "init --root-dir keeps it apart)"}});
  }
  const auto now = static_cast<uint64_t>(std::time(nullptr));
  if (now >= key.expires_at) {
    log::error("keys.expired", {{"expires_at", key.expires_at},
                                {"reason",
                                 "no offer can be signed: rotate the targets key "
                                 "(fleetctl keys rotate) and restart fleetd"}});
  } else if (key.expires_at - now <
             uint64_t{static_cast<uint32_t>(config.keys_warn_days)} * 86400) {
    log::warn("keys.expiring", {{"expires_at", key.expires_at},
                                {"days_left", (key.expires_at - now + 86399) / 86400},
                                {"hint", "rotate it: fleetctl keys rotate"}});
  }
}

// The link to the Optimizer service: mutual TLS when its three files are set (load_config
// checks they go together), else plaintext (load_config allows that to loopback only,
// unless insecure).
storage::Expected<std::shared_ptr<grpc::ChannelCredentials>> optimizer_credentials(
    const ServerConfig& config) {
  if (config.optimizer_ca_file.empty()) return grpc::InsecureChannelCredentials();
  auto ca = read_file(config.optimizer_ca_file, "compile.optimizer_ca_file");
  if (!ca) return ca.error();
  auto cert = read_file(config.optimizer_cert_file, "compile.optimizer_cert_file");
  if (!cert) return cert.error();
  auto key = read_file(config.optimizer_key_file, "compile.optimizer_key_file");
  if (!key) return key.error();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = *ca;
  options.pem_private_key = *key;
  options.pem_cert_chain = *cert;
  return grpc::SslCredentials(options);
}

// The targets key's certificate, who signs with it (a PKCS#11 token, or null: its secret
// half from targets.key) and the root metadata chain offers carry.
struct Signing {
  update::TargetsKey certificate;
  std::unique_ptr<update::Signer> signer;
  std::string root_chain;
};

storage::Expected<Signing> load_signing(const ServerConfig& config) {
  Signing s;
  if (config.keys_pkcs11_module.empty()) {
    auto key = update::load_targets_key(config.keys_dir);
    if (!key) return key.error();
    s.certificate = std::move(*key);
  } else {
    auto cert = update::load_targets_certificate(config.keys_dir);
    if (!cert) return cert.error();
    s.certificate = std::move(*cert);
    std::string pin;
    if (!config.keys_pkcs11_pin_file.empty()) {
      std::ifstream in(config.keys_pkcs11_pin_file);
      if (!in) return Error{ErrorCode::kNotFound, "cannot read " + config.keys_pkcs11_pin_file};
      std::getline(in, pin);
    }
    auto token = update::Pkcs11Signer::open(
        {config.keys_pkcs11_module, config.keys_pkcs11_token, pin, config.keys_pkcs11_key_label});
    if (!token) return token.error();
    if ((*token)->public_key() != s.certificate.public_key) {
      return Error{ErrorCode::kFailedPrecondition,
                   "the token's key '" + config.keys_pkcs11_key_label + "' is not the one " +
                       config.keys_dir + "/targets.cert certifies"};
    }
    s.signer = std::move(*token);
  }
  auto chain = update::load_root_chain(config.keys_dir);
  if (!chain) return chain.error();
  s.root_chain = std::move(*chain);
  log::info("keys.loaded", {{"signer", s.signer ? "pkcs11" : "file"},
                            {"root_chain_bytes", static_cast<int64_t>(s.root_chain.size())}});
  return s;
}

// "1,2,3" (nats.pids) as pids.
storage::Expected<std::vector<int>> parse_pids(const std::string& list) {
  std::vector<int> pids;
  size_t at = 0;
  while (at < list.size()) {
    size_t end = list.find(',', at);
    if (end == std::string::npos) end = list.size();
    std::string item = list.substr(at, end - at);
    while (!item.empty() && item.front() == ' ') item.erase(0, 1);
    while (!item.empty() && item.back() == ' ') item.pop_back();
    const bool digits = !item.empty() && item.size() <= 9 &&
                        item.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || std::stoi(item) <= 0) {
      return Error{ErrorCode::kInvalidArgument, "nats.pids: '" + item + "' is not a pid"};
    }
    pids.push_back(std::stoi(item));
    at = end + 1;
  }
  return pids;
}

// The device accounts provisioning writes: NATS entries (nats.accounts_file) or
// Mosquitto's password file (mqtt.passwd_file).
storage::Expected<std::unique_ptr<BrokerAccounts>> make_broker_accounts(
    const ServerConfig& config) {
  if (config.nats_accounts_file.empty()) {
    if (!config.nats_pids.empty()) {
      return Error{ErrorCode::kInvalidArgument, "nats.pids needs nats.accounts_file"};
    }
    return std::make_unique<BrokerAccounts>(config.mqtt_passwd_file, config.mqtt_pid,
                                            std::vector<std::string>{config.mqtt_user});
  }
  if (config.broker_kind != "nats") {
    return Error{ErrorCode::kInvalidArgument, "nats.accounts_file needs broker.kind nats"};
  }
  auto pids = parse_pids(config.nats_pids);
  if (!pids) return pids.error();
  return std::make_unique<BrokerAccounts>(
      AccountFormat::kNats, config.nats_accounts_file, std::move(*pids),
      std::vector<std::string>{config.mqtt_user, config.nats_user});
}

}  // namespace

struct FleetServer::Parts {
  // API calls (gRPC, console) take connections from `db`; the rollout engine, telemetry
  // ingestion, device presence and the publisher from `engine_db`, so no flood of calls
  // can starve them.
  std::unique_ptr<storage::Database> db;
  std::unique_ptr<storage::Database> engine_db;
  std::unique_ptr<RateLimiter> rate_limiter;
  std::unique_ptr<Authenticator> auth;
  std::unique_ptr<BrokerAccounts> broker;
  std::unique_ptr<ModelCompiler> compiler;
  std::unique_ptr<CompileOrchestrator> compiles;
  std::unique_ptr<ModelRegistryService> models;
  std::unique_ptr<DeviceRegistryService> devices;
  std::unique_ptr<AdminService> admin;
  // Updates: present when keys.dir and the broker account are configured.
  std::unique_ptr<storage::PgBlobStore> blobs;
  std::unique_ptr<OfferBuilder> offers;
  std::unique_ptr<DeviceRejects> rejects;
  std::unique_ptr<DevicePresence> presence;
  std::unique_ptr<UpdatePublisher> publisher;
  std::unique_ptr<RolloutEngine> engine;
  std::unique_ptr<TelemetryIngest> ingest;
  std::unique_ptr<FleetListener> listener;
  std::unique_ptr<NatsQueue> nats;  // broker.kind nats: device messages to both of the above
  std::unique_ptr<RolloutsService> rollouts;
  std::unique_ptr<TelemetryService> telemetry;
  std::unique_ptr<ReflectionV1> reflection_v1;
  std::unique_ptr<MetricsServer> metrics;
  std::unique_ptr<ConsoleServer> console;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  bool stopped = false;
};

// Telemetry and chunk requests from the devices, taken in the deployment's queue group
// (one replica gets each) and handed to the listener or the publisher by topic.
static std::unique_ptr<NatsQueue> start_nats_queue(const ServerConfig& config,
                                                   const std::string& id,
                                                   UpdatePublisher& publisher,
                                                   FleetListener& listener) {
  NatsQueueOptions o;
  o.servers = config.nats_servers;
  o.user = config.nats_user.empty() ? config.mqtt_user : config.nats_user;
  o.password = config.nats_user.empty() ? config.mqtt_password : config.nats_password;
  o.ca_file = config.nats_ca_file;
  o.queue_group =
      config.nats_queue_group.empty() ? config.mqtt_share_group : config.nats_queue_group;
  o.name = id + "-nats";
  auto queue = std::make_unique<NatsQueue>(
      std::move(o), [&publisher, &listener](const std::string& topic, const std::string& p) {
        update::TopicName name;
        if (!update::parse_topic(topic.data(), topic.size(), &name).ok()) return;
        if (name.kind == update::TopicKind::kChunkRequest) {
          publisher.handle_request(topic, p);
        } else {
          listener.dispatch(topic, p);
        }
      });
  std::vector<std::string> filters;
  for (auto kind : {update::TopicKind::kTelemetry, update::TopicKind::kChunkRequest}) {
    char filter[update::kMaxTopicBytes];
    update::topic_filter(nullptr, kind, filter, sizeof filter);
    filters.emplace_back(filter);
  }
  if (!queue->start(filters)) return nullptr;
  return queue;
}

storage::Expected<std::unique_ptr<FleetServer>> FleetServer::start(const ServerConfig& config) {
  if (sodium_init() < 0) return Error{ErrorCode::kInternal, "libsodium failed to initialize"};
  auto parts = std::make_unique<Parts>();
  const std::chrono::milliseconds acquire_timeout(config.database_acquire_timeout_ms);
  auto db =
      storage::Database::open({config.database_uri, config.database_pool, 5, acquire_timeout});
  if (!db) return db.error();
  parts->db = std::move(*db);
  auto applied = storage::migrate(*parts->db);
  if (!applied) return applied.error();
  log::info("database.ready", {{"migrations_applied", *applied}});

  parts->auth = std::make_unique<Authenticator>(*parts->db);
  if (config.api_rate_per_second > 0) {
    parts->rate_limiter =
        std::make_unique<RateLimiter>(config.api_rate_per_second, config.api_rate_burst);
    parts->auth->set_rate_limiter(parts->rate_limiter.get());
  }
  if (!config.bootstrap_admin_token.empty()) {
    auto created = parts->auth->ensure_bootstrap_admin(config.bootstrap_admin_token);
    if (!created) return created.error();
    if (*created) log::info("token.bootstrap_admin_created");
  }
  ProvisioningSettings provisioning{config.mqtt_host, config.mqtt_port, ""};
  if (!config.root_public_key_file.empty()) {
    auto key = read_root_public_key(config.root_public_key_file);
    if (!key) return key.error();
    provisioning.root_public_key = *key;
  }
  auto accounts = make_broker_accounts(config);
  if (!accounts) return accounts.error();
  parts->broker = std::move(*accounts);

  if (config.compile_mode == "remote" && !config.optimizer_address.empty()) {
    auto credentials = optimizer_credentials(config);
    if (!credentials) return credentials.error();
    parts->compiler =
        make_remote_compiler(grpc::CreateChannel(config.optimizer_address, *credentials));
  } else if (config.compile_mode == "in_process") {
    parts->compiler = make_in_process_compiler();
  }
  parts->compiles = std::make_unique<CompileOrchestrator>(*parts->db, parts->compiler.get(),
                                                          config.compile_workers);
  parts->models = std::make_unique<ModelRegistryService>(*parts->db, *parts->auth, *parts->compiles,
                                                         config.max_upload_bytes);
  parts->devices = std::make_unique<DeviceRegistryService>(*parts->db, *parts->auth, *parts->broker,
                                                           provisioning);
  parts->admin = std::make_unique<AdminService>(*parts->db, *parts->auth);

  std::string updates_off;
  if (config.keys_dir.empty()) {
    updates_off =
        "fleetd cannot send updates: keys.dir is not set (create keys with "
        "'fleetctl keys init')";
  } else if (config.mqtt_user.empty()) {
    updates_off = "fleetd cannot send updates: mqtt.user and mqtt.password are not set";
  }
  if (updates_off.empty()) {
    auto signing = load_signing(config);
    if (!signing) return signing.error();
    auto& key = signing->certificate;
    check_keys(config, key);
    auto engine_db = storage::Database::open(
        {config.database_uri, config.database_engine_pool, 5, acquire_timeout});
    if (!engine_db) return engine_db.error();
    parts->engine_db = std::move(*engine_db);
    // On a nats-server cluster: MQTT 3.1.1 (its listener speaks no other), and chunk
    // requests and telemetry through a NATS queue group instead of shared subscriptions.
    const bool nats = config.broker_kind == "nats";
    if (nats && config.nats_servers.empty()) {
      return Error{ErrorCode::kInvalidArgument, "broker.kind nats needs nats.servers"};
    }
    set_fleetd_mqtt_v311(nats);
    const std::string broker = (config.mqtt_ca_file.empty() ? "tcp://" : "ssl://") +
                               config.mqtt_host + ":" + std::to_string(config.mqtt_port);
    std::vector<std::string> brokers{broker};
    if (auto fallback = console::parse_address_list(config.mqtt_fallback, "mqtt.fallback", 8)) {
      for (const auto& node : *fallback) {
        const bool v6 = node.host.find(':') != std::string::npos;
        brokers.push_back((config.mqtt_ca_file.empty() ? "tcp://" : "ssl://") +
                          (v6 ? "[" + node.host + "]" : node.host) + ":" +
                          std::to_string(node.port));
      }
    }  // (checked when the configuration was read)
    set_fleetd_mqtt_servers(brokers);
    if (config.mqtt_ca_file.empty()) {
      log::warn("mqtt.plaintext", {{"hint", "set mqtt.ca_file for MQTT over TLS"}});
    } else if (auto ca = read_file(config.mqtt_ca_file, "MQTT CA file"); !ca) {
      return ca.error();
    }
    // Not guessable, so no device can take over fleetd's sessions by its client id.
    const std::string id = "fleetd-" + random_suffix();
    parts->blobs = std::make_unique<storage::PgBlobStore>(*parts->engine_db);
    parts->offers = std::make_unique<OfferBuilder>(
        *parts->engine_db, *parts->blobs, key, static_cast<uint32_t>(config.update_chunk_bytes));
    parts->offers->set_use_deltas(config.update_deltas);
    if (signing->signer) parts->offers->set_signer(std::move(signing->signer));
    parts->offers->set_root_chain(std::move(signing->root_chain));
    parts->publisher = std::make_unique<UpdatePublisher>(
        broker, config.mqtt_user, config.mqtt_password, id + "-updates",
        static_cast<double>(config.update_bytes_per_second), config.mqtt_share_group);
    parts->publisher->set_ca_file(config.mqtt_ca_file);
    parts->rejects = std::make_unique<DeviceRejects>();
    parts->publisher->set_rejects(parts->rejects.get());
    // Any replica answers any chunk request: the device's outstanding offer (one indexed
    // lookup) and its blob, shared between the devices of one payload while any holds it
    // (the publisher calls this on one thread only).
    using Shared = std::map<std::string, std::weak_ptr<const std::string>>;
    parts->publisher->set_payload_loader(
        [db = parts->engine_db.get(), blobs = parts->blobs.get(),
         shared = std::make_shared<Shared>()](
            const std::string&, const std::string& device,
            uint64_t release) -> std::optional<std::shared_ptr<const std::string>> {
          auto sha = db->transact(
              [&](pqxx::work& w) { return rollouts::repo::offered_payload(w, device, release); });
          if (!sha) return std::nullopt;
          if (!*sha) return nullptr;
          if (auto held = (*shared)[**sha].lock()) return held;
          auto payload = blobs->get(**sha);
          if (!payload) return std::nullopt;
          auto loaded = std::make_shared<const std::string>(std::move(*payload));
          if (shared->size() > 1024) {  // forget the payloads no device holds any more
            for (auto it = shared->begin(); it != shared->end();) {
              it = it->second.expired() ? shared->erase(it) : std::next(it);
            }
          }
          (*shared)[**sha] = loaded;
          return loaded;
        });
    parts->publisher->set_limits({static_cast<double>(config.update_device_bytes_per_second),
                                  static_cast<size_t>(config.update_payload_cache_bytes)});
    if (nats) parts->publisher->set_requests_from_caller();
    // On NATS each MQTT session costs JetStream work, and the cluster's listener does not
    // read one packet per connection per turn as Mosquitto does.
    parts->publisher->set_offer_sessions(nats ? 0 : config.mqtt_offer_sessions);
    if (!parts->publisher->start()) {
      return Error{ErrorCode::kUnavailable, "cannot connect the update publisher to " + broker};
    }
    parts->ingest = std::make_unique<TelemetryIngest>(*parts->engine_db);
    parts->ingest->set_rejects(parts->rejects.get());
    TelemetryIngest::Limits telemetry_limits;
    telemetry_limits.windows_per_minute = config.telemetry_device_windows_per_minute;
    telemetry_limits.burst = config.telemetry_device_burst;
    telemetry_limits.retention_days = config.telemetry_retention_days;
    parts->ingest->set_limits(telemetry_limits);
    if (!config.telemetry_spool_dir.empty())
      parts->ingest->set_spool_dir(config.telemetry_spool_dir);
    parts->engine = std::make_unique<RolloutEngine>(
        *parts->engine_db, config.database_uri, *parts->publisher, *parts->offers,
        config.rollout_tick_ms / 1000.0, gate_policy(config));
    parts->engine->set_rejects(parts->rejects.get());
    // On a NATS cluster a retained offer can miss a device subscribing on another node just
    // after the publish (docs/scale.md): unanswered offers go out again.
    if (nats) parts->engine->set_offer_resend(std::chrono::seconds(10));
    // A new leader hears every device's retained status report again (a follower keeps none).
    parts->engine->set_on_leadership([p = parts.get()] {
      if (p->listener) p->listener->resubscribe_statuses();
    });
    parts->presence = std::make_unique<DevicePresence>(
        *parts->engine_db, std::chrono::seconds(config.devices_offline_after_seconds),
        parts->rejects.get());
    auto* engine = parts->engine.get();
    auto* ingest = parts->ingest.get();
    auto* presence = parts->presence.get();
    parts->listener = std::make_unique<FleetListener>(
        broker, config.mqtt_user, config.mqtt_password, id + "-listener", config.mqtt_share_group,
        [engine, presence](const std::string& fleet, const std::string& device,
                           const std::string& p) {
          presence->heard(device);
          engine->on_status(fleet, device, p);
        },
        [ingest, presence](const std::string& fleet, const std::string& device,
                           const std::string& p) {
          presence->heard(device);
          ingest->on_message(fleet, device, p);
        });
    parts->listener->set_ca_file(config.mqtt_ca_file);
    if (!config.mqtt_session.empty()) parts->listener->set_persistent_session(config.mqtt_session);
    parts->listener->set_presence_handler(
        [presence](const std::string& fleet, const std::string& device, const std::string& p) {
          presence->on_presence(fleet, device, p);
        });
    parts->presence->start();
    parts->ingest->start();
    if (nats) parts->listener->set_telemetry_from_caller();
    if (!parts->listener->start()) {
      return Error{ErrorCode::kUnavailable, "cannot connect the fleet listener to " + broker};
    }
    if (nats) {
      parts->nats = start_nats_queue(config, id, *parts->publisher, *parts->listener);
      if (!parts->nats) {
        return Error{ErrorCode::kUnavailable,
                     "cannot subscribe through NATS at " + config.nats_servers};
      }
    }
    parts->engine->start();  // after the listener: its leadership hook re-subscribes there
  } else {
    log::warn("updates.disabled", {{"reason", updates_off}});
  }
  RolloutEngine* engine = parts->engine.get();
  parts->rollouts = std::make_unique<RolloutsService>(
      *parts->db, *parts->auth,
      [engine] {
        if (engine) engine->wake();
      },
      updates_off, gate_policy(config));
  parts->telemetry = std::make_unique<TelemetryService>(*parts->db, *parts->auth);

  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (!config.tls_cert_file.empty()) {
    auto cert = read_file(config.tls_cert_file, "TLS certificate");
    if (!cert) return cert.error();
    auto key = read_file(config.tls_key_file, "TLS key");
    if (!key) return key.error();
    grpc::SslServerCredentialsOptions options;
    options.pem_key_cert_pairs.push_back({*key, *cert});
    credentials = grpc::SslServerCredentials(options);
  } else {
    credentials = grpc::InsecureServerCredentials();
    log::warn("tls.disabled", {{"hint", "set tls.cert_file and tls.key_file"}});
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  if (!config.metrics_listen.empty()) {
    auto metrics = MetricsServer::start(
        config.metrics_listen,
        {parts->db.get(), parts->compiles.get(), parts->ingest.get(), parts->publisher.get(),
         parts->engine.get(), parts->rejects.get(), parts->offers.get()});
    if (!metrics) return metrics.error();
    parts->metrics = std::move(*metrics);
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> counters;
    counters.push_back(parts->metrics->grpc_interceptor());
    builder.experimental().SetInterceptorCreators(std::move(counters));
    log::info("metrics.serving",
              {{"listen", config.metrics_listen}, {"port", parts->metrics->port()}});
  }
  if (!config.console_listen.empty()) {
    ConsoleSettings console_settings{config.console_listen, config.tls_cert_file,
                                     config.tls_key_file, config.console_threads};
    console_settings.updates_off = updates_off;
    console_settings.gates = gate_policy(config);
    auto console = ConsoleServer::start(console_settings, *parts->db, *parts->auth, [engine] {
      if (engine) engine->wake();
    });
    if (!console) return console.error();
    parts->console = std::move(*console);
    log::info("console.serving", {{"listen", config.console_listen},
                                  {"port", parts->console->port()},
                                  {"tls", !config.tls_cert_file.empty()}});
  }
  // No SO_REUSEPORT: a second fleetd on a taken port must fail, not share it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(config.listen, credentials, &parts->port);
  // Limits: message size both ways, streams per connection, and the threads serving
  // calls (a call beyond them is RESOURCE_EXHAUSTED rather than queued without end).
  builder.SetMaxReceiveMessageSize(config.grpc_max_message_bytes);
  builder.SetMaxSendMessageSize(config.grpc_max_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, config.grpc_max_concurrent_streams);
  grpc::ResourceQuota quota("fleetd");
  quota.SetMaxThreads(config.grpc_max_threads);
  builder.SetResourceQuota(quota);
  builder.RegisterService(parts->models.get());
  builder.RegisterService(parts->devices.get());
  builder.RegisterService(parts->admin.get());
  builder.RegisterService(parts->rollouts.get());
  builder.RegisterService(parts->telemetry.get());
  parts->reflection_v1 = std::make_unique<ReflectionV1>(std::vector<std::string>{
      v1::ModelRegistry::service_full_name(), v1::DeviceRegistry::service_full_name(),
      v1::Admin::service_full_name(), v1::Rollouts::service_full_name(),
      v1::Telemetry::service_full_name(), "grpc.health.v1.Health",
      "grpc.reflection.v1alpha.ServerReflection",
      grpc::reflection::v1::ServerReflection::service_full_name()});
  builder.RegisterService(parts->reflection_v1.get());
  parts->server = builder.BuildAndStart();
  if (!parts->server || parts->port == 0) {
    return Error{ErrorCode::kUnavailable,
                 "cannot listen on " + config.listen +
                     " (the port is taken, or the address is not one of this host)"};
  }
  auto resumed = parts->compiles->start();
  if (!resumed) return resumed.error();
  if (!config.port_file.empty()) {
    const std::string tmp = config.port_file + ".tmp";
    std::ofstream(tmp) << parts->port << "\n";
    std::rename(tmp.c_str(), config.port_file.c_str());
  }
  log::info("fleetd.serving", {{"listen", config.listen},
                               {"port", parts->port},
                               {"tls", !config.tls_cert_file.empty()},
                               {"compiler", parts->compiler ? config.compile_mode : "none"}});
  return std::unique_ptr<FleetServer>(new FleetServer(std::move(parts)));
}

FleetServer::FleetServer(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

FleetServer::~FleetServer() { shutdown(std::chrono::seconds(0)); }

int FleetServer::port() const { return parts_->port; }

void FleetServer::shutdown(std::chrono::seconds grace) {
  if (parts_->stopped) return;
  parts_->stopped = true;
  parts_->compiles->stop();  // lets the class being compiled finish; wakes watchers
  parts_->server->Shutdown(std::chrono::system_clock::now() + grace);
  parts_->server->Wait();
  parts_->console.reset();
  if (parts_->nats) parts_->nats->stop();
  if (parts_->listener) parts_->listener->stop();
  if (parts_->presence) parts_->presence->stop();
  if (parts_->engine) parts_->engine->stop();
  if (parts_->ingest) parts_->ingest->stop();  // writes what is queued
  if (parts_->publisher) parts_->publisher->stop();
  log::info("fleetd.stopped");
}

}  // namespace tinyfleet::server
