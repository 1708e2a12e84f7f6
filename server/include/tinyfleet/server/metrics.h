#pragma once

// Prometheus metrics on their own HTTP port (prometheus-cpp's exposer): GET /metrics.
// Counters kept by fleetd's parts are read when scraped; the fleet's state (devices,
// rollouts, phases, gate values) is read from PostgreSQL at most once a second; gRPC
// calls are counted by an interceptor. The metric names are in docs/metrics.md.
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/support/server_interceptor.h>

#include "tinyfleet/storage/database.h"
#include "tinyfleet/storage/error.h"

namespace tinyfleet::server {

class CompileOrchestrator;
class DeviceRejects;
class OfferBuilder;
class RolloutEngine;
class TelemetryIngest;
class UpdatePublisher;

// What the metrics read; any pointer but db may be null (that part is not running).
struct MetricsSources {
  storage::Database* db = nullptr;
  CompileOrchestrator* compiles = nullptr;
  TelemetryIngest* ingest = nullptr;
  UpdatePublisher* publisher = nullptr;
  RolloutEngine* engine = nullptr;
  DeviceRejects* rejects = nullptr;
  OfferBuilder* offers = nullptr;
};

class MetricsServer {
 public:
  // Listens on `listen` (host:port; port 0 picks one). kUnavailable when it cannot.
  static storage::Expected<std::unique_ptr<MetricsServer>> start(const std::string& listen,
                                                                 const MetricsSources& sources);
  ~MetricsServer();
  int port() const;
  // Counts every gRPC call by method and status code (give it to the ServerBuilder).
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> grpc_interceptor();

 private:
  struct Impl;
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tinyfleet::server
