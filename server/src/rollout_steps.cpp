// The rollout engine's steps: admitting devices, settling and baking a phase, gates,
// and returning devices to their previous model. The SQL is in rollouts/repository.cpp and
// telemetry_stats.cpp, the decisions in rollouts/gates.cpp and phase_gates.cpp; every write here is
// a compare-and-set on the state the tick read, and a lost one is logged and left to the next tick;
// every write checks the leader's lease epoch in its transaction (lead()).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "parallel_for.h"
#include "rollouts/gates.h"
#include "rollouts/offer_batch.h"
#include "rollouts/phase_gates.h"
#include "rollouts/repository.h"
#include "rollouts/telemetry_stats.h"
#include "tinyfleet/server/gate_expression.h"
#include "tinyfleet/server/log.h"
#include "tinyfleet/server/rollout_engine.h"
#include "tinyfleet/storage/blob_store.h"

namespace tinyfleet::server {

namespace repo = rollouts::repo;
namespace telemetry_stats = rollouts::telemetry_stats;
using rollouts::RolloutEvent;
using rollouts::RolloutState;

namespace {

// Threads that build one batch's offers (the engine's own among them).
const size_t kOfferBuilders = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 4);

uint64_t now_unix() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// A write the tick lost to a concurrent change (an operator's Pause, Abort, Promote).
void lost(const repo::Driven& r, const char* what) {
  log::info("rollout.superseded", {{"rollout", r.name}, {"phase", r.phase}, {"write", what}});
}

}  // namespace

bool RolloutEngine::gate_history_due(int64_t id) {
  const auto now = std::chrono::steady_clock::now();
  auto [it, fresh] = gate_history_at_.try_emplace(id, now);
  if (!fresh &&
      std::chrono::duration<double>(now - it->second).count() < repo::kGateHistorySeconds) {
    return false;
  }
  it->second = now;
  return true;
}

// The targets key expired: no device is admitted (each would only refuse its offer); the
// rollout says why, and the log says so once a minute.
void RolloutEngine::cannot_sign(const Driven& r, const std::string& why) {
  lead([&](pqxx::work& w) { return repo::note_reason(w, r.id, why); });
  const auto now = std::chrono::steady_clock::now();
  if (now - cannot_sign_logged_ < std::chrono::minutes(1)) return;
  cannot_sign_logged_ = now;
  log::error("keys.expired", {{"rollout", r.name}, {"reason", why}});
}

void RolloutEngine::fail(const Driven& r, const std::string& why) {
  const bool pause = r.on_failure == "pause";
  auto won = lead([&](pqxx::work& w) {
    return repo::fail_phase(
        w, r.id, r.phase,
        pause ? RolloutEvent::kGateFailedPause : RolloutEvent::kGateFailedRollback, why);
  });
  if (!won || !*won) return lost(r, "gate failure");
  log::warn("rollout.gate_failed", {{"rollout", r.name},
                                    {"phase", r.phase},
                                    {"reason", why},
                                    {"action", pause ? "pause" : "rollback"}});
}

