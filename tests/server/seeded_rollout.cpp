#include "seeded_rollout.h"

#include "rollout_seed.h"
#include "rollouts/repository.h"
#include "rollouts/selection.h"

namespace tinyfleet::testing {

int64_t seed_rollout(pqxx::work& w, const std::string& name, int devices) {
  namespace rollouts = server::rollouts;
  const auto fleet = seed_fleet(w, devices, true);
  std::vector<rollouts::Candidate> selected;
  for (const auto& d : fleet.devices) selected.push_back({d, kSeedClass, {}});
  rollouts::repo::NewRollout r;
  r.name = name;
  r.fleet = "default";
  r.selector_json = "{}";
  r.gates_text = "failure_rate <= 0.05";
  r.on_failure = "rollback";
  r.version_id = fleet.version_id;
  r.rate_per_minute = 6000;
  r.phases = {{100, 0}};
  return rollouts::repo::insert(w, r, rollouts::place(name, selected, {100}),
                                {{kSeedClass, fleet.artifact}});
}

}  // namespace tinyfleet::testing
