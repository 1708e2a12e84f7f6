#include "console/listen_address.h"

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

}  // namespace tinyfleet::server::console
