// fleetctl tokens, classes, devices (keys: commands_keys.cpp).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>
#include <utility>
#include <vector>

#include "cli.h"
#include "listing.h"
#include "tinyfleet/v1/admin.grpc.pb.h"
#include "tinyfleet/v1/device_registry.grpc.pb.h"

namespace tinyfleet::fleetctl {

namespace {
nlohmann::json device_json(const v1::Device& d) {
  return {{"id", d.id()},
          {"class", d.device_class()},
          {"status", d.status()},
          {"artifact", d.current_artifact_sha256()},
          {"last_seen", d.last_seen()}};
}

// A bulk command paces itself when fleetd says the token's rate is exceeded
// (RESOURCE_EXHAUSTED, api.rate_per_second): it waits and tries again, up to about a minute.
template <class Call>
grpc::Status paced(Call call) {
  for (int attempt = 0;; ++attempt) {
    auto s = call();
    if (s.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED || attempt >= 120) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50 * (attempt + 1), 500)));
  }
}

// Provisions `ids` with kProvisionsInFlight requests at once (fleetd writes the broker
// accounts of concurrent provisionings in one go); stops starting new ones after a failure.
// The answers are in the order of `ids`; one never sent has status CANCELLED.
constexpr size_t kProvisionsInFlight = 8;
std::vector<std::pair<grpc::Status, v1::ProvisionDeviceResponse>> provision_all(
    v1::DeviceRegistry::Stub& stub, const Connection& c, const std::vector<std::string>& ids,
    const std::string& cls, const Args& a) {
  std::vector<std::pair<grpc::Status, v1::ProvisionDeviceResponse>> out(
      ids.size(), {grpc::Status(grpc::StatusCode::CANCELLED, "not sent"), {}});
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  const auto worker = [&] {
    for (size_t i = next++; i < ids.size() && !failed; i = next++) {
      v1::ProvisionDeviceRequest req;
      req.set_id(ids[i]);
      req.set_device_class(cls);
      req.set_fleet(a.get("fleet", "default"));
      for (const auto& t : a.list("tags")) req.add_tags(t);
      auto& [s, resp] = out[i];
      s = paced([&] { return stub.ProvisionDevice(c.context().get(), req, &resp); });
      if (!s.ok()) failed = true;
    }
  };
  std::vector<std::thread> workers;
  for (size_t k = 1; k < std::min(kProvisionsInFlight, ids.size()); ++k)
    workers.emplace_back(worker);
  worker();
  for (auto& w : workers) w.join();
  return out;
}

}  // namespace

int cmd_tokens(const Args& a, const Connection& c) {
  auto stub = v1::Admin::NewStub(c.channel());
  const std::string verb = a.positional.size() > 1 ? a.positional[1] : "list";
  if (verb == "create") {
    if (a.positional.size() < 3) usage_error("tokens create NAME --role viewer|operator|admin");
    v1::CreateTokenRequest req;
    req.set_name(a.positional[2]);
    const std::string role = a.get("role", "viewer");
    if (role == "viewer")
      req.set_role(v1::ROLE_VIEWER);
    else if (role == "operator")
      req.set_role(v1::ROLE_OPERATOR);
    else if (role == "admin")
      req.set_role(v1::ROLE_ADMIN);
    else
      usage_error("--role is viewer, operator or admin, not '" + role + "'");
    const auto days = a.number("ttl-days", 90);
    if (days < 1 || days > 3660) usage_error("--ttl-days must be 1..3660");
    req.set_ttl_seconds(static_cast<uint64_t>(days) * 86400);
    v1::CreateTokenResponse resp;
    auto s = stub->CreateToken(c.context().get(), req, &resp);
    if (!s.ok()) return report(s, "create token");
    if (c.json) {
      std::printf("%s\n", nlohmann::json{{"name", resp.token().name()},
                                         {"secret", resp.secret()},
                                         {"expires_at", resp.token().expires_at()}}
                              .dump()
                              .c_str());
    } else {
      std::printf("%s\n", resp.secret().c_str());
    }
    return kOk;
  }
  if (verb == "revoke") {
    if (a.positional.size() < 3) usage_error("tokens revoke NAME");
    v1::RevokeTokenRequest req;
    req.set_name(a.positional[2]);
    v1::Token t;
    auto s = stub->RevokeToken(c.context().get(), req, &t);
    if (!s.ok()) return report(s, "revoke token");
    if (c.json) {
      print_json({{"name", t.name()}, {"revoked", t.revoked()}});
    } else {
      std::printf("revoked %s\n", t.name().c_str());
    }
    return kOk;
  }
  if (verb != "list") usage_error("tokens takes create, list or revoke");
  v1::ListTokensResponse resp;
  auto s = stub->ListTokens(c.context().get(), {}, &resp);
  if (!s.ok()) return report(s, "list tokens");
  std::vector<std::vector<std::string>> rows;
  nlohmann::json out = nlohmann::json::array();
  for (const auto& t : resp.tokens()) {
    const std::string role = v1::Role_Name(t.role());
    const std::string state = t.revoked() ? "revoked" : t.expired() ? "expired" : "active";
    rows.push_back(
        {t.name(), role, state, t.created_at(), t.expires_at().empty() ? "never" : t.expires_at()});
    out.push_back({{"name", t.name()},
                   {"role", role},
                   {"revoked", t.revoked()},
                   {"expired", t.expired()},
                   {"expires_at", t.expires_at()}});
  }
  if (c.json) {
    print_json(out);
  } else {
    print_table({"NAME", "ROLE", "STATE", "CREATED", "EXPIRES"}, rows);
  }
  return kOk;
}

