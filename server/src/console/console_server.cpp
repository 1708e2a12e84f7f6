// cpp-httplib as Debian builds it (a shared library; request line and each header line
// at most 8192 bytes, CPPHTTPLIB_REQUEST_URI_MAX_LENGTH and CPPHTTPLIB_HEADER_MAX_LENGTH).
#include <httplib.h>
#include <sys/socket.h>

#include <thread>

#include "console/api.h"
#include "console/assets.h"
#include "console/create_form.h"
#include "console/listen_address.h"
#include "names.h"
#include "rollouts/create.h"
#include "rollouts/operator_actions.h"
#include "tinyfleet/server/authenticator.h"
#include "tinyfleet/server/console.h"
#include "tinyfleet/server/log.h"

namespace tinyfleet::server {

namespace {

using nlohmann::json;
using storage::Error;
using storage::ErrorCode;
using storage::Role;

int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kFailedPrecondition:
    case ErrorCode::kAlreadyExists:
      return 409;
    case ErrorCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

int http_status(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    default:
      return 500;
  }
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(body.dump(), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  send_json(res, status, {{"error", message}});
}

v1::CreateRolloutRequest request_of(const console::CreateForm& f) {
  v1::CreateRolloutRequest r;
  r.set_name(f.name);
  r.set_model(f.model);
  r.set_version(f.version);
  auto* selector = r.mutable_selector();
  selector->set_fleet(f.fleet);
  for (const auto& c : f.device_classes) selector->add_device_classes(c);
  for (const auto& t : f.tags) selector->add_tags(t);
  for (const auto& d : f.device_ids) selector->add_device_ids(d);
  for (const auto& [percent, bake] : f.phases) {
    auto* p = r.add_phases();
    p->set_percent(percent);
    p->set_bake_seconds(bake);
  }
  r.set_gates(f.gates);
  r.set_on_gate_failure(f.on_gate_failure);
  r.set_rate_per_minute(f.rate_per_minute);
  return r;
}

// No SO_REUSEPORT (cpp-httplib's default): a second fleetd on a taken port must fail.
void exclusive_socket(socket_t sock) {
  int yes = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
}

}  // namespace

struct ConsoleServer::Impl {
  storage::Database* db = nullptr;
  const Authenticator* auth = nullptr;
  std::function<void()> wake;
  std::string updates_off;
  GatePolicy gates;
  std::unique_ptr<httplib::Server> http;
  std::thread thread;
  int port = 0;

  // Authorizes the request for `needed`; sends the refusal and returns false otherwise.
  bool allowed(const httplib::Request& req, httplib::Response& res, Role needed, const char* method,
               Caller* caller) const {
    const std::string peer = "http:" + req.remote_addr + ":" + std::to_string(req.remote_port);
    const std::string header = req.get_header_value("Authorization");
    const auto s = auth->authorize(req.has_header("Authorization") ? &header : nullptr, peer,
                                   needed, method, caller);
    if (s.ok()) return true;
    send_error(res, http_status(s.error_code()), s.error_message());
    return false;
  }

  // GET handler reading one document in a transaction; nullopt answers 404 `missing`.
  template <class Read>
  httplib::Server::Handler reader(const char* method, Read read) {
    return [this, method, read](const httplib::Request& req, httplib::Response& res) {
      if (!allowed(req, res, Role::kViewer, method, nullptr)) return;
      std::string missing;
      auto doc = db->transact([&](pqxx::work& w) { return read(w, req.matches, &missing); });
      if (!doc) return send_error(res, http_status(doc.error().code), doc.error().message);
      if (!*doc) return send_error(res, 404, missing);
      send_json(res, 200, **doc);
    };
  }

  void action(const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1], act = req.matches[2];
    Caller caller;
    const std::string method = "console." + act;
    if (!allowed(req, res, Role::kOperator, method.c_str(), &caller)) return;
    auto doc = db->transact([&](pqxx::work& w) {
      rollouts::apply_operator_action(w, name, act, caller.name, gates);
      return console::rollout(w, name);
    });
    if (!doc) return send_error(res, http_status(doc.error().code), doc.error().message);
    log::info("console.action", {{"rollout", name}, {"action", act}, {"token", caller.name}});
    if (wake) wake();
    send_json(res, 200, doc->value_or(json::object()));
  }

  // POST /api/v1/rollouts: the form's rollout, created as gRPC's CreateRollout does.
  void create(const httplib::Request& req, httplib::Response& res) {
    Caller caller;
    if (!allowed(req, res, Role::kOperator, "console.create", &caller)) return;
    const auto form = console::parse_create_form(req.body);
    if (!form) return send_error(res, 400, form.error().message);
    auto doc = db->transact([&](pqxx::work& w) {
      rollouts::create(w, request_of(*form), caller.name, updates_off);
      return console::rollout(w, form->name);
    });
    if (!doc) return send_error(res, http_status(doc.error().code), doc.error().message);
    log::info("console.create", {{"rollout", form->name}, {"token", caller.name}});
    if (wake) wake();
    send_json(res, 201, doc->value_or(json::object()));
  }

