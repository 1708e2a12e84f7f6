#pragma once

// A listen setting (console.listen, fleetd's gRPC listen), "host:port" or "[v6]:port",
// checked before binding.
#include <string>
#include <vector>

#include "tinyfleet/storage/error.h"

namespace tinyfleet::server::console {

struct ListenAddress {
  std::string host;  // without brackets
  int port = 0;      // 0..65535; 0 picks a free one
  bool loopback = false;
};

// kInvalidArgument naming what is wrong: no port, a port that is not a number in
// 0..65535, an empty host, a host over 253 characters.
// localhost, ::1 or 127.x.y.z.
bool is_loopback_host(const std::string& host);

// `setting` names the setting in the error.
storage::Expected<ListenAddress> parse_listen_address(
    const std::string& text, const std::string& setting = "console.listen");

// A comma-separated list of addresses to connect to (mqtt.fallback): each as above but
// with a port in 1..65535; empty text is an empty list; at most `max_entries` and 4,096
// characters. kInvalidArgument names the setting and the entry.
storage::Expected<std::vector<ListenAddress>> parse_address_list(const std::string& text,
                                                                 const std::string& setting,
                                                                 size_t max_entries);

}  // namespace tinyfleet::server::console
