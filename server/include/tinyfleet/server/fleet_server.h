#pragma once

#include <chrono>
#include <memory>

#include "tinyfleet/server/config.h"
#include "tinyfleet/storage/error.h"

namespace tinyfleet::server {

// fleetd's gRPC side: the database (migrated at start), the services, health and
// reflection, and the compile workers. Constructed running; shutdown() is graceful.
class FleetServer {
 public:
  static storage::Expected<std::unique_ptr<FleetServer>> start(const ServerConfig& config);
  ~FleetServer();

  int port() const;
  // Stops accepting calls, lets in-flight ones finish for up to `grace` (then cancels
  // them), and lets the compile in progress finish its class.
  void shutdown(std::chrono::seconds grace);

 private:
  struct Parts;
  explicit FleetServer(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace tinyfleet::server