void RolloutEngine::step_running(const Driven& r) {
  auto clauses = parse_gates(r.gates);
  if (!clauses) {
    fail(r, "gates do not parse: " + clauses.error().message);
    return;
  }
  // What of the telemetry the gates read (a count-only gate reads none of it).
  const auto need = rollouts::cohort_need(*clauses);

  auto read = db_.transact([&](pqxx::work& w) {
    return std::pair{repo::phase_counts(w, r.id, r.phase), repo::phase_clock(w, r.id, r.phase)};
  });
  if (!read) return;
  const auto& [p, clock] = *read;

  if (auto why = rollouts::early_failure(*clauses, p, r.phase)) {
    fail(r, *why);
    return;
  }
  if (p.pending > 0) {
    if (auto why = builder_.signing_refusal(now_unix())) return cannot_sign(r, *why);
    double& tokens = admit_tokens_[r.id];
    const double per_tick = r.rate / 60.0 * tick_seconds_;
    tokens = std::min(tokens + per_tick, std::max(1.0, r.rate / 60.0));
    const int n = static_cast<int>(tokens);
    if (n > 0) tokens -= admit(r, std::min(n, p.pending));
    return;
  }
  if (!rollouts::settled(*clauses, p)) return;
  if (clock.state != rollouts::PhaseState::kBaking) {
    auto won = lead([&](pqxx::work& w) { return repo::start_baking(w, r.id, r.phase); });
    if (!won || !*won) return lost(r, "baking");
    log::info(
        "rollout.phase_baking",
        {{"rollout", r.name}, {"phase", r.phase}, {"updated", p.updated}, {"failed", p.failed}});
    wake();  // the next step (a bake of 0 s looks at once) in the next tick, not a tick later
    return;
  }
  if (clock.baking_for < clock.bake_seconds) {
    // While baking, what the gates say so far goes to the history (not acted on).
    if (clauses->empty() || !gate_history_due(r.id)) return;
    lead([&](pqxx::work& w) {
      const auto g =
          rollouts::decide_phase(*clauses, p, telemetry_stats::cohort(w, r.id, r.phase, need),
                                 r.phase, /*look=*/0, 0, gates_);
      repo::record_gates(w, r.id, r.phase, false, g.report.dump());
      return true;
    });
    return;
  }

  // Gates, at the looks after the bake (each look once): the canary devices against the
  // control or baseline devices, with the statistics' confidence.
  const double waited = clock.baking_for - clock.bake_seconds;
  const int look = rollouts::look_due(waited, gates_);
  const auto seen = looked_.find(r.id);
  if (seen != looked_.end() && seen->second == std::pair{r.phase, look}) return;
  auto cohort =
      db_.transact([&](pqxx::work& w) { return telemetry_stats::cohort(w, r.id, r.phase, need); });
  if (!cohort) return;
  const auto g = rollouts::decide_phase(*clauses, p, *cohort, r.phase, look, waited, gates_);
  const std::string report = g.report.dump();
  const std::string why = g.verdict == rollouts::Verdict::kWait
                              ? g.reason + " (look " + std::to_string(look) + " of " +
                                    std::to_string(std::max(1, gates_.max_looks)) + ")"
                              : r.reason;
  auto noted = lead([&](pqxx::work& w) {
    if (!repo::note_gates(w, r.id, why, report)) return false;
    if (!clauses->empty()) repo::record_gates(w, r.id, r.phase, true, report);
    return true;
  });
  if (!noted || !*noted) return lost(r, "gate report");
  looked_[r.id] = {r.phase, look};
  if (g.verdict == rollouts::Verdict::kFail) {
    looked_.erase(r.id);  // a resumed phase bakes and looks again from 1
    fail(r, g.reason);
    return;
  }
  if (g.verdict == rollouts::Verdict::kWait) return;
  const bool last = r.phase + 1 >= r.phases;
  auto won = lead([&](pqxx::work& w) {
    return repo::finish_phase(w, r.id, r.phase, r.phases, /*by_operator=*/false,
                              last ? "every phase passed its gates" : "");
  });
  if (!won || !*won) return lost(r, "phase passed");
  log::info(last ? "rollout.completed" : "rollout.phase_passed",
            {{"rollout", r.name}, {"phase", r.phase}});
  if (!last) wake();  // the next phase's devices are admitted at once
}

int RolloutEngine::admit(const Driven& r, int n) {
  auto picks = db_.transact([&](pqxx::work& w) { return repo::pending(w, r, n); });
  if (!picks || picks->empty()) return 0;
  return send_offers(r, *picks, /*reverting=*/false);
}

