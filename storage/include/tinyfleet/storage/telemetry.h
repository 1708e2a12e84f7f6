#pragma once

#include <vector>

#include <pqxx/pqxx>

#include "tinyfleet/storage/records.h"

namespace tinyfleet::storage::telemetry {

// Makes the day partitions the rows need, then streams them in with COPY.
void insert_batch(pqxx::work& w, const std::vector<TelemetryRow>& rows);
// The same rows one INSERT at a time (the baseline the benchmark compares against).
void insert_rows(pqxx::work& w, const std::vector<TelemetryRow>& rows);
// Retention: drops the day partitions of the UTC days before the day of `day_unix_ms`;
// returns how many.
int drop_partitions_before(pqxx::work& w, int64_t day_unix_ms);
std::vector<TelemetryRow> for_device(pqxx::work& w, const std::string& device_id,
                                     int64_t since_unix_ms, int limit);

}  // namespace tinyfleet::storage::telemetry
