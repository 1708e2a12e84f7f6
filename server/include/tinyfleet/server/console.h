#pragma once

// The web console: fleetd's own HTTP(S) port (console.listen) serving the console's
// pages, embedded in the binary, and its HTTP/JSON API (docs/console.md) under /api/v1/.
// The same bearer tokens and roles as gRPC; HTTPS with tls.cert_file/tls.key_file,
// plaintext only on a loopback address.
#include <functional>
#include <memory>
#include <string>

#include "tinyfleet/server/gate_policy.h"
#include "tinyfleet/storage/database.h"
#include "tinyfleet/storage/error.h"

namespace tinyfleet::server {

class Authenticator;

struct ConsoleSettings {
  std::string listen;     // host:port; port 0 picks one
  std::string cert_file;  // PEM; with key_file, HTTPS
  std::string key_file;
  int threads = 8;                // connections served at once (a kept-alive one holds its thread)
  int timeout_seconds = 10;       // read and write, per request
  size_t max_body_bytes = 16384;  // the largest request body (the create-rollout form)
  std::string updates_off;        // not empty: fleetd cannot send updates, rollouts refused
  GatePolicy gates;               // how Promote decides the gates (as the engine does)
};

class ConsoleServer {
 public:
  // kInvalidArgument for a malformed listen address or plaintext off loopback;
  // kUnavailable when the port is taken or TLS files do not load.
  static storage::Expected<std::unique_ptr<ConsoleServer>> start(const ConsoleSettings& settings,
                                                                 storage::Database& db,
                                                                 const Authenticator& auth,
                                                                 std::function<void()> wake_engine);
  ~ConsoleServer();  // stops serving
  int port() const;

 private:
  struct Impl;
  explicit ConsoleServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tinyfleet::server
