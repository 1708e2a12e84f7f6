// ListDevices latency over real gRPC with 100,000 devices in PostgreSQL: one page of
// 100, unfiltered, by class, and by tag, at random positions of the keyset. fleetd
// runs in this process (loopback, plaintext). Needs the local stack:
//   deploy/local/run-bench.sh bench_list_devices
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <random>

#include <grpcpp/grpcpp.h>

#include "tinyfleet/server/fleet_server.h"
#include "tinyfleet/storage/repositories.h"
#include "tinyfleet/testing/scratch_database.h"
#include "tinyfleet/v1/device_registry.grpc.pb.h"

namespace {

constexpr int kDevices = 100000;
const std::string kToken = "tf_bench_admin_token_0123456789";

struct Fleet {
  tinyfleet::testing::ScratchDatabase db{2};
  std::unique_ptr<tinyfleet::server::FleetServer> server;
  std::unique_ptr<tinyfleet::v1::DeviceRegistry::Stub> stub;

  Fleet() {
    auto filled = db.db().transact([](pqxx::work& w) {
      w.exec(
          "INSERT INTO device_classes (name, spec) VALUES "
          "('cortex-m4-256k', '{}'), ('cortex-m7-512k', '{}')");
      w.exec(
          "INSERT INTO devices (id, device_class, tags, credential_hash, status) "
          "SELECT format('dev-%s', lpad(i::text, 6, '0')), "
          "CASE WHEN i % 2 = 0 THEN 'cortex-m4-256k' ELSE 'cortex-m7-512k' END, "
          "CASE WHEN i % 10 = 0 THEN '[\"canary\", \"eu\"]'::jsonb ELSE '[\"eu\"]'::jsonb END, "
          "md5(i::text), CASE WHEN i % 3 = 0 THEN 'online' ELSE 'offline' END "
          "FROM generate_series(1, " +
          std::to_string(kDevices) + ") i");
      w.exec("ANALYZE devices");
      return tinyfleet::storage::Done{};
    });
    if (!filled) throw std::runtime_error(filled.error().message);
    tinyfleet::server::ServerConfig config;
    config.listen = "127.0.0.1:0";
    config.database_uri = db.uri();
    config.bootstrap_admin_token = kToken;
    auto started = tinyfleet::server::FleetServer::start(config);
    if (!started) throw std::runtime_error(started.error().message);
    server = std::move(*started);
    stub = tinyfleet::v1::DeviceRegistry::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(server->port()), grpc::InsecureChannelCredentials()));
  }
};

Fleet& fleet() {
  static Fleet f;
  return f;
}

void run(benchmark::State& state, const std::string& device_class, const std::string& tag) {
  auto& f = fleet();
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> position(0, kDevices - 100);
  std::vector<double> latencies_us;
  for (auto _ : state) {
    tinyfleet::v1::ListDevicesRequest req;
    req.set_device_class(device_class);
    req.set_tag(tag);
    req.set_page_size(100);
    char after[16];
    std::snprintf(after, sizeof after, "dev-%06d", position(rng));
    req.set_page_token(after);
    tinyfleet::v1::ListDevicesResponse resp;
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + kToken);
    const auto t0 = std::chrono::steady_clock::now();
    auto status = f.stub->ListDevices(&ctx, req, &resp);
    const auto t1 = std::chrono::steady_clock::now();
    if (!status.ok() || resp.devices_size() == 0) {
      state.SkipWithError(status.ok() ? "empty page" : status.error_message().c_str());
      break;
    }
    latencies_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  if (latencies_us.empty()) return;
  std::sort(latencies_us.begin(), latencies_us.end());
  auto pct = [&](double p) {
    return latencies_us[std::min(latencies_us.size() - 1,
                                 static_cast<size_t>(p * latencies_us.size()))];
  };
  state.counters["p50_us"] = pct(0.50);
  state.counters["p99_us"] = pct(0.99);
  state.counters["devices_in_db"] = kDevices;
}

void BM_ListDevices_All(benchmark::State& s) { run(s, "", ""); }
void BM_ListDevices_ByClass(benchmark::State& s) { run(s, "cortex-m4-256k", ""); }
void BM_ListDevices_ByTag(benchmark::State& s) { run(s, "", "canary"); }

}  // namespace

BENCHMARK(BM_ListDevices_All)->Iterations(2000)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ListDevices_ByClass)->Iterations(2000)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ListDevices_ByTag)->Iterations(2000)->UseRealTime()->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
