// The rollout engine's steps: admitting devices, settling and baking a phase, gates,
// and rolling back. The SQL works on rollout_devices, where every device of a rollout
// is listed from its creation with its phase (see storage/migrations/0003).
#include <chrono>
#include <cmath>

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "tinyfleet/server/gate_expression.h"
#include "tinyfleet/server/log.h"
#include "tinyfleet/server/rollout_engine.h"
#include "tinyfleet/storage/blob_store.h"

namespace tinyfleet::server {

namespace {

uint64_t now_unix() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::optional<double> opt(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<double>();
}

struct PhaseState {
  int pending = 0, offered = 0, updated = 0, failed = 0, total = 0;
  int bake_seconds = 0;
  std::string state;
  double baking_for = -1;  // seconds since the phase settled; -1 while not baking
};

std::string gate_text(const GateResultValue& g) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s %s %g", g.clause.metric.c_str(), g.clause.op.c_str(),
                g.clause.threshold);
  return buf;
}

}  // namespace

void RolloutEngine::fail(const Active& r, const std::string& why) {
  const bool pause = r.on_failure == "pause";
  db_.transact([&](pqxx::work& w) {
    w.exec_params("UPDATE rollout_phases SET state = 'failed' WHERE rollout_id = $1 AND idx = $2",
                  r.id, r.phase);
    w.exec_params("UPDATE rollouts SET state = $2, reason = $3, updated_at = now() WHERE id = $1",
                  r.id, pause ? "paused" : "rolling_back", why);
    return 0;
  });
  log::warn("rollout.gate_failed", {{"rollout", r.name},
                                    {"phase", r.phase},
                                    {"reason", why},
                                    {"action", pause ? "pause" : "rollback"}});
}

