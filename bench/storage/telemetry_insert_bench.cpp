// Telemetry ingestion into PostgreSQL: batched COPY against row-by-row INSERT
// (prepared statement, one transaction per batch) on the same rows.
// Needs the local stack: deploy/local/run-bench.sh runs it.
#include <benchmark/benchmark.h>

#include "tinyfleet/storage/telemetry.h"
#include "tinyfleet/testing/scratch_database.h"

using namespace tinyfleet::storage;

namespace {

std::vector<TelemetryRow> make_rows(int n, int64_t start_ms) {
  std::vector<TelemetryRow> rows;
  rows.reserve(n);
  for (int i = 0; i < n; ++i) {
    TelemetryRow r;
    r.device_id = "dev-" + std::to_string(i % 5000);
    r.ts_unix_ms = start_ms + i;
    r.rollout_id = 7;
    r.artifact_sha256 = std::string(64, 'a' + i % 6);
    r.inferences = 600;
    r.latency_p50_us = 1500 + i % 300;
    r.latency_p95_us = 2100 + i % 400;
    r.energy_uj = 41.5;
    r.output_psi = (i % 100) / 1000.0;
    r.input_drift = 0.1;
    if (i % 4 == 0) r.probe_accuracy = 0.97;
    if (i % 8 == 0) r.shadow_agreement = 0.99;
    rows.push_back(std::move(r));
  }
  return rows;
}

tinyfleet::testing::ScratchDatabase& scratch() {
  static tinyfleet::testing::ScratchDatabase db(1);
  return db;
}

template <void (*Insert)(pqxx::work&, const std::vector<TelemetryRow>&)>
void run(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  int64_t start = 1795305600000;
  for (auto _ : state) {
    auto rows = make_rows(batch, start);
    start += batch;
    auto r = scratch().db().transact([&](pqxx::work& w) {
      Insert(w, rows);
      return Done{};
    });
    if (!r) state.SkipWithError(r.error().message.c_str());
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(state.iterations() * batch),
                                                benchmark::Counter::kIsRate);
}

void BM_TelemetryCopy(benchmark::State& state) { run<telemetry::insert_batch>(state); }
void BM_TelemetryInsertRowByRow(benchmark::State& state) { run<telemetry::insert_rows>(state); }

}  // namespace

BENCHMARK(BM_TelemetryCopy)->Arg(1000)->Arg(10000)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TelemetryInsertRowByRow)
    ->Arg(1000)
    ->Arg(10000)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
