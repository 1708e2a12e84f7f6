#include "rollouts/offer_batch.h"

#include <algorithm>

#include "tinyfleet/storage/array_literal.h"
#include "tinyfleet/update/sodium_crypto.h"

namespace tinyfleet::server::rollouts::repo {

std::set<std::string> record_offers(
    pqxx::work& w, int64_t id, const std::vector<std::pair<std::string, StoredOffer>>& offers) {
  using storage::text_array_literal;
  std::set<std::string> won;
  for (size_t first = 0; first < offers.size(); first += kRowsPerStatement) {
    const size_t last = std::min(offers.size(), first + kRowsPerStatement);
    std::vector<std::string> devices, releases, bases, targets, payloads, blobs;
    for (size_t i = first; i < last; ++i) {
      const auto& [device, o] = offers[i];
      devices.push_back(device);
      releases.push_back(std::to_string(o.release));
      bases.push_back(o.base);
      targets.push_back(o.target);
      payloads.push_back(o.payload_sha256);
      blobs.push_back("\\x" + update::to_hex_string(o.offer));  // bytea hex input
    }
    const auto taken = w.exec_params(
        "WITH r AS (SELECT * FROM unnest($2::text[], $3::bigint[], $4::text[]) AS "
        "r(device, release, base)) UPDATE rollout_devices rd SET state = 'offered', "
        "release_seq = r.release, base_artifact = NULLIF(r.base, ''), offered_at = now(), "
        "updated_at = now() FROM r WHERE rd.rollout_id = $1 AND rd.device_id = r.device AND "
        "rd.state = 'pending' RETURNING rd.device_id",
        id, text_array_literal(devices), text_array_literal(releases), text_array_literal(bases));
    std::vector<std::string> stored;
    for (const auto& row : taken) stored.push_back(row[0].as<std::string>());
    if (stored.empty()) continue;
    w.exec_params(
        "INSERT INTO device_offers (device_id, release_seq, rollout_id, target_artifact, "
        "payload_sha256, offer) SELECT r.device, r.release, $1, r.target, r.payload, r.offer "
        "FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::bytea[]) AS "
        "r(device, release, target, payload, offer) WHERE r.device = ANY($7::text[]) "
        "ON CONFLICT (device_id) DO UPDATE SET release_seq = EXCLUDED.release_seq, "
        "rollout_id = EXCLUDED.rollout_id, target_artifact = EXCLUDED.target_artifact, "
        "payload_sha256 = EXCLUDED.payload_sha256, offer = EXCLUDED.offer, created_at = now(), "
        "published_at = NULL",
        id, text_array_literal(devices), text_array_literal(releases), text_array_literal(targets),
        text_array_literal(payloads), text_array_literal(blobs), text_array_literal(stored));
    won.insert(stored.begin(), stored.end());
  }
  return won;
}

}  // namespace tinyfleet::server::rollouts::repo