int cmd_classes(const Args& a, const Connection& c) {
  auto stub = v1::DeviceRegistry::NewStub(c.channel());
  const std::string verb = a.positional.size() > 1 ? a.positional[1] : "list";
  if (verb == "import") {
    if (a.positional.size() < 3) usage_error("classes import CATALOG.json");
    const auto catalog = nlohmann::json::parse(read_file_or_die(a.positional[2]), nullptr, false);
    if (!catalog.is_object()) usage_error(a.positional[2] + " is not a JSON object of classes");
    std::vector<std::string> imported;
    for (const auto& [name, spec] : catalog.items()) {
      v1::DeviceClass req, out;
      req.set_name(name);
      req.set_spec_json(spec.dump());
      auto s = stub->CreateDeviceClass(c.context().get(), req, &out);
      if (!s.ok()) return report(s, "import class " + name);
      if (!c.json) std::printf("class %s\n", name.c_str());
      imported.push_back(name);
    }
    if (c.json) print_json({{"imported", imported}});
    return kOk;
  }
  if (verb != "list") usage_error("classes takes import or list");
  v1::ListDeviceClassesResponse resp;
  auto s = stub->ListDeviceClasses(c.context().get(), {}, &resp);
  if (!s.ok()) return report(s, "list classes");
  std::vector<std::vector<std::string>> rows;
  nlohmann::json out = nlohmann::json::array();
  for (const auto& k : resp.classes()) {
    auto spec = nlohmann::json::parse(k.spec_json(), nullptr, false);
    if (!spec.is_object()) spec = nlohmann::json::object();
    auto number = [&](const char* key) {
      const auto it = spec.find(key);
      return it != spec.end() && it->is_number() ? it->get<double>() : 0.0;
    };
    rows.push_back({k.name(), bytes_text(number("ram_bytes")), bytes_text(number("flash_bytes")),
                    std::to_string(static_cast<long long>(number("clock_hz") / 1e6)) + " MHz"});
    out.push_back({{"name", k.name()}, {"spec", spec}});
  }
  if (c.json) {
    print_json(out);
  } else {
    print_table({"CLASS", "RAM", "FLASH", "CLOCK"}, rows);
  }
  return kOk;
}

