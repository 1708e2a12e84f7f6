#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace tinyfleet::server::log {

// Structured logs: one JSON object per line on stderr, e.g.
// {"ts":"2026-11-22T23:59:01.123Z","level":"info","event":"compile.done","model":"kws"}
void write(const char* level, const std::string& event, nlohmann::json fields = {});
inline void info(const std::string& event, nlohmann::json fields = {}) {
  write("info", event, std::move(fields));
}
inline void warn(const std::string& event, nlohmann::json fields = {}) {
  write("warn", event, std::move(fields));
}
inline void error(const std::string& event, nlohmann::json fields = {}) {
  write("error", event, std::move(fields));
}

// gRPC's own log lines (gpr_log) as JSON lines of event "grpc", so stderr stays one
// JSON object per line. Called once at start-up.
void route_grpc_logs();

}  // namespace tinyfleet::server::log
