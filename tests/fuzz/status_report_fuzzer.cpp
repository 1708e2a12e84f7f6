// Arbitrary bytes as a device's status report: the parser must return a value or an
// error, never throw, crash or read out of bounds.
#include <cstdint>
#include <string>

#include "rollouts/status_report.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string payload(reinterpret_cast<const char*>(data), size);
  auto r = tinyfleet::server::rollouts::parse_status_report(payload);
  if (r && (r->release < 0 || r->failed_release < 0 || r->artifact.size() > 1024)) __builtin_trap();
  return 0;
}
