// Arbitrary bytes as the console's listen setting (console.listen, from an operator's
// flag, environment or config file): an address or an error naming what is wrong, never
// a crash; an accepted address has a host and a port in 0..65535.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "console/listen_address.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto a = tinyfleet::server::console::parse_listen_address(text);
  if (a && (a->host.empty() || a->host.size() > 253 || a->port < 0 || a->port > 65535)) {
    std::abort();
  }
  if (!a && a.error().message.empty()) std::abort();
  return 0;
}
