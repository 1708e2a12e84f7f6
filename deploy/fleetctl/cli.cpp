#include "cli.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

namespace tinyfleet::fleetctl {

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "fleetctl: %s (see 'fleetctl help')\n", message.c_str());
  std::exit(kUsage);
}

double Args::number(const std::string& k, double def) const {
  if (!has(k)) return def;
  const std::string v = get(k);
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (v.empty() || !end || *end != '\0') usage_error("--" + k + " takes a number, not '" + v + "'");
  return d;
}

std::vector<std::string> Args::list(const std::string& k) const {
  std::vector<std::string> out;
  std::stringstream in(get(k));
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string read_file_or_die(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "fleetctl: cannot read %s\n", path.c_str());
    std::exit(kUsage);
  }
  return std::string(std::istreambuf_iterator<char>(in), {});
}

Connection connection_from(const Args& args) {
  Connection c;
  std::string path = std::getenv("FLEETCTL_CONFIG") ? std::getenv("FLEETCTL_CONFIG") : "";
  if (path.empty() && std::getenv("HOME")) {
    path = std::string(std::getenv("HOME")) + "/.config/tinyfleet/fleetctl.json";
  }
  if (args.has("config")) path = args.get("config");
  std::ifstream in(path);
  if (in) {
    const auto j = nlohmann::json::parse(in, nullptr, false);
    if (!j.is_object()) usage_error("config file " + path + " is not a JSON object");
    for (const auto& [key, value] : j.items()) {
      if (key != "endpoint" && key != "token" && key != "ca_file") {
        usage_error("config file " + path + ": unknown key '" + key +
                    "' (known: endpoint, token, ca_file)");
      }
      if (!value.is_string()) usage_error("config file " + path + ": " + key + " is not a string");
    }
    c.endpoint = j.value("endpoint", c.endpoint);
    c.token = j.value("token", c.token);
    c.ca_file = j.value("ca_file", c.ca_file);
  } else if (args.has("config")) {
    usage_error("cannot read config file " + path);
  }
  if (const char* e = std::getenv("FLEETCTL_ENDPOINT")) c.endpoint = e;
  if (const char* t = std::getenv("FLEETCTL_TOKEN")) c.token = t;
  if (const char* f = std::getenv("FLEETCTL_CA_FILE")) c.ca_file = f;
  c.endpoint = args.get("endpoint", c.endpoint);
  c.token = args.get("token", c.token);
  c.ca_file = args.get("ca-file", c.ca_file);
  c.json = args.has("json");
  return c;
}

namespace {
// Whether the connection was made with TLS (report() explains failures by it).
bool g_tls = false;

// A failure to reach fleetd that is about TLS, in words an operator can act on ("" if
// it is not). gRPC says only "Socket closed" when a plaintext client meets a TLS port.
std::string tls_hint(const std::string& message) {
  const auto has = [&](const char* word) { return message.find(word) != std::string::npos; };
  if (g_tls && (has("andshake") || has("CERTIFICATE") || has("certificate") || has("SSL") ||
                has("ssl") || has("TLS"))) {
    return "TLS handshake with fleetd failed: its certificate does not chain to the CA in "
           "--ca-file (ca_file), or does not name the endpoint's host";
  }
  if (!g_tls && (has("Socket closed") || has("Connection reset") || has("connection reset"))) {
    return "fleetd closed the connection at once: it probably serves TLS; give its CA with "
           "--ca-file (or ca_file in the config file)";
  }
  return "";
}
}  // namespace

std::shared_ptr<grpc::Channel> Connection::channel() const {
  g_tls = !ca_file.empty();
  if (!ca_file.empty()) {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = read_file_or_die(ca_file);
    return grpc::CreateChannel(endpoint, grpc::SslCredentials(o));
  }
  return grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials());
}

std::unique_ptr<grpc::ClientContext> Connection::context() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  return ctx;
}

int report(const grpc::Status& s, const std::string& doing) {
  std::fprintf(stderr, "fleetctl: %s: %s\n", doing.c_str(), s.error_message().c_str());
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
    if (const auto hint = tls_hint(s.error_message()); !hint.empty()) {
      std::fprintf(stderr, "fleetctl: %s\n", hint.c_str());
    }
  }
  switch (s.error_code()) {
    case grpc::StatusCode::NOT_FOUND:
      return kNotFound;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::OUT_OF_RANGE:
      return kRejected;
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return kDenied;
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kUnavailable;
    default:
      return kFailed;
  }
}

void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  auto measure = [](const std::string& s) {
    size_t n = 0;  // display width: count UTF-8 lead bytes only
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
  };
  for (size_t i = 0; i < header.size(); ++i) width[i] = measure(header[i]);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], measure(r[i]));
    }
  }
  auto line = [&](const std::vector<std::string>& r) {
    std::string out;
    for (size_t i = 0; i < width.size(); ++i) {
      const std::string cell = i < r.size() ? r[i] : "";
      out += cell + std::string(width[i] - measure(cell) + (i + 1 < width.size() ? 2 : 0), ' ');
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    std::printf("%s\n", out.c_str());
  };
  line(header);
  for (const auto& r : rows) line(r);
}

void print_json(const nlohmann::json& j) { std::printf("%s\n", j.dump().c_str()); }

std::string bytes_text(double bytes) {
  static const char* kUnits[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char out[32];
  std::snprintf(out, sizeof out, bytes == std::floor(bytes) ? "%.0f %s" : "%.1f %s", bytes,
                kUnits[u]);
  return out;
}

std::string sparkline(const std::vector<double>& values) {
  static const char* kBars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  double lo = 1e300, hi = -1e300;
  for (double v : values) {
    if (v < 0) continue;  // unknown
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  std::string out;
  for (double v : values) {
    if (v < 0) {
      out += " ";
      continue;
    }
    const int k = hi > lo ? static_cast<int>(std::lround((v - lo) / (hi - lo) * 7)) : 0;
    out += kBars[k];
  }
  return out;
}

std::string progress_bar(double fraction, int width) {
  fraction = std::max(0.0, std::min(1.0, fraction));
  const int full = static_cast<int>(std::lround(fraction * width));
  std::string out = "[";
  for (int i = 0; i < width; ++i) out += i < full ? "#" : "-";
  return out + "]";
}

}  // namespace tinyfleet::fleetctl