int cmd_devices(const Args& a, const Connection& c) {
  auto stub = v1::DeviceRegistry::NewStub(c.channel());
  const std::string verb = a.positional.size() > 1 ? a.positional[1] : "list";
  if (verb == "provision") {
    // One device (fleetctl devices provision ID --class C) or many (--count N --prefix P).
    const std::string cls = a.get("class");
    if (cls.empty()) usage_error("devices provision needs --class CLASS");
    std::vector<std::string> ids;
    if (a.has("count")) {
      const int n = static_cast<int>(a.number("count", 0));
      const int from = static_cast<int>(a.number("start", 1));
      if (n <= 0) usage_error("--count must be positive");
      char id[96];
      for (int i = 0; i < n; ++i) {
        std::snprintf(id, sizeof id, "%s%04d", a.get("prefix", "dev-").c_str(), from + i);
        ids.push_back(id);
      }
    } else if (a.positional.size() >= 3) {
      ids.push_back(a.positional[2]);
    } else {
      usage_error("devices provision ID --class C, or --count N [--prefix P] --class C");
    }
    std::ofstream creds;
    if (a.has("credentials-out")) {
      creds.open(a.get("credentials-out"), std::ios::app);
      if (!creds) usage_error("cannot write " + a.get("credentials-out"));
    }
    const auto responses = provision_all(*stub, c, ids, cls, a);
    for (size_t i = 0; i < ids.size(); ++i) {
      const auto& [s, resp] = responses[i];
      const std::string& id = ids[i];
      if (!s.ok()) return report(s, "provision " + id);
      if (creds.is_open()) {
        creds << resp.mqtt().username() << ' ' << resp.mqtt().password() << '\n';
      } else if (c.json) {
        std::printf("%s\n", nlohmann::json{{"id", id},
                                           {"username", resp.mqtt().username()},
                                           {"password", resp.mqtt().password()},
                                           {"topic_prefix", resp.mqtt().topic_prefix()}}
                                .dump()
                                .c_str());
      } else {
        std::printf("%s  password %s  (shown once)\n", id.c_str(), resp.mqtt().password().c_str());
      }
    }
    if (creds.is_open() && c.json) {
      print_json(
          {{"provisioned", ids}, {"class", cls}, {"credentials_file", a.get("credentials-out")}});
    } else if (creds.is_open()) {
      std::printf("provisioned %zu devices of class %s; credentials in %s\n", ids.size(),
                  cls.c_str(), a.get("credentials-out").c_str());
    }
    return kOk;
  }
  if (verb == "get") {
    if (a.positional.size() < 3) usage_error("devices get ID");
    v1::GetDeviceRequest req;
    req.set_id(a.positional[2]);
    v1::Device d;
    auto s = stub->GetDevice(c.context().get(), req, &d);
    if (!s.ok()) return report(s, "get device " + a.positional[2]);
    if (c.json) {
      print_json(device_json(d));
      return kOk;
    }
    print_table({"ID", "CLASS", "STATUS", "ARTIFACT", "LAST SEEN"},
                {{d.id(), d.device_class(), d.status(), d.current_artifact_sha256().substr(0, 12),
                  d.last_seen()}});
    return kOk;
  }
  if (verb == "rotate") {
    if (a.positional.size() < 3) usage_error("devices rotate ID");
    v1::RotateDeviceCredentialsRequest req;
    req.set_id(a.positional[2]);
    v1::ProvisionDeviceResponse resp;
    auto s = stub->RotateDeviceCredentials(c.context().get(), req, &resp);
    if (!s.ok()) return report(s, "rotate credentials of " + a.positional[2]);
    if (a.has("credentials-out")) {
      std::ofstream creds(a.get("credentials-out"), std::ios::app);
      if (!creds) usage_error("cannot write " + a.get("credentials-out"));
      creds << resp.mqtt().username() << ' ' << resp.mqtt().password() << '\n';
      if (c.json) {
        print_json(
            {{"rotated", resp.device().id()}, {"credentials_file", a.get("credentials-out")}});
      } else {
        std::printf("rotated %s; credentials in %s\n", resp.device().id().c_str(),
                    a.get("credentials-out").c_str());
      }
    } else if (c.json) {
      print_json({{"id", resp.device().id()},
                  {"username", resp.mqtt().username()},
                  {"password", resp.mqtt().password()},
                  {"topic_prefix", resp.mqtt().topic_prefix()}});
    } else {
      std::printf("%s  password %s  (shown once)\n", resp.device().id().c_str(),
                  resp.mqtt().password().c_str());
    }
    return kOk;
  }
  if (verb == "deprovision") {
    if (a.positional.size() < 3) usage_error("devices deprovision ID");
    v1::DeprovisionDeviceRequest req;
    req.set_id(a.positional[2]);
    v1::Device d;
    auto s = stub->DeprovisionDevice(c.context().get(), req, &d);
    if (!s.ok()) return report(s, "deprovision " + a.positional[2]);
    if (c.json) {
      print_json(device_json(d));
    } else {
      std::printf("deprovisioned %s\n", d.id().c_str());
    }
    return kOk;
  }
  if (verb != "list") usage_error("devices takes provision, list, get, rotate or deprovision");
  v1::ListDevicesRequest req;
  req.set_device_class(a.get("class"));
  req.set_tag(a.get("tag"));
  req.set_status(a.get("status"));
  std::vector<v1::Device> devices;
  if (auto s = list_all_devices(c, req, &devices); !s.ok()) return report(s, "list devices");
  std::vector<std::vector<std::string>> rows;
  nlohmann::json out = nlohmann::json::array();
  for (const auto& d : devices) {
    rows.push_back({d.id(), d.device_class(), d.status(), d.current_artifact_sha256().substr(0, 12),
                    d.last_seen()});
    out.push_back(device_json(d));
  }
  if (c.json) {
    print_json(out);
  } else {
    print_table({"ID", "CLASS", "STATUS", "ARTIFACT", "LAST SEEN"}, rows);
  }
  return kOk;
}

}  // namespace tinyfleet::fleetctl
