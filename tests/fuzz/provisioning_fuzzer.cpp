// Arbitrary bytes as the reference firmware's provisioning record (the factory step's
// provision.txt; firmware/src/provisioning.cpp): accepted records hold NUL-terminated
// names in their bounds and numbers in their ranges; a refusal's message fits the
// caller's buffer, NUL-terminated.
#include <cstdint>
#include <cstring>

#include "tinyfleet/firmware/provisioning.h"

using tinyfleet::firmware::Provisioning;

namespace {
void check(bool ok) {
  if (!ok) __builtin_trap();
}
bool text_ok(const char* s, size_t min) {
  const size_t n = strnlen(s, Provisioning::kMaxText);
  return n >= min && n < Provisioning::kMaxText;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Provisioning p;
  char error[24];
  std::memset(error, 'x', sizeof error);
  if (!tinyfleet::firmware::parse_provisioning(reinterpret_cast<const char*>(data), size, &p, error,
                                               sizeof error)) {
    check(std::memchr(error, '\0', sizeof error) != nullptr);
    check(std::strncmp(error, "line ", 5) == 0);
    return 0;
  }
  check(text_ok(p.user, 1) && text_ok(p.password, 1) && text_ok(p.fleet, 1) &&
        text_ok(p.device, 1) && text_ok(p.offer_fleet, 1));
  check(p.rate_ms >= 10 && p.rate_ms <= 60000 && p.window_s >= 1 && p.window_s <= 3600);
  return 0;
}
