// Arbitrary bytes as the console's listen setting (console.listen, from an operator's
// flag, environment or config file): an address or an error naming what is wrong, never
// a crash; an accepted address has a host and a port in 0..65535. Also as a list of
// addresses (mqtt.fallback): at most 8, each with a host and a port in 1..65535.
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
  // The same bytes as a list of addresses to connect to (mqtt.fallback).
  auto list = tinyfleet::server::console::parse_address_list(text, "mqtt.fallback", 8);
  if (!list && list.error().message.empty()) std::abort();
  if (!list) return 0;
  if (list->size() > 8) std::abort();
  for (const auto& one : *list) {
    if (one.host.empty() || one.port < 1 || one.port > 65535) std::abort();
  }
  return 0;
}