int RolloutEngine::send_offers(const Driven& r, const std::vector<OfferTarget>& picks,
                               bool reverting) {
  struct Prepared {
    const OfferTarget* pick;
    uint64_t release = 0;
    BuiltOffer offer;
    std::string error;
  };
  std::vector<Prepared> prepared;
  // Release numbers for the whole batch in one round trip.
  const auto releases = db_.transact([&](pqxx::work& w) {
    std::vector<uint64_t> out;
    for (const auto& row :
         w.exec_params("SELECT nextval('release_seq') FROM generate_series(1, $1)",
                       static_cast<int>(picks.size()))) {
      out.push_back(row[0].as<uint64_t>());
    }
    return out;
  });
  if (!releases || releases->size() != picks.size()) return 0;
  size_t next_release = 0;
  for (const auto& p : picks) {
    Prepared x{&p};
    // A device that runs the target already needs no offer (release 0).
    if (reverting || p.current != p.target) x.release = (*releases)[next_release++];
    prepared.push_back(std::move(x));
  }
  // Built (delta, signature) on kOfferBuilders threads: the deltas are cached per
  // (base, target), so what is left per device is hashing, signing and copying.
  using Clock = std::chrono::steady_clock;
  const auto built_from = Clock::now();
  parallel_for(prepared.size(), kOfferBuilders, [&](size_t i) {
    Prepared& x = prepared[i];
    if (x.release == 0) return;
    const OfferTarget& p = *x.pick;
    OfferRequest q;
    q.fleet = r.fleet;
    q.device_class = p.device_class;
    q.base_sha256 = p.current;
    q.target_sha256 = p.target;
    q.model = p.model;
    q.model_version = p.version;
    q.release_seq = x.release;
    q.device_id = p.device;
    // Reverting a device that ran no model before the rollout: a signed "no model" offer.
    auto built = reverting && p.target.empty() ? builder_.build_no_model(q, now_unix())
                                               : builder_.build(q, now_unix());
    if (built) {
      x.offer = std::move(*built);
    } else {
      x.error = built.error().message;
    }
  });
  // Durable first: a crash after this commit re-publishes (recover); before it, the
  // devices are still where they were and nothing was sent. The rollout row is held
  // (share lock) in the state the tick read, so an Abort or Pause either commits
  // before this (and nothing is stored) or after it (and sees these offers).
  std::vector<bool> publish(prepared.size(), false);
  const auto stored_from = Clock::now();
  auto stored = lead([&](pqxx::work& w) {
    std::fill(publish.begin(), publish.end(), false);
    if (!repo::hold_if(w, r.id, r.state)) return false;
    std::map<std::string, std::string> stored_payloads;               // one blob per (base, target)
    std::vector<std::pair<std::string, repo::StoredOffer>> admitted;  // stored in batches
    std::vector<size_t> admitted_at;
    for (size_t i = 0; i < prepared.size(); ++i) {
      const auto& x = prepared[i];
      const auto& p = *x.pick;
      if (!reverting && x.release == 0) {
        repo::mark_updated_in_place(w, r.id, p.device, p.current);
        continue;
      }
      if (!x.error.empty()) {
        repo::mark_unofferable(w, r.id, p.device, reverting, "cannot build the offer: " + x.error);
        continue;
      }
      std::string& payload_sha = stored_payloads[x.offer.payload_sha256];
      if (payload_sha.empty()) payload_sha = storage::PgBlobStore::put(w, x.offer.payload);
      repo::StoredOffer offer{x.release, p.target, p.current, payload_sha, x.offer.offer};
      if (reverting) {
        publish[i] = repo::record_offer(w, r.id, p.device, reverting, offer);
      } else {
        admitted.emplace_back(p.device, std::move(offer));
        admitted_at.push_back(i);
      }
    }
    const std::set<std::string> won = repo::record_offers(w, r.id, admitted);
    for (size_t k = 0; k < admitted.size(); ++k) {
      publish[admitted_at[k]] = won.count(admitted[k].first) > 0;
    }
    return true;
  });
  if (!stored) {
    log::error("rollout.store_offers", {{"rollout", r.name}, {"error", stored.error().message}});
    return 0;
  }
  if (!*stored) {
    lost(r, reverting ? "revert offers" : "offers");
    return 0;
  }
  // The outbox: an offer leaves it once the broker acknowledged it (QoS 1); one it did
  // not take stays and is published again (republish_if_needed).
  // Published together (pipelined: one wait for all the PUBACKs).
  std::vector<UpdatePublisher::Offer> out;
  std::vector<size_t> which;
  for (size_t i = 0; i < prepared.size(); ++i) {
    auto& x = prepared[i];
    if (!publish[i]) continue;
    out.push_back({r.fleet, x.pick->device, x.release, &x.offer.offer, std::move(x.offer.payload)});
    which.push_back(i);
  }
  // While the PUBACKs come (seconds for thousands), the reports of the devices already
  // updating are applied, so the phase settles soon after its last offer is acknowledged.
  const auto published_from = Clock::now();
  const std::vector<bool> ok = publisher_.offer_all(std::move(out), [this] { apply_statuses(); });
  const auto ms = [](Clock::duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  log::info("rollout.offers", {{"rollout", r.name},
                               {"offers", ok.size()},
                               {"build_ms", ms(stored_from - built_from)},
                               {"store_ms", ms(published_from - stored_from)},
                               {"publish_ms", ms(Clock::now() - published_from)}});
  std::vector<std::pair<std::string, uint64_t>> acked;
  for (size_t k = 0; k < which.size(); ++k) {
    const auto& x = prepared[which[k]];
    if (ok[k]) {
      ++offers_;
      acked.emplace_back(x.pick->device, x.release);
    } else {
      republish_ = true;
    }
  }
  mark_published(acked);
  return static_cast<int>(prepared.size());
}

void RolloutEngine::step_reverting(const Driven& r) {
  // Every device that got the new model (or its offer) goes back to what it ran before,
  // as a new release; no rate limit: a rollback is urgent.
  if (!lead([&](pqxx::work& w) { return repo::settle_unchanged(w, r.id); })) return;
  auto picks = db_.transact([&](pqxx::work& w) { return repo::to_revert(w, r.id); });
  if (!picks) return;
  std::vector<OfferTarget> revert;
  for (const auto& p : *picks) {
    if (p.target.empty() && p.current.empty()) {
      // No model before the rollout and none installed: the offer is withdrawn (a device
      // that has not fetched it yet never will). One that installed the new model gets a
      // signed "no model" offer below (send_offers) and stops running it.
      auto marked =
          lead([&](pqxx::work& w) { return repo::mark_nothing_to_revert(w, r.id, p.device); });
      if (marked && *marked) publisher_.withdraw(r.fleet, p.device);
    } else {
      revert.push_back(p);
    }
  }
  if (!revert.empty()) {
    send_offers(r, revert, /*reverting=*/true);
    return;
  }
  auto left = db_.transact([&](pqxx::work& w) { return repo::unreverted(w, r.id); });
  if (!left || *left > 0) return;
  auto won = lead([&](pqxx::work& w) {
    return repo::change_state(w, r.id, r.state, RolloutEvent::kRevertsDone, r.reason);
  });
  if (!won || !*won) return lost(r, "reverts done");
  const char* final_state =
      rollouts::to_string(*rollouts::next_state(r.state, RolloutEvent::kRevertsDone));
  log::info(std::string("rollout.") + final_state, {{"rollout", r.name}, {"reason", r.reason}});
}

}  // namespace tinyfleet::server
