#include "rollouts/status_batch.h"

#include "rollouts/states.h"
#include "tinyfleet/storage/array_literal.h"

namespace tinyfleet::server::rollouts::repo {

using storage::text_array_literal;

bool plain(const StatusReport& s) {
  return s.event != update::StatusEvent::kOfferRefused &&
         s.state != update::UpdateState::kRolledBack && s.state != update::UpdateState::kNoModel;
}

void lock_devices(pqxx::work& w, const std::vector<std::string>& ids) {
  if (ids.empty()) return;
  w.exec_params("SELECT 1 FROM devices WHERE id = ANY($1::text[]) ORDER BY fleet, id FOR UPDATE",
                text_array_literal(ids));
}

int apply_plain_statuses(pqxx::work& w, const std::vector<PlainStatus>& reports) {
  if (reports.empty()) return 0;
  std::vector<std::string> fleets, devices, artifacts, statuses, releases;
  for (const auto& r : reports) {
    fleets.push_back(r.fleet);
    devices.push_back(r.device);
    artifacts.push_back(r.report->artifact);
    statuses.push_back(r.report->updating() ? "updating" : "online");
    releases.push_back(std::to_string(r.report->release));
  }
  const std::string batch =
      "WITH r AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
      "$5::bigint[]) AS r(fleet, device, artifact, status, release)) ";
  // rd.active (true exactly while the row's rollout is active, migration 0010) lets each
  // report find its row through the one-active index: joined by the rollout's state alone,
  // the plan scanned every offered row of the rollout once per report (5,000 x 500).
  const std::string active =
      "rd.rollout_id IN (SELECT id FROM rollouts WHERE state IN " + sql_list(is_active) + ")";
  const auto run = [&](const std::string& sql) {
    return static_cast<int>(
        w.exec_params(batch + sql, text_array_literal(fleets), text_array_literal(devices),
                      text_array_literal(artifacts), text_array_literal(statuses),
                      text_array_literal(releases))
            .affected_rows());
  };
  run("UPDATE devices d SET current_artifact_sha256 = NULLIF(r.artifact, ''), last_seen = now(), "
      "status = r.status FROM r WHERE d.id = r.device AND d.fleet = r.fleet");
  int changed = run(
      "UPDATE rollout_devices rd SET state = 'updated', updated_at_device = now(), updated_at = "
      "now() FROM r WHERE rd.device_id = r.device AND rd.active AND rd.state = 'offered' AND "
      "rd.target_artifact = r.artifact AND rd.release_seq <= r.release AND " +
      active);
  changed += run(
      "UPDATE rollout_devices rd SET state = 'rolled_back', updated_at = now() FROM r WHERE "
      "rd.device_id = r.device AND rd.active AND rd.state = 'reverting' AND (rd.base_artifact = "
      "r.artifact OR "
      "(rd.base_artifact IS NULL AND r.artifact = '')) AND rd.revert_release <= r.release AND " +
      active);
  return changed;
}

}  // namespace tinyfleet::server::rollouts::repo