void RolloutEngine::step_running(const Active& r) {
  auto clauses = parse_gates(r.gates);
  if (!clauses) {
    fail(r, "gates do not parse: " + clauses.error().message);
    return;
  }
  auto ps = db_.transact([&](pqxx::work& w) {
    PhaseState p;
    for (const auto& row : w.exec_params(
             "SELECT state, count(*) FROM rollout_devices WHERE rollout_id = $1 AND phase <= $2 "
             "GROUP BY state",
             r.id, r.phase)) {
      const auto s = row[0].as<std::string>();
      const int n = row[1].as<int>();
      p.total += n;
      if (s == "pending") p.pending += n;
      if (s == "offered" || s == "admitted") p.offered += n;
      if (s == "updated") p.updated += n;
      if (s == "failed") p.failed += n;
    }
    const auto row = w.exec_params1(
        "SELECT bake_seconds, state, EXTRACT(EPOCH FROM now() - started_at) FROM rollout_phases "
        "WHERE rollout_id = $1 AND idx = $2",
        r.id, r.phase);
    p.bake_seconds = row[0].as<int>();
    p.state = row[1].as<std::string>();
    if (p.state == "baking" && !row[2].is_null()) p.baking_for = row[2].as<double>();
    return p;
  });
  if (!ps) return;
  const PhaseState& p = *ps;

  // A failure gate decides as soon as devices fail; it does not wait for the bake.
  const int finished = p.updated + p.failed;
  for (const auto& c : *clauses) {
    if (c.metric != "failure_rate" || finished == 0) continue;
    auto g = evaluate_gates({c}, {{"failure_rate", double(p.failed) / finished}});
    if (!g[0].passed) {
      char v[32];
      std::snprintf(v, sizeof v, "%.3f", g[0].value);
      fail(r, "gate '" + gate_text(g[0]) + "' failed in phase " + std::to_string(r.phase) + ": " +
                  v + " (" + std::to_string(p.failed) + " of " + std::to_string(finished) +
                  " devices failed to update)");
      return;
    }
  }

  if (p.pending > 0) {
    double& tokens = admit_tokens_[r.id];
    const double per_tick = r.rate / 60.0 * tick_seconds_;
    tokens = std::min(tokens + per_tick, std::max(1.0, r.rate / 60.0));
    const int n = static_cast<int>(tokens);
    if (n > 0) tokens -= admit(r, std::min(n, p.pending));
    return;
  }

  // Settled: every device is in, and enough of them finished (a phase counts only the
  // devices that report; min_reporting sets how many must).
  double required = 1.0;
  for (const auto& c : *clauses) {
    if (c.metric == "min_reporting") required = std::min(1.0, std::max(0.0, c.threshold));
  }
  if (p.total == 0 || finished < static_cast<int>(std::ceil(required * p.total - 1e-9))) return;
  if (p.state != "baking") {
    db_.transact([&](pqxx::work& w) {
      w.exec_params(
          "UPDATE rollout_phases SET state = 'baking', started_at = now() WHERE rollout_id = $1 "
          "AND idx = $2",
          r.id, r.phase);
      return 0;
    });
    log::info(
        "rollout.phase_baking",
        {{"rollout", r.name}, {"phase", r.phase}, {"updated", p.updated}, {"failed", p.failed}});
    return;
  }
  if (p.baking_for < p.bake_seconds) return;

  // Gates: the new model's cohort against the old one's.
  auto metrics = db_.transact([&](pqxx::work& w) {
    const auto row = w.exec_params1(
        "WITH cohort AS (SELECT device_id, target_artifact, updated_at_device FROM "
        "rollout_devices WHERE rollout_id = $1 AND phase <= $2 AND state = 'updated'), "
        "fresh AS (SELECT t.* FROM telemetry t JOIN cohort c ON c.device_id = t.device_id "
        "WHERE t.artifact_sha256 = c.target_artifact AND t.ts >= c.updated_at_device), "
        "stale AS (SELECT t.* FROM telemetry t JOIN rollout_devices rd ON rd.device_id = "
        "t.device_id AND rd.rollout_id = $1 WHERE t.artifact_sha256 <> rd.target_artifact AND "
        "t.ts >= (SELECT created_at FROM rollouts WHERE id = $1) - interval '15 minutes') "
        "SELECT (SELECT count(*) FROM cohort), (SELECT count(DISTINCT device_id) FROM fresh), "
        "(SELECT avg(output_psi) FROM fresh WHERE output_psi >= 0), "
        "(SELECT avg(input_drift) FROM fresh WHERE input_drift >= 0), "
        "(SELECT avg(probe_accuracy) FROM fresh), (SELECT avg(probe_accuracy) FROM stale), "
        "(SELECT avg(energy_uj) FROM fresh), (SELECT avg(energy_uj) FROM stale), "
        "(SELECT avg(latency_p95_us) FROM fresh), (SELECT avg(latency_p95_us) FROM stale), "
        "(SELECT avg(shadow_agreement) FROM fresh)",
        r.id, r.phase);
    std::map<std::string, std::optional<double>> m;
    const double cohort = row[0].as<double>(), reporting = row[1].as<double>();
    m["failure_rate"] = finished > 0 ? std::optional<double>(double(p.failed) / finished)
                                     : std::optional<double>(0.0);
    m["min_reporting"] = cohort > 0 ? std::optional<double>(reporting / cohort) : std::nullopt;
    m["psi"] = opt(row[2]);
    m["input_drift"] = opt(row[3]);
    m["accuracy"] = opt(row[4]);
    const auto acc_old = opt(row[5]);
    if (m["accuracy"] && acc_old) m["accuracy_drop"] = *acc_old - *m["accuracy"];
    const auto e_new = opt(row[6]), e_old = opt(row[7]);
    if (e_new && e_old && *e_old > 0) m["energy_regression"] = *e_new / *e_old - 1.0;
    const auto l_new = opt(row[8]), l_old = opt(row[9]);
    if (l_new && l_old && *l_old > 0) m["latency_regression"] = *l_new / *l_old - 1.0;
    m["shadow_agreement"] = opt(row[10]);
    return m;
  });
  if (!metrics) return;
  const auto results = evaluate_gates(*clauses, *metrics);
  nlohmann::json report = nlohmann::json::array();
  std::string waiting, failed;
  for (const auto& g : results) {
    report.push_back({{"metric", g.clause.metric},
                      {"op", g.clause.op},
                      {"threshold", g.clause.threshold},
                      {"value", g.value},
                      {"known", g.known},
                      {"passed", g.passed}});
    // Too few devices reporting is a quorum not reached yet: wait for them, up to two
    // minutes past the bake, then fail naming how many reported.
    const bool quorum = g.clause.metric == "min_reporting";
    if (!g.known || (quorum && !g.passed && p.baking_for < p.bake_seconds + 120)) {
      waiting += (waiting.empty() ? "" : ", ") + g.clause.metric;
      continue;
    }
    if (!g.passed && failed.empty()) {
      char v[48];
      std::snprintf(v, sizeof v, "%.4g", g.value);
      failed = "gate '" + gate_text(g) + "' failed in phase " + std::to_string(r.phase) + ": " + v;
    }
  }
  db_.transact([&](pqxx::work& w) {
    w.exec_params("UPDATE rollouts SET gate_report = $2::jsonb WHERE id = $1", r.id, report.dump());
    return 0;
  });
  if (!failed.empty()) {
    fail(r, failed);
    return;
  }
  if (!waiting.empty()) {
    const std::string why = "phase " + std::to_string(r.phase) + " waits for telemetry: " + waiting;
    if (why != r.reason) {
      db_.transact([&](pqxx::work& w) {
        w.exec_params("UPDATE rollouts SET reason = $2 WHERE id = $1", r.id, why);
        return 0;
      });
    }
    return;
  }
  const bool last = r.phase + 1 >= r.phases;
  db_.transact([&](pqxx::work& w) {
    w.exec_params("UPDATE rollout_phases SET state = 'passed' WHERE rollout_id = $1 AND idx = $2",
                  r.id, r.phase);
    if (last) {
      w.exec_params(
          "UPDATE rollouts SET state = 'completed', reason = 'every phase passed its gates', "
          "updated_at = now() WHERE id = $1",
          r.id);
    } else {
      w.exec_params(
          "UPDATE rollouts SET current_phase = $2, phase_started_at = now(), reason = '', "
          "updated_at = now() WHERE id = $1",
          r.id, r.phase + 1);
      w.exec_params("UPDATE rollout_phases SET state = 'active' WHERE rollout_id = $1 AND idx = $2",
                    r.id, r.phase + 1);
    }
    return 0;
  });
  log::info(last ? "rollout.completed" : "rollout.phase_passed",
            {{"rollout", r.name}, {"phase", r.phase}});
}

