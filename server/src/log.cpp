#include "tinyfleet/server/log.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include <grpc/support/log.h>

namespace tinyfleet::server::log {

namespace {
std::string now_utc() {
  const auto now = std::chrono::system_clock::now();
  const auto t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}
}  // namespace

void write(const char* level, const std::string& event, nlohmann::json fields) {
  nlohmann::json line = {{"ts", now_utc()}, {"level", level}, {"event", event}};
  if (fields.is_object()) line.update(fields);
  const std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  std::fprintf(stderr, "%s\n", text.c_str());
  std::fflush(stderr);
}

namespace {
void grpc_to_json(gpr_log_func_args* args) {
  const char* level = args->severity == GPR_LOG_SEVERITY_ERROR  ? "error"
                      : args->severity == GPR_LOG_SEVERITY_INFO ? "info"
                                                                : "debug";
  write(level, "grpc",
        {{"message", args->message ? args->message : ""},
         {"file", args->file ? args->file : ""},
         {"line", args->line}});
}
}  // namespace

void route_grpc_logs() { gpr_set_log_function(grpc_to_json); }

}  // namespace tinyfleet::server::log
