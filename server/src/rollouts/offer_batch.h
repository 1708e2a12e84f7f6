#pragma once

#include <set>
#include <string>
#include <utility>
#include <vector>

#include <pqxx/pqxx>

#include "rollouts/repository.h"

namespace tinyfleet::server::rollouts::repo {

// Rows a batched statement takes at once (unnest of arrays): record_offers and
// mark_published. One statement per device took seconds for a phase of thousands on a
// loaded box.
inline constexpr size_t kRowsPerStatement = 500;

// What record_offer(w, id, device, /*reverting=*/false, offer) does for each admitted
// device, in two statements per 500 devices: pending -> offered, then the offer stored as
// what the device holds, only for the devices still pending. Returns the devices whose
// offer was stored (the others were no longer pending: nothing stored for them).
std::set<std::string> record_offers(pqxx::work& w, int64_t id,
                                    const std::vector<std::pair<std::string, StoredOffer>>& offers);

}  // namespace tinyfleet::server::rollouts::repo