int RolloutEngine::admit(const Active& r, int n) {
  auto picks = db_.transact([&](pqxx::work& w) {
    std::vector<Pick> out;
    for (const auto& row :
         w.exec_params("SELECT rd.device_id, rd.device_class, "
                       "COALESCE(d.current_artifact_sha256, ''), rd.target_artifact "
                       "FROM rollout_devices rd JOIN devices d ON d.id = rd.device_id "
                       "JOIN device_classes dc ON dc.name = rd.device_class "
                       "JOIN artifacts a ON a.version_id = $3 AND a.device_class = rd.device_class "
                       "WHERE rd.rollout_id = $1 AND rd.state = 'pending' AND rd.phase <= $2 "
                       "ORDER BY rd.rank LIMIT $4",
                       r.id, r.phase, r.version_id, n)) {
      Pick p;
      p.device = row[0].as<std::string>();
      p.device_class = row[1].as<std::string>();
      p.current = row[2].as<std::string>();
      p.target = row[3].as<std::string>();
      p.model = r.model;
      p.version = r.version;
      out.push_back(p);
    }
    return out;
  });
  if (!picks || picks->empty()) return 0;
  return send_offers(r, *picks, "offered");
}

int RolloutEngine::send_offers(const Active& r, const std::vector<Pick>& picks,
                               const std::string& next_state) {
  struct Prepared {
    const Pick* pick;
    uint64_t release = 0;
    BuiltOffer offer;
    std::string error;
  };
  std::vector<Prepared> prepared;
  const bool reverting = next_state == "reverting";
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
    if (!reverting && p.current == p.target) {
      prepared.push_back(x);  // runs the target already
      continue;
    }
    x.release = (*releases)[next_release++];
    OfferRequest q;
    q.fleet = r.fleet;
    q.device_class = p.device_class;
    q.base_sha256 = p.current;
    q.target_sha256 = p.target;
    q.model = p.model;
    q.model_version = p.version;
    q.release_seq = x.release;
    auto built = builder_.build(q, now_unix());
    if (built) {
      x.offer = std::move(*built);
    } else {
      x.error = built.error().message;
    }
    prepared.push_back(std::move(x));
  }
  // Durable first: a crash after this commit re-publishes (recover); before it, the
  // devices are still pending and nothing was sent.
  auto stored = db_.transact([&](pqxx::work& w) {
    std::map<std::string, std::string> stored_payloads;  // one blob per (base, target)
    for (const auto& x : prepared) {
      const auto& p = *x.pick;
      if (!reverting && x.release == 0) {
        w.exec_params(
            "UPDATE rollout_devices SET state = 'updated', base_artifact = NULLIF($3, ''), "
            "updated_at_device = now(), updated_at = now() WHERE rollout_id = $1 AND "
            "device_id = $2",
            r.id, p.device, p.current);
        continue;
      }
      if (!x.error.empty()) {
        w.exec_params(
            "UPDATE rollout_devices SET state = 'failed', error = $3, updated_at = now() "
            "WHERE rollout_id = $1 AND device_id = $2",
            r.id, p.device, "cannot build the offer: " + x.error);
        continue;
      }
      std::string& payload_sha = stored_payloads[x.offer.payload_sha256];
      if (payload_sha.empty()) payload_sha = storage::PgBlobStore::put(w, x.offer.payload);
      w.exec_params(
          "INSERT INTO device_offers (device_id, release_seq, rollout_id, target_artifact, "
          "payload_sha256, offer) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device_id) DO "
          "UPDATE SET release_seq = $2, rollout_id = $3, target_artifact = $4, "
          "payload_sha256 = $5, offer = $6, created_at = now()",
          p.device, x.release, r.id, p.target, payload_sha,
          pqxx::binarystring(x.offer.offer.data(), x.offer.offer.size()));
      if (reverting) {
        w.exec_params(
            "UPDATE rollout_devices SET state = 'reverting', revert_release = $3, "
            "updated_at = now() WHERE rollout_id = $1 AND device_id = $2",
            r.id, p.device, x.release);
      } else {
        w.exec_params(
            "UPDATE rollout_devices SET state = 'offered', release_seq = $3, "
            "base_artifact = NULLIF($4, ''), offered_at = now(), updated_at = now() "
            "WHERE rollout_id = $1 AND device_id = $2 AND state = 'pending'",
            r.id, p.device, x.release, p.current);
      }
    }
    return 0;
  });
  if (!stored) {
    log::error("rollout.store_offers", {{"rollout", r.name}, {"error", stored.error().message}});
    return 0;
  }
  int sent = 0;
  for (const auto& x : prepared) {
    if (x.release == 0 || !x.error.empty()) continue;
    if (publisher_.offer(r.fleet, x.pick->device, x.release, x.offer.offer, x.offer.payload)) {
      ++offers_;
      ++sent;
    }
  }
  return static_cast<int>(prepared.size());
}

