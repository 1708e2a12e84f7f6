// fleetctl status: one screen on the fleet (devices by class and status, models, active
// rollouts with their progress).
#include <cstdio>
#include <map>

#include "cli.h"
#include "listing.h"
#include "tinyfleet/v1/rollouts.grpc.pb.h"

namespace tinyfleet::fleetctl {

namespace {

// class -> status -> devices
using DeviceCounts = std::map<std::string, std::map<std::string, int>>;

void print_text(const DeviceCounts& devices, int models, const v1::ListRolloutsResponse& active) {
  int total = 0;
  std::vector<std::vector<std::string>> rows;
  for (const auto& [cls, by_status] : devices) {
    std::string states;
    int n = 0;
    for (const auto& [status, k] : by_status) {
      states += (states.empty() ? "" : ", ") + std::to_string(k) + " " + status;
      n += k;
    }
    total += n;
    rows.push_back({cls, std::to_string(n), states});
  }
  std::printf("devices: %d   models: %d   active rollouts: %d\n\n", total, models,
              active.rollouts_size());
  print_table({"CLASS", "DEVICES", "STATUS"}, rows);
  if (active.rollouts_size() == 0) return;
  std::printf("\n");
  rows.clear();
  for (const auto& r : active.rollouts()) {
    uint32_t updated = 0;
    for (const auto& p : r.phases()) updated += p.updated();
    const double done = r.selected_devices() ? double(updated) / r.selected_devices() : 0;
    rows.push_back({r.name(), r.model() + " v" + std::to_string(r.version()), r.state(),
                    progress_bar(done, 20),
                    std::to_string(updated) + "/" + std::to_string(r.selected_devices())});
  }
  print_table({"ROLLOUT", "MODEL", "STATE", "PROGRESS", "UPDATED"}, rows);
}

}  // namespace

int cmd_status(const Args&, const Connection& c) {
  std::vector<v1::Device> all;
  if (auto s = list_all_devices(c, {}, &all); !s.ok()) return report(s, "list devices");
  DeviceCounts devices;
  for (const auto& d : all) ++devices[d.device_class()][d.status()];
  std::vector<v1::Model> model_list;
  if (auto s = list_all_models(c, &model_list); !s.ok()) return report(s, "list models");
  const int models = static_cast<int>(model_list.size());
  auto rollouts = v1::Rollouts::NewStub(c.channel());
  v1::ListRolloutsRequest req;
  req.set_active_only(true);
  v1::ListRolloutsResponse active;
  if (auto s = rollouts->ListRollouts(c.context().get(), req, &active); !s.ok()) {
    return report(s, "list rollouts");
  }
  if (!c.json) {
    print_text(devices, models, active);
    return kOk;
  }
  nlohmann::json out = {{"devices", devices}, {"models", models}};
  out["active_rollouts"] = nlohmann::json::array();
  for (const auto& r : active.rollouts()) {
    uint32_t updated = 0;
    for (const auto& p : r.phases()) updated += p.updated();
    out["active_rollouts"].push_back({{"name", r.name()},
                                      {"state", r.state()},
                                      {"updated", updated},
                                      {"selected", r.selected_devices()}});
  }
  print_json(out);
  return kOk;
}

}  // namespace tinyfleet::fleetctl
