#include "console/listen_address.h"

#include <algorithm>

namespace tinyfleet::server::console {

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

storage::Expected<ListenAddress> parse_listen_address(const std::string& text,
                                                      const std::string& setting) {
  const auto invalid = [&](const std::string& why) {
    return storage::Error{storage::ErrorCode::kInvalidArgument,
                          setting + " '" + text.substr(0, 300) + "': " + why};
  };
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return invalid("needs host:port");
  ListenAddress out;
  out.host = text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']') {
    out.host = out.host.substr(1, out.host.size() - 2);
  } else if (out.host.find(':') != std::string::npos) {
    return invalid("an IPv6 host goes in brackets: [::1]:8443");
  }
  if (out.host.empty()) return invalid("the host is empty");
  if (out.host.size() > 253) return invalid("the host is longer than 253 characters");
  if (port.empty() || port.size() > 5) return invalid("the port must be a number 0..65535");
  for (char c : port) {
    if (c < '0' || c > '9') return invalid("the port must be a number 0..65535");
  }
  out.port = std::stoi(port);
  if (out.port > 65535) return invalid("the port must be a number 0..65535");
  out.loopback = is_loopback_host(out.host);
  return out;
}

storage::Expected<std::vector<ListenAddress>> parse_address_list(const std::string& text,
                                                                 const std::string& setting,
                                                                 size_t max_entries) {
  const auto invalid = [&](const std::string& why) {
    return storage::Error{storage::ErrorCode::kInvalidArgument, setting + ": " + why};
  };
  std::vector<ListenAddress> out;
  if (text.empty()) return out;
  if (text.size() > 4096) return invalid("longer than 4096 characters");
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    if (out.size() == max_entries) {
      return invalid("more than " + std::to_string(max_entries) + " addresses");
    }
    auto one = parse_listen_address(text.substr(start, comma - start), setting);
    if (!one) return one.error();
    if (one->port == 0) return invalid("port 0 in '" + one->host + ":0' (needs 1..65535)");
    out.push_back(std::move(*one));
    start = comma + 1;
  }
  return out;
}

}  // namespace tinyfleet::server::console