void RolloutEngine::step_rolling_back(const Active& r) {
  // Every device that got the new model (or its offer) goes back to what it ran before,
  // as a new release; no rate limit: a rollback is urgent.
  auto picks = db_.transact([&](pqxx::work& w) {
    std::vector<Pick> out;
    for (const auto& row : w.exec_params(
             "SELECT rd.device_id, rd.device_class, "
             "COALESCE(d.current_artifact_sha256, ''), COALESCE(rd.base_artifact, ''), "
             "COALESCE(b.model, ''), COALESCE(b.version, 0) "
             "FROM rollout_devices rd JOIN devices d ON d.id = rd.device_id "
             "JOIN device_classes dc ON dc.name = rd.device_class "
             "LEFT JOIN LATERAL (SELECT m.name AS model, v.version FROM artifacts a "
             "JOIN model_versions v ON v.id = a.version_id JOIN models m ON m.id = v.model_id "
             "WHERE a.artifact_sha256 = rd.base_artifact LIMIT 1) b ON true "
             "WHERE rd.rollout_id = $1 AND rd.state IN ('offered', 'updated') "
             "ORDER BY rd.rank LIMIT 200",
             r.id)) {
      Pick p;
      p.device = row[0].as<std::string>();
      p.device_class = row[1].as<std::string>();
      p.current = row[2].as<std::string>();
      p.target = row[3].as<std::string>();
      p.model = row[4].as<std::string>();
      p.version = row[5].as<uint32_t>();
      out.push_back(p);
    }
    return out;
  });
  if (!picks) return;
  std::vector<Pick> revert;
  for (const auto& p : *picks) {
    if (p.target.empty()) {
      db_.transact([&](pqxx::work& w) {
        w.exec_params(
            "UPDATE rollout_devices SET state = 'rolled_back', error = 'no previous model to "
            "return to', updated_at = now() WHERE rollout_id = $1 AND device_id = $2",
            r.id, p.device);
        return 0;
      });
    } else {
      revert.push_back(p);
    }
  }
  if (!revert.empty()) {
    send_offers(r, revert, "reverting");
    return;
  }
  auto left = db_.transact([&](pqxx::work& w) {
    return w
        .exec_params1(
            "SELECT count(*) FROM rollout_devices WHERE rollout_id = $1 AND state IN "
            "('offered', 'updated', 'reverting')",
            r.id)[0]
        .as<int>();
  });
  if (!left || *left > 0) return;
  const std::string final_state = r.reason.rfind("aborted", 0) == 0 ? "aborted" : "rolled_back";
  db_.transact([&](pqxx::work& w) {
    w.exec_params("UPDATE rollouts SET state = $2, updated_at = now() WHERE id = $1", r.id,
                  final_state);
    return 0;
  });
  log::info("rollout." + final_state, {{"rollout", r.name}, {"reason", r.reason}});
}

}  // namespace tinyfleet::server