  void routes() {
    using Matches = httplib::Match;
    using Doc = std::optional<json>;
    const std::string name = "([a-z0-9][a-z0-9_-]{0,62})";
    http->Get("/api/v1/whoami", [this](const httplib::Request& req, httplib::Response& res) {
      Caller caller;
      if (!allowed(req, res, Role::kViewer, "console.whoami", &caller)) return;
      send_json(res, 200, {{"name", caller.name}, {"role", storage::to_string(caller.role)}});
    });
    http->Get("/api/v1/fleet", [this](const httplib::Request& req, httplib::Response& res) {
      // ?after=ID: the next page (a device id; anything else is refused before the query).
      const std::string after = req.get_param_value("after");
      if (!after.empty() && !names::device(after)) {
        return send_error(res, 400, "after= must be a device id");
      }
      reader("console.fleet", [&after](pqxx::work& w, const Matches&, std::string*) -> Doc {
        return console::fleet(w, after);
      })(req, res);
    });
    http->Get("/api/v1/rollouts",
              reader("console.rollouts", [](pqxx::work& w, const Matches&, std::string*) -> Doc {
                return console::rollouts(w);
              }));
    http->Get("/api/v1/rollouts/" + name,
              reader("console.rollout", [](pqxx::work& w, const Matches& m, std::string* missing) {
                *missing = "rollout '" + std::string(m[1]) + "' does not exist";
                return console::rollout(w, m[1]);
              }));
    http->Get(
        "/api/v1/rollouts/" + name + "/series",
        reader("console.rollout_series", [](pqxx::work& w, const Matches& m, std::string* missing) {
          *missing = "rollout '" + std::string(m[1]) + "' does not exist";
          return console::rollout_series(w, m[1]);
        }));
    http->Get("/api/v1/models",
              reader("console.models", [](pqxx::work& w, const Matches&, std::string*) -> Doc {
                return console::models(w);
              }));
    http->Get("/api/v1/models/" + name + "/versions/([1-9][0-9]{0,8})",
              reader("console.version", [](pqxx::work& w, const Matches& m, std::string* missing) {
                *missing = "model '" + std::string(m[1]) + "' has no version " + std::string(m[2]);
                return console::version(w, m[1], std::stoi(m[2]));
              }));
    http->Post("/api/v1/rollouts",
               [this](const httplib::Request& req, httplib::Response& res) { create(req, res); });
    http->Post("/api/v1/rollouts/" + name + "/(pause|resume|promote|abort)",
               [this](const httplib::Request& req, httplib::Response& res) { action(req, res); });
    http->Get(R"(/[a-z.]*)", [](const httplib::Request& req, httplib::Response& res) {
      const auto* asset = console::find_asset(req.path);
      if (!asset) return send_error(res, 404, "no page " + req.path);
      res.set_header("Content-Security-Policy",
                     "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
      res.set_header("X-Content-Type-Options", "nosniff");
      res.set_content(asset->body, asset->content_type);
    });
    http->set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (res.body.empty()) {
        send_error(res, res.status, "HTTP " + std::to_string(res.status) + " for " + req.path);
      }
    });
  }
};

storage::Expected<std::unique_ptr<ConsoleServer>> ConsoleServer::start(
    const ConsoleSettings& settings, storage::Database& db, const Authenticator& auth,
    std::function<void()> wake_engine) {
  auto address = console::parse_listen_address(settings.listen);
  if (!address) return address.error();
  const bool tls = !settings.cert_file.empty();
  if (!tls && !address->loopback) {
    return Error{ErrorCode::kInvalidArgument,
                 "console.listen " + settings.listen +
                     " is not a loopback address: serving the console off this host needs "
                     "tls.cert_file and tls.key_file"};
  }
  auto impl = std::make_unique<Impl>();
  impl->db = &db;
  impl->gates = settings.gates;
  impl->auth = &auth;
  impl->wake = std::move(wake_engine);
  impl->updates_off = settings.updates_off;
  if (tls) {
    auto https =
        std::make_unique<httplib::SSLServer>(settings.cert_file.c_str(), settings.key_file.c_str());
    if (!https->is_valid()) {
      return Error{ErrorCode::kUnavailable, "the console cannot load " + settings.cert_file +
                                                " and " + settings.key_file + " for HTTPS"};
    }
    impl->http = std::move(https);
  } else {
    impl->http = std::make_unique<httplib::Server>();
  }
  auto& http = *impl->http;
  const int threads = settings.threads;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_socket_options(exclusive_socket);
  http.set_payload_max_length(settings.max_body_bytes);
  http.set_read_timeout(settings.timeout_seconds, 0);
  http.set_write_timeout(settings.timeout_seconds, 0);
  http.set_keep_alive_timeout(2);  // an idle browser connection frees its thread soon
  http.set_keep_alive_max_count(100);
  impl->routes();
  const int port = address->port == 0
                       ? http.bind_to_any_port(address->host)
                       : (http.bind_to_port(address->host, address->port) ? address->port : -1);
  if (port <= 0) {
    return Error{ErrorCode::kUnavailable,
                 "the console cannot listen on " + settings.listen +
                     " (the port is taken, or the address is not one of this host)"};
  }
  impl->port = port;
  impl->thread = std::thread([h = impl->http.get()] { h->listen_after_bind(); });
  return std::unique_ptr<ConsoleServer>(new ConsoleServer(std::move(impl)));
}

ConsoleServer::ConsoleServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ConsoleServer::~ConsoleServer() {
  impl_->http->stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

int ConsoleServer::port() const { return impl_->port; }

}  // namespace tinyfleet::server
