#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <chrono>

#include "metrics/fleet_collector.h"
#include "tinyfleet/server/metrics.h"

namespace tinyfleet::server {

namespace {

using storage::Error;
using storage::ErrorCode;

// Counts a call when its status is sent: method and code; times it from its start.
class CallCounter : public grpc::experimental::Interceptor {
 public:
  CallCounter(grpc::experimental::ServerRpcInfo* info,
              prometheus::Family<prometheus::Counter>& calls,
              prometheus::Family<prometheus::Histogram>& seconds)
      : method_(info->method() ? info->method() : "unknown"),
        calls_(calls),
        seconds_(seconds),
        start_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using H = grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(H::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      calls_.Add({{"method", method_}, {"code", code_name(status.error_code())}}).Increment();
      seconds_
          .Add({{"method", method_}},
               prometheus::Histogram::BucketBoundaries{0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10, 60})
          .Observe(
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    }
    methods->Proceed();
  }

 private:
  static const char* code_name(grpc::StatusCode c) {
    static const char* kNames[] = {"OK",
                                   "CANCELLED",
                                   "UNKNOWN",
                                   "INVALID_ARGUMENT",
                                   "DEADLINE_EXCEEDED",
                                   "NOT_FOUND",
                                   "ALREADY_EXISTS",
                                   "PERMISSION_DENIED",
                                   "RESOURCE_EXHAUSTED",
                                   "FAILED_PRECONDITION",
                                   "ABORTED",
                                   "OUT_OF_RANGE",
                                   "UNIMPLEMENTED",
                                   "INTERNAL",
                                   "UNAVAILABLE",
                                   "DATA_LOSS",
                                   "UNAUTHENTICATED"};
    const int i = static_cast<int>(c);
    return i >= 0 && i < 17 ? kNames[i] : "UNKNOWN";
  }

  std::string method_;
  prometheus::Family<prometheus::Counter>& calls_;
  prometheus::Family<prometheus::Histogram>& seconds_;
  std::chrono::steady_clock::time_point start_;
};

class CallCounterFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  CallCounterFactory(prometheus::Family<prometheus::Counter>& calls,
                     prometheus::Family<prometheus::Histogram>& seconds)
      : calls_(calls), seconds_(seconds) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new CallCounter(info, calls_, seconds_);
  }

 private:
  prometheus::Family<prometheus::Counter>& calls_;
  prometheus::Family<prometheus::Histogram>& seconds_;
};

}  // namespace

struct MetricsServer::Impl {
  std::unique_ptr<prometheus::Exposer> exposer;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::shared_ptr<metrics::FleetCollector> fleet;
  prometheus::Family<prometheus::Counter>* calls = nullptr;
  prometheus::Family<prometheus::Histogram>* call_seconds = nullptr;
};

storage::Expected<std::unique_ptr<MetricsServer>> MetricsServer::start(
    const std::string& listen, const MetricsSources& sources) {
  auto impl = std::make_unique<Impl>();
  try {
    impl->exposer = std::make_unique<prometheus::Exposer>(listen, 2);
  } catch (const std::exception& e) {
    return Error{ErrorCode::kUnavailable,
                 "cannot serve metrics on " + listen + ": " + std::string(e.what())};
  }
  impl->calls = &prometheus::BuildCounter()
                     .Name("tinyfleet_grpc_calls_total")
                     .Help("gRPC calls answered, by method and status code.")
                     .Register(*impl->registry);
  impl->call_seconds = &prometheus::BuildHistogram()
                            .Name("tinyfleet_grpc_call_seconds")
                            .Help("gRPC call duration, by method, seconds.")
                            .Register(*impl->registry);
  impl->fleet = std::make_shared<metrics::FleetCollector>(sources);
  impl->exposer->RegisterCollectable(impl->registry);
  impl->exposer->RegisterCollectable(impl->fleet);
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsServer::~MetricsServer() = default;

int MetricsServer::port() const {
  const auto ports = impl_->exposer->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MetricsServer::grpc_interceptor() {
  return std::make_unique<CallCounterFactory>(*impl_->calls, *impl_->call_seconds);
}

}  // namespace tinyfleet::server
